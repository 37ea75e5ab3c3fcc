"""End-to-end cases priced through :func:`tapeout.predict` (memoised), and what validation reads from a prediction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tapeout.validate.cases import E2E_QUANTITIES


@dataclass(frozen=True, slots=True)
class E2EPoint:
    """What the validation needs from one :func:`tapeout.predict` call."""

    ttft_s: float
    tpot_s: float
    e2e_s: float
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
        if quantity == "e2e_s":
            return self.e2e_s
        per_gpu = int(scenario.get("tp", 1)) / int(scenario["batch"])  # a tp group, or one data-parallel device
        if quantity == "decode_gpu_s_per_token":
            return per_gpu * self.tpot_s
        if quantity == "prefill_gpu_s_per_token":
            return per_gpu * self.ttft_s / int(scenario["input_len"])
        raise ValueError(f"unknown end-to-end quantity {quantity!r}; allowed: {', '.join(E2E_QUANTITIES)}")

    def bound(self, quantity: str) -> str:
        return self.prefill_bound if quantity.startswith("prefill") else self.decode_bound


_E2E_CACHE: dict[tuple[str, str, tuple[tuple[str, Any], ...]], E2EPoint] = {}
_E2E_CACHE_MAX = 8192


def _dominant_bound(phase: Any) -> str:
    costs = phase.costs
    return max(costs, key=lambda c: c.total_s).bound if costs else ""


def e2e_predict(hw: Any, scenario: tuple[tuple[str, Any], ...], tier: str = "roofline") -> E2EPoint:
    """``tapeout.predict(**scenario)`` on device spec ``hw``, memoised on the spec's content.

    One prediction is 5-15 ms; the loaders (memory check) and every ``evaluate`` run with the same
    efficiency data share the results. Four scenario keys are not :func:`tapeout.predict` arguments as
    they stand: ``efficiency`` and ``kernel_constants`` are (field, value) pairs (the first win over the
    framework profile's; cross-validation's refitted values), ``lm_head`` is the lm_head's weight format
    (a per-layer rule), ``layers`` holds per-layer rules as tuples of (key, value) pairs (a scenario's
    ``layers``, hashable).
    """
    from tapeout.api import predict

    key = (hw.model_dump_json(), tier, scenario)
    point = _E2E_CACHE.get(key)
    if point is None:
        kw = dict(scenario)
        for k in ("efficiency", "kernel_constants"):  # (field, value) pairs; efficiency wins over the profile's
            if k in kw:
                kw[k] = dict(kw[k])
        rules = [dict(rule) for rule in kw.pop("layers", ())]
        if "lm_head" in kw:  # the lm_head's weight format, as a per-layer rule
            rules.append({"match": "lm_head", "weights": kw.pop("lm_head")})
        if rules:
            kw["scenario"] = {"layers": rules}
        pr = predict(kw.pop("model"), hw, tier=tier, **kw)
        mem = pr.memory
        point = E2EPoint(
            ttft_s=pr.ttft_s, tpot_s=pr.tpot_s, e2e_s=pr.e2e_latency_s, throughput_tok_s=pr.throughput_tok_s,
            fits=bool(mem.fits),
            memory_total_gb=mem.total_bytes / 1e9, memory_capacity_gb=mem.capacity_bytes / 1e9,
            prefill_bound=_dominant_bound(pr.result.prefill),
            decode_bound=_dominant_bound(pr.result.decode_representative),
        )
        if len(_E2E_CACHE) >= _E2E_CACHE_MAX:
            _E2E_CACHE.clear()
        _E2E_CACHE[key] = point
    return point


__all__ = ["E2EPoint", "e2e_predict"]
