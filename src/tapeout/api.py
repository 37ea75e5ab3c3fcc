"""The public Python surface: ``predict``, ``load_model``, ``load_hardware``."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tapeout import dtypes, specio
from tapeout.errors import TapeoutError
from tapeout.hardware.catalog import load_hardware
from tapeout.hardware.spec import EfficiencySpec, HardwareSpec
from tapeout.models.catalog import load_model
from tapeout.models.spec import ModelSpec
from tapeout.perf import TIERS
from tapeout.perf.cost import OpCost
from tapeout.system.compose import Composition, PhaseCost, compose
from tapeout.workload.ops import Op, OpKind
from tapeout.workload.scenario import DEFAULT_PREFILL_TOKENS, Scenario


def _num(x: float) -> float | None:
    return None if (isinstance(x, float) and not math.isfinite(x)) else x


def computes_in(op: Op, cost: OpCost, hw: HardwareSpec) -> str | None:
    """The format an op's arithmetic runs in: for matrix ops the peak the kernel used (fp8 on a device
    without fp8 computes at the fp16 rate), for vector ops (norms, softmax, RoPE, adds) their compute
    format, None for collectives, sends and the embedding gather (data movement)."""
    from tapeout.workload.ops import COLLECTIVE_KINDS, MATRIX_KINDS

    if op.kind in COLLECTIVE_KINDS or op.kind.value in ("send", "embedding"):  # data movement (a gather)
        return None
    if op.kind in MATRIX_KINDS or op.kind.value == "attention":
        peak = cost.terms.get("peak")
        if isinstance(peak, str) and peak:
            return peak
        from tapeout.perf.roofline import matrix_peak

        return matrix_peak(hw, op.compute_dtype)[0]
    return op.compute_dtype


def compute_ceiling(op: Op, ran: str | None, hw: HardwareSpec) -> tuple[str | None, float | None]:
    """The compute roof an op runs under, (label, TFLOP/s), given the format it computes in
    (:func:`computes_in`): for matrix ops the device's dense or 2:4-sparse matrix peak of that format, for
    other arithmetic the vector FP32 peak, (None, None) for data movement. The roofline chart plots each op
    against it."""
    from tapeout.workload.ops import MATRIX_KINDS

    if ran is None:
        return None, None
    if op.kind in MATRIX_KINDS:
        table = hw.sparse_peak_tflops if ran.endswith("(2:4 sparse)") else hw.peak_tflops
        return ran, table.get(ran.split()[0])
    return "vector fp32", hw.vector_flops / 1e12


def _op_row(phase: str, op: Op, cost: OpCost, phase_time: float, hw: HardwareSpec) -> dict[str, Any]:
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


def _alltoall_s(p: PhaseCost) -> float:
    """Seconds of a phase's expert-parallel all-to-alls (dispatch and combine; 0 without wide EP)."""
    return sum(c.total_s for o, c in zip(p.ops, p.costs) if o.kind is OpKind.ALLTOALL)


