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
    t = cost.terms
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
        "kernel": str(t.get("kernel", "dense")),
        "weight_bytes": op.weight_bytes,
        "matrix_s": float(t.get("matrix_s", cost.compute_s if op.kind.value in ("gemm", "bmm", "attention") else 0.0)),
        "dequant_s": float(t.get("dequant_s", 0.0)),
        "extract_s": float(t.get("extract_s", 0.0)),
        "terms": cost.terms,
    }


def _phase_rows(p: PhaseCost, label: str) -> list[dict[str, Any]]:
    return [_op_row(label, o, c, p.time_s) for o, c in zip(p.ops, p.costs)]


def _rule_dict(r: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"match": r.match, "layers": list(r.layers) if r.layers is not None else None}
    for k in ("weights", "activations"):
        v = getattr(r, k)
        if v is not None:
            d[k] = v.name
    if r.sparsity is not None or r.dense:
        d["sparsity"] = r.sparsity.name if r.sparsity is not None else None
    if r.keep is not None:
        d["keep"] = r.keep
    return d


def _ratio(base: float, tech: float, *, higher_is_better: bool = False) -> dict[str, float]:
    speedup = (tech / base if higher_is_better else base / tech) if base and tech else 0.0
    return {"baseline": base, "technique": tech, "speedup": speedup}


def _size(base: float, tech: float) -> dict[str, float]:
    return {"baseline": base, "technique": tech, "ratio": tech / base if base else 0.0}


@dataclass(frozen=True)
class Prediction:
    """A prediction and everything needed to explain it.

    ``baseline`` is the same scenario in a plain format (``compare_to``) when one was asked for;
    ``to_dict()`` then carries a ``comparison`` with the speedup per phase.
    """

    model: ModelSpec
    hardware: HardwareSpec
    scenario: Scenario
    tier: str
    result: Composition
    baseline: Prediction | None = None
    #: serving-framework profile whose host overhead is in ``hardware.efficiency.host_overhead_us``
    framework: str = "kernels"

    def comparison(self) -> dict[str, Any] | None:
        """Technique vs baseline: TTFT (prefill), TPOT (decode), e2e, throughput, memory."""
        b = self.baseline
        if b is None:
            return None
        r, s = b.result, self.result
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
                "ep": sc.ep,
                "pp": sc.pp,
                "pp_microbatches": sc.pp_microbatches,
                "weights": sc.weights.name,
                "activations": sc.activations.name,
                "kv_cache": sc.kv_cache.name,
                "attention": sc.attention,
                "fuse_residual_norm": sc.fuse_residual_norm,
                "kv_fraction": sc.kv_fraction,
                "sparsity": sc.sparsity.name if sc.sparsity is not None else None,
                "sparse_kernel": sc.sparse_kernel,
                "layers": [_rule_dict(r) for r in sc.layers],
                "tier": self.tier,
                "framework": self.framework,
            },
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
                    "stage_times_s": list(mid.stage_times),
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
        } | ({"comparison": self.comparison()} if self.baseline is not None else {})


_RESOLVED: dict[tuple, tuple[HardwareSpec, HardwareSpec]] = {}


def _with_efficiency(hw: HardwareSpec, efficiency: dict[str, Any]) -> HardwareSpec:
    """``hw`` with some EfficiencySpec fields replaced, memoised per (device identity, fields): repeated
    predictions share one device value, and with it its priced ops (``system.pricing``)."""
    try:
        key: tuple | None = (id(hw), tuple(sorted(efficiency.items())))
        hash(key)
    except TypeError:  # unhashable values: validation below names them
        key = None
    hit = _RESOLVED.get(key) if key is not None else None
    if hit is not None and hit[0] is hw:
        return hit[1]
    eff = specio.build(EfficiencySpec, {**hw.efficiency.model_dump(), **efficiency}, origin="efficiency")
    out = hw.model_copy(update={"efficiency": eff})
    if key is not None:
        if len(_RESOLVED) >= 256:
            _RESOLVED.clear()
        _RESOLVED[key] = (hw, out)
    return out


def default_tier(hw: HardwareSpec) -> str:
    """The tile-level mapper where the device is described down to its cores, else the roofline."""
    return "tiled" if hw.microarch is not None else "roofline"


