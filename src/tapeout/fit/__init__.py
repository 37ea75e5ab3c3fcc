"""Fitting: every number of the store (:mod:`tapeout.fitted`) regenerated from the measured data.

``tapeout fit`` / ``python -m tapeout.fit`` (:mod:`tapeout.fit.driver`) runs the fits in order:
:mod:`~tapeout.fit.roofline` (roofline efficiencies and the harness host terms), :mod:`~tapeout.fit.tiled`
(tiled kernel efficiencies), :mod:`~tapeout.fit.frameworks` (framework profiles),
:mod:`~tapeout.fit.kernels` (technique kernel constants), :mod:`~tapeout.fit.cost` (area coefficients);
:mod:`~tapeout.fit.store` writes and compares the files. Cross-validation (``tapeout validate --cv``,
:mod:`~tapeout.fit.cv`) refits through the same functions. Fitting reads the measured data through
:mod:`tapeout.validate`; validation never imports fitting code (the CLI dispatches ``--cv`` here). Nothing here is imported by ``predict``, ``cost`` or ``explore``.
"""
