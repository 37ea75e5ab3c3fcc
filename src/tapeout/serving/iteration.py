"""The time of one serving iteration, priced from the op models for its real composition.

An iteration runs prefill chunks of some requests and one decode step of others as one forward pass
(:class:`~tapeout.workload.build.IterationTemplate`; an engine that runs them as separate passes, LMDeploy
TurboMind v0.1's, is priced pass by pass by :meth:`IterationPricer.separate_iteration`). Per pipeline stage it costs

- the token ops at T = prefill tokens + decoding sequences (the GEMMs see both together),
- the head (lm_head, logits, sampling) of the sequences that produce a token,
- the prefill attention of each group of equal chunks (``seqs`` x (``chunk`` new tokens after ``prior``
  cached ones)), launched as one kernel per layer: each further group saves its fixed launch costs,
- the decode attention of the D decoding sequences at their mean context (one paged kernel reads their
  whole KV cache: its bytes are D x mean context).

Stages add up (one batch in flight; with several, :func:`stage_pricers` prices each distinct stage and the
engine takes the slowest into account). An iteration with any prefill launches its kernels from the host
(``eager``: the framework's prefill host gap applies), a pure decode step replays a CUDA graph, as in
:func:`tapeout.predict`.

**Buckets.** Long runs meet thousands of compositions; each price is cached on a grid: integers up to
``EXACT`` (64), then ``PER_OCTAVE`` (32) nodes per octave (relative spacing at most 1/32), and values
between nodes are interpolated linearly (tokens, sequences of the head, contexts) or bilinearly (chunk,
prior). The grid is exact wherever the priced time is linear in the bucketed variable between two nodes
(roofline decode attention, the bytes of the token ops; the tiled decode attention's per-tile fixed work
overlaps its streaming by a p-norm, within ~1e-6 of linear); where a tier prices tile or wave steps (a
GEMM's m padded to its tile; the tiled per-token kernels' cap, which steps in where their tensors outgrow L2),
the interpolated time stays between the times at the two nodes. The
difference with exact pricing (``exact=True``) is bounded by tests/test_serving.py: at most 2% on any
iteration of a random composition and under 0.5% on a simulation's throughput and mean latencies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tapeout.hardware.spec import HardwareSpec
from tapeout.models.spec import ModelSpec
from tapeout.perf import prefill_host_us
from tapeout.system.overlap import (CATEGORIES, Stages, grouped, in_step, layer_runs, normal_kernel_rate,
                                    overlap, split_point, sums)
from tapeout.system.pricing import pricer
from tapeout.workload.build import pipeline, shared_template
from tapeout.workload.ops import Op, OpKind
from tapeout.workload.scenario import Scenario
from tapeout.workload.standalone import collective_op

EXACT = 64
PER_OCTAVE = 32
_SHIFT = 5  # log2(PER_OCTAVE)
_HEAD, _LAYER = CATEGORIES.index("head"), CATEGORIES.index("layer")


def node_index(x: float) -> int:
    """Index of the grid node at or below ``x`` (>= 0)."""
    xi = int(x)
    if xi <= EXACT:
        return max(xi, 0)
    e = xi.bit_length() - 1
    return EXACT + (e - 6) * PER_OCTAVE + (xi >> (e - _SHIFT)) - PER_OCTAVE


def _node(i: int) -> int:
    if i <= EXACT:
        return i
    e, r = divmod(i - EXACT, PER_OCTAVE)
    return (PER_OCTAVE + r) << (e + 6 - _SHIFT)


#: the grid: POS[i] is node i (integers up to EXACT, then PER_OCTAVE per octave up to 2^40)
POS = np.array([_node(i) for i in range(EXACT + 35 * PER_OCTAVE)], dtype=float)


def node_below(x: float) -> tuple[int, int]:
    """(the grid node at or below ``x``, the spacing to the next node)."""
    i = node_index(x)
    return int(POS[i]), int(POS[i + 1] - POS[i])


def bucket(x: float) -> tuple[int, int, float]:
    """(a, b, w): ``x`` is priced as (1 - w) f(a) + w f(b). On a node, a = b = x; else a is the integer after
    the node below and b the next node: a tier's tile and wave steps fall on the nodes (powers of two times
    the spacing), so the step right after a node is kept, not smeared over the bucket."""
    i = node_index(x)
    lo = int(POS[i])
    if x == lo:
        return lo, lo, 0.0
    hi = int(POS[i + 1])
    a = lo + 1
    return a, hi, (x - a) / (hi - a) if hi > a else 0.0


#: every point a table prices: the nodes and the integers after them, and each one's index
PTS = np.unique(np.concatenate([POS, POS + 1]))
PTS_INDEX = {int(v): i for i, v in enumerate(PTS)}


class _Table:
    """``f`` at the grid nodes and the integers after them (priced on first use), interpolated between."""

    __slots__ = ("f", "fmany", "vals")

    def __init__(self, f, fmany=None) -> None:  # noqa: ANN001 - f(int) -> float, fmany(list[int]) -> array
        self.f = f
        self.fmany = fmany
        self.vals = np.full(PTS.size, np.nan)

    def at(self, n: int) -> float:
        j = PTS_INDEX[n]
        v = self.vals[j]
        if v != v:  # NaN: not priced yet
            v = self.vals[j] = self.f(n)
        return float(v)

    def __call__(self, x: float) -> float:
        a, b, w = bucket(x)
        fa = self.at(a)
        return fa if not w else fa + w * (self.at(b) - fa)

    def many(self, xs: np.ndarray) -> np.ndarray:
        """At increasing ``xs``."""
        j0 = PTS_INDEX[int(POS[node_index(float(xs[0]))])]
        j1 = PTS_INDEX[int(POS[node_index(float(xs[-1])) + 1])] + 1
        seg = self.vals[j0:j1]
        miss = np.flatnonzero(np.isnan(seg))
        if miss.size:
            pts = [int(v) for v in PTS[j0 + miss]]
            seg[miss] = self.fmany(pts) if self.fmany is not None and len(pts) > 1 else [self.f(n) for n in pts]
        return np.interp(xs, PTS[j0:j1], seg)


class _Rows(_Table):
    """A :class:`_Table` of vectors (``f(int)`` -> an array of ``width``), interpolated the same way."""

    __slots__ = ()

    def __init__(self, f, width: int) -> None:  # noqa: ANN001 - f(int) -> array
        super().__init__(f)
        self.vals = np.full((PTS.size, width), np.nan)

    def at(self, n: int) -> np.ndarray:  # type: ignore[override]
        j = PTS_INDEX[n]
        v = self.vals[j]
        if v[0] != v[0]:  # NaN: not priced yet
            v = self.vals[j] = self.f(n)
        return v


def _bilinear(f, x: float, y: float):  # noqa: ANN001, ANN202 - f(int, int) -> seconds (a float or an array)
    """``f`` at ``x`` and ``y``, each on its buckets (:func:`bucket`): bilinear between the nodes."""
    n0, n1, wn = bucket(x)
    p0, p1, wp = bucket(y)
    a = f(n0, p0)
    lo = a + wn * (f(n1, p0) - a) if wn else a
    if not wp:
        return lo
    c = f(n0, p1)
    hi = c + wn * (f(n1, p1) - c) if wn else c
    return lo + wp * (hi - lo)


class IterationPricer:
    """Seconds of serving iterations of ``model`` on ``hw`` under ``sc``'s formats and parallelism."""

    def __init__(self, model: ModelSpec, hw: HardwareSpec, sc: Scenario, tier: str, *, exact: bool = False,
                 stage: int | None = None) -> None:
        """``stage``: price only that pipeline stage (one of ``pipeline(model, sc).same_as``'s representatives)."""
        self.model, self.hw, self.sc, self.tier, self.exact = model, hw, sc, tier, exact
        self.pr = pricer(hw, tier)
        reps: dict[int, int] = {}
        if stage is None:
            for s, r in enumerate(pipeline(model, sc).same_as):
                reps[r] = reps.get(r, 0) + 1
        else:
            reps[stage] = 1
        self.stages = [(shared_template(model, sc, r), n) for r, n in reps.items()]
        eff = hw.efficiency
        self._launch = (eff.launch_overhead_us + eff.host_overhead_us) * 1e-6
        self._host = prefill_host_us(hw) * 1e-6
        self._tok: dict[tuple[int, bool], float] = {}
        self._head: dict[tuple[int, bool], float] = {}
        self._pre: dict[tuple[int, int, int, bool], float] = {}
        self._dec: dict[tuple[int, int, bool], float] = {}
        self._shared: dict[tuple[int, int, bool], float] = {}
        self._shared_rows: dict[tuple[int, int, bool], np.ndarray] = {}
        self._tables: dict[tuple, _Table] = {}
        self._memo: dict[str, dict[tuple[int, bool], float]] = {"tok": {}, "head": {}}
        self._attn_kernels = sum(n * sum(o.count for o in t.decode_attention(1, 2)) for t, n in self.stages)
        self._pre_kernels = sum(n * sum(o.count for o in t.prefill_attention(1, 2)) for t, n in self.stages)
        #: (MoE layer runs, dense layer runs) of a pass, as two-batch overlap groups its work
        self._runs = layer_runs(self.stages[0][0].token_ops(1))

    # ---- exact prices at one point (memoised) ---------------------------------------------------------
    def _sum(self, ops_of) -> float:  # noqa: ANN001 - a callable (template) -> ops
        total = self.pr.total
        return sum(n * total(ops_of(t)) for t, n in self.stages)

    def _tokens_at(self, tokens: int, eager: bool) -> float:
        key = (tokens, eager)
        v = self._tok.get(key)
        if v is None:
            v = self._tok[key] = self._sum(lambda t: t.token_ops(tokens, eager))
        return v

    def _head_at(self, seqs: int, eager: bool) -> float:
        if seqs <= 0:
            return 0.0
        key = (seqs, eager)
        v = self._head.get(key)
        if v is None:
            v = self._head[key] = self._sum(lambda t: t.head_ops(seqs, eager))
        return v

    def _prefill_at(self, seqs: int, chunk: int, prior: int, eager: bool) -> float:
        key = (seqs, chunk, prior, eager)
        v = self._pre.get(key)
        if v is None:
            v = self._pre[key] = self._sum(lambda t: t.prefill_attention(seqs, chunk, prior, eager))
        return v

    def _decode_at(self, seqs: int, context: int, eager: bool) -> float:
        key = (seqs, context, eager)
        v = self._dec.get(key)
        if v is None:
            v = self._dec[key] = self._sum(lambda t: t.decode_attention(seqs, context, eager))
        return v

    def _shared_at(self, tokens: int, expert_tokens: int, eager: bool) -> float:
        key = (tokens, expert_tokens, eager)
        v = self._shared.get(key)
        if v is None:
            v = self._shared[key] = self._sum(lambda t: t.shared_ops(tokens, max(expert_tokens, tokens), eager))
        return v

    # ---- bucketed prices ------------------------------------------------------------------------------
    def _table(self, key: tuple, f, fmany=None, width: int = 0) -> _Table:  # noqa: ANN001
        """The table of ``key``; ``width`` > 0: of vectors (:class:`_Rows`)."""
        t = self._tables.get(key)
        if t is None:
            t = self._tables[key] = _Rows(f, width) if width else _Table(f, fmany)
        return t

    def _decode_many(self, seqs: int, contexts: list[int]) -> np.ndarray:
        """Decode attention of ``seqs`` sequences at each of ``contexts`` (>= 1), every op swept over the
        contexts in one vectorised pass where the tier has one (:meth:`Pricer.sweep`)."""
        out = np.zeros(len(contexts))
        for t, n in self.stages:
            per = [t.decode_attention(seqs, max(c, 1)) for c in contexts]
            for j in range(len(per[0])):
                ops = [p[j] for p in per]
                out += n * self.pr.sweep(ops) * ops[0].count
        return out

    def _memoised(self, tag: str, f, n: int, eager: bool) -> float:  # noqa: ANN001 - f(int, bool) -> float
        """``f`` at the integer ``n``: exact, or interpolated on the ``tag`` table; memoised per (n, eager)."""
        memo = self._memo[tag]
        key = (n, eager)
        v = memo.get(key)
        if v is None:
            v = memo[key] = f(n, eager) if self.exact else \
                self._table((tag, eager), lambda x: f(max(x, 1), eager))(n)
        return v

    def tokens(self, tokens: int, eager: bool) -> float:
        return self._memoised("tok", self._tokens_at, tokens, eager)

    def head(self, seqs: int, eager: bool) -> float:
        return self._memoised("head", self._head_at, seqs, eager) if seqs > 0 else 0.0

    def decode_attention(self, seqs: int, context: float, eager: bool) -> float:
        if self.exact:
            return self._decode_at(seqs, int(round(context)), eager)
        # the table decode_steps fills; launched from the host, each kernel run adds the prefill host gap
        # (perf.estimate adds it to an eager op's time, nothing else changes)
        t = self._table(("dec", seqs, False), lambda c: self._decode_at(seqs, max(c, 1), False),
                        lambda cs: self._decode_many(seqs, cs))(context)
        return t + self._attn_kernels * self._host if eager else t

    def prefill_attention(self, seqs: int, chunk: int, prior: int, eager: bool = True) -> float:
        if self.exact:
            return self._prefill_at(seqs, chunk, prior, eager)
        return _bilinear(lambda n, p: self._prefill_at(seqs, n, p, eager), chunk, prior)

    def shared(self, tokens: int, expert_tokens: int, eager: bool) -> float:
        """Data-parallel attention: the routed experts at ``expert_tokens`` (every rank's) and their all-to-alls
        at ``tokens`` (the busiest rank's), bilinear on the buckets of both."""
        if self.exact:
            return self._shared_at(tokens, expert_tokens, eager)
        return _bilinear(lambda n, e: self._shared_at(n, e, eager), tokens, expert_tokens)

    # ---- iterations ---------------------------------------------------------------------------------
    def iteration(self, chunks: Sequence[tuple[int, int]], decodes: int, mean_context: float, heads: int,
                  eager: bool | None = None) -> float:
        """Seconds of one iteration: prefill ``chunks`` ((new tokens, prior tokens) per request), one decode
        step of ``decodes`` sequences at ``mean_context`` keys, and ``heads`` sequences producing a token;
        launched from the host (``eager``) when it has prefill chunks unless told."""
        eager = bool(chunks) if eager is None else eager
        tokens = decodes + sum(n for n, _ in chunks)
        t = self.tokens(tokens, eager) + self.head(heads, eager)
        if decodes:
            t += self.decode_attention(decodes, mean_context, eager)
        if chunks:
            groups: dict[tuple[int, int], int] = {}
            for c in chunks:
                groups[c] = groups.get(c, 0) + 1
            for (n, p), b in groups.items():
                t += self.prefill_attention(b, n, p, eager)
            # one varlen kernel per layer: the further groups do not pay their own launches
            t -= (len(groups) - 1) * self._pre_kernels * (self._launch + self._host)
        return t

    def separate_iteration(self, chunks: Sequence[tuple[int, int]], decodes: int, mean_context: float,
                           pass_tokens: int | None) -> float:
        """Seconds of an iteration whose prefill runs apart from the decode step (LMDeploy TurboMind v0.1's
        ``LlamaBatch::InternalThreadEntry``: ``ContextDecode()``, then ``Generate()``): context passes over
        each prompt ``chunks`` ((new tokens, cached tokens), every one completing its prompt) but its last
        token, in sub-batches taken in order, a new one where the tokens so far plus the next request's whole
        context would exceed ``pass_tokens`` (``token_num + h_context_length[i] > max_context_token_num_``);
        then one decode step of the ``decodes`` running sequences (at ``mean_context`` keys) and of the new
        ones (their last prompt token), every one producing a token. Each pass reads the weights and launches
        its kernels again: a context pass is :meth:`iteration` with chunks only (launched from the host, no
        head), the decode step :meth:`iteration` with decodes only (as a pure decode step)."""
        t = 0.0
        batch: list[tuple[int, int]] = []
        acc = 0
        for n, p in chunks:
            if n <= 1:
                continue  # nothing before its last token: the decode step alone computes it
            if batch and pass_tokens is not None and acc + n + p > pass_tokens:
                t += self.iteration(batch, 0, 0.0, 0, eager=True)
                batch, acc = [], 0
            batch.append((n - 1, p))
            acc += n - 1
        if batch:
            t += self.iteration(batch, 0, 0.0, 0, eager=True)
        seqs = decodes + len(chunks)
        ctx = (decodes * mean_context + sum(n + p for n, p in chunks)) / seqs
        return t + self.iteration([], seqs, ctx, seqs, eager=False)

    def decode_steps(self, decodes: int, first_context: float, steps: int) -> np.ndarray:
        """Seconds of ``steps`` pure decode steps of ``decodes`` sequences whose mean context starts at
        ``first_context`` and grows by one per step."""
        fixed = self.tokens(decodes, False) + self.head(decodes, False)
        ctx = first_context + np.arange(steps, dtype=float)
        if self.exact:
            return fixed + np.array([self._decode_at(decodes, int(round(c)), False) for c in ctx])
        tab = self._table(("dec", decodes, False), lambda c: self._decode_at(decodes, max(c, 1), False),
                          lambda cs: self._decode_many(decodes, cs))
        return fixed + tab.many(ctx)

    # ---- data-parallel attention (wide expert parallelism) --------------------------------------------
    def wide_iteration(self, ranks: Sequence[tuple[Sequence[tuple[int, int]], int, float, int]]) -> float:
        """Seconds of one iteration of ``sc.dp`` data-parallel attention ranks in step, each rank's
        (chunks, decodes, mean context, heads) as :meth:`iteration` takes them (an idle rank: no chunks, no
        decodes). Every MoE layer's dispatch and combine synchronise the ranks, so the iteration takes the
        slowest rank's own work (attention, dense layers, shared experts, router, head: :meth:`iteration`
        less :meth:`shared` at its own tokens) plus the routed experts at all ranks' tokens and the
        all-to-alls at the busiest rank's; an idle rank joins the collectives with nothing to send (SGLang
        runs it an idle batch). Any prefill launches every rank from the host (the ranks agree on one mode
        per iteration, CUDA graphs only when all decode). With every rank at the same composition this is
        :meth:`iteration`: ``predict``'s data-parallel step."""
        eager = any(c for c, *_ in ranks)
        if self.sc.two_batch_overlap and all(bool(c) == eager for c, *_ in ranks):
            return self._overlapped_iteration(ranks, eager)
        ts = [d + sum(n for n, _ in c) for c, d, _, _ in ranks]
        own = max(self.iteration(c, d, ctx, h, eager) - self.shared(t, t * len(ranks), eager)
                  for (c, d, ctx, h), t in zip(ranks, ts) if t)
        return own + self.shared(max(ts), sum(ts), eager)

    def wide_decode_steps(self, ranks: Sequence[tuple[int, float]], steps: int) -> np.ndarray:
        """Seconds of ``steps`` pure decode steps of data-parallel attention ranks in step, each rank's
        (decoding sequences, their mean context at the first step), as :meth:`wide_iteration` prices one."""
        if self.sc.two_batch_overlap:
            return self._overlapped_steps(ranks, steps)
        ds = [d for d, _ in ranks]
        own = np.max([self.decode_steps(d, c, steps) - self.shared(d, d * len(ranks), False)
                      for d, c in ranks if d], axis=0)
        return own + self.shared(max(ds), sum(ds), False)

    # ---- two-batch overlap of the ranks in step (system/overlap.py) -------------------------------------
    def _token_sums_at(self, tokens: int, eager: bool) -> np.ndarray:
        pr = self.pr
        out = np.zeros(len(CATEGORIES))
        for t, n in self.stages:
            ops = t.token_ops(tokens, eager)
            out += n * np.array(sums(ops, [pr.time(o) * o.count for o in ops]))
        return out

    def _shared_sums_at(self, tokens: int, expert_tokens: int, eager: bool) -> np.ndarray:
        key = (tokens, expert_tokens, eager)
        v = self._shared_rows.get(key)
        if v is None:
            pr = self.pr
            v = np.zeros(len(CATEGORIES))
            for t, n in self.stages:
                ops = t.shared_ops(tokens, max(expert_tokens, tokens), eager)
                v += n * np.array(sums(ops, [pr.time(o) * o.count for o in ops]))
            self._shared_rows[key] = v
        return v

    def _own_sums(self, total: float | np.ndarray, tokens: int, heads: int, ranks: int,
                  eager: bool) -> list[float | np.ndarray]:
        """One rank's own work in a micro-batch of ``tokens`` tokens and ``heads`` sequences producing a token, by
        :data:`~tapeout.system.overlap.CATEGORIES`: ``total`` (the micro-batch's :meth:`iteration`, or its decode
        steps) less the work shared with the other ranks (:meth:`shared` at its tokens); the token ops by their
        own categories (on the buckets of the tokens, as :meth:`tokens`), the head as head work, the rest (the
        attention: its ops are all every layer's work) as ``layer``."""
        if self.exact:
            tok = self._token_sums_at(max(tokens, 1), eager)
            shared = self._shared_sums_at(tokens, tokens * ranks, eager)
        else:
            tok = self._table(("tok_rows", eager), lambda x: self._token_sums_at(max(x, 1), eager),
                              width=len(CATEGORIES))(tokens)
            shared = _bilinear(lambda n, e: self._shared_sums_at(n, e, eager), tokens, tokens * ranks)
        head = self.head(heads, eager)
        out: list[float | np.ndarray] = list(tok - shared)
        out[_HEAD] += head
        out[_LAYER] = out[_LAYER] + (total - self.tokens(tokens, eager) - head)
        return out

    def _in_step(self, halves: list[list[tuple[float | np.ndarray, int, int]]], eager: bool) -> float | np.ndarray:
        """Seconds of ranks in step under two-batch overlap: ``halves[k]`` each rank's micro-batch k as (its
        seconds alone, tokens, heads); each micro-batch's stages are the slowest rank's own work plus the work the
        ranks share (:func:`~tapeout.system.overlap.in_step`), and the two micro-batches run on the compute and
        communication streams, the compute slowed while DeepEP's normal kernels (any prefill) hold SMs
        (:func:`~tapeout.system.overlap.overlap`)."""
        n = len(halves[0])
        mbs: list[Stages | None] = []
        for part in halves:
            ts = [t for _, t, _ in part]
            if not any(ts):
                mbs.append(None)
                continue
            own = [grouped(self.model, self._own_sums(x, t, h, n, eager), self._runs) for x, t, h in part if t]
            shared = _bilinear(lambda a, e: self._shared_sums_at(a, e, eager), max(ts), sum(ts)) \
                if not self.exact else self._shared_sums_at(max(ts), sum(ts), eager)
            mbs.append(in_step(own, grouped(self.model, list(shared), self._runs)))
        rate, how = normal_kernel_rate(self.hw.sm_count) if eager else (1.0, "")
        return overlap(mbs[0], mbs[1], 1, rate, how).time_s

    def _overlapped_iteration(self, ranks: Sequence[tuple[Sequence[tuple[int, int]], int, float, int]],
                              eager: bool) -> float:
        """:meth:`wide_iteration` under two-batch overlap: each rank's sequences (its chunks, then its decodes)
        split by :func:`~tapeout.system.overlap.split_point`; the prefill heads (``heads`` less the decodes) go
        to the first chunks (the engine lists the prompts it continues, then those it admits: a chunk cut short
        by the token budget comes last)."""
        halves: list[list[tuple[float, int, int]]] = [[], []]
        for chunks, d, ctx, heads in ranks:
            k = split_point([n for n, _ in chunks] + [1] * d)
            ca, cb = list(chunks[:k]), list(chunks[k:])
            da = max(k - len(chunks), 0)
            hp = heads - d
            ha = min(hp, len(ca))
            for k, (c, dd, h) in enumerate(((ca, da, ha + da), (cb, d - da, hp - ha + d - da))):
                t = dd + sum(n for n, _ in c)
                halves[k].append((self.iteration(c, dd, ctx, h, eager) if t else 0.0, t, h))
        return float(self._in_step(halves, eager))

    def _overlapped_steps(self, ranks: Sequence[tuple[int, float]], steps: int) -> np.ndarray:
        """:meth:`wide_decode_steps` under two-batch overlap: each rank's decodes split in two
        (:func:`~tapeout.system.overlap.split_point`), both halves at the rank's mean context."""
        halves: list[list[tuple[np.ndarray | float, int, int]]] = [[], []]
        for d, ctx in ranks:
            a = split_point([1] * d)
            for k, x in enumerate((a, d - a)):
                halves[k].append((self.decode_steps(x, ctx, steps) if x else 0.0, x, x))
        return np.asarray(self._in_step(halves, False), dtype=float) * np.ones(steps)

    def kv_transfer(self, tokens: int, kv_bytes_per_token: float) -> float:
        """Seconds to send ``tokens`` tokens of KV cache (per device of the tensor-parallel group, all
        devices in parallel) from a prefill replica to a decode replica: a point-to-point send priced by
        the collective models over the device's interconnect (pipeline stages send their layers' share in
        parallel: ``kv_bytes_per_token`` is the fullest stage's)."""
        if tokens <= 0:
            return 0.0
        op: Op = collective_op(OpKind.SEND, tokens * kv_bytes_per_token, 2, dtype=self.sc.kv_cache, name="kv_send")
        return self.pr.time(op)


