"""What is being run: batch, lengths, number formats, compression techniques, parallelism and framework.

Two models, one set of fields:

- :class:`ScenarioInputs` is the scenario as a user states it (plain JSON types; ``None``: the default the
  device or the checkpoint decides). Each field is stated here once, with its type, default, allowed values
  and help text: :func:`tapeout.predict`'s keywords, the ``tapeout predict`` options
  (:func:`tapeout.clicommand.options_from`) and ``to_dict()["inputs"]`` come from these fields, and the web
  layer takes it as its request body.
- :class:`Scenario` is the same scenario resolved (formats parsed, sparsity read, per-layer rules, the
  kernel constants): what the op graphs are built from, frozen and hashable (memoised on).
"""

from __future__ import annotations

import heapq
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

from tapeout import dtypes
from tapeout.dtypes import DType
from tapeout.fitted import KernelConstants
from tapeout.specio import reject_bools, strict_int
from tapeout.workload.techniques import LayerRule, Sparsity, scenario_mapping


#: tokens one prefill pass runs at most when not given (``Scenario.max_prefill_tokens``): the engines' default
#: token budget per forward pass on 80 GB-class GPUs. vLLM's OpenAI server: 8192 on GPUs with >= 70 GiB other
#: than the A100, 2048 below (``EngineArgs.get_batch_defaults``, vllm/engine/arg_utils.py, "default
#: max_num_batched_tokens"); TensorRT-LLM's ``max_num_tokens``: 8192 (trtllm-build's default, the one
#: ``serving/sim.py`` uses for in-flight batching). A prompt longer than it, or a batch of prompts, runs in
#: chunks of this many tokens, so the activations a prefill holds at once are bounded by it.
DEFAULT_PREFILL_TOKENS = 8192

#: upper bounds of the counts (beyond them a prediction is meaningless: TTFT of 1e19 s), with their unit
LIMITS: dict[str, tuple[int, str]] = {
    "batch": (1_000_000, "sequences"),
    "input_len": (10_000_000, "tokens"),
    "output_len": (10_000_000, "tokens"),
    "tp": (4096, "devices"),
    "ep": (4096, "devices"),
    "pp": (4096, "stages"),
    "pp_microbatches": (4096, "batches"),
    "redundant_experts": (65536, "experts"),
}

Attention = Literal["flash", "naive", "mmha"]
MlaAttention = Literal["auto", "naive", "absorbed"]
SparseKernel = Literal["auto", "tensor", "cuda", "dense"]


