"""Elementwise ops and row reductions (norms, softmax, activations, residual adds, RoPE, KV writes,
embedding gathers, sampling): bandwidth-bound kernels with an achieved-bandwidth curve.

Model of one kernel moving ``R`` bytes in and ``W`` bytes out:

- **where the bytes come from**: DRAM, at ``stream_eta`` of its bandwidth. (Serving a working set
  that fits in L2 from L2 was tried and did not improve the fit on the shared sets: the kernels
  measured there are not bandwidth-bound at those sizes; docs/tiled.md);
- **how many cores work**: the tensor is cut into blocks (a row per block for reductions); with
  fewer blocks than cores only those cores pull data, each at most its L2 port width;
- **Little's law**: each active core keeps ``INFLIGHT_BYTES`` of loads in flight, so a small
  tensor cannot reach peak bandwidth (bandwidth <= cores x in-flight / latency);
- **latency**: one DRAM round trip before the first bytes arrive;
- **passes**: a softmax over rows longer than a warp's registers (> ``ONCHIP_ROW_ELEMS``) reads its
  input twice (max/sum pass, then the normalizing pass), as a safe softmax without a persistent
  row must; a norm whose row (when the op carries ``rows``/``cols``) exceeds one block's registers
  (``ONCHIP_NORM_ROW_BYTES``) also reads twice (statistics pass, normalizing pass); other
  kernels read once;
- **per-token kernels** (a serving engine's norm, RoPE and gated activation; ``op.tags`` ``token:<kind>``): one
  thread block per token with loads one element wide keeps far fewer bytes in flight than a vectorised
  kernel, so each active core streams at most its kind's bytes per clock (:func:`token_cap`: the call's
  ``token_kernel_bytes_per_core_clock``, else fitted/kernels.toml; docs/calibration.md, "Per-token kernels")
  when its bytes exceed L2 (a smaller tensor, just written by the previous kernel, is read at L2 latency);
- **vector work**: FLOPs on the FP32 lanes (exp on the special-function units for softmax);
  overlapped with the loads;
- launch overhead (and the harness's host term) on top.

So achieved bandwidth rises with tensor size and saturates at ``stream_eta`` x DRAM bandwidth.
"""

from __future__ import annotations

import math
from functools import lru_cache

from tapeout import fitted
from tapeout.hardware.spec import HardwareSpec
from tapeout.perf.cost import OpCost
from tapeout.perf.tiled.common import make_cost
from tapeout.perf.tiled.device import Dev, device
from tapeout.workload.ops import Op, OpKind, token_kernel

#: bytes of loads one core keeps in flight (vectorised 16-byte loads from a full complement of
#: warps: 2048 threads x 16 B = 32 KB on NVIDIA; 64 KB wavefront slots on CDNA are similar)
INFLIGHT_BYTES = 32 * 1024
#: bytes of one block of an elementwise kernel (a 256-thread block x 4 x 16-byte vectors)
BLOCK_BYTES = 16 * 1024
#: longest row a one-pass (warp-per-row, register-resident) softmax keeps on chip
ONCHIP_ROW_ELEMS = 1024
#: longest row a one-pass norm keeps in one block's registers (1024 threads x 16 B)
ONCHIP_NORM_ROW_BYTES = 16 * 1024


@lru_cache(maxsize=100_000)
def stream_time(dev: Dev, read: float, written: float, blocks: float, flops: float, sfu_ops: float,
                passes: float = 1.0, per_clock: float | None = None) -> tuple[float, float, float, str]:
    """(memory s, compute s, latency s, where) of one bandwidth-bound kernel (no launch); ``per_clock``: the
    most bytes one core streams per clock (a per-token kernel's cap), None: no such cap."""
    moved = read * passes + written
    bw, where = dev.dram_bw * dev.stream_eta, "dram"
    active = max(1.0, min(float(dev.cores), blocks))
    bw = min(bw, active * dev.core_bw, active * INFLIGHT_BYTES / dev.latency)
    if per_clock:
        bw = min(bw, active * per_clock * dev.clock)
    memory = moved / bw
    vec = dev.cores * dev.lanes * 2.0 * dev.vclock
    compute = flops / vec + sfu_ops / (dev.cores * dev.sfu * dev.vclock)
    # work is spread over ``active`` cores only
    compute *= dev.cores / active
    return memory, compute, dev.latency, where


