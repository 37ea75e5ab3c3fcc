"""Area, die, device and operating cost of a device; performance per dollar.

``import tapeout.cost`` stays light; submodules load on use:

- :mod:`tapeout.cost.area`: per-component die area at a process node (``breakdown``)
- :mod:`tapeout.cost.price`: dies per wafer, yield, die/device cost, power, $/token (``estimate``)
- :mod:`tapeout.cost.assumptions`: the data files and user overrides (``Assumptions.load``)
- the calibrated area coefficients come from the store of fitted numbers (``fitted/cost.toml``), fitted on
  GA100 / Aldebaran by ``tapeout fit`` (:mod:`tapeout.fit.cost`)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from tapeout.cost.price import CostReport, estimate

__all__ = ["estimate", "CostReport"]


def __getattr__(name: str) -> Any:
    if name in ("estimate", "CostReport"):
        from tapeout.cost import price

        return getattr(price, name)
    raise AttributeError(f"module 'tapeout.cost' has no attribute {name!r}")
