"""The public Python surface: ``predict``, ``load_model``, ``load_hardware``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tapeout import dtypes, specio
from tapeout.errors import TapeoutError
from tapeout.hardware.catalog import load_hardware
from tapeout.hardware.spec import EfficiencySpec, HardwareSpec, default_16bit
from tapeout.models.catalog import load_model
from tapeout.models.spec import ModelSpec
from tapeout.perf import TIERS
from tapeout.perf.core import computes_in
from tapeout.system.compose import Composition, compose
from tapeout.workload.ops import MATRIX_KINDS
from tapeout.workload.scenario import RESOLVED, PredictInputs, Scenario, ScenarioInputs


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
    #: what the caller should know before trusting the numbers (a context beyond the model's trained
    #: positions, a tier that could not run); ``to_dict()["warnings"]``, printed by the CLI
    warnings: tuple[str, ...] = ()
    #: choices tapeout made for the caller (the default 16-bit format, a matrix format the device lacks)
    notes: tuple[str, ...] = ()
    #: the format the formats left unset defaulted to (fp16 or bf16, whichever the device runs faster)
    default_16bit: str = "fp16"
    #: the checkpoint's shipped format when the prediction used it (no weight format was given)
    checkpoint_format: Any = None

    @property
    def framework(self) -> str:
        """The serving-framework profile whose host overhead is in ``hardware.efficiency`` (the scenario's)."""
        return self.scenario.framework

    def comparison(self) -> dict[str, Any] | None:
        """Technique vs baseline: TTFT (prefill), TPOT (decode), e2e, throughput, memory."""
        from tapeout.prediction import comparison

        return comparison(self)

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
        """Parameter counts and the attention as run (:func:`tapeout.prediction.model_info`)."""
        from tapeout.prediction import model_info

        return model_info(self)

    def ops(self) -> list[dict[str, Any]]:
        """Per-op rows: the prefill, then the decode step at the middle of the generation."""
        from tapeout.prediction import op_rows

        return op_rows(self)

    def to_dict(self) -> dict[str, Any]:
        """Everything the prediction says as plain data: ``tapeout predict --format json``
        (:func:`tapeout.prediction.to_dict`)."""
        from tapeout.prediction import to_dict

        return to_dict(self)


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
    """The tile-level mapper where the device is described down to its cores (and its description does not
    say otherwise: ``MicroArch.tiled_by_default``), else the roofline."""
    return "tiled" if hw.microarch is not None and hw.microarch.tiled_by_default else "roofline"


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


#: the scenario fields a :class:`Scenario` takes as given (it resolves the others: formats, sparsity)
GIVEN = tuple(k for k in ScenarioInputs.model_fields if k not in RESOLVED)
_INPUTS: dict[tuple, PredictInputs] = {}
_PREPARED: dict[tuple, tuple[ModelSpec, HardwareSpec, Prepared]] = {}


def clear_caches() -> None:
    """Forget the memoised inputs, prepared scenarios and efficiency-applied devices (after a re-fit)."""
    _INPUTS.clear()
    _PREPARED.clear()
    _RESOLVED.clear()


def predict_inputs(kwargs: dict[str, Any], *, fn: str = "predict") -> PredictInputs:
    """The keywords of :func:`predict` validated as :class:`PredictInputs` (a one-line error naming the field and
    what it allows), memoised per keywords when they are hashable: a repeated call validates nothing."""
    unknown = kwargs.keys() - PredictInputs.model_fields.keys()
    if unknown:
        raise TypeError(f"{fn}() got an unexpected keyword argument {min(unknown)!r}")
    try:  # the types too: batch=True equals batch=1 as a key, but is a mistake
        key: tuple | None = tuple((k, type(v), v) for k, v in kwargs.items())
        hit = _INPUTS.get(key)  # type: ignore[arg-type]
    except TypeError:  # a mapping (scenario, efficiency): validated every time
        key = hit = None
    if hit is not None:
        return hit
    args = specio.build(PredictInputs, kwargs, origin="scenario")
    if key is not None:
        if len(_INPUTS) >= 1024:
            _INPUTS.clear()
        _INPUTS[key] = args
    return args


def prepare(model: str | Path | ModelSpec, hardware: str | Path | HardwareSpec,
            inputs: PredictInputs | dict[str, Any], **more: Any) -> Prepared:
    """Load and validate everything :func:`predict` and :func:`tapeout.simulate` share: the model, the device
    with its framework profile and efficiency overrides, the tier, and the resolved :class:`Scenario` of
    ``inputs`` (:class:`PredictInputs`, or a mapping of :func:`predict`'s keywords, ``more`` added).
    Memoised per (inputs, model, device) when the inputs are hashable and name no scenario file (its
    contents may change): a repeated prediction validates nothing."""
    if isinstance(inputs, PredictInputs) and not more:
        args = inputs
    else:  # validated again with the further keywords
        given = inputs.model_dump(exclude_unset=True) if isinstance(inputs, PredictInputs) else inputs
        args = predict_inputs({**given, **more}, fn="prepare")
    m = load_model(model)
    hw = load_hardware(hardware)
    try:
        key: tuple | None = None if isinstance(args.scenario, Path) else (args, id(m), id(hw))
        hit = _PREPARED.get(key) if key is not None else None
    except TypeError:  # a mapping among the inputs (scenario, efficiency, kernel_constants)
        key = hit = None
    if hit is not None and hit[0] is m and hit[1] is hw:
        return hit[2]
    pre = _prepare(args, m, hw)
    if key is not None:
        if len(_PREPARED) >= 1024:
            _PREPARED.clear()
        _PREPARED[key] = (m, hw, pre)
    return pre


def _prepare(args: PredictInputs, m: ModelSpec, hw: HardwareSpec) -> Prepared:
    from tapeout.system.frameworks import framework as framework_profile
    from tapeout.workload.techniques import LayerRule, read_scenario_file, scenario_mapping

    framework, efficiency, tier, scenario = args.framework, args.efficiency, args.tier, args.scenario
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
    tech.update({k: v for k in RESOLVED if (v := getattr(args, k)) is not None})
    shipped = _shipped(m, tech)
    half = default_16bit(hw)
    defaulted = [k for k in ("weights", "activations") if tech.get(k) is None]
    for k in defaulted:
        tech[k] = half
    if tech.get("kv_cache") is None:
        tech["kv_cache"] = tech["activations"]
    if shipped is not None:  # the checkpoint's own format, unless weights were given (the KV cache stays 16-bit)
        quantize_acts = shipped.activations is not None and "activations" in defaulted
        if shipped.covers_all:
            tech["weights"] = shipped.weights
            defaulted.remove("weights")
            if quantize_acts:
                tech["activations"] = shipped.activations
                defaulted.remove("activations")
        else:  # a subset of the layers: a per-layer rule ahead of the scenario's own (the rest stays 16-bit)
            rule = LayerRule(match=shipped.match, layers=shipped.layers, weights=shipped.weights,
                             activations=shipped.activations if quantize_acts else None)
            tech["layers"] = (rule, *tech.get("layers", ()))
        notes.append(f"weights of {shipped.scope} default to {shipped.weights}, the format {m.name}'s checkpoint ships"
                     + (f", with activations quantized to {shipped.activations} as its kernels do"
                        if quantize_acts else "")
                     + f" ({shipped.source}); set --weights to choose")
    if defaulted:
        p16, pb16 = hw.peak_tflops.get("fp16"), hw.peak_tflops.get("bf16")
        if p16 != pb16:
            peaks = ", ".join(f"{k} {v:g}" for k, v in (("fp16", p16), ("bf16", pb16)) if v is not None)
            notes.append(f"{' and '.join(defaulted)} default to {half}, the faster 16-bit format of {hw.name} "
                         f"(dense TFLOP/s: {peaks}); set --weights/--activations to choose")
    given = {k: getattr(args, k) for k in GIVEN} | {"framework": fw.name}
    if args.kernel_constants is not None:
        given["kernel_constants"] = _kernel_constants(args.kernel_constants)
    sc = specio.build(Scenario, {**given, **tech}, origin="scenario")
    _check_layers(m, sc)
    if sc.fp8_attention and hw.peak_flops("fp8") is None:
        raise TapeoutError(f"fp8_attention needs fp8 tensor cores and {hw.name} has no fp8 matrix peak (its engines "
                           "dequantize the cache); allowed: false", field="fp8_attention")
    if tech.get("sparse_kernel") is not None and sc.sparsity is None and not any(r.sparsity for r in sc.layers):
        raise TapeoutError(f"{tech['sparse_kernel']!r} picks the kernel of sparse layers, but no layer is sparse: "
                           "give a sparsity (e.g. --sparsity 0.8) or leave sparse_kernel out", field="sparse_kernel")
    w = _context_warning(m, sc)
    if w:
        warnings.append(w)
    return Prepared(m, hw, tier, fw, sc, half, shipped, tuple(warnings), tuple(notes))


def predict(model: str | Path | ModelSpec, hardware: str | Path | HardwareSpec, **inputs: Any) -> Prediction:
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
    8192, vLLM's and TensorRT-LLM's): the prompts prefill in forward passes of at most that many tokens, which
    bounds the activation memory; TTFT is the passes' time (each reads the weights, launches its kernels and
    attends to its prompts' cached tokens again; ``tapeout.system.chunked``). None: the whole batch in one
    pass, as static engines without chunking run it.
    ``tier`` defaults to ``"tiled"`` for a device with a micro-architecture description and to
    ``"roofline"`` otherwise; ``to_dict()["inputs"]["tier"]`` says which one ran.
    """
    args = predict_inputs(inputs)
    pre = prepare(model, hardware, args)
    m, hw, tier, sc = pre.model, pre.hardware, pre.tier, pre.scenario
    base = None
    if args.compare_to is not None:
        fmt = dtypes.parse(args.compare_to, field="compare_to").name
        plain = {k: getattr(sc, k) for k in GIVEN} | {"weights": fmt, "activations": fmt, "kv_cache": fmt}
        if sc.kernel_constants is not None:
            plain["kernel_constants"] = sc.kernel_constants
        bsc = specio.build(Scenario, plain, origin="compare_to")
        base = Prediction(model=m, hardware=hw, scenario=bsc, tier=tier, result=compose(m, hw, bsc, tier),
                          default_16bit=pre.default_16bit)
    pred = Prediction(model=m, hardware=hw, scenario=sc, tier=tier, result=compose(m, hw, sc, tier), baseline=base,
                      warnings=pre.warnings, default_16bit=pre.default_16bit, checkpoint_format=pre.shipped)
    return replace(pred, notes=pre.notes + tuple(_fallback_notes(pred)))


#: ``predict(model, hardware, *, batch=1, input_len=2048, ...)``: its keywords are :class:`PredictInputs`' fields
specio.keyword_api(predict, PredictInputs)


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
        for op, cost in phase.distinct_op_costs(MATRIX_KINDS):
            ran = computes_in(op, cost, p.hardware)
            if op.compute_dtype and ran is not None:
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


__all__ = ["Prediction", "PredictInputs", "Prepared", "ScenarioInputs", "predict", "predict_inputs", "prepare",
           "load_model", "load_hardware"]