class ScenarioInputs(BaseModel):
    """The scenario as given: every user-facing field once (type, default, allowed values, help)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    batch: int = Field(1, gt=0, description="concurrent sequences")
    input_len: int = Field(2048, gt=0, description="prompt tokens per sequence")
    #: the first generated token comes from the prefill
    output_len: int = Field(128, gt=0, description="generated tokens per sequence")
    tp: int = Field(1, gt=0, description="tensor-parallel degree")
    #: 1: every expert sliced over the tp devices; tp: whole experts spread over the tp devices (tokens
    #: replicated after attention, each device runs its own experts, the layer's all-reduce combines them);
    #: with tp = 1 any count: data-parallel attention (each device runs attention for its own batch), the
    #: experts over all ep devices, tokens dispatched and combined by all-to-alls over the scale-up and
    #: scale-out links (docs/wide-ep.md)
    ep: int = Field(1, gt=0, description=(
        "expert parallelism of MoE layers: 1 (experts sliced over tp), tp (whole experts per device), or with "
        "tp 1 any count: data-parallel attention, experts over ep devices, all-to-all dispatch (docs/wide-ep.md)"))
    #: the layers split into contiguous stages, one per group of tp devices; activations go to the next
    #: stage point to point
    pp: int = Field(1, gt=0, description="pipeline-parallel stages (contiguous layers per tp group)")
    #: independent batches of ``batch`` sequences in flight through the pipeline (1: one at a time, as
    #: llama.cpp's layer split runs; pp: a full pipeline, as vLLM's virtual engines)
    pp_microbatches: int = Field(1, gt=0, description=(
        "batches in flight through the pipeline (1: one at a time; pp: a full pipeline)"))
    #: SGLang's --enable-two-batch-overlap, after DeepSeek's inference design (deepseek-ai/profile-data): each
    #: forward pass split into two micro-batches, one's expert all-to-alls running while the other computes
    #: (system/overlap.py, docs/wide-ep.md); wide expert parallelism only
    two_batch_overlap: bool = Field(False, strict=True, description=(
        "wide EP: split each pass into two micro-batches whose dispatch/combine overlap the other's compute"))
    #: EPLB's redundant experts (DeepSeek-V3 report 3.4; SGLang's --ep-num-redundant-experts with --enable-eplb):
    #: extra copies of experts spread with the others over the ep devices, (experts + this) / ep per device, a
    #: replicated expert's tokens shared by its copies (workload/eplb.py, docs/wide-ep.md); 0: none
    redundant_experts: int = Field(0, ge=0, description=(
        "expert parallelism: redundant expert copies placed by EPLB (ep must divide experts + this); 0: none"))
    #: None: the checkpoint's shipped format, else the device's faster 16-bit format
    weights: str | None = Field(None, description=(
        "weight format of the linear layers: fp16 bf16 fp8 fp6 fp5 fp4 int8 int4 int4_g128 nf4 ... "
        "(default: fp16 or bf16, whichever the device's datasheet peak is higher for; fp16 when equal)"))
    activations: str | None = Field(None, description="activation format (default: as --weights' default)")
    kv_cache: str | None = Field(None, description="KV-cache format (default: activations)")
    #: flash: fused FlashAttention-style kernels (decode reads each KV head once); naive: materialized
    #: scores; mmha: fused kernels whose decode step reads K/V once per query head, leaving GQA/MQA sharing
    #: unused (TensorRT-LLM's masked multi-head attention before its XQA kernel)
    attention: Attention = Field("flash", description=(
        "flash | naive | mmha (decode reads K/V per query head: no GQA sharing)"))
    #: the form of multi-head latent attention (MLA models; docs/mla.md): naive (up-project the latent to
    #: per-head K and V, then attention), absorbed (attention in the latent space; decode reads only the
    #: latent cache), auto (naive prefill, absorbed decode, as DeepSeek's, vLLM's and SGLang's MLA run)
    mla_attention: MlaAttention = Field("auto", description=(
        "MLA models: auto (naive prefill, absorbed decode) | naive (up-project K/V) | absorbed (latent space)"))
    #: the decode attention's QK^T and PV matmuls in fp8 over an fp8 KV cache (query quantized, cache read as
    #: stored, no dequantization: TensorRT-LLM's XQA / FMHA and FlashInfer's TensorRT-LLM backend, SGLang's
    #: Blackwell default; docs/fp8-attention.md); false: the cache is dequantized to the activation format
    #: and the math runs at the 16-bit rate (vLLM's default paged attention, FlashAttention-2 / FlashInfer's
    #: FA2 decode). Prefill attention stays 16-bit either way
    fp8_attention: bool = Field(False, strict=True, description=(
        "decode attention matmuls in fp8 over an fp8 KV cache (no dequantization; needs --kv-cache fp8 and a "
        "device with fp8 tensor cores); false: dequantize to 16 bits (vLLM's default)"))
    #: one kernel per residual add and the next norm (read x and the residual, write both), as vLLM,
    #: TensorRT-LLM and FasterTransformer do
    fuse_residual_norm: bool = Field(False, strict=True, description=(
        "fuse each residual add into the next norm (vLLM, TensorRT-LLM); also --fuse-residual-norm true|false"))
    #: share of the memory left after weights, activations and the runtime reserve that the engine gives its
    #: KV-cache pool (TensorRT-LLM's kv_cache_free_gpu_mem_fraction and LMDeploy's cache_max_entry_count read
    #: it this way; 0.9 is TensorRT-LLM's and vLLM's default)
    kv_fraction: float = Field(0.9, gt=0, le=1, description=(
        "share of the memory left after weights that the KV pool gets; a batch beyond it runs fewer sequences "
        "at once, in waves"))
    #: vLLM's max_num_batched_tokens, SGLang's chunked_prefill_size, TensorRT-LLM's max_num_tokens: the batch's
    #: prompts run in forward passes of at most this many tokens, which bounds the activation memory; the
    #: prefill time is the passes' (system/chunked.py); None: the whole batch in one pass, as static engines
    #: without chunking (gptSessionBenchmark) run it
    max_prefill_tokens: int | None = Field(DEFAULT_PREFILL_TOKENS, gt=0, le=10_000_000, description=(
        "tokens one prefill forward pass runs at most (the engine's token budget): prompts prefill in passes of "
        "it, which bounds the activation memory and sets the passes TTFT adds up"))
    sparsity: int | float | str | None = Field(None, description=(
        "weight sparsity: 0.8 (unstructured), 2:4, 1x4:0.5 (1xN blocks)"))
    #: tensor: Flash-LLM (load as sparse, compute as dense); cuda: Sputnik-like CSR on CUDA cores; dense:
    #: zeros stored; auto: the fastest per op. Only with a sparse layer (None: auto).
    sparse_kernel: SparseKernel | None = Field(None, description=(
        "auto | tensor (Flash-LLM) | cuda (Sputnik-like) | dense"))
    #: a profile of system/frameworks.toml (checked against it when the device is prepared)
    framework: str = Field("kernels", description=(
        "serving-framework profile (system/frameworks.toml): kernels (device time only) | fastertransformer | "
        "deepspeed (per-op host overhead) | llamacpp (its kernels' streaming cap) | gptfast (one-shot all-reduce) | "
        "python-scheduler (vLLM V0 / SGLang < 0.4: host time per sequence each step)"))

    @model_validator(mode="before")
    @classmethod
    def _no_bools(cls, data: Any) -> Any:
        return reject_bools(cls, data)  # kv_fraction=True is a mistake, not 1.0

    @field_validator(*LIMITS, mode="before")
    @classmethod
    def _count(cls, v: object, info) -> int:  # type: ignore[no-untyped-def]
        n = strict_int(v)  # batch="4" or True is a mistake, not 4 or 1 sequences
        hi, unit = LIMITS[info.field_name]
        if n > hi:
            raise ValueError(f"{n} {unit} is above the limit of {hi:,} {unit}")
        return n

    @field_validator("max_prefill_tokens", mode="before")
    @classmethod
    def _budget(cls, v: object) -> int | None:
        return None if v is None else strict_int(v)

    @model_validator(mode="after")
    def _pipeline(self) -> "ScenarioInputs":
        if self.pp_microbatches > 1 and self.pp == 1:
            raise ValueError("pp_microbatches > 1 needs pipeline stages (pp > 1)")
        if self.ep not in (1, self.tp):
            if self.tp != 1:
                raise ValueError(f"ep={self.ep}: allowed 1 or tp ({self.tp}), or any ep with tp = 1 (data-parallel "
                                 "attention); attention tensor-parallel inside data-parallel groups is not modelled")
            if self.pp != 1:
                raise ValueError(f"ep={self.ep} with data-parallel attention needs pp = 1 (allowed pp: 1)")
        if self.redundant_experts and self.ep == 1:
            raise ValueError(f"redundant_experts={self.redundant_experts} needs whole experts per device (ep > 1); "
                             "allowed with ep = 1: 0")
        if self.two_batch_overlap and not (self.tp == 1 and self.ep > 1):
            raise ValueError(f"two_batch_overlap needs wide expert parallelism (tp = 1, ep > 1: data-parallel "
                             f"attention); got tp={self.tp}, ep={self.ep}")
        return self


#: the fields :class:`Scenario` resolves (formats, sparsity); the others pass through as given
RESOLVED = ("weights", "activations", "kv_cache", "sparsity", "sparse_kernel")


class Scenario(ScenarioInputs):
    """The scenario resolved: the formats parsed, the sparsity read, per-layer rules and kernel constants.
    The other fields are :class:`ScenarioInputs`' (declared there once)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)

    weights: DType = dtypes.parse("fp16")
    activations: DType = dtypes.parse("fp16")
    kv_cache: DType = dtypes.parse("fp16")
    sparsity: Sparsity | None = None
    sparse_kernel: SparseKernel = "auto"
    layers: tuple[LayerRule, ...] = Field(
        (), description="per-layer rules (mixed precision, sparsity, channel pruning); later rules win")
    kernel_constants: KernelConstants | None = Field(
        None, description="the technique kernels' fitted constants for this scenario (None: the stored ones, "
        "fitted/kernels.toml)")

    @field_validator("weights", "activations", "kv_cache", mode="before")
    @classmethod
    def _dtype(cls, v: object, info) -> DType:  # type: ignore[no-untyped-def]
        return dtypes.parse(v, field=info.field_name)  # type: ignore[arg-type]

    @field_validator("sparsity", mode="before")
    @classmethod
    def _sparsity(cls, v: object) -> Sparsity | None:
        return Sparsity.parse(v, field=None)  # pydantic prefixes the field name

    @field_validator("layers", mode="before")
    @classmethod
    def _layers(cls, v: Any) -> tuple[LayerRule, ...]:
        if v is None:
            return ()
        return scenario_mapping({"layers": v}, origin="layers")["layers"]

    @model_validator(mode="after")
    def _fp8_attention(self) -> "Scenario":
        if self.fp8_attention:
            if self.kv_cache.peak_key != "fp8":
                raise ValueError(f"fp8_attention needs an fp8 KV cache (kv_cache fp8, e4m3 or e5m2); got kv_cache="
                                 f"{self.kv_cache.name}")
            if self.attention == "naive":
                raise ValueError("fp8_attention needs fused attention kernels (attention: flash | mmha); got naive")
        return self

    @field_serializer("weights", "activations", "kv_cache")
    def _format_name(self, v: DType) -> str:
        return v.name

    @field_serializer("sparsity")
    def _sparsity_name(self, v: Sparsity | None) -> str | None:
        return None if v is None else v.name

    @field_serializer("layers")
    def _rules(self, v: tuple[LayerRule, ...]) -> list[dict[str, Any]]:
        return [rule_dict(r) for r in v]


    @property
    def dp(self) -> int:
        """Data-parallel attention groups: ``ep`` when the experts spread over more devices than ``tp`` (wide
        expert parallelism, docs/wide-ep.md), else 1. Each group runs ``batch`` sequences."""
        return self.ep if self.ep > self.tp else 1

    def stage_layers(self, num_layers: int, first_extra: float = 0.0, last_extra: float = 0.0) -> list[range]:
        """The contiguous layer range of every pipeline stage, balanced: the first stage also holds
        ``first_extra`` and the last ``last_extra`` layer-equivalents (embedding, lm_head), and each
        further layer goes to the stage with the least load (ties: the earlier stage), which minimises
        the largest stage. O(layers log pp), memoised per (pp, layers, extras)."""
        if self.pp > num_layers:
            raise ValueError(f"pp={self.pp} exceeds the model's {num_layers} layers")
        return list(balanced_stages(self.pp, num_layers, float(first_extra), float(last_extra)))

    @property
    def high_precision(self) -> DType:
        """The format of the weights that quantized formats leave alone (embedding, lm_head, norms, router):
        the weight format when it has 16 bits or more (fp32, bf16, fp16), else fp16. Stated once here."""
        return self.weights if self.weights.bits >= 16 else dtypes.parse("fp16")

    def mla_form(self, phase: str) -> str:
        """The MLA form ``phase`` ("prefill" or "decode") runs in."""
        if self.mla_attention != "auto":
            return self.mla_attention
        return "naive" if phase == "prefill" else "absorbed"

    @property
    def final_context(self) -> int:
        return self.input_len + self.output_len - 1

    @property
    def has_techniques(self) -> bool:
        """True when anything beyond plain 16-bit dense weights and activations is in use."""
        return bool(self.layers) or self.sparsity is not None or self.weights.bits < 16 \
            or self.activations.bits < 16 or self.kv_cache.bits < 16