def _phase_rows(p: PhaseCost, label: str, hw: HardwareSpec) -> list[dict[str, Any]]:
    return [_op_row(label, o, c, p.time_s, hw) for o, c in zip(p.ops, p.costs)]


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
    #: what the caller should know before trusting the numbers (a context beyond the model's trained
    #: positions, a tier that could not run); ``to_dict()["warnings"]``, printed by the CLI
    warnings: tuple[str, ...] = ()
    #: choices tapeout made for the caller (the default 16-bit format, a matrix format the device lacks)
    notes: tuple[str, ...] = ()
    #: the format the formats left unset defaulted to (fp16 or bf16, whichever the device runs faster)
    default_16bit: str = "fp16"
    #: the checkpoint's shipped format when the prediction used it (no weight format was given)
    checkpoint_format: Any = None

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

    def model_info(self) -> dict[str, Any]:
        """Parameter counts and the attention as run: the layer spans (full, sliding W, chunked C) with their
        layer counts, and for MLA the form each phase ran in."""
        m, sc = self.model, self.scenario
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

    def ops(self) -> list[dict[str, Any]]:
        """Per-op rows: the prefill, then the decode step at the middle of the generation."""
        r = self.result
        return _phase_rows(r.prefill, "prefill", self.hardware) + _phase_rows(r.decode_representative, "decode",
                                                                              self.hardware)

    def _cycle(self, step: PhaseCost) -> float:
        mb = self.scenario.pp_microbatches
        return max(step.time_s, mb * max(step.stage_times)) if step.stage_times else step.time_s

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
                "dp_attention": sc.dp,
                "pp": sc.pp,
                "pp_microbatches": sc.pp_microbatches,
                "weights": sc.weights.name,
                "activations": sc.activations.name,
                "kv_cache": sc.kv_cache.name,
                "attention": sc.attention,
                "mla_attention": sc.mla_attention,
                "fuse_residual_norm": sc.fuse_residual_norm,
                "kv_fraction": sc.kv_fraction,
                "max_prefill_tokens": sc.max_prefill_tokens,
                "sparsity": sc.sparsity.name if sc.sparsity is not None else None,
                "sparse_kernel": sc.sparse_kernel,
                "layers": [_rule_dict(r) for r in sc.layers],
                **({"kernel_constants": sc.kernel_constants.model_dump()} if sc.kernel_constants else {}),
                "tier": self.tier,
                "framework": self.framework,
                "default_16bit": self.default_16bit,
                "checkpoint_format": None if self.checkpoint_format is None else {
                    "weights": self.checkpoint_format.weights, "layers": self.checkpoint_format.match,
                    "activations": self.checkpoint_format.activations, "source": self.checkpoint_format.source,
                },
            },
            "warnings": list(self.warnings),
            "notes": list(self.notes),
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
                },
                "decode": {
                    "mean_step_s": r.tpot_s,
                    "first_step_s": steps[0].time_s,
                    "last_step_s": steps[-1].time_s,
                    # with pp_microbatches > 1 a decode cycle (every batch in flight advances one token)
                    # is max(one batch's pass, microbatches x the slowest stage); TPOT is its mean
                    "first_cycle_s": self._cycle(steps[0]),
                    "last_cycle_s": self._cycle(steps[-1]),
                    "microbatches": sc.pp_microbatches,
                    "first_context": steps[0].graph.context,
                    "last_context": steps[-1].graph.context,
                    "steps_evaluated": len(steps),
                    "ops_shown_at_context": mid.graph.context,
                    "flops_per_step": mid.graph.flops,
                    "bytes_per_step": mid.graph.bytes_total,
                    "stage_times_s": list(mid.stage_times),
                    "all_to_all_s": _alltoall_s(mid),
                },
            },
            "model_info": self.model_info(),
            "hardware_info": {
                "display_name": self.hardware.display_name,
                "memory_bandwidth_gbps": self.hardware.memory.bandwidth_gbps,
                "peak_tflops": dict(self.hardware.peak_tflops),
                "sparse_peak_tflops": dict(self.hardware.sparse_peak_tflops),
                "vector_tflops": self.hardware.vector_flops / 1e12,
                "memory_capacity_bytes": self.hardware.memory_capacity,
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


def default_16bit(hw: HardwareSpec) -> str:
    """The 16-bit format a device runs fastest, from its datasheet dense peaks: bf16 when its peak
    exceeds fp16's (or the device has no fp16 peak), else fp16 (equal peaks keep fp16)."""
    fp16, bf16 = hw.peak_tflops.get("fp16"), hw.peak_tflops.get("bf16")
    if fp16 is None or (bf16 is not None and bf16 > fp16):
        return "bf16"
    return "fp16"


def _check_layers(m: ModelSpec, sc: Scenario) -> None:
    """Every per-layer rule selects layers the model has (no silent clamping of "30-99" on 32 layers)."""
    for i, rule in enumerate(sc.layers):
        if rule.layers is not None and max(rule.layers) >= m.num_layers:
            beyond = [x for x in rule.layers if x >= m.num_layers]
            raise TapeoutError(
                f"rule {i} ({rule.match}) selects layer {beyond[0]}"
                + (f" (and {len(beyond) - 1} more)" if len(beyond) > 1 else "")
                + f", but {m.name} has {m.num_layers} layers: allowed 0 to {m.num_layers - 1}",
                field=f"layers[{i}].layers")


def _context_warning(m: ModelSpec, sc: Scenario) -> str | None:
    """A warning when the generation runs past the positions the model was trained for."""
    limit, last = m.max_position_embeddings, sc.final_context
    if last <= limit:
        return None
    where = "the prompt" if sc.input_len > limit else "the generation"
    return (f"context reaches {last} tokens ({where} passes position {limit}), beyond {m.name}'s "
            f"max_position_embeddings ({limit}): the model was not trained for it and a server would refuse or "
            "truncate it; the prediction prices the cost as if it ran")


@dataclass(frozen=True)
class Prepared:
    """What a prediction or a simulation runs on: the model, the device (framework profile and ``efficiency``
    applied), the tier that runs, the framework profile, the validated scenario, the device's default 16-bit
    format, the checkpoint's shipped format (or None), and the warnings and notes so far."""

    model: ModelSpec
    hardware: HardwareSpec
    tier: str
    framework: Any
    scenario: Scenario
    default_16bit: str
    shipped: Any
    warnings: tuple[str, ...]
    notes: tuple[str, ...]


def prepare(model: str | Path | ModelSpec, hardware: str | Path | HardwareSpec, common: dict[str, Any], *,
            weights: str | None = None, activations: str | None = None, kv_cache: str | None = None,
            sparsity: float | str | None = None, sparse_kernel: str | None = None,
            scenario: str | Path | dict[str, Any] | None = None, tier: str | None = None,
            efficiency: dict[str, float] | None = None, framework: str = "kernels") -> Prepared:
    """Load and validate everything :func:`predict` and :func:`tapeout.simulate` share; ``common`` holds the
    scenario's batch, lengths, parallelism and attention keys (the arguments of :func:`predict`)."""
    from tapeout.workload.techniques import read_scenario_file, scenario_mapping

    from tapeout.system.frameworks import framework as framework_profile

    m = load_model(model)
    hw = load_hardware(hardware)
    if not isinstance(framework, str):
        raise TapeoutError(f"expected a profile name, got {type(framework).__name__}", field="framework")
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
    warnings: list[str] = []
    notes: list[str] = []
    if tier is None:
        tier = default_tier(hw)
    if not isinstance(tier, str) or tier not in TIERS:
        raise TapeoutError(f"unknown tier {tier!r}; allowed: {', '.join(sorted(TIERS))}", field="tier")
    if tier == "tiled" and hw.microarch is None:
        # the tiled tier would price every op with its roofline fallback: say so, and report that tier
        warnings.append(f"tier: tiled needs a micro-architecture description and {hw.name} has none; "
                        "the roofline tier ran")
        tier = "roofline"
    if scenario is None:
        tech: dict[str, Any] = {}
    elif isinstance(scenario, dict):
        tech = scenario_mapping(scenario, origin="scenario")
    else:
        tech = read_scenario_file(scenario)
    given = {"weights": weights, "activations": activations, "kv_cache": kv_cache, "sparsity": sparsity,
             "sparse_kernel": sparse_kernel}
    tech.update({k: v for k, v in given.items() if v is not None})
    shipped = _shipped(m, tech)
    half = default_16bit(hw)
    defaulted = [k for k in ("weights", "activations") if tech.get(k) is None]
    for k in defaulted:
        tech[k] = half
    if tech.get("kv_cache") is None:
        tech["kv_cache"] = tech["activations"]
    if shipped is not None:  # the checkpoint's own format, unless weights were given (the KV cache stays 16-bit)
        if shipped.match == "*":
            tech["weights"] = shipped.weights
            defaulted.remove("weights")
        else:
            from tapeout.workload.techniques import LayerRule

            tech["layers"] = (LayerRule(match=shipped.match, weights=shipped.weights), *tech.get("layers", ()))
        if shipped.activations is not None and "activations" in defaulted:
            tech["activations"] = shipped.activations
            defaulted.remove("activations")
        layers = "every linear layer" if shipped.match == "*" else f"the {shipped.match}"
        notes.append(f"weights of {layers} default to {shipped.weights}, the format {m.name}'s checkpoint ships"
                     + (f", with activations quantized to {shipped.activations} as its kernels do"
                        if shipped.activations is not None and tech["activations"] == shipped.activations else "")
                     + f" ({shipped.source}); set --weights to choose")
    if defaulted:
        p16, pb16 = hw.peak_tflops.get("fp16"), hw.peak_tflops.get("bf16")
        if p16 != pb16:
            peaks = ", ".join(f"{k} {v:g}" for k, v in (("fp16", p16), ("bf16", pb16)) if v is not None)
            notes.append(f"{' and '.join(defaulted)} default to {half}, the faster 16-bit format of {hw.name} "
                         f"(dense TFLOP/s: {peaks}); set --weights/--activations to choose")
    sc = specio.build(Scenario, {**common, **tech}, origin="scenario")
    _check_layers(m, sc)
    if tech.get("sparse_kernel") is not None and sc.sparsity is None and not any(r.sparsity for r in sc.layers):
        raise TapeoutError(f"{tech['sparse_kernel']!r} picks the kernel of sparse layers, but no layer is sparse: "
                           "give a sparsity (e.g. --sparsity 0.8) or leave sparse_kernel out", field="sparse_kernel")
    w = _context_warning(m, sc)
    if w:
        warnings.append(w)
    return Prepared(m, hw, tier, fw, sc, half, shipped, tuple(warnings), tuple(notes))


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
    mla_attention: str = "auto",
    fuse_residual_norm: bool = False,
    kv_fraction: float = 0.9,
    max_prefill_tokens: int | None = DEFAULT_PREFILL_TOKENS,
    sparsity: float | str | None = None,
    sparse_kernel: str | None = None,
    scenario: str | Path | dict[str, Any] | None = None,
    compare_to: str | None = None,
    tier: str | None = None,
    efficiency: dict[str, float] | None = None,
    framework: str = "kernels",
    kernel_constants: dict[str, float] | None = None,
) -> Prediction:
    """Predict latency, throughput and memory of ``model`` on ``tp`` x ``pp`` x ``hardware``.

    Parallelism: ``tp``-way tensor parallelism within each of ``pp`` pipeline stages (contiguous layers,
    hidden states sent point to point between stages); ``ep`` = ``tp`` spreads an MoE model's whole
    experts over the tp devices instead of slicing each one (the busiest device's share of the routing);
    ``ep`` > ``tp`` = 1 is wide expert parallelism: data-parallel attention, each of the ``ep`` devices running
    ``batch`` sequences, experts spread over all of them, tokens dispatched and combined by all-to-alls over
    the scale-up link and, beyond a node, the device's ``scale_out`` link (docs/wide-ep.md);
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
    ``{"matmul_eta": 0.8}``). ``kernel_constants`` overrides the technique kernels' fitted constants
    (:class:`~tapeout.fitted.KernelConstants`, e.g. ``{"int_kernel_overhead_ops": 0.0}``; ``onchip_eta`` and
    ``tiled_csl_stream_eta`` are efficiency fields). ``framework`` names a serving-framework profile
    (``system/frameworks.toml``): a per-op host
    overhead added to every kernel (``kernels``: device time only; ``fastertransformer``; ``deepspeed``)
    or a cap on the DRAM bytes per core per clock its kernels move (``llamacpp``), or a one-shot
    all-reduce for small messages (``gptfast``); explicit ``efficiency`` fields win over the profile's.
    ``mla_attention`` picks the form of multi-head latent attention (MLA models): ``auto`` (naive prefill,
    absorbed decode, as the engines run it), ``naive`` or ``absorbed``; ``to_dict()["model_info"]["mla_forms"]``
    names the form of each phase. ``max_prefill_tokens`` is the engine's token budget per forward pass (default
    8192, vLLM's and TensorRT-LLM's): the prompts prefill in chunks of it, which bounds the activation memory
    (None: the whole batch in one pass, as static engines without chunking run it).
    ``tier`` defaults to ``"tiled"`` for a device with a micro-architecture description and to
    ``"roofline"`` otherwise; ``to_dict()["inputs"]["tier"]`` says which one ran.
    """
    common = {"batch": batch, "input_len": input_len, "output_len": output_len, "tp": tp, "ep": ep, "pp": pp,
              "pp_microbatches": pp_microbatches, "attention": attention, "mla_attention": mla_attention,
              "fuse_residual_norm": fuse_residual_norm, "kv_fraction": kv_fraction,
              "max_prefill_tokens": max_prefill_tokens}
    if kernel_constants is not None:
        common["kernel_constants"] = _kernel_constants(kernel_constants)
    pre = prepare(model, hardware, common, weights=weights, activations=activations, kv_cache=kv_cache,
                  sparsity=sparsity, sparse_kernel=sparse_kernel, scenario=scenario, tier=tier, efficiency=efficiency,
                  framework=framework)
    m, hw, tier, fw, sc = pre.model, pre.hardware, pre.tier, pre.framework, pre.scenario
    half, shipped, warnings, notes = pre.default_16bit, pre.shipped, pre.warnings, list(pre.notes)
    base = None
    if compare_to is not None:
        from tapeout import dtypes

        fmt = dtypes.parse(compare_to, field="compare_to").name
        bsc = specio.build(Scenario, {**common, "weights": fmt, "activations": fmt, "kv_cache": fmt},
                           origin="compare_to")
        base = Prediction(model=m, hardware=hw, scenario=bsc, tier=tier, result=compose(m, hw, bsc, tier),
                          framework=fw.name, default_16bit=half)
    pred = Prediction(model=m, hardware=hw, scenario=sc, tier=tier, result=compose(m, hw, sc, tier), baseline=base,
                      framework=fw.name, warnings=warnings, default_16bit=half, checkpoint_format=shipped)
    return replace(pred, notes=tuple(notes + _fallback_notes(pred)))


