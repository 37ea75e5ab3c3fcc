"""Compose per-op costs into phases: TTFT, TPOT, end-to-end latency, throughput, memory.

TPOT is the mean decode-step time over the contexts the generation actually sees: step j
(j = 1 .. output_len-1) attends to input_len + j keys. Up to ``EXACT_STEPS`` steps are all
evaluated; longer generations are integrated with the trapezoid rule on ``SAMPLES`` evenly
spaced contexts. Under the roofline tier each op's step time is a maximum of two affine
functions of the context, so the trapezoid error is confined to the one interval holding each
op's kink; tests bound the relative error of TPOT below 0.1% against the exact per-step mean.

Pricing is incremental (docs/architecture.md): the graphs of a (model, scenario) come memoised from
:func:`tapeout.workload.build.pipeline`, stages with equal contents sharing one graph set; ops are priced
through a :class:`~tapeout.system.pricing.Pricer` memoised per (device, tier) and keyed by op content. A
decode step's context-independent ops are priced once per stage; only its context-dependent ops (those
reading the KV cache) are priced per decode context. Per-op rows (``PhaseCost.graph`` / ``costs``) are
built on first use only; a composition equals pricing every op of every step's graph (tests check it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from tapeout.hardware.spec import HardwareSpec
from tapeout.models.spec import ModelSpec
from tapeout.perf import estimate
from tapeout.perf.cost import OpCost
from tapeout.system.chunked import chunked, price_chunked
from tapeout.system.memory import MemoryPlan, plan
from tapeout.system.overlap import Overlap, decode_overlap, explained, micro_batch_graph, prefill_overlap
from tapeout.system.pricing import Pricer, pricer
from tapeout.workload.build import StageGraphs, build_graph, pipeline  # noqa: F401 (build_graph re-exported)
from tapeout.workload.ops import Op, OpGraph, OpKind
from tapeout.workload.scenario import Scenario

EXACT_STEPS = 64
SAMPLES = 65


class PhaseCost:
    """One phase (a prefill, or one decode step) over every pipeline stage: ``time_s`` is the sum of
    ``stage_times`` (a chunked prefill: each stage's time over every pass, :mod:`tapeout.system.chunked`). ``graph`` and ``costs`` (per-op rows; op names carry their stage, ``s1/qkv_proj``,
    when there is more than one) are built on first use: ``parts`` may be a function that builds the stage
    graphs, and ``scan`` the distinct ops a scan over the phase's kinds of work reads instead of them."""

    __slots__ = ("phase", "time_s", "stage_times", "_parts", "_pricer", "_graph", "_costs", "_scan", "_explain")

    def __init__(self, phase: str, time_s: float, stage_times: tuple[float, ...],
                 parts: tuple[OpGraph, ...] | Callable[[], tuple[OpGraph, ...]], pricer: Pricer | None = None,
                 costs: tuple[OpCost, ...] | None = None, scan: tuple[Op, ...] | None = None,
                 explain: Overlap | None = None) -> None:
        self.phase = phase
        self.time_s = time_s
        #: time of each pipeline stage (one entry without pipeline parallelism)
        self.stage_times = stage_times
        self._parts = parts
        self._pricer = pricer
        self._graph: OpGraph | None = parts[0] if isinstance(parts, tuple) and len(parts) == 1 else None
        self._costs = costs
        self._scan = scan
        #: two-batch overlap: the streams' totals, which the all-to-all rows' terms explain (system/overlap.py)
        self._explain = explain

    def _stage_parts(self) -> tuple[OpGraph, ...]:
        if callable(self._parts):
            self._parts = self._parts()
        return self._parts

    @property
    def graph(self) -> OpGraph:
        if self._graph is None:
            parts = self._stage_parts()
            g0 = parts[0]
            ops = g0.ops if len(parts) == 1 else tuple(
                o.renamed(f"s{s}/{o.name}") for s, p in enumerate(parts) for o in p.ops)
            self._graph = OpGraph(phase=g0.phase, ops=ops, tokens=g0.tokens, context=g0.context)
        return self._graph

    @property
    def costs(self) -> tuple[OpCost, ...]:
        if self._costs is None:
            assert self._pricer is not None
            costs = tuple(self._pricer.cost(o) for o in self.graph.ops)
            self._costs = costs if self._explain is None else explained(self.graph.ops, costs, self._explain)
        return self._costs

    @property
    def ops(self) -> tuple[Op, ...]:
        return self.graph.ops

    def distinct_op_costs(self, kinds: frozenset[OpKind] | None = None) -> list[tuple[Op, OpCost]]:
        """(op, cost per run) of each op (of ``kinds``, default all) of each distinct stage graph: what a scan
        over the phase's kinds of work needs, without building the renamed per-stage rows. The costs are the
        pricer's memo, shared by every op of the same content (their ``name`` and ``count`` may be another
        op's): read them, do not change them."""
        if self._pricer is None:
            return [(o, c) for o, c in zip(self.ops, self.costs) if kinds is None or o.kind in kinds]
        if self._scan is not None:
            return [(o, self._pricer.shared(o)) for o in self._scan if kinds is None or o.kind in kinds]
        seen: set[int] = set()
        out: list[tuple[Op, OpCost]] = []
        for part in self._stage_parts():
            if id(part) in seen:
                continue
            seen.add(id(part))
            out.extend((o, self._pricer.shared(o)) for o in part.ops if kinds is None or o.kind in kinds)
        return out

    def __repr__(self) -> str:
        return f"PhaseCost(phase={self.phase!r}, time_s={self.time_s!r}, stage_times={self.stage_times!r})"


