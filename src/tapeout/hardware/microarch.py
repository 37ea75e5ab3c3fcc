"""Micro-architecture description: the optional section of a device spec that the tiled tier
and the area model read. Datasheet peaks derive from it (cores x MACs/clock x 2 x clock).

Units follow the vendors: KB (1024 B, as whitepapers use for on-chip SRAM), MB for L2, MHz, GB/s.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MatrixUnitSpec(_Frozen):
    """Matrix engines of one core (tensor cores of an SM, matrix cores of a CU)."""

    units_per_core: int = Field(gt=0, description="matrix units per core")
    #: dense multiply-accumulates per clock per CORE, by format (1 MAC = 2 FLOP)
    macs_per_clock: dict[str, float] = Field(description="format -> dense MAC/clock per core")
    #: m, n, k granularity of one matrix instruction (tiles pad to multiples of it)
    instruction_shape: tuple[int, int, int] = (16, 8, 16)

    @field_validator("macs_per_clock")
    @classmethod
    def _pos(cls, v: dict[str, float]) -> dict[str, float]:
        if not v or any(x <= 0 for x in v.values()):
            raise ValueError("needs at least one format with a positive MAC rate")
        return v


class VectorUnitSpec(_Frozen):
    fp32_lanes_per_core: int = Field(gt=0, description="FP32 lanes (CUDA cores / stream processors) per core")
    flops_per_lane_per_clock: float = Field(2.0, gt=0, description="2 for one FMA per clock")


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
    sources: dict[str, str] = Field(default_factory=dict)

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
