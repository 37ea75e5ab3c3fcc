"""GEMM mapper: search block tiles, split-K, pipeline depth and raster order; price each candidate.

One GEMM is ``batch`` independent products C[M,N] = A[M,K] @ B[K,N] (``batch`` = experts of an
MoE layer or heads of a batched matmul). A candidate mapping is a block tile BM x BN x BK, a
pipeline depth (stages of BK slices in shared memory) and a split of K over ``split`` tiles.
Each candidate is priced on the device's micro-architecture:

- **legality**: the stages of A and B slices fit in shared memory, the fp32 accumulators of the
  co-resident tiles fit in half the register file; co-resident tiles per core follow from both;
- **padding**: a tile computes its full BM x BN x BK (edges are padded), BM and BN are at least
  the matrix instruction's m and n, BK at least its k;
- **compute**: per k-step a core spends max(MMA cycles, shared-memory operand cycles) /
  ``matrix_eta``; operand cycles come from the warp-tile shape (each warp reads its A rows and
  B columns once per k-step at ``smem_bytes_per_clock``);
- **wave quantization**: each core runs ceil(tiles / cores) tiles in sequence (the tail wave
  costs a full tile time);
- **memory**: DRAM traffic with L2 reuse for the best of three raster orders (row-major, column-
  major, square swizzle; an operand that fits in the L2 share is read once), the L2->core traffic
  of every tile, one core's own L2 port, and the latency bound of ``stages - 1`` loads in
  flight per co-resident tile;
- **overlap**: loads and MMAs overlap in the main loop, imperfectly near the ridge point: the
  main loop takes max((compute^p + dram^p)^(1/p), L2, core port, latency) with the device's
  ``overlap_p``; the prologue (first
  loads) and epilogue (writing C; split-K partial sums) do not overlap, and every later tile of a
  core pays its own pipeline fill and C write, divided by the co-resident tiles that hide it.

The cheapest candidate is the mapping. Candidate arrays are built once per (device, formats)
and every shape is one vectorised numpy pass over them; results are cached.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from tapeout.perf.tiled.device import ACC_REG_FRACTION, L2_FIT_FRACTION, Dev

TILES_M = (16, 32, 64, 128, 256)
TILES_N = (16, 32, 64, 96, 128, 192, 256)
#: k-tile in bytes of one operand row: 64 B and 128 B (32 / 64 elements of a 16-bit format)
K_TILE_BYTES = (64, 128)
STAGES = (2, 3, 4, 6)
SPLITS = (1, 2, 3, 4, 6, 8, 12, 16)
MAX_CTAS_PER_CORE = 8
RASTERS = ("row", "column", "swizzle")


class GemmPlan(NamedTuple):
    """The chosen mapping and its time terms (seconds); the kernel's launch is not included."""

    time_s: float        # prologue + main loop + epilogue
    compute_s: float     # MMA / operand-feed time of the main loop
    memory_s: float      # the largest memory bound of the main loop
    overhead_s: float    # prologue + epilogue (not overlapped)
    bound: str           # which main-loop term is largest: compute | dram | l2 | core_l2 | latency
    tile_m: int
    tile_n: int
    tile_k: int
    stages: int
    split_k: int
    raster: str
    ctas_per_core: int
    tiles: int
    waves: int
    dram_bytes: float
    l2_bytes: float
    utilization: float   # tiles / (waves x cores): share of core slots doing work
    peak_key: str
    candidates: int
    dram_s: float = 0.0      # the main loop's DRAM time (part of memory_s)
    chip_s: float = 0.0      # the main loop's largest on-chip bound (L2, a core's L2 port, latency)

    @property
    def mapping(self) -> str:
        return (f"{self.tile_m}x{self.tile_n}x{self.tile_k} s{self.stages} splitk{self.split_k} "
                f"{self.raster} {self.ctas_per_core}cta/core")


