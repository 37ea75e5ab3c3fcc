"""The time of one serving iteration, priced from the op models for its real composition.

An iteration runs prefill chunks of some requests and one decode step of others as one forward pass
(:class:`~tapeout.workload.build.IterationTemplate`). Per pipeline stage it costs

- the token ops at T = prefill tokens + decoding sequences (the GEMMs see both together),
- the head (lm_head, logits, sampling) of the sequences that produce a token,
- the prefill attention of each group of equal chunks (``seqs`` x (``chunk`` new tokens after ``prior``
  cached ones)), launched as one kernel per layer: each further group saves its fixed launch costs,
- the decode attention of the D decoding sequences at their mean context (one paged kernel reads their
  whole KV cache: its bytes are D x mean context).

Stages add up (one batch in flight). An iteration with any prefill launches its kernels from the host
(``eager``: the framework's prefill host gap applies), a pure decode step replays a CUDA graph, as in
:func:`tapeout.predict`.

**Buckets.** Long runs meet thousands of compositions; each price is cached on a grid: integers up to
``EXACT`` (64), then ``PER_OCTAVE`` (32) nodes per octave (relative spacing at most 1/32), and values
between nodes are interpolated linearly (tokens, sequences of the head, contexts) or bilinearly (chunk,
prior). The grid is exact wherever the priced time is linear in the bucketed variable between two nodes
(memory-bound decode attention, the bytes of the token ops); where a tier prices tile or wave steps (a
GEMM's m padded to its tile), the interpolated time stays between the times at the two nodes. The
difference with exact pricing (``exact=True``) is bounded by tests/test_serving.py: at most 2% on any
iteration of a random composition and under 0.5% on a simulation's throughput and mean latencies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tapeout.hardware.spec import HardwareSpec
from tapeout.models.spec import ModelSpec
from tapeout.system.pricing import pricer
from tapeout.workload.build import IterationTemplate, _stage_groups, pipeline
from tapeout.workload.ops import Op, OpKind
from tapeout.workload.scenario import Scenario
from tapeout.workload.standalone import collective_op

EXACT = 64
PER_OCTAVE = 32
_SHIFT = 5  # log2(PER_OCTAVE)


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


class _Table:
    """``f`` on the grid nodes (priced on first use), interpolated linearly between them."""

    __slots__ = ("f", "vals")

    def __init__(self, f) -> None:  # noqa: ANN001 - f(int) -> float
        self.f = f
        self.vals = np.full(POS.size, np.nan)

    def _at(self, i: int) -> float:
        v = self.vals[i]
        if v != v:  # NaN: not priced yet
            v = self.vals[i] = self.f(int(POS[i]))
        return float(v)

    def __call__(self, x: float) -> float:
        i = node_index(x)
        a = self._at(i)
        x0 = POS[i]
        if x == x0:
            return a
        return a + (x - x0) / (POS[i + 1] - x0) * (self._at(i + 1) - a)

    def many(self, xs: np.ndarray) -> np.ndarray:
        """At increasing ``xs``."""
        i0, i1 = node_index(float(xs[0])), node_index(float(xs[-1])) + 1
        seg = self.vals[i0:i1 + 1]
        for j in np.flatnonzero(np.isnan(seg)):
            self._at(i0 + int(j))
        return np.interp(xs, POS[i0:i1 + 1], self.vals[i0:i1 + 1])


class IterationPricer:
    """Seconds of serving iterations of ``model`` on ``hw`` under ``sc``'s formats and parallelism."""

    def __init__(self, model: ModelSpec, hw: HardwareSpec, sc: Scenario, tier: str, *, exact: bool = False) -> None:
        self.model, self.hw, self.sc, self.tier, self.exact = model, hw, sc, tier, exact
        self.pr = pricer(hw, tier)
        pipe = pipeline(model, sc)
        reps: dict[int, int] = {}
        for s, r in enumerate(pipe.same_as):
            reps[r] = reps.get(r, 0) + 1
        self.stages = [(IterationTemplate(model, sc, r, _stage_groups(model, sc, r)), n) for r, n in reps.items()]
        eff = hw.efficiency
        self._launch = (eff.launch_overhead_us + eff.host_overhead_us) * 1e-6
        self._host = eff.prefill_host_overhead_us * 1e-6
        self._tok: dict[tuple[int, bool], float] = {}
        self._head: dict[tuple[int, bool], float] = {}
        self._pre: dict[tuple[int, int, int, bool], float] = {}
        self._dec: dict[tuple[int, int, bool], float] = {}
        self._tables: dict[tuple, _Table] = {}
        self._tok_memo: dict[tuple[int, bool], float] = {}
        self._head_memo: dict[tuple[int, bool], float] = {}
        self._attn_kernels = sum(n * sum(o.count for o in t.decode_attention(1, 2)) for t, n in self.stages)
        self._pre_kernels = sum(n * sum(o.count for o in t.prefill_attention(1, 2)) for t, n in self.stages)

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

    # ---- bucketed prices ------------------------------------------------------------------------------
    def _table(self, key: tuple, f) -> _Table:  # noqa: ANN001
        t = self._tables.get(key)
        if t is None:
            t = self._tables[key] = _Table(f)
        return t

    def tokens(self, tokens: int, eager: bool) -> float:
        key = (tokens, eager)
        v = self._tok_memo.get(key)
        if v is None:
            if self.exact:
                v = self._tokens_at(tokens, eager)
            else:
                v = self._table(("tok", eager), lambda n: self._tokens_at(max(n, 1), eager))(tokens)
            self._tok_memo[key] = v
        return v

    def head(self, seqs: int, eager: bool) -> float:
        if seqs <= 0:
            return 0.0
        key = (seqs, eager)
        v = self._head_memo.get(key)
        if v is None:
            if self.exact:
                v = self._head_at(seqs, eager)
            else:
                v = self._table(("head", eager), lambda n: self._head_at(max(n, 1), eager))(seqs)
            self._head_memo[key] = v
        return v

    def decode_attention(self, seqs: int, context: float, eager: bool) -> float:
        if self.exact:
            return self._decode_at(seqs, int(round(context)), eager)
        return self._table(("dec", seqs, eager), lambda c: self._decode_at(seqs, max(c, 1), eager))(context)

    def prefill_attention(self, seqs: int, chunk: int, prior: int, eager: bool = True) -> float:
        if self.exact:
            return self._prefill_at(seqs, chunk, prior, eager)
        n0, dn = node_below(chunk)
        n0 = max(n0, 1)
        p0, dp = node_below(prior)
        fn = (chunk - n0) / dn
        fp = (prior - p0) / dp
        a = self._prefill_at(seqs, n0, p0, eager)
        b = self._prefill_at(seqs, n0 + dn, p0, eager) if fn else a
        lo = a + fn * (b - a)
        if not fp:
            return lo
        c = self._prefill_at(seqs, n0, p0 + dp, eager)
        d = self._prefill_at(seqs, n0 + dn, p0 + dp, eager) if fn else c
        return lo + fp * (c + fn * (d - c) - lo)

    # ---- iterations ---------------------------------------------------------------------------------
    def iteration(self, chunks: Sequence[tuple[int, int]], decodes: int, mean_context: float, heads: int) -> float:
        """Seconds of one iteration: prefill ``chunks`` ((new tokens, prior tokens) per request), one decode
        step of ``decodes`` sequences at ``mean_context`` keys, and ``heads`` sequences producing a token."""
        eager = bool(chunks)
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

    def decode_steps(self, decodes: int, first_context: float, steps: int) -> np.ndarray:
        """Seconds of ``steps`` pure decode steps of ``decodes`` sequences whose mean context starts at
        ``first_context`` and grows by one per step."""
        fixed = self.tokens(decodes, False) + self.head(decodes, False)
        ctx = first_context + np.arange(steps, dtype=float)
        if self.exact:
            return fixed + np.array([self._decode_at(decodes, int(round(c)), False) for c in ctx])
        tab = self._table(("dec", decodes, False), lambda c: self._decode_at(decodes, max(c, 1), False))
        return fixed + tab.many(ctx)

    def kv_transfer(self, tokens: int, kv_bytes_per_token: float) -> float:
        """Seconds to send ``tokens`` tokens of KV cache (per device of the tensor-parallel group, all
        devices in parallel) from a prefill replica to a decode replica: a point-to-point send priced by
        the collective models over the device's interconnect (pipeline stages send their layers' share in
        parallel: ``kv_bytes_per_token`` is the fullest stage's)."""
        if tokens <= 0:
            return 0.0
        op: Op = collective_op(OpKind.SEND, tokens * kv_bytes_per_token, 2, dtype=self.sc.kv_cache, name="kv_send")
        return self.pr.time(op)


__all__ = ["EXACT", "IterationPricer", "PER_OCTAVE", "POS", "node_below", "node_index"]
