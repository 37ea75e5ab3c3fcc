"""Accuracy harness: compare the performance tiers with measured data (``tapeout validate``).

The measured sets live outside the package (the data directory of :mod:`tapeout.datadir`);
they are read at run time and never copied in. Each source is a module of
:mod:`tapeout.validate.sources` registered in :mod:`tapeout.validate.registry`.

Names are loaded on first use (importing a submodule such as the registry does not load the runner).
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Case": "tapeout.validate.cases",
    "load_cases": "tapeout.validate.registry",
    "load": "tapeout.validate.registry",
    "log_bias": "tapeout.validate.metrics",
    "mape_pct": "tapeout.validate.metrics",
    "mdape_pct": "tapeout.validate.metrics",
    "summarize": "tapeout.validate.metrics",
    "metrics": "tapeout.validate.metrics",
    "GROUP_KEYS": "tapeout.validate.runner",
    "Evaluation": "tapeout.validate.runner",
    "evaluate": "tapeout.validate.runner",
    "run_validation": "tapeout.validate.runner",
}


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'tapeout.validate' has no attribute {name!r}")
    module = import_module(mod)
    return module if name == "metrics" else getattr(module, name)


__all__ = sorted(_EXPORTS)
