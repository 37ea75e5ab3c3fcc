"""Accuracy harness: compare the performance tiers with measured data (``tapeout validate``).

The measured sets live outside the package (``shared/reference-data`` beside the repository, or
any directory of the same shape); they are read at run time and never copied in.
"""

from tapeout.validate.datasets import Case, load_cases
from tapeout.validate.metrics import log_bias, mape_pct, mdape_pct, summarize
from tapeout.validate.runner import GROUP_KEYS, Evaluation, evaluate, run_validation

__all__ = ["Case", "Evaluation", "GROUP_KEYS", "evaluate", "load_cases", "log_bias", "mape_pct", "mdape_pct",
           "run_validation", "summarize"]