def token_cap(kind: str | None, hw: HardwareSpec) -> float | None:
    """Bytes per core per clock a serving engine's per-token kernel of ``kind`` streams at most: the device's or
    call's ``token_kernel_bytes_per_core_clock``, else the stored fit (fitted/kernels.toml); None: not such a
    kernel, no cap, or a framework whose kernels are generated and vectorised (``token_kernel_caps`` False)."""
    if kind is None or not hw.efficiency.token_kernel_caps:
        return None
    own = hw.efficiency.token_kernel_bytes_per_core_clock
    if own and kind in own:
        return own[kind]
    return getattr(fitted.kernel_constants(), f"token_{kind}_bytes_per_core_clock", None)


def outgrows_l2(op: Op, hw: HardwareSpec) -> bool:
    """Whether ``op``'s tensors exceed the device's L2, where a per-token kernel's cap applies: the cap is a
    DRAM-latency limit, and a tensor that fits in L2 (just written by the previous kernel) is served at L2
    latency, out of its reach (vidur's H100 norms of <= 256 tokens take 4 us, no slower than an add)."""
    return op.bytes_total > device(hw).l2


def _reduction_rows(op: Op) -> tuple[float, float]:
    """(rows, row length) of a row-wise reduction, or (0, 0)."""
    d = op.dims()
    if op.kind in (OpKind.SOFTMAX, OpKind.NORM):
        if "rows" in d and "cols" in d:
            return float(d["rows"]), float(d["cols"])
        return 0.0, 0.0
    if op.kind is OpKind.SAMPLING:
        return float(d.get("batch", 1)), float(d.get("vocab", 1))
    return 0.0, 0.0


def estimate(op: Op, hw: HardwareSpec) -> OpCost:
    dev = device(hw)
    read, written = op.bytes_read, op.bytes_written
    rows, cols = _reduction_rows(op)
    if rows:
        blocks = rows  # one block (or warp group) per row
    else:
        blocks = max(1.0, math.ceil((read + written) / BLOCK_BYTES))
    sfu = op.flops / 5.0 if op.kind is OpKind.SOFTMAX else 0.0  # one exp per element
    passes = 1.0
    if op.kind is OpKind.SOFTMAX and cols > ONCHIP_ROW_ELEMS:
        passes = 2.0
    elif op.kind is OpKind.NORM and rows and cols * op.bytes_read / max(rows * cols, 1.0) > ONCHIP_NORM_ROW_BYTES:
        passes = 2.0
    kind = token_kernel(op)
    per_clock = token_cap(kind, hw) if outgrows_l2(op, hw) else None
    memory, compute, latency, where = stream_time(dev, read, written, blocks, op.flops, sfu, passes, per_clock)
    overhead = latency + dev.launch + dev.host
    terms: dict[str, float | str] = {
        "model": "tiled streaming kernel",
        "mapping": f"{int(blocks)} blocks on {int(min(float(dev.cores), blocks))} cores, {passes:g} input pass(es)",
        "source": where, "blocks": blocks, "input_passes": passes,
        "active_cores": min(float(dev.cores), blocks), "stream_eta": dev.stream_eta,
        "achieved_gbps": (read + written) / max(memory, 1e-15) / 1e9,
        "latency_us": latency * 1e6, "launch_us": dev.launch * 1e6, "host_us": dev.host * 1e6,
    }
    if per_clock:
        terms.update(token_kernel=str(kind), token_bytes_per_core_clock=per_clock,
                     token_cap_gbps=min(float(dev.cores), blocks) * per_clock * dev.clock / 1e9)
    return make_cost(op, compute=compute, memory=memory, overhead=overhead, terms=terms)