class _Cands(NamedTuple):
    bm: np.ndarray
    bn: np.ndarray
    bk: np.ndarray
    st: np.ndarray
    split: np.ndarray
    cta: np.ndarray
    iter_s: np.ndarray       # seconds per k-step of one tile on one core (compute)
    stage_bytes: np.ndarray  # A+B bytes of one k-step of one tile
    pro_s: np.ndarray        # prologue + epilogue seconds (first loads; C tile write)
    epi_s: np.ndarray        # epilogue seconds (C tile write)
    n: int
    # shape-independent factors of the per-shape terms, computed once per table
    slots: np.ndarray        # tiles the cores hold at once (cores x co-resident tiles)
    fills: np.ndarray        # loads in flight per tile (stages - 1)
    split_part: np.ndarray   # the split where it writes partial sums (> 1), else 0
    multi: np.ndarray        # split > 1
    unsplit: bool            # every candidate has split 1


#: every (BM, BN, k-tile bytes) block tile, in search order (BM outermost), as columns
_BM, _BN, _KB = (np.array(x, dtype=float) for x in zip(*((bm, bn, kb) for bm in TILES_M for bn in TILES_N
                                                          for kb in K_TILE_BYTES)))
_ST = np.array(STAGES, dtype=float)


@lru_cache(maxsize=512)
def _tile_rows(dev: Dev, a_bytes: float, b_bytes: float, feed_bytes: float,
               tile: tuple[int, int] | None = None) -> np.ndarray:
    """Legal (BM, BN, BK, stages, ctas/core, stage bytes) rows, in search order; per block tile only the
    pipeline depths that are not dominated (most loads in flight per core, most co-resident tiles), in
    one numpy pass over every block tile x pipeline depth."""
    im, in_, ik = dev.instr
    bm, bn, kb = _BM, _BN, _KB
    if tile is not None:
        kb = np.array(K_TILE_BYTES, dtype=float)
        bm, bn = np.full(len(kb), float(tile[0])), np.full(len(kb), float(tile[1]))
    cta_reg = np.floor(ACC_REG_FRACTION * dev.regs / (bm * bn * 4.0))
    ok = (bm >= im) & (bn >= in_) & (cta_reg >= 1.0)
    bm, bn, kb, cta_reg = bm[ok], bn[ok], kb[ok], cta_reg[ok]
    bk = np.maximum(float(ik), np.floor(kb / max(feed_bytes, 0.5)))
    stage = bk * (bm * a_bytes + bn * b_bytes)
    # (tiles x depths): co-resident tiles per core at each depth; at most one pick per depth
    cta = np.minimum(np.minimum(cta_reg[:, None], np.floor(dev.smem / (_ST * stage[:, None]))),
                     float(MAX_CTAS_PER_CORE))
    legal = cta >= 1.0
    inflight = cta * (_ST - 1.0)
    # the depth with most loads in flight (then most tiles, then fewest stages), and the one with most
    # co-resident tiles (then most loads in flight); integers, so the keys are exact
    most_loads = np.where(legal, (inflight * 16.0 + cta) * 16.0 - _ST, -np.inf).argmax(axis=1)
    most_tiles = np.where(legal, cta * 64.0 + inflight, -np.inf).argmax(axis=1)
    rows = np.arange(len(bm))
    pick = np.zeros(cta.shape, dtype=bool)
    pick[rows, most_loads] = True
    pick[rows, most_tiles] = True
    pick &= legal
    r, j = np.nonzero(pick)  # row-major: tiles in order, depths ascending within a tile
    out = np.stack([bm[r], bn[r], bk[r], _ST[j], cta[r, j], stage[r]], axis=1)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=512)