def _kernel_constants(overrides: Any) -> Any:
    """The stored technique kernel constants with ``overrides`` (validated; one-line errors)."""
    from tapeout import fitted

    if not isinstance(overrides, dict):
        raise TapeoutError(f"expected a mapping of constants, got {type(overrides).__name__}", field="kernel_constants")
    for name in ("onchip_eta", "tiled_csl_stream_eta"):
        if name in overrides:
            raise TapeoutError(f"{name} is priced per device: pass it as efficiency={{'{name}': ...}}",
                               field="kernel_constants")
    return fitted.kernel_constants().with_overrides(overrides)


def _fallback_notes(p: Prediction) -> list[str]:
    """A note per matrix format the device has no peak for (fp8 on an A100 computes at the fp16 rate)."""
    seen: dict[tuple[str, str], list[str]] = {}
    r = p.result
    for phase in (r.prefill, r.decode_representative):
        for op, cost in phase.distinct_op_costs():
            if op.kind.value not in ("gemm", "bmm", "attention"):
                continue
            ran = computes_in(op, cost, p.hardware)
            if op.compute_dtype and ran is not None and op.kind.value in ("gemm", "bmm", "attention"):
                want = dtypes.parse(op.compute_dtype).peak_key
                ran = ran.split()[0]  # "fp8 (2:4 sparse)": the sparse path of the fp8 peak
                if ran != want:
                    seen.setdefault((want, ran), []).append(op.name)
    return [f"{p.hardware.name} has no {want} matrix peak: {want} matrix ops compute at the {ran} rate "
            f"({', '.join(sorted(set(names))[:4])}{', ...' if len(set(names)) > 4 else ''})"
            for (want, ran), names in seen.items()]


def _shipped(m: ModelSpec, tech: dict[str, Any]):  # noqa: ANN202 - CheckpointFormat | None
    """The model's shipped checkpoint format when nothing chose the weight format: no ``weights`` and no
    per-layer rule that sets weights."""
    if m.checkpoint is None or tech.get("weights") is not None:
        return None
    if any(r.weights is not None for r in tech.get("layers", ())):
        return None
    return m.checkpoint


__all__ = ["Prediction", "Prepared", "predict", "prepare", "load_model", "load_hardware"]
