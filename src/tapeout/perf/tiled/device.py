"""The numbers of a device the tiled tier reads, as one hashable value (a cache key).

:func:`device` turns a :class:`~tapeout.hardware.spec.HardwareSpec` with a micro-architecture
into a :class:`Dev` in SI units. It is memoised per spec object, so pricing many ops on one
device costs one conversion.
"""

from __future__ import annotations

from typing import NamedTuple

from tapeout.hardware.spec import HardwareSpec
from tapeout.perf import core

#: share of the L2 a kernel can count on to keep a reused operand resident (the rest holds the
#: other operand, the output and other traffic; A100's L2 is also split in two partitions)
L2_FIT_FRACTION = 0.5
#: share of the register file that accumulators of co-resident tiles may take (the rest holds
#: operand fragments, addresses and softmax state)
ACC_REG_FRACTION = 0.5


class Dev(NamedTuple):
    name: str
    cores: int
    clock: float            # Hz, matrix clock
    vclock: float           # Hz, vector clock
    macs: tuple[tuple[str, float], ...]  # format -> dense MAC / clock / core
    instr: tuple[int, int, int]
    warp: tuple[int, int]
    legacy: float           # fraction of matrix rate on the previous-generation path
    fp8_path: float         # fraction of the fp8 rate the fp8 path sustains relative to the 16-bit path
    lanes: int              # FP32 lanes per core
    sfu: float              # special-function results / clock / core
    regs: float             # register file bytes per core
    smem: float             # shared memory bytes per core
    l2: float               # L2 bytes
    l2_bw: float            # aggregate L2 bytes/s
    core_bw: float          # bytes/s one core pulls from L2
    smem_bpc: float         # shared-memory bytes / clock / core
    dram_bw: float          # bytes/s
    latency: float          # s, DRAM load latency
    matrix_eta: float
    dram_eta: float
    stream_eta: float
    overlap_p: float         # p-norm exponent combining overlapped compute and memory time
    attention_eta: float     # share of the GEMM main-loop rate a fused prefill-attention main loop sustains
    tile_latencies: float    # fixed work of one decode-attention tile, in DRAM latencies
    launch: float           # s per kernel (EfficiencySpec.launch_overhead_us)
    host: float             # s per op of framework/host time (EfficiencySpec.host_overhead_us)

    def macs_for(self, compute_dtype: str) -> tuple[str, float]:
        """(format key, MAC/clock/core) a matrix kernel computing in ``compute_dtype`` runs at: the format's
        rate (:func:`tapeout.perf.core.peak_key`: fp8 on a device without fp8 runs at the fp16 rate), the fp8 rate
        times the fp8 path's sustained fraction (``fp8_path``) relative to the 16-bit path.
        """
        table = dict(self.macs)
        k = core.peak_key(compute_dtype, table.__contains__) or next(iter(table))
        return k, table[k] * (self.fp8_path if k == "fp8" else 1.0)


_CACHE: dict[int, tuple[HardwareSpec, Dev]] = {}


def device(hw: HardwareSpec) -> Dev:
    """The tiled tier's view of ``hw`` (which must have a micro-architecture)."""
    hit = _CACHE.get(id(hw))
    if hit is not None and hit[0] is hw:
        return hit[1]
    ua = hw.microarch
    if ua is None:
        raise ValueError(f"{hw.name} has no micro-architecture")
    eff = hw.efficiency
    clock = ua.clock_mhz * 1e6
    dev = Dev(
        name=hw.name,
        cores=ua.cores,
        clock=clock,
        vclock=(ua.vector_clock_mhz or ua.clock_mhz) * 1e6,
        macs=_macs(hw),
        instr=tuple(ua.matrix.instruction_shape),  # type: ignore[arg-type]
        warp=tuple(ua.matrix.warp_tile),  # type: ignore[arg-type]
        legacy=ua.matrix.legacy_path_fraction,
        fp8_path=ua.matrix.fp8_path_fraction,
        lanes=ua.vector.fp32_lanes_per_core,
        sfu=ua.vector.sfu_ops_per_clock,
        regs=ua.registers_kb_per_core * 1024,
        smem=ua.shared_memory_kb_per_core * 1024,
        l2=ua.l2_mb * 1e6,
        l2_bw=ua.l2_bandwidth,
        core_bw=ua.l2_bytes_per_clock_per_core * clock,
        smem_bpc=ua.smem_bytes_per_clock,
        dram_bw=hw.memory.bandwidth,
        latency=ua.latency_s,
        matrix_eta=ua.matrix_eta,
        dram_eta=ua.dram_eta,
        stream_eta=ua.stream_eta,
        overlap_p=ua.overlap_p,
        attention_eta=ua.attention_eta,
        tile_latencies=ua.decode_tile_latencies,
        launch=eff.launch_overhead_us * 1e-6,
        host=eff.host_overhead_us * 1e-6,
    )
    if len(_CACHE) > 512:
        _CACHE.clear()
    _CACHE[id(hw)] = (hw, dev)
    return dev


def _macs(hw: HardwareSpec) -> tuple[tuple[str, float], ...]:
    """The matrix rates per format; fp16 at the fp16-accumulate rate where the framework accumulates in fp16 and
    the device lists that rate (:func:`tapeout.perf.core.accumulate_key`)."""
    macs = dict(hw.microarch.matrix.macs_per_clock)  # type: ignore[union-attr]
    if "fp16" in macs:
        macs["fp16"] = macs[core.accumulate_key("fp16", hw, macs.__contains__)]
    return tuple(sorted(macs.items()))


def with_dev(dev: Dev, **changes: float) -> Dev:
    """A copy of ``dev`` with some numbers replaced (tests, sensitivity studies)."""
    return dev._replace(**changes)