class PredictInputs(ScenarioInputs):
    """What :func:`tapeout.predict` takes besides the model and the device: the scenario, and how to predict it
    (a scenario file or mapping, a baseline format, the tier, efficiency and kernel-constant overrides). Its
    fields are ``predict``'s keywords and, those with a command-line form, ``tapeout predict``'s options."""

    scenario: Path | dict[str, Any] | None = Field(None, description=(
        "scenario file (TOML/YAML/JSON): global formats, sparsity and per-layer rules (docs/techniques.md)"))
    compare_to: str | None = Field(None, description=(
        "also predict this plain format (e.g. fp16) and print the speedup per phase"))
    tier: str | None = Field(None, description=(
        "performance tier: tiled | roofline (default: tiled where the device has a micro-architecture)"))
    #: fields of the device's EfficiencySpec (validated against it when the device is prepared)
    efficiency: dict[str, Any] | None = Field(None, description=(
        "overrides of the device's efficiency fields, e.g. {\"matmul_eta\": 0.8}"))
    #: the technique kernels' constants (tapeout.fitted.KernelConstants; validated against it)
    kernel_constants: dict[str, Any] | None = Field(None, description=(
        "overrides of the technique kernels' fitted constants, e.g. {\"int_kernel_overhead_ops\": 0.0}"))


@lru_cache(maxsize=1024)
def balanced_stages(pp: int, num_layers: int, first_extra: float = 0.0, last_extra: float = 0.0) -> tuple[range, ...]:
    """:meth:`Scenario.stage_layers` as a pure function: every stage starts with one layer, each further
    layer goes to the stage of least load (layers + extra; ties: the earlier stage), kept in a heap."""
    extra = [0.0] * pp
    extra[0] += first_extra
    extra[-1] += last_extra
    n = [1] * pp
    heap = [(n[s] + extra[s], s) for s in range(pp)]
    heapq.heapify(heap)
    for _ in range(num_layers - pp):
        _, s = heapq.heappop(heap)
        n[s] += 1
        heapq.heappush(heap, (n[s] + extra[s], s))
    out, start = [], 0
    for k in n:
        out.append(range(start, start + k))
        start += k
    return tuple(out)


def rule_dict(r: LayerRule) -> dict[str, Any]:
    """A per-layer rule as ``to_dict()["inputs"]["layers"]`` writes it: what it selects and sets."""
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
