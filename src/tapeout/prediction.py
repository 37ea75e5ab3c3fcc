"""A :class:`~tapeout.api.Prediction` as data: ``to_dict()`` (the ``--format json`` document), its per-op rows
and its comparison with a baseline. The renderers (:mod:`tapeout.report`) print this dict; it sits below them
because ``report`` imports ``serving``, which imports ``api``, whose ``Prediction`` methods call this."""

from __future__ import annotations

import math
from typing import Any

from tapeout.hardware.spec import HardwareSpec
from tapeout.perf.core import computes_in
from tapeout.perf.cost import OpCost
from tapeout.system.compose import PhaseCost
from tapeout.workload.ops import MATRIX_KINDS, Op, OpKind

#: ``pred`` below is a :class:`tapeout.api.Prediction` (not imported: the API imports this module)
Prediction = Any


def _num(x: float) -> float | None:
    return None if (isinstance(x, float) and not math.isfinite(x)) else x


def compute_ceiling(op: Op, ran: str | None, hw: HardwareSpec) -> tuple[str | None, float | None]:
    """The compute roof an op runs under, (label, TFLOP/s), given the format it computes in
    (:func:`~tapeout.perf.core.computes_in`): for matrix ops the device's dense or 2:4-sparse matrix peak of
    that format, for other arithmetic the vector FP32 peak, (None, None) for data movement. The roofline chart
    plots each op against it."""
    if ran is None:
        return None, None
    if op.kind in MATRIX_KINDS:
        table = hw.sparse_peak_tflops if ran.endswith("(2:4 sparse)") else hw.peak_tflops
        return ran, table.get(ran.split()[0])
    return "vector fp32", hw.vector_flops / 1e12


def op_row(phase: str, op: Op, cost: OpCost, phase_time: float, hw: HardwareSpec) -> dict[str, Any]:
    """One per-op row (``to_dict()["ops"]``); its keys but ``terms`` are the CSV's columns, in this order."""
    t = cost.terms
    ran = computes_in(op, cost, hw)
    roof, roof_tflops = compute_ceiling(op, ran, hw)
    return {
        "phase": phase,
        "name": op.name,
        "kind": op.kind.value,
        "count": op.count,
        "shape": op.dims(),
        "formats": dict(op.formats),
        "compute_dtype": op.compute_dtype,
        "computes_in": ran,
        # the roofline chart's coordinates: the roof of the format the op computes in (vector FP32 for
        # non-matrix arithmetic) and the FLOP/s one run reaches
        "ceiling": roof,
        "ceiling_tflops": roof_tflops,
        "achieved_tflops": op.flops / cost.time_s / 1e12 if cost.time_s > 0 else None,
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
        "kernel": str(t.get("kernel", "dense")),
        "weight_bytes": op.weight_bytes,
        "matrix_s": float(t.get("matrix_s", cost.compute_s if op.kind.value in ("gemm", "bmm", "attention") else 0.0)),
        "dequant_s": float(t.get("dequant_s", 0.0)),
        "extract_s": float(t.get("extract_s", 0.0)),
        "terms": cost.terms,
    }


def phase_rows(p: PhaseCost, label: str, hw: HardwareSpec) -> list[dict[str, Any]]:
    return [op_row(label, o, c, p.time_s, hw) for o, c in zip(p.ops, p.costs)]


def op_rows(pred: Prediction) -> list[dict[str, Any]]:
    """Per-op rows: the prefill, then the decode step at the middle of the generation."""
    r = pred.result
    return phase_rows(r.prefill, "prefill", pred.hardware) + phase_rows(r.decode_representative, "decode",
                                                                        pred.hardware)


def _alltoall_s(p: PhaseCost) -> float:
    """Seconds of a phase's expert-parallel all-to-alls (dispatch and combine; 0 without wide EP)."""
    return sum(c.total_s for o, c in zip(p.ops, p.costs) if o.kind is OpKind.ALLTOALL)


def _alltoall_exposed_s(p: PhaseCost) -> float:
    """Seconds of a phase's all-to-alls the compute waited for: all of them, or under two-batch overlap the share
    the other micro-batch's compute did not hide (their rows' ``tbo_exposed_s``)."""
    return sum(float(c.terms.get("tbo_exposed_s", c.total_s)) for o, c in zip(p.ops, p.costs)
               if o.kind is OpKind.ALLTOALL)


def _ratio(base: float, tech: float, *, higher_is_better: bool = False) -> dict[str, float]:
    speedup = (tech / base if higher_is_better else base / tech) if base and tech else 0.0
    return {"baseline": base, "technique": tech, "speedup": speedup}


def _size(base: float, tech: float) -> dict[str, float]:
    return {"baseline": base, "technique": tech, "ratio": tech / base if base else 0.0}


def comparison(pred: Prediction) -> dict[str, Any] | None:
    """Technique vs baseline: TTFT (prefill), TPOT (decode), e2e, throughput, memory."""
    b = pred.baseline
    if b is None:
        return None
    r, s = b.result, pred.result
    bs = b.scenario
    return {
        "baseline": {"weights": bs.weights.name, "activations": bs.activations.name,
                     "kv_cache": bs.kv_cache.name, "sparsity": None},
        "phases": {
            "prefill": _ratio(r.ttft_s, s.ttft_s),
            "decode": _ratio(r.tpot_s, s.tpot_s),
        },
        "ttft_s": _ratio(r.ttft_s, s.ttft_s),
        "tpot_s": _ratio(r.tpot_s, s.tpot_s),
        "e2e_latency_s": _ratio(r.e2e_latency_s, s.e2e_latency_s),
        "throughput_tok_s": _ratio(r.throughput_tok_s, s.throughput_tok_s, higher_is_better=True),
        "memory": {
            "weights_bytes": _size(r.memory.weights_bytes, s.memory.weights_bytes),
            "total_bytes": _size(r.memory.total_bytes, s.memory.total_bytes),
            "max_batch": {"baseline": r.memory.max_batch, "technique": s.memory.max_batch},
            "fits": {"baseline": r.memory.fits, "technique": s.memory.fits},
        },
    }


