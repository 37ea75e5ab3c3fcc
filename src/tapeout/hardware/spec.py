"""Device specs: datasheet facts plus the efficiency data the performance tiers use.

Units in spec files are the vendor's (TFLOP/s, GB, GB/s, MB, MHz, W); properties convert to
SI (FLOP/s, bytes, bytes/s). Peak tables are always **dense**; vendors' 2:4-sparse headline
numbers live in ``sparse_peak_tflops`` and are never used for dense kernels.
"""

from __future__ import annotations

from typing import Literal

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from tapeout import units
from tapeout.hardware.microarch import MicroArch
from tapeout.specio import plausible, reject_bools

PEAK_KEYS = ("fp32", "fp32_matrix", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4", "fp16_acc16")
#: the fp16 matrix rate with an fp16 accumulator, where it differs from the fp32-accumulate rate that ``fp16``
#: holds (GeForce cards: twice it); matmuls run at it only under ``EfficiencySpec.matmul_accumulate = "fp16"``
FP16_ACC16 = "fp16_acc16"

#: plausible ranges of datasheet fields whose unit is easy to get wrong by 10^3..10^9:
#: field -> (lower bound, upper bound, unit, hint), both inclusive (the fields' own ``gt=0`` keeps
#: zero out where it must be). Generous: wafer-scale parts fit.
RANGES: dict[str, tuple[float, float, str, str]] = {
    "capacity_gb": (0, 1e6, "GB", "gigabytes as the vendor labels them, not bytes"),
    "bandwidth_gbps": (0, 1e8, "GB/s", "gigabytes per second, not bytes per second"),
    "bandwidth_gbps_per_direction": (0, 1e6, "GB/s", "gigabytes per second per direction, not bytes per second"),
    "pcie_gbps_per_direction": (0, 1e5, "GB/s", "gigabytes per second per direction, not bytes per second"),
    "die_area_mm2": (0, 1e5, "mm2", "square millimetres"),
    "boost_clock_mhz": (0, 1e5, "MHz", "megahertz, not hertz"),
    "l2_cache_mb": (0, 1e6, "MB", "megabytes, not bytes"),
    "tdp_w": (0, 1e6, "W", "watts"),
    "price_usd": (0, 1e9, "USD", "dollars per device"),
    "sm_count": (0, 1e7, "cores", "SMs / CUs / engines on the device"),
    "links": (0, 1e5, "links", "links per device"),
    "max_devices": (0, 1e6, "devices", "devices in one scale-up domain"),
    "lanes_per_direction": (0, 1e6, "lanes", "SerDes lanes per direction"),
    "launch_overhead_us": (0, 1e6, "us", "microseconds per kernel"),
    "host_overhead_us": (0, 1e6, "us", "microseconds per op"),
    "prefill_host_overhead_us": (0, 1e6, "us", "microseconds per prefill kernel"),
    "sequence_host_overhead_us": (0, 1e6, "us", "microseconds per sequence per step"),
    "collective_latency_us": (0, 1e6, "us", "microseconds per step"),
    "oneshot_allreduce_latency_us": (0, 1e6, "us", "microseconds per all-reduce"),
    "runtime_reserve_gb": (0, 1e6, "GB", "gigabytes, not bytes"),
    "oneshot_allreduce_max_bytes": (0, 1e15, "bytes", "bytes per message"),
    "stream_bytes_per_core_clock": (0, 1e6, "bytes per core per clock", ""),
}
#: dense or 2:4-sparse matrix peaks, TFLOP/s (TOP/s for integers)
PEAK_RANGE = (0.0, 1e7, "TFLOP/s", "tera-operations per second, not FLOP/s")


def _plausible_field(v: Any, info: ValidationInfo) -> Any:
    lo, hi, unit, hint = RANGES[info.field_name]
    return plausible(v, lo, hi, unit, hint)


class _Frozen(BaseModel):
    # non-finite numbers (JSON Infinity, TOML inf/nan) are never a datasheet value
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bools(cls, data: Any) -> Any:
        return reject_bools(cls, data)


class MemorySpec(_Frozen):
    kind: str = Field(description="HBM2e, HBM3, HBM3e, GDDR6, GDDR6X, LPDDR5, ...")
    capacity_gb: float = Field(
        gt=0, description="capacity as the vendor labels it ('80 GB'); DRAM parts come in binary sizes, so the "
        "label counts GiB (an '80 GB' H100 shows 81,559 MiB usable: shared/reference-data/hardware/README.md, "
        "pitfall 13)")
    bandwidth_gbps: float = Field(gt=0, description="peak theoretical GB/s")
    interfaces: int | None = Field(
        None, gt=0,
        description="memory interfaces the device drives: HBM stacks, 64-bit DDR/LPDDR channels, 32-bit GDDR "
        "devices or CXL/PCIe lanes (area and cost model); None: derived from bandwidth and kind",
    )

    _ranges = field_validator("capacity_gb", "bandwidth_gbps")(_plausible_field)

    @property
    def capacity_bytes(self) -> float:
        """Bytes: the label in GiB (memory stacks and chips are built in powers of two)."""
        return self.capacity_gb * units.GiB

    @property
    def bandwidth(self) -> float:
        return self.bandwidth_gbps * units.GB


class InterconnectSpec(_Frozen):
    """The scale-up link between devices (NVLink, Infinity Fabric, ICI, RoCE, or PCIe)."""

    kind: str
    bandwidth_gbps_per_direction: float = Field(gt=0, description="per device, one direction")
    links: int | None = Field(None, gt=0)
    topology: Literal["switch", "mesh", "ring", "torus", "pairwise", "pcie"] = Field(
        description="switch: NVSwitch-like all-to-all; mesh: direct links to every peer; "
        "pairwise: bridges between pairs only (then PCIe beyond 2 devices); pcie: host bus"
    )
    max_devices: int = Field(8, gt=0, description="devices one scale-up domain connects")
    fabric: Literal["load_store", "nic"] = Field(
        "load_store",
        description="load_store: a memory fabric kernels read and write directly (NVLink, Infinity Fabric); nic: "
        "RDMA Ethernet ports on the chip, ``links`` bundles of them, one to each peer of the domain (Gaudi's "
        "RoCE): the collective library exchanges with every peer at once (an all-reduce is a reduce-scatter then "
        "an all-gather, one step each, over the links to the p - 1 peers), and no peer-memory (one-shot) "
        "all-reduce exists",
    )
    lanes_per_direction: int | None = Field(
        None, gt=0,
        description="SerDes lanes per direction of the scale-up link (area model); None: derived from the "
        "bandwidth and the lane rate of the kind",
    )

    _ranges = field_validator("bandwidth_gbps_per_direction", "links", "max_devices",
                              "lanes_per_direction")(_plausible_field)

    @property
    def bandwidth(self) -> float:
        return self.bandwidth_gbps_per_direction * units.GB


class EfficiencySpec(_Frozen):
    """Achievable fractions of datasheet peaks and fixed overheads (roofline tier).

    Defaults are fitted on the shared measured sets (see docs/calibration.md); a device file
    may override any of them and a user may override them per call.
    """

    matmul_eta: float = Field(0.70, gt=0, le=1, description="fraction of dense matrix peak large GEMMs reach")
    attention_eta: float = Field(0.55, gt=0, le=1, description="fraction of matrix peak fused attention reaches")
    fp8_path_fraction: float = Field(
        1.0, gt=0, le=1,
        description="share of the fp8 matrix peak the fp8 path sustains relative to the 16-bit path: a matrix op "
        "that runs at the fp8 peak (GEMMs, fused attention) reaches matmul_eta (attention_eta) x this x that peak "
        "(the roofline twin of the tiled tier's matrix.fp8_path_fraction); 1.0: no fp8 deficit. Catalog and user "
        "devices take fitted/roofline.toml's value (a device's own bf16 / fp8 best-shape pair, else [default]'s "
        "median)")
    memory_eta: float = Field(0.80, gt=0, le=1, description="fraction of DRAM bandwidth streaming kernels reach")
    vector_eta: float = Field(0.50, gt=0, le=1, description="fraction of vector peak elementwise math reaches")
    vector_memory_eta: float | None = Field(
        None, gt=0, le=1,
        description="fraction of DRAM bandwidth non-matrix kernels (norms, activations, RoPE, softmax, adds, "
        "gathers) reach; None: use memory_eta (then memory_eta covers every op)",
    )
    onchip_eta: float | None = Field(
        None, gt=0, le=1,
        description="fraction of shared-memory bandwidth sparse-to-dense staging sustains (Flash-LLM); "
        "None: the stored fit (fitted/kernels.toml, on the whole Flash-LLM A100 SpMM set; docs/techniques.md)",
    )
    tiled_csl_stream_eta: float | None = Field(
        None, gt=0, le=1,
        description="fraction of a dense GEMM's DRAM streaming efficiency Flash-LLM's Tiled-CSL register loads "
        "sustain (the sparse_tc kernel, both tiers); None: the stored fit (fitted/kernels.toml, fitted with "
        "onchip_eta)",
    )
    launch_overhead_us: float = Field(4.0, ge=0, description="GPU-side gap per kernel")
    host_overhead_us: float = Field(0.0, ge=0, description="framework/host time per op, when not hidden")
    oneshot_allreduce_max_bytes: float | None = Field(
        None, gt=0,
        description="all-reduces up to this size run one-shot: each device reads its peers' buffers over the "
        "switched NVLink fabric and reduces locally, one step (custom all-reduces: PyTorch's intra-node comm, "
        "vLLM, TensorRT-LLM); None: NCCL's algorithms only (set by a framework profile)",
    )
    oneshot_allreduce_latency_us: float = Field(
        0.0, ge=0, description="fixed cost of one one-shot all-reduce (flag exchange with the peers), us")
    stream_bytes_per_core_clock: float | None = Field(
        None, gt=0,
        description="most DRAM bytes per core per clock the framework's kernels move (their memory-level "
        "parallelism: bytes in flight over the load latency, in clocks); None: no cap (set by a framework "
        "profile, e.g. llamacpp)",
    )
    token_kernel_bytes_per_core_clock: dict[Literal["norm", "rope", "act"], float] | None = Field(
        None,
        description="most DRAM bytes per core per clock a serving engine's per-token kernels move, by kernel: "
        "norm (RMSNorm/LayerNorm, fused residual-add norms), rope (rotary embedding), act (gated activation); "
        "one thread block per token with element-wide loads keeps few bytes in flight (docs/calibration.md, "
        "'Per-token kernels'); None: the stored values (fitted/kernels.toml)")
    token_kernel_caps: bool = Field(
        True,
        description="the framework runs its norms, RoPE and gated activations as per-token kernels (one block per "
        "token, element-wide loads) that the tiled tier caps at token_kernel_bytes_per_core_clock; False: its "
        "kernels are generated and vectorised (torch.compile's Inductor: the gptfast profile)")
    large_m_weight_only: Literal["fastest", "dequant_dense"] = Field(
        "fastest",
        description="weight-only quantized GEMMs with more than 64 activation rows: fastest (the faster of a "
        "fused dequantize-in-registers kernel and a dequantization pass followed by a dense 16-bit GEMM) or "
        "dequant_dense (the framework ships only the second: llama.cpp's cuBLAS path; set by a framework "
        "profile)")
    matmul_accumulate: Literal["fp32", "fp16"] = Field(
        "fp32",
        description="accumulator of the framework's fp16 matmuls: fp32, or fp16 (cuBLAS CUBLAS_COMPUTE_16F, as "
        "ggml runs them), which runs at the device's fp16_acc16 peak where it lists one (GeForce cards: twice "
        "the fp32-accumulate rate) and at its fp16 peak elsewhere (set by a framework profile, e.g. llamacpp)")
    fp32_activations: bool = Field(
        False,
        description="the framework keeps activations in fp32 between kernels: its elementwise kernels (norms, "
        "RoPE, activations, residual adds, softmax) move 4-byte values, and each matmul cuBLAS runs converts "
        "its input to fp16 and its fp16 output back to fp32 in two kernels of their own (ggml's CUDA backend; "
        "set by a framework profile, e.g. llamacpp)")
    prefill_host_overhead_us: float = Field(
        0.0, ge=0,
        description="host dispatch time per kernel of the prefill, us: serving engines capture CUDA graphs for "
        "decode steps only and launch the prefill's kernels one by one from the host (set by a framework "
        "profile; the default profile's value is fitted)")
    sequence_host_overhead_us: float = Field(
        0.0, ge=0,
        description="host time per sequence that produces a token in an engine step, us: the scheduler's and "
        "output processing's per-request work that an engine without an overlap scheduler runs between steps, "
        "the GPU waiting (set by a framework profile; fitted for python-scheduler)")
    collective_latency_us: float = Field(8.0, ge=0, description="latency term per collective step (alpha)")
    interconnect_eta: float = Field(0.75, gt=0, le=1, description="fraction of link bandwidth collectives reach")
    runtime_reserve_gb: float = Field(
        1.0, ge=0,
        description="memory the runtime keeps for itself (CUDA context, library workspaces, communication "
        "buffers); an assumption (a CUDA context alone takes a few hundred MB), not a fitted value",
    )
    source: str = Field("tapeout defaults", description="where these numbers come from")

    _ranges = field_validator("launch_overhead_us", "host_overhead_us", "prefill_host_overhead_us",
                              "sequence_host_overhead_us", "collective_latency_us",
                              "oneshot_allreduce_latency_us", "runtime_reserve_gb", "oneshot_allreduce_max_bytes",
                              "stream_bytes_per_core_clock")(_plausible_field)

    @field_validator("token_kernel_bytes_per_core_clock", mode="before")
    @classmethod
    def _token_caps_numbers(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for k, x in v.items():
                if isinstance(x, bool):
                    raise ValueError(f"{k}: expected a number of bytes per core per clock, got {x}")
        return v

    @field_validator("token_kernel_bytes_per_core_clock")
    @classmethod
    def _token_caps(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return v
        lo, hi, unit, hint = RANGES["stream_bytes_per_core_clock"]
        for k, x in v.items():
            if not x > 0:
                raise ValueError(f"{k}: {x:g} {unit} must be > 0")
            plausible(x, lo, hi, unit, hint)
        return v


class ScaleOutSpec(_Frozen):
    """The network between scale-up domains (nodes): InfiniBand or RoCE NICs, per device. Expert-parallel
    all-to-alls that span nodes send their off-node share through it (docs/wide-ep.md)."""

    kind: str
    bandwidth_gbps_per_direction: float = Field(gt=0, description="per device (its NICs), one direction, GB/s")

    _ranges = field_validator("bandwidth_gbps_per_direction")(_plausible_field)

    @property
    def bandwidth(self) -> float:
        return self.bandwidth_gbps_per_direction * units.GB


class HardwareSpec(_Frozen):
    name: str
    display_name: str = ""
    vendor: str = ""
    aliases: tuple[str, ...] = ()
    form_factor: str = ""
    process_node: str | None = None
    die_area_mm2: float | None = Field(None, gt=0)
    sm_count: int | None = Field(None, gt=0, description="SMs (NVIDIA), CUs (AMD), engines (others)")
    boost_clock_mhz: float | None = Field(None, gt=0)
    l2_cache_mb: float | None = Field(None, ge=0, description="last on-chip cache / SRAM, MB")
    tdp_w: float | None = Field(None, gt=0)
    price_usd: float | None = Field(None, gt=0, description="launch/list price; estimates flagged in sources")
    peak_tflops: dict[str, float] = Field(description="dense peak TFLOP/s (TOP/s for int) per format")
    sparse_peak_tflops: dict[str, float] = Field(default_factory=dict, description="2:4-sparse headline peaks")
    memory: MemorySpec
    interconnect: InterconnectSpec | None = None
    #: the scale-out link of a node of these devices (None: no multi-node groups)
    scale_out: ScaleOutSpec | None = None
    pcie_gbps_per_direction: float | None = Field(None, gt=0)
    graph_compiled: bool = Field(
        False,
        description="its runtime compiles every forward pass, prefill and decode alike, into one device graph "
        "(Gaudi's graph compiler: lazy mode, HPU graphs per shape bucket): no kernel waits for a launch from the "
        "host, so a framework's prefill host overhead per kernel does not apply",
    )
    efficiency: EfficiencySpec = EfficiencySpec()
    microarch: MicroArch | None = Field(None, description="optional micro-architecture (tiled tier, area model)")
    sources: dict[str, str] = Field(default_factory=dict, description="field -> document it came from")
    notes: str = ""

    @field_validator("peak_tflops", "sparse_peak_tflops")
    @classmethod
    def _keys(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(set(v) - set(PEAK_KEYS))
        if bad:
            raise ValueError(f"unknown peak keys {bad}; allowed: {', '.join(PEAK_KEYS)}")
        neg = [k for k, x in v.items() if not x > 0]
        if neg:
            raise ValueError(f"peaks must be > 0 (omit unsupported formats): {neg}")
        lo, hi, unit, hint = PEAK_RANGE
        for k, x in v.items():
            try:
                plausible(x, lo, hi, unit, hint)
            except ValueError as exc:
                raise ValueError(f"{k}: {exc}") from None
        return v

    _ranges = field_validator("die_area_mm2", "sm_count", "boost_clock_mhz", "l2_cache_mb", "tdp_w", "price_usd",
                              "pcie_gbps_per_direction")(_plausible_field)

    @field_validator("peak_tflops")
    @classmethod
    def _needs_16bit(cls, v: dict[str, float]) -> dict[str, float]:
        if not ({"fp16", "bf16"} & set(v)):
            raise ValueError("a device needs at least an fp16 or bf16 peak")
        return v

    # ---- SI accessors ---------------------------------------------------------------------
    def peak_flops(self, key: str) -> float | None:
        v = self.peak_tflops.get(key)
        return None if v is None else v * units.TERA

    @property
    def vector_flops(self) -> float:
        """Non-matrix (CUDA-core / vector) FP32 throughput, FLOP/s."""
        v = self.peak_tflops.get("fp32") or self.peak_tflops.get("fp32_matrix")
        if v is None:  # devices that publish no vector peak: assume 1/8 of the 16-bit matrix rate
            v = (self.peak_tflops.get("bf16") or self.peak_tflops["fp16"]) / 8
        return v * units.TERA

    @property
    def memory_bandwidth(self) -> float:
        return self.memory.bandwidth

    @property
    def memory_capacity(self) -> float:
        return self.memory.capacity_bytes

    def with_efficiency(self, **overrides: float) -> "HardwareSpec":
        """A copy with some efficiency fields replaced (validated)."""
        eff = EfficiencySpec(**{**self.efficiency.model_dump(), **overrides})
        return self.model_copy(update={"efficiency": eff})


def default_16bit(hw: HardwareSpec) -> str:
    """The 16-bit format a device runs fastest, from its datasheet dense peaks: bf16 when its peak
    exceeds fp16's (or the device has no fp16 peak), else fp16 (equal peaks keep fp16)."""
    fp16, bf16 = hw.peak_tflops.get("fp16"), hw.peak_tflops.get("bf16")
    if fp16 is None or (bf16 is not None and bf16 > fp16):
        return "bf16"
    return "fp16"
