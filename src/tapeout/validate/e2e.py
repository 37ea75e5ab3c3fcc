"""End-to-end cases priced through :func:`tapeout.predict` (memoised), and what validation reads from a prediction."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tapeout.validate.cases import E2E_QUANTITIES


@dataclass(frozen=True, slots=True)
class E2EPoint:
    """What the validation needs from one :func:`tapeout.predict` call."""

    ttft_s: float
    tpot_s: float
    throughput_tok_s: float
    fits: bool
    memory_total_gb: float
    memory_capacity_gb: float
    prefill_bound: str  # bound of the prefill's most expensive op
    decode_bound: str  # bound of the middle decode step's most expensive op

    def seconds(self, quantity: str, scenario: dict[str, Any], num_gpus: int) -> float:
        if quantity == "gpu_s_per_token":
            return num_gpus / self.throughput_tok_s
        if quantity == "decode_step_s":
            return self.tpot_s
        if quantity == "prefill_s_per_token":
            return self.ttft_s / int(scenario["input_len"])
        if quantity == "ttft_s":
            return self.ttft_s
        raise ValueError(f"unknown end-to-end quantity {quantity!r}; allowed: {', '.join(E2E_QUANTITIES)}")

    def bound(self, quantity: str) -> str:
        return self.prefill_bound if quantity == "prefill_s_per_token" else self.decode_bound


_E2E_CACHE: dict[tuple[str, str, tuple[tuple[str, Any], ...]], E2EPoint] = {}
_E2E_CACHE_MAX = 8192


def _dominant_bound(phase: Any) -> str:
    costs = phase.costs
    return max(costs, key=lambda c: c.total_s).bound if costs else ""


@contextlib.contextmanager
def module_constants(pairs: Iterable[tuple[str, float]]) -> Iterator[None]:
    """Set module constants (``"tapeout.techniques.kernels.TILED_CSL_STREAM_ETA"``) for one prediction.

    For the fitted kernel constants that no per-call field reaches yet (they are read when the op graph
    is built). The op-graph caches (:func:`tapeout.workload.build.clear_caches`) are cleared on entry and
    exit, so that no graph built with other values is reused or kept (op costs are memoised by the op's
    content, which holds the values); the old values are restored whatever happens. Validation code
    only: the runtime never calls it.
    """
    pairs = tuple(pairs)
    if not pairs:
        yield
        return
    from tapeout.workload.build import clear_caches

    saved = []
    for dotted, value in pairs:
        mod_name, attr = dotted.rsplit(".", 1)
        mod = importlib.import_module(mod_name)
        if not isinstance(getattr(mod, attr, None), (int, float)):
            raise ValueError(f"{dotted} is not a numeric module constant")
        saved.append((mod, attr, getattr(mod, attr)))
    clear_caches()
    try:
        for (mod, attr, _), (_, value) in zip(saved, pairs):
            setattr(mod, attr, value)
        yield
    finally:
        for mod, attr, old in saved:
            setattr(mod, attr, old)
        clear_caches()


def e2e_predict(hw: Any, scenario: tuple[tuple[str, Any], ...], tier: str = "roofline") -> E2EPoint:
    """``tapeout.predict(**scenario)`` on device spec ``hw``, memoised on the spec's content.

    One prediction is 5-15 ms; the loaders (memory check) and every ``evaluate`` run with the same
    efficiency data share the results. Three scenario keys are not :func:`tapeout.predict` arguments as
    they stand: ``efficiency`` is (field, value) pairs that win over the framework profile's, ``lm_head``
    is the lm_head's weight format (a per-layer rule), and ``constants`` is (dotted module constant,
    value) pairs set for this prediction only (:func:`module_constants`; cross-validation's refitted
    kernel constants, which have no per-call field yet).
    """
    from tapeout.api import predict

    key = (hw.model_dump_json(), tier, scenario)
    point = _E2E_CACHE.get(key)
    if point is None:
        kw = dict(scenario)
        if "efficiency" in kw:  # (field, value) pairs that win over the framework profile's
            kw["efficiency"] = dict(kw["efficiency"])
        if "lm_head" in kw:  # the lm_head's weight format, as a per-layer rule
            kw["scenario"] = {"layers": [{"match": "lm_head", "weights": kw.pop("lm_head")}]}
        with module_constants(kw.pop("constants", ())):
            pr = predict(kw.pop("model"), hw, tier=tier, **kw)
        mem = pr.memory
        point = E2EPoint(
            ttft_s=pr.ttft_s, tpot_s=pr.tpot_s, throughput_tok_s=pr.throughput_tok_s, fits=bool(mem.fits),
            memory_total_gb=mem.total_bytes / 1e9, memory_capacity_gb=mem.capacity_bytes / 1e9,
            prefill_bound=_dominant_bound(pr.result.prefill),
            decode_bound=_dominant_bound(pr.result.decode_representative),
        )
        if len(_E2E_CACHE) >= _E2E_CACHE_MAX:
            _E2E_CACHE.clear()
        _E2E_CACHE[key] = point
    return point


__all__ = ["E2EPoint", "e2e_predict", "module_constants"]