def model_info(pred: Prediction) -> dict[str, Any]:
    """Parameter counts and the attention as run: the layer spans (full, sliding W, chunked C) with their
    layer counts, and for MLA the form each phase ran in."""
    m, sc = pred.model, pred.scenario
    info: dict[str, Any] = {
        "total_params": m.total_params(),
        "active_params": m.active_params(),
        "attention": m.attention_kind,
        "attention_layers": {a.label: n for a, n in m.attention_spans()},
    }
    if m.vision_params:
        info["vision_params"] = m.vision_params  # loaded with the weights, not run for text
    if m.mtp_layers:
        info["mtp_params"] = m.mtp_params()  # reported apart: neither loaded nor run
    if m.mla is not None:
        info["mla_forms"] = {"prefill": sc.mla_form("prefill"), "decode": sc.mla_form("decode")}
    return info


def inputs(pred: Prediction) -> dict[str, Any]:
    """``to_dict()["inputs"]``: the model and device, the resolved scenario's fields as it dumps them
    (:class:`~tapeout.workload.scenario.Scenario`; ``dp_attention`` after ``ep``, ``kernel_constants`` only
    when given), then the tier and framework that ran, the default 16-bit format and the checkpoint's."""
    sc = pred.scenario
    fields = sc.model_dump(exclude={"kernel_constants"} if sc.kernel_constants is None else None)
    framework = fields.pop("framework")
    out: dict[str, Any] = {"model": pred.model.name, "hardware": pred.hardware.name}
    for k, v in fields.items():
        out[k] = v
        if k == "ep":
            out["dp_attention"] = sc.dp
    ck = pred.checkpoint_format
    return out | {
        "tier": pred.tier,
        "framework": framework,
        "default_16bit": pred.default_16bit,
        "checkpoint_format": None if ck is None else {
            "weights": ck.weights, "layers": ck.match, "layer_indices": None if ck.layers is None else list(ck.layers),
            "activations": ck.activations, "source": ck.source,
        },
    }


def _cycle(pred: Prediction, step: PhaseCost) -> float:
    mb = pred.scenario.pp_microbatches
    return max(step.time_s, mb * max(step.stage_times)) if step.stage_times else step.time_s


def to_dict(pred: Prediction) -> dict[str, Any]:
    """Everything a prediction says, as plain data (``tapeout predict --format json``)."""
    r, sc = pred.result, pred.scenario
    steps = r.decode_steps
    mid = r.decode_representative
    return {
        "inputs": inputs(pred),
        "warnings": list(pred.warnings),
        "notes": list(pred.notes),
        "ttft_s": r.ttft_s,
        "tpot_s": r.tpot_s,
        "e2e_latency_s": r.e2e_latency_s,
        "throughput_tok_s": r.throughput_tok_s,
        "concurrency": r.concurrency,
        "memory": r.memory.to_dict(),
        "phases": {
            "prefill": {
                "time_s": r.prefill.time_s,
                "tokens": r.prefill.graph.tokens,
                "flops": r.prefill.graph.flops,
                "bytes": r.prefill.graph.bytes_total,
                "stage_times_s": list(r.prefill.stage_times),
                "all_to_all_s": _alltoall_s(r.prefill),
                "all_to_all_exposed_s": _alltoall_exposed_s(r.prefill),
            },
            "decode": {
                "mean_step_s": r.tpot_s,
                "first_step_s": steps[0].time_s,
                "last_step_s": steps[-1].time_s,
                # with pp_microbatches > 1 a decode cycle (every batch in flight advances one token)
                # is max(one batch's pass, microbatches x the slowest stage); TPOT is its mean
                "first_cycle_s": _cycle(pred, steps[0]),
                "last_cycle_s": _cycle(pred, steps[-1]),
                "microbatches": sc.pp_microbatches,
                "first_context": steps[0].graph.context,
                "last_context": steps[-1].graph.context,
                "steps_evaluated": len(steps),
                "ops_shown_at_context": mid.graph.context,
                "flops_per_step": mid.graph.flops,
                "bytes_per_step": mid.graph.bytes_total,
                "stage_times_s": list(mid.stage_times),
                "all_to_all_s": _alltoall_s(mid),
                "all_to_all_exposed_s": _alltoall_exposed_s(mid),
            },
        },
        "model_info": model_info(pred),
        "hardware_info": {
            "display_name": pred.hardware.display_name,
            "memory_bandwidth_gbps": pred.hardware.memory.bandwidth_gbps,
            "peak_tflops": dict(pred.hardware.peak_tflops),
            "sparse_peak_tflops": dict(pred.hardware.sparse_peak_tflops),
            "vector_tflops": pred.hardware.vector_flops / 1e12,
            "memory_capacity_bytes": pred.hardware.memory_capacity,
            "efficiency": pred.hardware.efficiency.model_dump(),
        },
        "ops": op_rows(pred),
    } | ({"comparison": comparison(pred)} if pred.baseline is not None else {})