def price(graph: OpGraph, hw: HardwareSpec, tier: str) -> PhaseCost:
    """Every op of ``graph`` priced directly (no memo): the straightforward definition of a phase's time."""
    costs = tuple(estimate(op, hw, tier) for op in graph.ops)
    t = sum(c.total_s for c in costs)
    return PhaseCost(graph.phase, t, (t,), (graph,), costs=costs)


def decode_contexts(sc: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """(contexts, weights) whose weighted sum of step times is the mean decode step time (read-only arrays,
    memoised per (input_len, output_len))."""
    return _decode_contexts(sc.input_len, sc.output_len)


@lru_cache(maxsize=1024)
def _decode_contexts(input_len: int, output_len: int) -> tuple[np.ndarray, np.ndarray]:
    ctx, w = _contexts(input_len, output_len)
    ctx.flags.writeable = False
    w.flags.writeable = False
    return ctx, w


def _contexts(input_len: int, output_len: int) -> tuple[np.ndarray, np.ndarray]:
    first, last = input_len + 1, input_len + max(output_len - 1, 1)
    n = last - first + 1
    if n <= EXACT_STEPS:
        ctx = np.arange(first, last + 1)
        return ctx, np.full(n, 1.0 / n)
    x = np.linspace(first, last, SAMPLES)
    ctx = np.rint(x).astype(int)
    w = np.full(SAMPLES, 1.0)
    w[0] = w[-1] = 0.5
    return ctx, w / w.sum()


class DecodeSweep:
    """The decode steps at ``contexts``: ``stage_times[i, s]`` is stage s's time at context i and
    ``step_times[i]`` their sum. :meth:`step` builds one step's :class:`PhaseCost` (graphs, per-op costs)
    on first use."""

    __slots__ = ("contexts", "stage_times", "step_times", "_stages", "_pricer", "_steps")

    def __init__(self, contexts: np.ndarray, stage_times: np.ndarray, stages: tuple[StageGraphs, ...],
                 pricer: Pricer) -> None:
        self.contexts = contexts
        self.stage_times = stage_times
        self.step_times = stage_times.sum(axis=1)
        self._stages = stages
        self._pricer = pricer
        self._steps: dict[int, PhaseCost] = {}

    def __len__(self) -> int:
        return len(self.contexts)

    def step(self, i: int) -> PhaseCost:
        i = range(len(self.contexts))[i]
        p = self._steps.get(i)
        if p is None:
            c = int(self.contexts[i])
            graphs: dict[int, OpGraph] = {}
            parts = tuple(graphs.setdefault(id(st), st.decode.graph(c)) for st in self._stages)
            p = self._steps[i] = PhaseCost("decode", float(self.step_times[i]),
                                           tuple(float(t) for t in self.stage_times[i]), parts, self._pricer)
        return p


class OverlapSweep(DecodeSweep):
    """Decode steps under two-batch overlap: ``overlap`` holds the step times (arrays over the contexts), a step's
    rows are both micro-batches' ops (``mb0/``, ``mb1/``) with the all-to-alls' hidden share in their terms."""

    __slots__ = ("_micro", "_overlap")

    def __init__(self, contexts: np.ndarray, ov: Overlap, micro: tuple[StageGraphs, ...], pricer: Pricer) -> None:
        super().__init__(contexts, np.asarray(ov.time_s, dtype=float)[:, None], micro[:1], pricer)
        self._micro = micro
        self._overlap = ov

    def step(self, i: int) -> PhaseCost:
        i = range(len(self.contexts))[i]
        p = self._steps.get(i)
        if p is None:
            c = int(self.contexts[i])
            g = micro_batch_graph(tuple(st.decode.graph(c) for st in self._micro))
            p = self._steps[i] = PhaseCost("decode", float(self.step_times[i]), (float(self.step_times[i]),),
                                           (g,), self._pricer, explain=self._overlap.at(i))
        return p


def _overlapped(model: ModelSpec, sc: Scenario, pr: Pricer, ctx: np.ndarray) -> tuple[PhaseCost, DecodeSweep]:
    """The prefill and the decode steps of ``sc`` under two-batch overlap (:mod:`tapeout.system.overlap`)."""
    pre, graphs = prefill_overlap(model, sc, pr)
    t = float(pre.time_s)
    prefill = PhaseCost("prefill", t, (t,), (micro_batch_graph(graphs),), pr, explain=pre)
    dec, pipes = decode_overlap(model, sc, pr, ctx)
    return prefill, OverlapSweep(ctx, dec, tuple(p.stages[0] for p in pipes), pr)


def _price_decode(stages: tuple[StageGraphs, ...], pr: Pricer, contexts: np.ndarray) -> np.ndarray:
    """Stage times (contexts x stages) of the decode steps: each distinct stage's context-independent ops
    once, each of its context-dependent ops over all contexts in one sweep."""
    by_id: dict[int, np.ndarray] = {}
    for st in stages:
        if id(st) in by_id:
            continue
        t = st.decode
        acc = np.full(len(contexts), pr.total(t.fixed))
        for s in t.sweeps(contexts):
            acc = acc + pr.sweep(s) * s.count
        by_id[id(st)] = acc
    return np.stack([by_id[id(st)] for st in stages], axis=1)


@dataclass(frozen=True, slots=True)
class Composition:
    prefill: PhaseCost
    decode: DecodeSweep
    decode_weights: tuple[float, ...]
    memory: MemoryPlan
    ttft_s: float
    tpot_s: float
    e2e_latency_s: float
    throughput_tok_s: float
    #: sequences that ran at once (the batch, or fewer when the KV pool cannot hold them all: the rest
    #: ran in later waves of at most this many; TTFT and TPOT are those of the first wave)
    concurrency: int = 0

    @property
    def decode_steps(self) -> tuple[PhaseCost, ...]:
        """Every evaluated decode step (built on first use)."""
        return tuple(self.decode.step(i) for i in range(len(self.decode)))

    @property
    def decode_representative(self) -> PhaseCost:
        """The decode step at the middle of the generation, for per-op reports."""
        return self.decode.step(len(self.decode) // 2)


def compose(model: ModelSpec, hw: HardwareSpec, sc: Scenario, tier: str = "roofline") -> Composition:
    """Price prefill and the decode steps and compose them (:func:`compose_batch`), under the KV pool.

    When the engine's KV pool (:class:`~tapeout.system.memory.MemoryPlan`, ``kv_capacity_tokens``) cannot
    hold ``batch`` sequences at their final context, ``concurrency`` = c < batch sequences run at once, as
    an engine that reserves each request's blocks up front (TensorRT-LLM's guaranteed-no-evict policy)
    admits them: the batch runs in waves of c and a last wave of the remainder. TTFT and TPOT are the
    first wave's; e2e latency is the time to finish every sequence, and throughput is all generated
    tokens over it. Memory is reported for the batch as asked (``fits`` false). When not even one
    sequence fits, the batch is priced as asked.
    """
    full = compose_batch(model, hw, sc, tier)
    c, b = full.memory.concurrency, sc.batch
    if c >= b or c < 1:
        return replace(full, concurrency=b)
    first = compose_batch(model, hw, sc.model_copy(update={"batch": c}), tier)
    waves, rest = divmod(b, c)
    last = compose_batch(model, hw, sc.model_copy(update={"batch": rest}), tier) if rest else None
    e2e = waves * first.e2e_latency_s + (last.e2e_latency_s if last else 0.0)
    tokens = sc.dp * sc.pp_microbatches * b * sc.output_len
    per_seq = sc.dp * sc.pp_microbatches * sc.output_len  # generated tokens of one sequence slot (all dp groups)
    # seconds each wave keeps the devices busy: its generated tokens over its throughput
    span = waves * c * per_seq / first.throughput_tok_s + (rest * per_seq / last.throughput_tok_s if last else 0.0)
    return replace(first, memory=full.memory, e2e_latency_s=e2e, throughput_tok_s=tokens / span, concurrency=c)


def compose_batch(model: ModelSpec, hw: HardwareSpec, sc: Scenario, tier: str = "roofline") -> Composition:
    """Price prefill and the decode steps of one batch of ``sc.batch`` sequences and compose them.

    Pipeline parallelism (``sc.pp`` stages, ``sc.pp_microbatches`` = m batches in flight): one batch's
    prefill or decode step takes the sum of its stages (plus the point-to-point sends); with m batches
    in flight a decode cycle, in which every batch advances one token, takes max(sum of stages,
    m x the slowest stage), and that cycle is the TPOT each request sees. Throughput = m x batch x
    output_len / (pipelined prefill + (output_len - 1) x cycle), the pipelined prefill being the sum of
    the stages plus (m - 1) x the slowest one. With pp = 1 and m = 1 this is the plain composition.
    Data-parallel attention (``sc.dp`` > 1, wide expert parallelism): every device runs its own batch in step
    with the others, so throughput counts dp batches; the graphs are one device's. Two-batch overlap
    (``sc.two_batch_overlap``): each phase is its two micro-batches on a compute and a communication stream
    (:mod:`tapeout.system.overlap`).
    """
    pipe = pipeline(model, sc)
    stages = pipe.stages
    pr = pricer(hw, tier)
    ctx, weights = decode_contexts(sc)
    if sc.two_batch_overlap:
        prefill, decode = _overlapped(model, sc, pr, ctx)
    elif chunked(sc):  # more prompt tokens than one forward pass runs: the passes the engine's budget gives
        pre_times, parts, scan = price_chunked(model, sc, pipe, pr)
        prefill = PhaseCost("prefill", sum(pre_times), pre_times, parts, pr, scan=scan)
    else:
        totals: dict[int, float] = {}
        pre_times = tuple(totals[id(st)] if id(st) in totals else totals.setdefault(id(st), pr.total(st.prefill.ops))
                          for st in stages)
        prefill = PhaseCost("prefill", sum(pre_times), pre_times, tuple(st.prefill for st in stages), pr)
    if not sc.two_batch_overlap:
        decode = DecodeSweep(ctx, _price_decode(stages, pr, ctx), stages, pr)
    mb = sc.pp_microbatches
    cycles = np.maximum(decode.step_times, mb * decode.stage_times.max(axis=1))
    tpot = float(np.dot(weights, cycles))
    ttft = prefill.time_s
    e2e = ttft + (sc.output_len - 1) * tpot
    prefill_pipe = prefill.time_s + (mb - 1) * max(prefill.stage_times)
    total = prefill_pipe + (sc.output_len - 1) * tpot
    last = int(ctx[-1])
    distinct = pipe.distinct()
    mem = plan(model, hw, sc, [st.prefill for st in distinct] + [st.decode.graph(last) for st in distinct],
               pipe.same_as)
    return Composition(
        prefill=prefill, decode=decode, decode_weights=tuple(float(w) for w in weights), memory=mem,
        ttft_s=ttft, tpot_s=tpot, e2e_latency_s=e2e,
        throughput_tok_s=sc.dp * mb * sc.batch * sc.output_len / total,
    )


def clear_caches() -> None:
    """Forget every memoised graph, pricer and tiled-tier plan (a cold start, for benchmarks)."""
    import sys

    from tapeout.system import chunked as chunked_prefill, pricing
    from tapeout.workload import build

    build.clear_caches()
    pricing.clear_caches()
    chunked_prefill.clear_caches()
    tiled = sys.modules.get("tapeout.perf.tiled")
    if tiled is not None:
        tiled.clear_caches()
    serving = sys.modules.get("tapeout.serving.iteration")
    if serving is not None:  # the serving simulator's iteration pricers
        serving._PRICERS.clear()