def predict(
    model: str | Path | ModelSpec,
    hardware: str | Path | HardwareSpec,
    *,
    batch: int = 1,
    input_len: int = 2048,
    output_len: int = 128,
    tp: int = 1,
    ep: int = 1,
    pp: int = 1,
    pp_microbatches: int = 1,
    weights: str | None = None,
    activations: str | None = None,
    kv_cache: str | None = None,
    attention: str = "flash",
    fuse_residual_norm: bool = False,
    kv_fraction: float = 0.9,
    sparsity: float | str | None = None,
    sparse_kernel: str | None = None,
    scenario: str | Path | dict[str, Any] | None = None,
    compare_to: str | None = None,
    tier: str | None = None,
    efficiency: dict[str, float] | None = None,
    framework: str = "kernels",
) -> Prediction:
    """Predict latency, throughput and memory of ``model`` on ``tp`` x ``pp`` x ``hardware``.

    Parallelism: ``tp``-way tensor parallelism within each of ``pp`` pipeline stages (contiguous layers,
    hidden states sent point to point between stages); ``ep`` = ``tp`` spreads an MoE model's whole
    experts over the tp devices instead of slicing each one (balanced routing assumed);
    ``pp_microbatches`` batches of ``batch`` sequences
    in flight through the pipeline (1: one at a time, as llama.cpp's layer split; ``pp``: a full pipeline,
    as vLLM's virtual engines). Memory is the binding device's (the fullest stage).

    Techniques: ``weights`` / ``activations`` / ``kv_cache`` formats (see :mod:`tapeout.dtypes`; the KV
    cache defaults to the activation format), ``sparsity`` of the linear layers (``0.8``, ``"2:4"``,
    ``"1x4:0.5"``) and the ``sparse_kernel`` (auto, tensor, cuda, dense). ``scenario`` is a scenario
    file (TOML/YAML/JSON) or mapping with the same keys plus per-layer rules (``layers``: mixed
    precision, sparsity and channel pruning per layer class and index); arguments given here override
    its global keys. ``compare_to`` (e.g. ``"fp16"``) also predicts that plain baseline and adds the
    speedup per phase (``Prediction.comparison()``, ``to_dict()["comparison"]``). ``efficiency``
    overrides fields of the device's :class:`~tapeout.hardware.spec.EfficiencySpec` (e.g.
    ``{"matmul_eta": 0.8}``). ``framework`` names a serving-framework profile (``system/frameworks.toml``): a per-op host
    overhead added to every kernel (``kernels``: device time only; ``fastertransformer``; ``deepspeed``)
    or a cap on the DRAM bytes per core per clock its kernels move (``llamacpp``), or a one-shot
    all-reduce for small messages (``gptfast``); explicit ``efficiency`` fields win over the profile's.
    ``tier`` defaults to ``"tiled"`` for a device with a micro-architecture description and to
    ``"roofline"`` otherwise; ``to_dict()["inputs"]["tier"]`` says which one ran.
    """
    from tapeout.techniques.spec import read_scenario_file, scenario_mapping

    from tapeout.system.frameworks import framework as framework_profile

    m = load_model(model)
    hw = load_hardware(hardware)
    fw = framework_profile(framework)
    profile = fw.efficiency()
    if profile:  # explicit efficiency fields win over the profile's
        efficiency = {**profile, **(efficiency or {})}
    if efficiency:
        unknown = sorted(set(efficiency) - set(EfficiencySpec.model_fields))
        if unknown:
            raise TapeoutError(
                f"unknown fields {unknown}; allowed: {', '.join(EfficiencySpec.model_fields)}", field="efficiency"
            )
        hw = _with_efficiency(hw, efficiency)
    if tier is None:
        tier = default_tier(hw)
    if tier not in TIERS:
        raise TapeoutError(f"unknown tier {tier!r}; allowed: {', '.join(sorted(TIERS))}", field="tier")
    if scenario is None:
        tech: dict[str, Any] = {}
    elif isinstance(scenario, dict):
        tech = scenario_mapping(scenario, origin="scenario")
    else:
        tech = read_scenario_file(scenario)
    given = {"weights": weights, "activations": activations, "kv_cache": kv_cache, "sparsity": sparsity,
             "sparse_kernel": sparse_kernel}
    tech.update({k: v for k, v in given.items() if v is not None})
    tech.setdefault("weights", "fp16")
    tech.setdefault("activations", "fp16")
    if tech.get("kv_cache") is None:
        tech["kv_cache"] = tech["activations"]
    common = {"batch": batch, "input_len": input_len, "output_len": output_len, "tp": tp, "ep": ep, "pp": pp,
              "pp_microbatches": pp_microbatches, "attention": attention,
              "fuse_residual_norm": fuse_residual_norm, "kv_fraction": kv_fraction}
    sc = specio.build(Scenario, {**common, **tech}, origin="scenario")
    base = None
    if compare_to is not None:
        from tapeout import dtypes

        fmt = dtypes.parse(compare_to, field="compare_to").name
        bsc = specio.build(Scenario, {**common, "weights": fmt, "activations": fmt, "kv_cache": fmt},
                           origin="compare_to")
        base = Prediction(model=m, hardware=hw, scenario=bsc, tier=tier, result=compose(m, hw, bsc, tier),
                          framework=fw.name)
    return Prediction(model=m, hardware=hw, scenario=sc, tier=tier, result=compose(m, hw, sc, tier), baseline=base,
                      framework=fw.name)


__all__ = ["Prediction", "predict", "load_model", "load_hardware"]
