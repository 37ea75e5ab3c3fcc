"""tapeout: how fast, how big and how costly is LLM inference on this hardware?

Import is kept light; the API is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["predict", "simulate", "load_model", "load_hardware", "Prediction", "SimResult", "TapeoutError"]

if TYPE_CHECKING:  # pragma: no cover
    from tapeout.api import Prediction, load_hardware, load_model, predict
    from tapeout.errors import TapeoutError
    from tapeout.serving.sim import SimResult, simulate


def __getattr__(name: str) -> Any:
    if name == "TapeoutError":
        from tapeout.errors import TapeoutError

        return TapeoutError
    if name in ("predict", "load_model", "load_hardware", "Prediction"):
        from tapeout import api

        return getattr(api, name)
    if name in ("simulate", "SimResult"):
        from tapeout.serving import sim

        return getattr(sim, name)
    raise AttributeError(f"module 'tapeout' has no attribute {name!r}")
