"""The public Python surface: ``predict``, ``load_model``, ``load_hardware``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tapeout import specio
from tapeout.errors import TapeoutError
from tapeout.hardware.catalog import load_hardware
from tapeout.hardware.spec import EfficiencySpec, HardwareSpec
from tapeout.models.catalog import load_model
from tapeout.models.spec import ModelSpec
from tapeout.perf import TIERS
from tapeout.perf.cost import OpCost
from tapeout.system.compose import Composition, PhaseCost, compose
from tapeout.workload.ops import Op
from tapeout.workload.scenario import Scenario


def _num(x: float) -> float | None:
    return None if (isinstance(x, float) and not math.isfinite(x)) else x


def _op_row(phase: str, op: Op, cost: OpCost, phase_time: float) -> dict[str, Any]:
    return {
        "phase": phase,
        "name": op.name,
        "kind": op.kind.value,
        "count": op.count,
        "shape": op.dims(),
        "formats": dict(op.formats),
        "compute_dtype": op.compute_dtype,
        "flops": op.flops,
        "bytes_read": op.bytes_read,
        "bytes_written": op.bytes_written,
        "intensity": _num(op.intensity),
        "bound": cost.bound,
        "time_s": cost.time_s,
        "total_s": cost.total_s,
        "share": cost.total_s / phase_time if phase_time else 0.0,
        "compute_s": cost.compute_s,
        "memory_s": cost.memory_s,
        "network_s": cost.network_s,
        "overhead_s": cost.overhead_s,
        "terms": cost.terms,
    }


def _phase_rows(p: PhaseCost, label: str) -> list[dict[str, Any]]:
    return [_op_row(label, o, c, p.time_s) for o, c in zip(p.ops, p.costs)]


@dataclass(frozen=True)
class Prediction:
    """A prediction and everything needed to explain it."""

    model: ModelSpec
    hardware: HardwareSpec
    scenario: Scenario
    tier: str
    result: Composition

    @property
    def ttft_s(self) -> float:
        return self.result.ttft_s

    @property
    def tpot_s(self) -> float:
        return self.result.tpot_s

    @property
    def e2e_latency_s(self) -> float:
        return self.result.e2e_latency_s

    @property
    def throughput_tok_s(self) -> float:
        return self.result.throughput_tok_s

    @property
    def memory(self):  # noqa: ANN201 - MemoryPlan
        return self.result.memory

    def ops(self) -> list[dict[str, Any]]:
        """Per-op rows: the prefill, then the decode step at the middle of the generation."""
        r = self.result
        return _phase_rows(r.prefill, "prefill") + _phase_rows(r.decode_representative, "decode")

    def to_dict(self) -> dict[str, Any]:
        r, sc = self.result, self.scenario
        steps = r.decode_steps
        mid = r.decode_representative
        return {
            "inputs": {
                "model": self.model.name,
                "hardware": self.hardware.name,
                "batch": sc.batch,
                "input_len": sc.input_len,
                "output_len": sc.output_len,
                "tp": sc.tp,
                "weights": sc.weights.name,
                "activations": sc.activations.name,
                "kv_cache": sc.kv_cache.name,
                "attention": sc.attention,
                "tier": self.tier,
            },
            "ttft_s": r.ttft_s,
            "tpot_s": r.tpot_s,
            "e2e_latency_s": r.e2e_latency_s,
            "throughput_tok_s": r.throughput_tok_s,
            "memory": r.memory.to_dict(),
            "phases": {
                "prefill": {
                    "time_s": r.prefill.time_s,
                    "tokens": r.prefill.graph.tokens,
                    "flops": r.prefill.graph.flops,
                    "bytes": r.prefill.graph.bytes_total,
                },
                "decode": {
                    "mean_step_s": r.tpot_s,
                    "first_step_s": steps[0].time_s,
                    "last_step_s": steps[-1].time_s,
                    "first_context": steps[0].graph.context,
                    "last_context": steps[-1].graph.context,
                    "steps_evaluated": len(steps),
                    "ops_shown_at_context": mid.graph.context,
                    "flops_per_step": mid.graph.flops,
                    "bytes_per_step": mid.graph.bytes_total,
                },
            },
            "model_info": {
                "total_params": self.model.total_params(),
                "active_params": self.model.active_params(),
                "attention": self.model.attention_kind,
            },
            "hardware_info": {
                "display_name": self.hardware.display_name,
                "memory_bandwidth_gbps": self.hardware.memory.bandwidth_gbps,
                "peak_tflops": dict(self.hardware.peak_tflops),
                "efficiency": self.hardware.efficiency.model_dump(),
            },
            "ops": self.ops(),
        }


def predict(
    model: str | Path | ModelSpec,
    hardware: str | Path | HardwareSpec,
    *,
    batch: int = 1,
    input_len: int = 2048,
    output_len: int = 128,
    tp: int = 1,
    weights: str = "fp16",
    activations: str = "fp16",
    kv_cache: str | None = None,
    attention: str = "flash",
    tier: str = "roofline",
    efficiency: dict[str, float] | None = None,
) -> Prediction:
    """Predict latency, throughput and memory of ``model`` on ``tp`` x ``hardware``.

    ``kv_cache`` defaults to the activation format. ``efficiency`` overrides fields of the
    device's :class:`~tapeout.hardware.spec.EfficiencySpec` (e.g. ``{"matmul_eta": 0.8}``).
    """
    m = load_model(model)
    hw = load_hardware(hardware)
    if efficiency:
        unknown = sorted(set(efficiency) - set(EfficiencySpec.model_fields))
        if unknown:
            raise TapeoutError(
                f"unknown fields {unknown}; allowed: {', '.join(EfficiencySpec.model_fields)}", field="efficiency"
            )
        eff = specio.build(EfficiencySpec, {**hw.efficiency.model_dump(), **efficiency}, origin="efficiency")
        hw = hw.model_copy(update={"efficiency": eff})
    if tier not in TIERS:
        raise TapeoutError(f"unknown tier {tier!r}; allowed: {', '.join(sorted(TIERS))}", field="tier")
    sc = specio.build(
        Scenario,
        {"batch": batch, "input_len": input_len, "output_len": output_len, "tp": tp, "weights": weights,
         "activations": activations, "kv_cache": kv_cache if kv_cache is not None else activations,
         "attention": attention},
        origin="scenario",
    )
    return Prediction(model=m, hardware=hw, scenario=sc, tier=tier, result=compose(m, hw, sc, tier))


__all__ = ["Prediction", "predict", "load_model", "load_hardware"]
