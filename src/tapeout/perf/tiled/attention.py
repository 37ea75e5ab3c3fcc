"""Fused attention: FlashAttention-style prefill tiling and split-K (flash-decoding) decode.

**Prefill** (FlashAttention-2/3 forward). One tile = one (sequence, head, query block of BQ rows);
it walks the key/value blocks of BKV rows it attends to (all of them, or, with a causal mask, only
the blocks up to its diagonal: causal block skipping). Per key block a core spends

- MMA cycles for S = Q K^T and O += P V (2 x BQ x BKV x d MACs at the matrix rate; through the
  previous-generation path when the op carries the tag ``"fa2"`` on a device that has one),
- operand-feed cycles (each warp / warpgroup of ``instruction m`` rows reads the K and V block
  from shared memory),
- softmax cycles: one exp per score on the special-function units plus ~4 FP32 operations per
  score and 2 per output element (max, scale, sum, rescale) on the vector lanes,

combined with the device's overlap law (p-norm, ``MicroArch.overlap_p``): FlashAttention-3
overlaps softmax with the MMAs of another warpgroup, FlashAttention-2 relies on other warps. The loop
issues at ``MicroArch.attention_eta`` of that rate (fitted per device on forward-attention kernel rows:
barriers between softmax and MMAs, register pressure, masked diagonal blocks).
K/V blocks are re-read by every query block (from L2: the query blocks of one head run
together), Q and O cross DRAM once; GQA/MQA heads share their K/V reads. Tiles are
wave-quantized over the cores; each wave pays its tiles' Q load / first K/V block (one DRAM
latency) and O write, which short sequences and causal masks do not amortize. The mapper searches BQ, BKV under the register and
shared-memory limits.

**Decode** (one query per sequence against the KV cache): reading K and V dominates. A tile is
one (sequence, KV head) with its query heads (GQA: the group shares one read), optionally split
over ``s`` chunks of the context (split-K / flash-decoding) when sequences x KV heads are too few
to fill the cores; splits cost a second (combine) kernel. The main loop takes the larger of DRAM
time, the busiest core's L2-port time and compute. Each tile also has fixed work that does not
shrink with its keys: dependent loads (sequence length, page table, query, first K/V block), the
softmax normaliser and the output write, ``MicroArch.decode_tile_latencies`` DRAM latencies (fitted
on vidur's FlashAttention decode grid). A core holds as many tiles at once as its shared memory
fits (the query block and one staged K/V block of :data:`DECODE_KV_BLOCK` keys each), and their
fixed work overlaps, so it is exposed once per *round* of ``cores x tiles per core`` tiles, and
overlaps the main loop by the device's overlap law (p-norm): many short tiles (large batch, short
context) pay it once per round, few long ones hide it under their streaming. Plus one DRAM latency
and the launches.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from tapeout.hardware.spec import HardwareSpec
from tapeout.perf.cost import OpCost
from tapeout.perf.tiled.common import fmt_bytes, make_cost
from tapeout.perf.tiled.device import ACC_REG_FRACTION, Dev, device
from tapeout.perf.tiled.elementwise import INFLIGHT_BYTES
from tapeout.workload.ops import Op, OpSweep

Q_BLOCKS = (64, 128, 192, 256)
KV_BLOCKS = (32, 64, 128, 176, 256)
DECODE_SPLITS = (1, 2, 4, 8, 16, 32, 64, 128)
#: keys of the K/V block a decode tile stages in shared memory (FlashAttention-2's split-KV kernel: kBlockN
#: = 128 for head dims 65..128, with kBlockM = 64 query rows and 4 warps; Dao-AILab/flash-attention
#: csrc/flash_attn/src/flash_fwd_launch_template.h, run_mha_fwd_splitkv_dispatch)
DECODE_KV_BLOCK = 128


class AttnPlan(NamedTuple):
    time_s: float
    compute_s: float
    memory_s: float
    overhead_s: float
    mapping: str
    terms: tuple[tuple[str, float | str], ...]


def _pnorm(a: np.ndarray | float, b: np.ndarray | float, p: float) -> np.ndarray | float:
    return (a ** p + b ** p) ** (1.0 / p)


@lru_cache(maxsize=50_000)
def plan_prefill(dev: Dev, b: int, heads: int, kv_heads: int, sq: int, skv: int, d: int, causal: bool,
                 compute_dtype: str, e: float, legacy: bool, dv: int = 0, latent: bool = False, window: int = 0,
                 chunk: int = 0, softcap: bool = False, alibi: bool = False) -> AttnPlan:
    """``d``: the query-key head dim; ``dv``: the value head dim (0: ``d``); ``latent``: K and V are one
    tensor (MLA's absorbed form: the value is the first ``dv`` values of the ``d``-wide key); ``window`` /
    ``chunk``: each query sees only the keys of its sliding window / its chunk (key blocks before them are
    skipped); ``softcap``: a tanh and two multiplies per score (Gemma 2's logit soft-capping); ``alibi``: a
    multiply and an add per score (the slope times the key-query distance, added in the kernel: ALiBi)."""
    key, macs = dev.macs_for(compute_dtype)
    rate = macs * (dev.legacy if legacy else 1.0)
    rows_per_warp = 16 if legacy else dev.instr[0]
    dv = dv or d
    kv_w = d if latent else d + dv  # K and V values per key
    sc = 1.0 if softcap else 0.0
    al = 1.0 if alibi else 0.0
    best: tuple[float, ...] | None = None
    for bq in Q_BLOCKS:
        if bq < dev.instr[0]:
            continue
        # K/V blocks far longer than the context only pad; the smallest block is always a candidate
        bkvs = [bkv for bkv in KV_BLOCKS if not (bkv < dev.instr[1] or (bkv > max(skv, dev.instr[1]) * 2
                                                                         and bkv != KV_BLOCKS[0]))
                and (bq * d + 2 * bkv * kv_w) * e <= dev.smem  # Q tile + double-buffered K and V blocks
                and (bq * dv + bq * bkv) * 4.0 <= ACC_REG_FRACTION * dev.regs * 2]  # O accumulator + S, fp32
        if not bkvs:
            continue
        # the key blocks each query block walks, for every K/V block size at once (sizes x query blocks)
        nq = math.ceil(sq / bq)
        i = np.arange(nq, dtype=float)
        if causal:
            seen = np.minimum(float(skv), (skv - sq) + (i + 1) * bq)
        else:
            seen = np.full(nq, float(skv))
        col = np.array(bkvs, dtype=float)[:, None]
        nkv = np.ceil(np.maximum(seen, 1.0) / col)
        if window or chunk:  # the key blocks before the first query row's window or chunk are skipped
            first = (skv - sq) + i * bq
            lo = np.maximum(first - window + 1, 0.0) if window else np.floor(first / chunk) * chunk
            nkv = np.maximum(nkv - np.floor(lo / col), 1.0)
        tiles = b * heads * nq
        waves = math.ceil(tiles / dev.cores)
        for bkv, kv_sum, kv_max in zip(bkvs, nkv.sum(axis=1).tolist(), nkv.max(axis=1).tolist()):
            per_core_iters = max(waves * (kv_sum / nq), kv_max)
            mma = bq * bkv * (d + dv) / rate
            feed = (bq / rows_per_warp) * bkv * (d + dv) * e / dev.smem_bpc
            lane_ops = (4.0 + 2.0 * sc + 2.0 * al) * bq * bkv + 2.0 * bq * dv
            soft = bq * bkv * (1.0 + sc) / dev.sfu + lane_ops / dev.lanes
            cyc = _pnorm(max(mma, feed) / dev.matrix_eta, soft, dev.overlap_p) / dev.attention_eta
            compute = per_core_iters * cyc / dev.clock
            kv_blk = bkv * kv_w * e
            core_t = per_core_iters * kv_blk / dev.core_bw
            l2_t = b * heads * kv_sum * kv_blk / dev.l2_bw
            dram = (b * heads * sq * (d + dv) + b * kv_heads * skv * kv_w) * e
            dram_t = dram / (dev.dram_bw * dev.dram_eta)
            mem = max(core_t, l2_t, dram_t)
            main = float(_pnorm(compute, mem, dev.overlap_p))
            # each tile loads Q and its first K/V block before computing and writes O at the end;
            # with one tile per core these are exposed once per wave
            pro = dev.latency + (bq * d * e + kv_blk) / dev.core_bw
            epi = bq * dv * e / dev.core_bw
            t = main + waves * (pro + epi)
            if best is None or t < best[0]:
                best = (t, compute, mem, waves * (pro + epi), bq, bkv, tiles, waves, kv_sum * b * heads,
                        dram, dram_t, l2_t, core_t)
    if best is None:
        if d > 128:  # head dim too large for any tile: price the tiles of a 128-wide head, scaled to the dims
            p = plan_prefill(dev, b, heads, kv_heads, sq, skv, 128, causal, compute_dtype, e, legacy, 0, False,
                             window, chunk, softcap, alibi)
            f = (d + dv) / 256.0
            return p._replace(time_s=p.time_s * f, compute_s=p.compute_s * f, memory_s=p.memory_s * f,
                              terms=p.terms + (("head_dim_scaled_from", 128),))
        raise ValueError(f"no legal attention tile on {dev.name} for head dim {d}")
    t, compute, mem, oh, bq, bkv, tiles, waves, kv_iters, dram, dram_t, l2_t, core_t = best
    path = "legacy (mma.sync, FA2)" if legacy and dev.legacy < 1 else "native"
    terms = (("model", "tiled flash-attention prefill"), ("block_q", bq), ("block_kv", bkv), ("tiles", tiles),
             ("waves", waves), ("kv_block_reads", kv_iters), ("causal_skip", "yes" if causal else "no"),
             ("peak", key), ("matrix_path", path), ("dram_mb", dram / 1e6), ("dram_us", dram_t * 1e6),
             ("l2_us", l2_t * 1e6), ("core_l2_us", core_t * 1e6), ("matrix_eta", dev.matrix_eta),
             ("attention_eta", dev.attention_eta))
    mapping = f"BQ{bq} BKV{bkv} {'causal' if causal else 'full'} {tiles} tiles/{waves} waves"
    return AttnPlan(t, compute, mem, oh, mapping, terms)


#: the split-K candidates as a column (splits x contexts grids)
_SPLITS = np.array(DECODE_SPLITS, dtype=float)[:, None]


class DecodeGrid(NamedTuple):
    """Decode-attention plans at several contexts (arrays over the contexts, the best split of each)."""

    time_s: np.ndarray
    compute_s: np.ndarray
    memory_s: np.ndarray
    overhead_s: np.ndarray
    split: np.ndarray
    tiles: np.ndarray
    waves: np.ndarray
    dram_s: np.ndarray
    core_s: np.ndarray
    kv_total: np.ndarray
    peak_key: str
    group: int
    rows: int
    rounds: np.ndarray
    fixed_s: np.ndarray
    per_core: int


def tiles_per_core(dev: Dev, rows: int, d: int, kv_w: int, e_q: float, e_kv: float) -> int:
    """Decode-attention tiles one core holds at once: as many as its shared memory fits, each its query block
    (``rows`` x ``d``) and one staged K/V block of :data:`DECODE_KV_BLOCK` keys (at least one)."""
    return max(1, int(dev.smem // (rows * d * e_q + DECODE_KV_BLOCK * kv_w * e_kv)))


def decode_grid(dev: Dev, b: int, heads: int, kv_heads: int, skv: np.ndarray, d: int, compute_dtype: str,
                e_q: float, e_kv: float, dv: int = 0, latent: bool = False) -> DecodeGrid:
    """The decode-attention model over an array of context lengths ``skv``, every split-K candidate at once
    (splits x contexts); each context keeps its fastest split (ties: the fewer splits). ``dv``: the value
    head dim (0: ``d``); ``latent``: K and V are one ``d``-wide tensor read once (MLA absorbed: FlashMLA puts
    all query heads of a sequence on the MMA's m extent against the shared latent)."""
    key, macs = dev.macs_for(compute_dtype)
    dv = dv or d
    kv_w = d if latent else d + dv
    g = max(1, heads // max(kv_heads, 1))
    rows = math.ceil(g / dev.instr[0]) * dev.instr[0]  # the query group pads to the instruction's m
    skv = np.asarray(skv, dtype=float)
    kv_total = b * kv_heads * skv * kv_w * e_kv
    q_total = b * heads * (d + dv) * e_q
    core_bw = min(dev.core_bw, INFLIGHT_BYTES / dev.latency)
    s = _SPLITS
    chunk = np.ceil(skv / s)
    valid = (s == 1.0) | (chunk >= 64)  # more splits only while each chunk keeps >= 64 keys
    tiles = b * kv_heads * s
    waves = np.ceil(tiles / dev.cores)
    per_core = waves * chunk * kv_w * e_kv
    core_t = per_core / core_bw
    dram_t = (kv_total + q_total) / (dev.dram_bw * dev.dram_eta)
    compute = waves * rows * chunk * (d + dv) / (macs * dev.clock * dev.matrix_eta)
    mem = np.maximum(core_t, dram_t)
    # splits > 1: partial outputs + log-sum-exp of every split, combined by a second kernel
    part = b * heads * s * (dv + 2) * 4.0
    combine = np.where(s > 1.0, dev.launch + dev.latency + 2 * part / dev.l2_bw, 0.0)
    # each tile's fixed work, once per round of the tiles the cores hold at once, overlapping the main loop
    per_core = tiles_per_core(dev, rows, d, kv_w, e_q, e_kv)
    rounds = np.ceil(tiles / (dev.cores * per_core))
    fixed = rounds * dev.tile_latencies * dev.latency
    main = np.maximum(compute, mem)
    body = _pnorm(main, fixed, dev.overlap_p)
    t = np.where(valid, body + dev.latency + combine, np.inf)
    i = np.argmin(t, axis=0)
    cols = np.arange(skv.shape[0])

    def pick(a: np.ndarray) -> np.ndarray:  # each context's value at its fastest split (a: splits x contexts or x 1)
        return a[i, cols] if a.shape[1] > 1 else a[i, 0]

    return DecodeGrid(pick(t), pick(compute), pick(mem), pick(body - main + dev.latency + combine), pick(s),
                      pick(tiles), pick(waves), dram_t, pick(core_t), kv_total, key, g, rows, pick(rounds),
                      pick(fixed), per_core)


@lru_cache(maxsize=200_000)
def plan_decode(dev: Dev, b: int, heads: int, kv_heads: int, skv: int, d: int, compute_dtype: str,
                e_q: float, e_kv: float, dv: int = 0, latent: bool = False) -> AttnPlan:
    p = decode_grid(dev, b, heads, kv_heads, np.array([skv]), d, compute_dtype, e_q, e_kv, dv, latent)
    s, tiles, waves = int(p.split[0]), int(p.tiles[0]), int(p.waves[0])
    terms = (("model", "tiled decode attention (split-K / flash-decoding)"), ("split_kv", s), ("tiles", tiles),
             ("waves", waves), ("query_heads_per_kv_head", p.group), ("padded_rows", p.rows), ("peak", p.peak_key),
             ("tiles_per_core", p.per_core), ("tile_rounds", int(p.rounds[0])),
             ("tile_fixed_us", float(p.fixed_s[0]) * 1e6), ("tile_latencies", dev.tile_latencies),
             ("kv_mb", float(p.kv_total[0]) / 1e6), ("dram_us", float(p.dram_s[0]) * 1e6),
             ("core_l2_us", float(p.core_s[0]) * 1e6), ("dram_eta", dev.dram_eta))
    return AttnPlan(float(p.time_s[0]), float(p.compute_s[0]), float(p.memory_s[0]), float(p.overhead_s[0]),
                    f"split{s} {tiles} tiles/{waves} waves", terms)


def _decode_args(op: Op) -> tuple | None:
    """(b, heads, kv_heads, d, compute_dtype, e_q, e_kv, dv, latent) of a decode-attention op, None for other
    ops."""
    dm = op.dims()
    if not ("decode" in op.tags or int(dm.get("sq", 1)) == 1):
        return None
    return (int(dm.get("b", 1)), int(dm.get("heads", 1)), int(dm.get("kv_heads", dm.get("heads", 1))),
            int(dm.get("d", 128)), op.compute_dtype, fmt_bytes(op, "act"), fmt_bytes(op, "kv"),
            int(dm.get("dv", 0)), bool(dm.get("latent", 0)))


def decode_sweep(s: OpSweep, hw: HardwareSpec) -> np.ndarray | None:
    """``estimate(op, hw).time_s`` of one decode-attention op at several contexts (a uniform
    :class:`~tapeout.workload.ops.OpSweep` whose only shape size that differs is ``skv``), in one pass; None
    for anything else."""
    args = _decode_args(s.op)
    if args is None or "skv" not in dict(s.op.shape) or set(s.dims or ()) - {"skv"}:
        return None
    dev = device(hw)
    b, h, kv, d, dtype, e, e_kv, dv, latent = args
    p = decode_grid(dev, b, h, kv, s.dim("skv").astype(float), d, dtype, e, e_kv, dv, latent)
    # as estimate: make_cost(compute, memory, overhead = time - max(compute, memory) + launch + host)
    body = np.maximum(p.compute_s, p.memory_s)
    overhead = p.time_s - body + dev.launch + dev.host
    return np.maximum(body, 0.0) + overhead


def estimate(op: Op, hw: HardwareSpec) -> OpCost:
    dev = device(hw)
    dm = op.dims()
    b, h, kv = int(dm.get("b", 1)), int(dm.get("heads", 1)), int(dm.get("kv_heads", dm.get("heads", 1)))
    sq, skv, d = int(dm.get("sq", 1)), int(dm.get("skv", 1)), int(dm.get("d", 128))
    dv, latent = int(dm.get("dv", 0)), bool(dm.get("latent", 0))
    e = fmt_bytes(op, "act")
    if "decode" in op.tags or sq == 1:
        p = plan_decode(dev, b, h, kv, skv, d, op.compute_dtype, e, fmt_bytes(op, "kv"), dv, latent)
    else:
        p = plan_prefill(dev, b, h, kv, sq, skv, d, "causal" in op.tags, op.compute_dtype, e, "fa2" in op.tags,
                         dv, latent, int(dm.get("window", 0)), int(dm.get("chunk", 0)), "softcap" in op.tags,
                         "alibi" in op.tags)
    terms: dict[str, float | str] = dict(p.terms)
    terms.update(mapping=p.mapping, launch_us=dev.launch * 1e6, host_us=dev.host * 1e6,
                 prologue_epilogue_us=p.overhead_s * 1e6,
                 overlap_loss_us=(p.time_s - p.overhead_s - max(p.compute_s, p.memory_s)) * 1e6)
    return make_cost(op, compute=p.compute_s, memory=p.memory_s,
                     overhead=p.time_s - max(p.compute_s, p.memory_s) + dev.launch + dev.host, terms=terms)
