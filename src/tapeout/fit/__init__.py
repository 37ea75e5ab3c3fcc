"""Fitting: every number of the store (:mod:`tapeout.fitted`) regenerated from the measured data.

``tapeout fit`` / ``python -m tapeout.fit`` (:mod:`tapeout.fit.driver`) runs the fits in order:
:mod:`~tapeout.fit.roofline` (roofline efficiencies and the harness host terms), :mod:`~tapeout.fit.tiled`
(tiled kernel efficiencies), :mod:`~tapeout.fit.frameworks` (framework profiles),
:mod:`~tapeout.fit.kernels` (technique kernel constants), :mod:`~tapeout.fit.cost` (area coefficients);
:mod:`~tapeout.fit.store` writes and compares the files. Cross-validation (``tapeout validate --cv``) refits
through the same functions. Nothing here is imported by ``predict``, ``cost`` or ``explore``.
"""