_PRICERS: dict[tuple, Any] = {}


def iteration_pricer(model: ModelSpec, hw: HardwareSpec, sc: Scenario, tier: str, *,
                     exact: bool = False) -> IterationPricer:
    """The :class:`IterationPricer` of (model, device identity, the scenario's formats and parallelism, tier),
    memoised: repeated simulations (load sweeps, capacity searches, validation) share its priced buckets.
    The scenario's batch and lengths do not enter an iteration's price and are ignored."""
    sc = sc.model_copy(update={"batch": 1, "input_len": 1, "output_len": 1})
    key = (model, id(hw), sc, tier, exact)
    hit = _PRICERS.get(key)
    if hit is None or hit.hw is not hw:
        if len(_PRICERS) >= 64:
            _PRICERS.clear()
        hit = _PRICERS[key] = IterationPricer(model, hw, sc, tier, exact=exact)
    return hit


def stage_pricers(model: ModelSpec, hw: HardwareSpec, sc: Scenario, tier: str, *,
                  exact: bool = False) -> list[tuple[IterationPricer, int]]:
    """One :class:`IterationPricer` per distinct pipeline stage, with the number of stages it prices (their sum
    is :func:`iteration_pricer`'s total; the largest, the slowest stage), memoised as ``iteration_pricer``."""
    sc = sc.model_copy(update={"batch": 1, "input_len": 1, "output_len": 1})
    key = ("stages", model, id(hw), sc, tier, exact)
    hit = _PRICERS.get(key)
    if hit is None or hit[0][0].hw is not hw:
        if len(_PRICERS) >= 64:
            _PRICERS.clear()
        reps: dict[int, int] = {}
        for r in pipeline(model, sc).same_as:
            reps[r] = reps.get(r, 0) + 1
        hit = _PRICERS[key] = [(IterationPricer(model, hw, sc, tier, exact=exact, stage=r), n) for r, n in reps.items()]
    return hit


__all__ = ["EXACT", "IterationPricer", "iteration_pricer", "stage_pricers", "PER_OCTAVE", "POS", "bucket", "node_below", "node_index"]