def _candidates(dev: Dev, macs: float, a_bytes: float, b_bytes: float, c_bytes: float,
                feed_bytes: float, legacy: bool, splits: tuple[int, ...],
                tile: tuple[int, int] | None = None) -> _Cands:
    base = _tile_rows(dev, a_bytes, b_bytes, feed_bytes, tile)
    if not len(base):
        raise ValueError(f"block tile {tile} is not legal on {dev.name}")
    arr = np.repeat(base, len(splits), axis=0)
    split = np.tile(np.array(splits, dtype=float), len(base))
    bm, bn, bk, st, cta, stage = (arr[:, i].copy() for i in range(6))
    wm = np.minimum(bm, dev.warp[0])
    wn = np.minimum(bn, dev.warp[1])
    rate = macs * (dev.legacy if legacy else 1.0)
    mma = bm * bn * bk / rate
    feed = bm * bn * bk * (1.0 / wm + 1.0 / wn) * feed_bytes / dev.smem_bpc
    iter_s = np.maximum(mma, feed) / (dev.clock * dev.matrix_eta)
    pro = dev.latency + (st - 1.0) * stage / dev.core_bw
    epi = bm * bn * c_bytes / dev.core_bw
    multi = split > 1.0
    return _Cands(bm, bn, bk, st, split, cta, iter_s, stage, pro + epi, epi, len(split), float(dev.cores) * cta,
                  st - 1.0, split * multi, multi, splits == (1,))


def _reuse(fits: bool, total: float, tiles_other: np.ndarray, along: Callable[[], np.ndarray]) -> np.ndarray | float:
    """The DRAM bytes of an operand of ``total`` bytes: read once if it fits in the L2 share, else once per
    group of ``along()`` concurrently running tiles that share its panels."""
    if fits:
        return total
    return total * (tiles_other / along())


def _clip(x: np.ndarray, lo: float, hi: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, lo), hi)


