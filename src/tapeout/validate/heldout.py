"""The results of a leave-one-source-out cross-validation (``tapeout validate --cv``, run by
:func:`tapeout.fit.cv.cross_validate`, which refits): one :class:`Fold` per end-to-end source held out, and
the :class:`CrossValidation` that :mod:`tapeout.validate.render` prints. Result types only: validation code
never imports fitting code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tapeout.validate.registry import END_TO_END, datasets
from tapeout.validate.runner import CaseResult, Evaluation, _group_row


@dataclass
class Fold:
    """One end-to-end source held out: its refitted parameters and its cases priced with them."""

    source: str
    datasets: tuple[str, ...]
    #: the parameters refitted without the source (:class:`tapeout.fit.cv.Refit`: ``describe()``, ``param.name``)
    refits: list[Any]
    #: refits that at least one of the source's cases depends on
    used: frozenset[str]
    held_out: list[CaseResult]
    in_sample: list[CaseResult]

    def summary(self) -> dict[str, Any]:
        ins = _group_row(self.source, "*", "*", self.in_sample)
        out = _group_row(self.source, "*", "*", self.held_out)
        return {"source": self.source, "datasets": list(self.datasets), "n": out["n"],
                "in_sample_mape_pct": ins["mape_pct"], "held_out_mape_pct": out["mape_pct"],
                "in_sample_bias": ins["bias"], "held_out_bias": out["bias"],
                "refits": [r.describe() + ("" if r.param.name in self.used else "; no held-out case depends on it")
                           for r in self.refits]}


@dataclass
class CrossValidation:
    """The in-sample evaluation, one fold per end-to-end source, and the evaluation that reports every
    end-to-end group held out (per-op groups in-sample)."""

    in_sample: Evaluation
    evaluation: Evaluation
    folds: list[Fold]

    @property
    def held_out_datasets(self) -> frozenset[str]:
        return frozenset(d for f in self.folds for d in f.datasets if datasets()[d].kind == END_TO_END)


__all__ = ["CrossValidation", "Fold"]
