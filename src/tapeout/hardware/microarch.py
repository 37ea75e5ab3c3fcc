"""Micro-architecture description: the optional section of a device spec that the tiled tier
and the area model read. Datasheet peaks derive from it (cores x MACs/clock x 2 x clock).

Units follow the vendors: KB (1024 B, as whitepapers use for on-chip SRAM), MB for L2, MHz, GB/s.

Three kinds of numbers live here:

- **datasheet/whitepaper facts** (cores, clocks, MACs per clock, register file, shared memory,
  L2): each with an entry in ``sources`` naming the document (keys of
  ``shared/reference-data/hardware/datasheets.csv``);
- **documented architectural constants** with defaults that hold for the vendors' current
  parts (shared-memory bytes per clock, special-function throughput, the largest accumulator
  tile one warp or warpgroup feeds); a device file overrides them where they differ;
- **fitted kernel efficiencies** (``matrix_eta``, ``dram_eta``, ``stream_eta``, the collective terms,
  ``matrix.legacy_path_fraction``, ``matrix.fp8_path_fraction``): what fraction of a peak real kernels sustain on this device. They
  are fitted per device across whole measured sets (never to one row) by ``tapeout fit`` and live in
  the store (``fitted/tiled.toml``), never in a catalog file: the catalog merges a device's fits into
  its description, and the defaults of the fields below are the store's ``[default]`` (devices without
  measurements, user device files). A device file may still set any of them. See docs/tiled.md.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tapeout import fitted
from tapeout.specio import reject_bools


def _fitted_default(name: str):  # noqa: ANN202 - a default factory
    return lambda: fitted.tiled_default(name)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bools(cls, data: Any) -> Any:
        return reject_bools(cls, data)


class MatrixUnitSpec(_Frozen):
    """Matrix engines of one core (tensor cores of an SM, matrix cores of a CU)."""

    units_per_core: int = Field(gt=0, description="matrix units per core")
    #: dense multiply-accumulates per clock per CORE, by format (1 MAC = 2 FLOP)
    macs_per_clock: dict[str, float] = Field(description="format -> dense MAC/clock per core")
    #: m, n, k granularity of one matrix instruction (tiles pad to multiples of it)
    instruction_shape: tuple[int, int, int] = (16, 8, 16)
    #: largest accumulator tile (rows, cols) one warp / warpgroup / wavefront owns; operands for it
    #: are read once from shared memory per k-step (PTX mma.sync: CUTLASS warp tiles up to 64x64;
    #: Hopper wgmma: 64 x N with N <= 256)
    warp_tile: tuple[int, int] = (64, 64)
    #: fraction of the peak reached through the previous generation's instruction path (Hopper:
    #: mma.sync instead of wgmma, as FlashAttention-2 uses); 1.0 where there is one path
    legacy_path_fraction: float = Field(1.0, gt=0, le=1)
    #: fraction of the fp8 MAC rate the fp8 path sustains relative to the 16-bit path (the GEMM main loop runs at
    #: ``matrix_eta`` x this x the fp8 rate): Hopper's fp8 wgmma keeps less of its doubled peak than bf16 does
    #: (docs/tiled.md, "The fp8 path"); 1.0 where fp8 keeps the same fraction of its peak as bf16; the default is
    #: the store's [default] (the median over the devices measured in both formats)
    fp8_path_fraction: float = Field(default_factory=_fitted_default("fp8_path_fraction"), gt=0, le=1)

    @field_validator("macs_per_clock")
    @classmethod
    def _pos(cls, v: dict[str, float]) -> dict[str, float]:
        if not v or any(x <= 0 for x in v.values()):
            raise ValueError("needs at least one format with a positive MAC rate")
        return v


class VectorUnitSpec(_Frozen):
    fp32_lanes_per_core: int = Field(gt=0, description="FP32 lanes (CUDA cores / stream processors) per core")
    flops_per_lane_per_clock: float = Field(2.0, gt=0, description="2 for one FMA per clock")
    int32_lanes_per_core: int | None = Field(
        None, gt=0, description="INT32 lanes per core (bit manipulation, e.g. dequantization); None: the FP32 lanes")
    #: special-function (exp, rsqrt) results per clock per core: 16 on NVIDIA sm_80/sm_86/sm_89/sm_90
    #: (CUDA C++ Programming Guide, arithmetic-instruction throughput table); AMD CDNA: 16 (quarter
    #: rate of the 64-lane SIMD set)
    sfu_ops_per_clock: float = Field(16.0, gt=0)


class MicroArch(_Frozen):
    cores: int = Field(gt=0, description="SMs (NVIDIA), CUs (AMD), cores (others)")
    clock_mhz: float = Field(gt=0, description="clock the matrix peaks are quoted at")
    vector_clock_mhz: float | None = Field(None, gt=0, description="clock of vector peaks when different")
    matrix: MatrixUnitSpec
    vector: VectorUnitSpec
    registers_kb_per_core: float = Field(gt=0)
    shared_memory_kb_per_core: float = Field(gt=0, description="max shared memory / LDS one core's blocks can use")
    l1_kb_per_core: float | None = Field(None, gt=0, description="combined L1 + shared memory per core")
    l2_mb: float = Field(gt=0)
    l2_bandwidth_gbps: float | None = Field(None, gt=0, description="aggregate L2 read bandwidth")
    memory_latency_ns: float | None = Field(None, gt=0)

    # ---- documented architectural constants (defaults hold for current NVIDIA and AMD parts) ----
    smem_bytes_per_clock: float = Field(
        128.0, gt=0,
        description="shared-memory (LDS) bytes per clock per core: 32 banks x 4 B on NVIDIA; 128 B/clk LDS on CDNA")
    l2_bytes_per_clock_per_core: float = Field(
        64.0, gt=0,
        description="bytes per clock one core can pull from L2 (its share of the crossbar); bounds "
        "kernels that occupy few cores")

    # ---- fitted kernel efficiencies (per device, from fitted/tiled.toml; defaults: its [default], the
    # medians over the devices fitted on their own measurements; docs/tiled.md) ----
    matrix_eta: float = Field(
        default_factory=_fitted_default("matrix_eta"), gt=0, le=1,
        description="fraction of the matrix MAC rate a GEMM main loop sustains (sustained clock under "
        "load, issue gaps, barriers)")
    dram_eta: float = Field(
        default_factory=_fitted_default("dram_eta"), gt=0, le=1,
        description="fraction of DRAM bandwidth a GEMM's streamed operand reads reach")
    stream_eta: float = Field(
        default_factory=_fitted_default("stream_eta"), gt=0, le=1,
        description="fraction of DRAM bandwidth elementwise / reduction kernels reach on large tensors")
    overlap_p: float = Field(
        default_factory=_fitted_default("overlap_p"), ge=1,
        description="exponent of the p-norm that combines a main loop's compute and memory time: "
        "(c^p + m^p)^(1/p); infinity would be perfect overlap (max), 1 none (sum). Near the ridge "
        "point both the memory system and the matrix units queue, so overlap is imperfect")
    attention_eta: float = Field(
        default_factory=_fitted_default("attention_eta"), gt=0, le=1,
        description="fraction of the GEMM main-loop rate (matrix_eta) a fused prefill-attention kernel's main loop "
        "sustains: the MMAs, operand feed and softmax of one key block issue at this share of what the tile "
        "model counts (barriers between the softmax and the MMAs, register pressure, the masked diagonal "
        "blocks); fitted on forward-attention kernel rows (docs/tiled.md, prefill attention)")
    decode_tile_latencies: float = Field(
        default_factory=_fitted_default("decode_tile_latencies"), ge=0,
        description="fixed work of one decode-attention tile (one sequence x KV head, or one split of it) "
        "in DRAM load latencies: its dependent loads (sequence length, page table, query, first K/V "
        "block), the softmax normaliser and the output write; exposed once per round of the tiles the "
        "cores hold at once (docs/tiled.md, decode attention)")
    # ---- collectives (the communication library on this device's scale-up link) ----
    collective_base_us: float = Field(
        0.0, ge=0,
        description="fixed time of one collective call beyond the kernel launch (library setup, "
        "proxy handshake, protocol pipeline fill), microseconds; fitted per device")
    collective_step_us: float | None = Field(
        None, ge=0, description="latency per algorithm step, us; None: EfficiencySpec.collective_latency_us")
    collective_eta: float | None = Field(
        None, gt=0, le=1, description="fraction of link bandwidth collectives reach; None: EfficiencySpec.interconnect_eta")
    collective_ll_step_us: float | None = Field(
        None, ge=0, description="low-latency protocol (NCCL LL): latency per step, us; None: no such protocol")
    collective_ll_eta: float | None = Field(
        None, gt=0, le=1, description="low-latency protocol: fraction of link bandwidth (flag-carrying lines, "
        "few channels)")
    #: whether predict's default tier is the tiled one on this device: False where an unpublished figure the
    #: tiled tier needs makes it wrong by default (the reason in ``sources["tiled_by_default"]``); ``--tier tiled``
    #: still runs it
    tiled_by_default: bool = Field(True, strict=True, description=(
        "predict's default tier is tiled on this device (False: roofline by default, the reason in sources)"))
    sources: dict[str, str] = Field(default_factory=dict)

    # ---- derived -------------------------------------------------------------------------------
    def peak_tflops(self, fmt: str) -> float | None:
        """Dense matrix peak derived from the description, TFLOP/s (None: no such format)."""
        macs = self.matrix.macs_per_clock.get(fmt)
        if macs is None:
            return None
        return self.cores * macs * 2 * self.clock_mhz * 1e6 / 1e12

    def vector_tflops(self) -> float:
        clock = self.vector_clock_mhz or self.clock_mhz
        v = self.vector
        return self.cores * v.fp32_lanes_per_core * v.flops_per_lane_per_clock * clock * 1e6 / 1e12

    @property
    def l2_bandwidth(self) -> float:
        """Aggregate L2 bandwidth, bytes/s: the stated figure, else A100's per-SM share of its
        5120 B/clk (NV-A100-WP), 48 B/clk per core, times cores and clock (an assumption)."""
        if self.l2_bandwidth_gbps is not None:
            return self.l2_bandwidth_gbps * 1e9
        return 48.0 * self.cores * self.clock_mhz * 1e6

    @property
    def latency_s(self) -> float:
        """DRAM load latency, seconds (600 ns when the device file gives none)."""
        return (self.memory_latency_ns or 600.0) * 1e-9
