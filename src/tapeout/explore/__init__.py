"""Design-space exploration: sweep or search hardware designs, store every result, report the
Pareto front. Submodules load on use (Optuna, Ray, matplotlib and plotly are optional extras):

- :mod:`tapeout.explore.space`: the design-space file (``load_space``)
- :mod:`tapeout.explore.design`: a design point as a HardwareSpec + physical die
- :mod:`tapeout.explore.evaluate`: one point -> area, cost, per-workload predictions, objectives
- :mod:`tapeout.explore.run`: grid / random / NSGA-II over local or Ray executors (``run``)
- :mod:`tapeout.explore.store`: the SQLite results store
- :mod:`tapeout.explore.report`: Pareto front, CSV / Parquet / PNG / HTML
"""

from __future__ import annotations