@lru_cache(maxsize=200_000)
def plan_gemm(dev: Dev, m: int, n: int, k: int, batch: int, compute_dtype: str,
              a_bytes: float, b_bytes: float, c_bytes: float, legacy: bool = False,
              tile: tuple[int, int] | None = None) -> GemmPlan:
    """Best mapping of ``batch`` x (m x k) @ (k x n) on ``dev``.

    ``a_bytes``/``b_bytes``/``c_bytes`` are storage bytes per element of A (activations), B
    (weights or the second activation) and C; the operand feed uses the compute format's width.
    ``legacy``: price the previous-generation matrix path (``Dev.legacy``). ``tile``: pin the
    block tile (BM, BN) and search only the rest (k-tile, stages, split-K, raster order).
    """
    peak_key, macs = dev.macs_for(compute_dtype)
    feed = 4.0 if peak_key in ("tf32", "fp32_matrix") else 1.0 if peak_key in ("fp8", "int8") else \
        0.5 if peak_key in ("int4", "fp4") else 2.0
    m, n, k, batch = max(m, 1), max(n, 1), max(k, 1), max(batch, 1)
    cores = float(dev.cores)
    # split-K is what libraries use to fill the machine when the output grid has fewer tiles than
    # cores; when even the largest tiles make a full wave, only unsplit candidates are priced
    small_grid = batch * math.ceil(m / TILES_M[-1]) * math.ceil(n / TILES_N[-1]) < cores
    c = _candidates(dev, macs, a_bytes, b_bytes, c_bytes, feed, legacy, SPLITS if small_grid else (1,), tile)

    # (unsplit tables skip the split's no-op factors: x / 1 and x * 1 are exact)
    tm = np.ceil(m / c.bm)
    tn = np.ceil(n / c.bn)
    kit = np.ceil(k / c.bk) if c.unsplit else np.ceil(np.ceil(k / c.split) / c.bk)
    grid = batch * tm * tn
    tiles = grid if c.unsplit else grid * c.split
    waves = np.ceil(tiles / cores)
    steps = waves * kit

    compute = steps * c.iter_s
    core_t = steps * c.stage_bytes * (1.0 / dev.core_bw)
    lat_t = steps * dev.latency / (np.minimum(c.cta, waves) * c.fills)
    l2_bytes = tiles * kit * c.stage_bytes
    l2_t = l2_bytes * (1.0 / dev.l2_bw)

    # DRAM traffic with L2 reuse; w = tiles of one (batch, k-slice) running at once
    fit = L2_FIT_FRACTION * dev.l2
    a_tot, b_tot, c_tot = batch * m * k * a_bytes, batch * n * k * b_bytes, batch * m * n * c_bytes
    fit_a, fit_b = m * k * a_bytes <= fit, n * k * b_bytes <= fit
    if fit_a and fit_b:  # every raster order reads both operands once
        rasters: tuple = (a_tot + b_tot,) * 3
        dram = np.full(c.n, float(a_tot + b_tot + c_tot))
    else:
        w = np.maximum(np.minimum(tiles, c.slots) / (batch if c.unsplit else batch * c.split), 1.0)
        wm = _clip(np.sqrt(w), 1.0, tm)
        rasters = (
            a_tot + _reuse(fit_b, b_tot, tm, lambda: _clip(w / tn, 1.0, tm)),
            _reuse(fit_a, a_tot, tn, lambda: _clip(w / tm, 1.0, tn)) + b_tot,
            _reuse(fit_a, a_tot, tn, lambda: _clip(w / wm, 1.0, tn)) + _reuse(fit_b, b_tot, tm, lambda: wm),
        )
        dram = np.minimum(np.minimum(rasters[0], rasters[1]), rasters[2]) + c_tot
    fixed = c.pro_s
    if small_grid:
        # fp32 partial sums of split-K, written and read back (from L2 when they fit)
        part = (batch * m * n * 4.0) * c.split_part
        part_fits = part <= fit
        dram = dram + np.where(part_fits, 0.0, 2.0 * part)
        fixed = fixed + np.where(part_fits, 2.0 * part / dev.l2_bw, 0.0)
    dram_t = dram * (1.0 / (dev.dram_bw * dev.dram_eta))

    q = dev.overlap_p
    # every later tile of a core refills its pipeline and writes its C tile; co-resident tiles
    # hide that behind each other's main loops
    fixed = fixed + (waves - 1.0) * c.pro_s / c.cta
    # MMAs and DRAM streaming interfere near the ridge point (p-norm); the on-chip bounds (L2,
    # a core's L2 port, load latency) are hard limits
    main = np.maximum((compute ** q + dram_t ** q) ** (1.0 / q), np.maximum(np.maximum(l2_t, core_t), lat_t))
    total = main + fixed
    if small_grid:
        total = np.where(c.multi & (grid >= cores), np.inf, total)
    i = int(total.argmin())

    # the chosen candidate's values (ndarray.item: a Python float, without a numpy scalar in between)
    terms = (compute.item(i), dram_t.item(i), l2_t.item(i), core_t.item(i), lat_t.item(i))
    r = [x.item(i) if isinstance(x, np.ndarray) else float(x) for x in rasters]
    n_tiles, n_waves = tiles.item(i), waves.item(i)
    return GemmPlan(
        time_s=total.item(i), compute_s=terms[0], memory_s=max(terms[1:]),
        overhead_s=fixed.item(i) if isinstance(fixed, np.ndarray) else float(fixed),
        bound=_BOUNDS[terms.index(max(terms))],
        tile_m=int(c.bm.item(i)), tile_n=int(c.bn.item(i)), tile_k=int(c.bk.item(i)), stages=int(c.st.item(i)),
        split_k=int(c.split.item(i)), raster=RASTERS[r.index(min(r))], ctas_per_core=int(c.cta.item(i)),
        tiles=int(n_tiles), waves=int(n_waves), dram_bytes=dram.item(i), l2_bytes=l2_bytes.item(i),
        utilization=n_tiles / (n_waves * cores), peak_key=peak_key, candidates=c.n,
        dram_s=terms[1], chip_s=max(terms[2:]),
    )


#: the main-loop terms' names, in GemmPlan.bound's order of precedence (ties: the earlier)
_BOUNDS = ("compute", "dram", "l2", "core_l2", "latency")


def clear_caches() -> None:
    """Forget every cached plan and candidate table (for cold-cache benchmarks)."""
    plan_gemm.cache_clear()
    _candidates.cache_clear()
    _tile_rows.cache_clear()
