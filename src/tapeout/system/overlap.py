"""Two-batch overlap (TBO) of wide expert parallelism: a forward pass split into two micro-batches, each one's
expert all-to-alls running while the other computes.

DeepSeek's inference system (deepseek-ai/profile-data, README: prefill and decode "utilize two micro-batches to
overlap computation and all-to-all communication") and SGLang's
``--enable-two-batch-overlap`` (LMSYS, "Deploying DeepSeek with PD Disaggregation and Large-scale Expert
Parallelism on 96 H100 GPUs", "Two-batch Overlap": operations ``attn``, yield, ``dispatch``, ``mlp``, yield,
``combine``) run it this way. It is priced physically, not with a factor:

- Each micro-batch is its own scenario (:func:`micro_batches`): half the sequences (ceil and floor) and half
  the prefill pass budget, so its GEMMs, attention and expert routing are priced at its own size (smaller
  GEMMs, fewer tokens per expert). A batch of one sequence is not split: it runs as the plain composition.
- A micro-batch's ops are grouped into stages (:func:`stages`): the work before the first MoE layer (embedding,
  leading dense layers), then per MoE layer the compute before the dispatch (attention, router, shared experts,
  interleaved dense layers), the dispatch, the routed experts, the combine; then the head (final norm, lm_head,
  sampling). Every MoE layer of a pass gets the layers' mean (layer groups with different techniques are
  averaged).
- Two streams run them (:func:`schedule`): the compute stream in the order A.pre, B.pre, then per layer
  A.attn, B.attn, A.experts, B.experts, then A.head, B.head; the communication stream A.dispatch, B.dispatch,
  A.combine, B.combine. Each stage starts when its stream is free and its micro-batch's previous stage is
  done. The step takes the later micro-batch's end: never less than the compute alone, never more than the
  two micro-batches back to back (neither stream can idle while the other does), and with free all-to-alls
  exactly the two micro-batches' compute back to back.

- **SMs held by the communication kernels.** DeepEP's normal kernels (the prefill's dispatch and combine) run
  on SMs: ``Buffer.num_sms`` = 20 by default (deepseek-ai/DeepEP, ``deep_ep/buffer.py``), and the overlapped
  compute gets the rest, ``(sm_count - 20) / sm_count`` of the device (H100: 112 of 132), while one runs.
  The low-latency kernels of decode do not hold SMs (DeepEP README, "hook-based communication-computation
  overlapping method that does not occupy any SM resource"; deepseek-ai/profile-data: decode's all-to-all
  leaves the SMs free), so decode is priced as above. A prefill on a device without ``sm_count`` is priced
  without the contention, and its terms say so. :func:`schedule_shared` runs the two streams with the compute
  stream slowed while a communication stage runs; the seconds lost are the phase's ``contention_s``.

- **HBM taken by the communication kernels.** Every byte an all-to-all's links carry is read from the sender's
  HBM and written into the receiver's (``hbm_bytes`` = 2 x ``wire_bytes``, perf/core.py), so while one runs it
  takes that traffic over its seconds of the device's HBM bandwidth; each overlapped compute op's memory term
  stretches by 1 / (1 - that share) (:func:`contention`, :func:`schedule_contended`), in prefill and decode.
  The links themselves are used by the communication stream alone (one all-to-all at a time).

Not modelled: the rest of the contention the LMSYS blog reports ("the no-TBO 8k case outperforms the TBO 16k case
in per-kernel speed", communication "slower than unit test results": the communication kernels slowed by the
compute beside them), and TBO's lower activation peak (memory is planned for the whole pass, as without TBO).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from tapeout.models.spec import ModelSpec
from tapeout.perf.cost import OpCost
from tapeout.system.chunked import chunked, price_chunked
from tapeout.system.pricing import Pricer
from tapeout.workload.build import (
    DENSE_FFN_OPS, EMBEDDING_OPS, EXPERT_FFN_OPS, HEAD_OPS, MOE_LAYER_OPS, Pipeline, base_name, pipeline,
)
from tapeout.workload.chunks import prefill_passes
from tapeout.workload.ops import Op, OpGraph, OpKind
from tapeout.workload.scenario import Scenario

Seconds = float | np.ndarray

#: SMs DeepEP's normal (prefill) kernels run on: ``Buffer.num_sms = 20`` (deepseek-ai/DeepEP, deep_ep/buffer.py,
#: the class default SGLang and Megatron keep); the overlapped compute gets the device's other SMs
DEEPEP_NORMAL_SMS = 20


def micro_batches(sc: Scenario) -> tuple[Scenario, Scenario | None]:
    """The two micro-batches of ``sc`` (TBO off in each): ceil(batch / 2) and floor(batch / 2) sequences, each
    with half the prefill pass budget (an engine's pass of ``max_prefill_tokens`` is the one split in two).
    A batch of one: (the batch, None)."""
    if sc.batch < 2:
        return sc.model_copy(update={"two_batch_overlap": False}), None
    budget = sc.max_prefill_tokens
    half = None if budget is None else max(1, math.ceil(budget / 2))
    first, second = (sc.model_copy(update={"batch": b, "max_prefill_tokens": half, "two_batch_overlap": False})
                     for b in (sc.batch - sc.batch // 2, sc.batch // 2))
    return first, second


def split_point(tokens: list[int]) -> int:
    """How many of a batch's sequences (``tokens``: each one's tokens in the pass, in batch order) the first
    micro-batch takes: SGLang's split (sgl-project/sglang, ``python/sglang/srt/two_batch_overlap.py``,
    ``_split_array_by_half_sum``): the first index whose two sides differ least in tokens, a tie going to the
    later one, so equal sequences split as :func:`micro_batches` does (ceil(n / 2) first). One sequence: 1
    (not split)."""
    n = len(tokens)
    if n < 2:
        return n
    if tokens.count(tokens[0]) == n:  # equal sequences (a decode step's): the loop's answer at once
        return n - n // 2
    total, left, best, diff = sum(tokens), 0, 1, math.inf
    for i in range(1, n):
        left += tokens[i - 1]
        d = abs(2 * left - total)
        if d > diff:
            break
        best, diff = i, d
    return best


@dataclass(frozen=True, slots=True)
class Stages:
    """One micro-batch's pass as the streams see it: ``pre`` and ``head`` compute around ``layers`` MoE
    layers, each ``attn`` (compute), ``dispatch`` (communication), ``experts`` (compute), ``combine``
    (communication). Seconds, or arrays of them over decode contexts."""

    pre: Seconds
    attn: Seconds
    dispatch: Seconds
    experts: Seconds
    combine: Seconds
    head: Seconds
    layers: int

    @property
    def compute(self) -> Seconds:
        return self.pre + self.layers * (self.attn + self.experts) + self.head

    @property
    def communication(self) -> Seconds:
        return self.layers * (self.dispatch + self.combine)


def leading_dense(model: ModelSpec) -> float:
    """The share of the dense layers that run before the first MoE layer (DeepSeek-V3's first three: all of
    them); the others sit between MoE layers and count with them (Llama 4's interleaved layers)."""
    moe = model.moe
    if moe is None or not moe.dense_layers:
        return 1.0
    moe_layers = [i for i in range(model.num_layers) if i not in set(moe.dense_layers)]
    first = moe_layers[0] if moe_layers else model.num_layers
    return sum(1 for i in moe.dense_layers if i < first) / len(moe.dense_layers)


#: the kinds of work :func:`stages` groups a pass's ops by (:func:`category`); ``dense`` (a dense layer's MLP) and
#: ``layer`` (attention, norms, projections: the work of every layer) are shared out among the stages
CATEGORIES = ("pre", "attn", "dispatch", "experts", "combine", "head", "dense", "layer")
_INDEX = {k: i for i, k in enumerate(CATEGORIES)}


def category(o: Op) -> int:
    """The index in :data:`CATEGORIES` of ``o``'s kind of work (attention and every op no set names: ``layer``)."""
    name = base_name(o)
    if o.kind is OpKind.ALLTOALL:
        return _INDEX["dispatch" if name == "ep_dispatch" else "combine"]
    if name in EXPERT_FFN_OPS:
        return _INDEX["experts"]
    if name in MOE_LAYER_OPS or name.startswith("shared_expert"):
        return _INDEX["attn"]
    if name in DENSE_FFN_OPS:
        return _INDEX["dense"]
    if name in EMBEDDING_OPS:
        return _INDEX["pre"]
    if name in HEAD_OPS:
        return _INDEX["head"]
    return _INDEX["layer"]


def sums(ops: tuple[Op, ...], totals: list[Seconds]) -> list[Seconds]:
    """Seconds of ``ops`` (``totals``: each op's over all its runs) per :data:`CATEGORIES` entry."""
    out: list[Seconds] = [0.0] * len(CATEGORIES)
    for o, t in zip(ops, totals):
        i = category(o)
        out[i] = out[i] + t
    return out


def layer_runs(ops: tuple[Op, ...]) -> tuple[int, int]:
    """(MoE layer runs, dense layer runs) of a pass's ops: its dispatches' and its dense MLPs' counts."""
    return (sum(o.count for o in ops if o.kind is OpKind.ALLTOALL and base_name(o) == "ep_dispatch"),
            sum(o.count for o in ops if base_name(o) == "mlp_down"))


def grouped(model: ModelSpec, s: list[Seconds], runs: tuple[int, int], passes: int = 1) -> Stages:
    """The :class:`Stages` of one of ``passes`` passes whose seconds per category are ``s`` (:func:`sums`) and
    whose layer runs are ``runs`` (:func:`layer_runs`). Work of every layer (``layer``: attention, norms) is
    shared between the dense and the MoE layers by their runs. Linear in ``s``."""
    pre, attn, dispatch, experts, combine, head, dense_ffn, layer = s
    moe_runs, dense_runs = runs
    layers = model.num_layers - (len(model.moe.dense_layers) if model.moe is not None else model.num_layers)
    if moe_runs == 0 or layers <= 0:  # no wide-EP layer: all compute, in turn
        return Stages(sum(s) / passes, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
    moe_share = moe_runs / (moe_runs + dense_runs)
    dense = dense_ffn + layer * (1 - moe_share)
    lead = leading_dense(model)
    n = passes * layers  # this micro-batch's MoE layer runs spread over the passes it pairs with
    return Stages(pre=(pre + lead * dense) / passes, attn=(attn + layer * moe_share + (1 - lead) * dense) / n,
                  dispatch=dispatch / n, experts=experts / n, combine=combine / n, head=head / passes, layers=layers)


def stages(model: ModelSpec, ops: tuple[Op, ...], totals: list[Seconds], passes: int = 1) -> Stages:
    """Group a micro-batch's ops (``totals``: each op's seconds over all its runs) into the :class:`Stages` of
    one of ``passes`` passes. A layer op (attention, norms) that runs in every layer is shared between the dense
    and the MoE layers by their counts."""
    return grouped(model, sums(ops, totals), layer_runs(ops), passes)


def in_step(own: list[Stages], shared: Stages) -> Stages:
    """One micro-batch of data-parallel attention ranks in step (every all-to-all synchronises them): each
    stage the slowest rank's ``own`` work (attention, router, shared experts, head) plus ``shared``, the work the
    ranks run together (the routed experts at every rank's tokens, the all-to-alls at the busiest rank's)."""
    mx = np.maximum
    hi = own[0]
    for o in own[1:]:
        hi = Stages(mx(hi.pre, o.pre), mx(hi.attn, o.attn), mx(hi.dispatch, o.dispatch), mx(hi.experts, o.experts),
                    mx(hi.combine, o.combine), mx(hi.head, o.head), hi.layers)
    return Stages(hi.pre + shared.pre, hi.attn + shared.attn, hi.dispatch + shared.dispatch,
                  hi.experts + shared.experts, hi.combine + shared.combine, hi.head + shared.head, hi.layers)


def schedule(a: Stages, b: Stages | None) -> Seconds:
    """Seconds of one pass of micro-batches ``a`` and ``b`` on a compute and a communication stream (module
    docstring); ``b`` None: ``a`` alone, every stage in turn."""
    if b is None:
        return a.compute + a.communication
    mx = np.maximum
    fa = a.pre  # when micro-batch a's last stage ends
    fb = comp = fa + b.pre
    comm: Seconds = 0.0
    for _ in range(a.layers):
        fa = comp = mx(comp, fa) + a.attn
        fb = comp = mx(comp, fb) + b.attn
        fa = comm = mx(comm, fa) + a.dispatch
        fb = comm = mx(comm, fb) + b.dispatch
        fa = comp = mx(comp, fa) + a.experts
        fb = comp = mx(comp, fb) + b.experts
        fa = comm = mx(comm, fa) + a.combine
        fb = comm = mx(comm, fb) + b.combine
    fa = comp = mx(comp, fa) + a.head
    fb = mx(comp, fb) + b.head
    return mx(fa, fb)


def _tasks(s: Stages, mb: int) -> list[tuple[int, int, float, str]]:
    """Micro-batch ``mb``'s stages in order as (stream, micro-batch, seconds, stage): stream 0 computes,
    1 communicates."""
    out = [(0, mb, float(s.pre), "pre")]
    for _ in range(s.layers):
        out += [(0, mb, float(s.attn), "attn"), (1, mb, float(s.dispatch), "dispatch"),
                (0, mb, float(s.experts), "experts"), (1, mb, float(s.combine), "combine")]
    return out + [(0, mb, float(s.head), "head")]


def _stream_order(ta: list, tb: list) -> list[list[tuple[int, int]]]:
    """Each stream's (micro-batch, stage index) order: a's stage, then b's same stage (:func:`schedule`)."""
    order: list[list[tuple[int, int]]] = [[], []]
    for i in range(len(ta)):
        for mb, t in ((0, ta), (1, tb)):
            order[t[i][0]].append((mb, i))
    return order


def schedule_shared(a: Stages, b: Stages, rate: float) -> tuple[float, float]:
    """(seconds, compute seconds lost) of one pass of micro-batches ``a`` and ``b`` on the two streams of
    :func:`schedule`, the compute stream running at ``rate`` (0 < rate <= 1) of its solo speed while a
    communication stage runs (the SMs the communication kernels hold). An event simulation over the stages;
    at ``rate`` 1 it equals :func:`schedule`. The compute seconds lost: the compute stream's busy time beyond its
    stages' solo seconds."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rate must be in (0, 1], got {rate}")
    return schedule_contended(a, b, lambda mb, stage, comm_mb, comm: rate)


#: a compute stage's speed (a share of its solo speed, in (0, 1]) while a communication stage runs:
#: (compute micro-batch, compute stage, communication micro-batch, communication stage) -> rate
Rate = Callable[[int, str, int, str], float]


def schedule_contended(a: Stages, b: Stages, rate: Rate) -> tuple[float, float]:
    """(seconds, compute seconds lost) of one pass of micro-batches ``a`` and ``b`` on the two streams of
    :func:`schedule`, a compute stage running at ``rate(...)`` of its solo speed while a communication stage
    runs (:data:`Rate`: the SMs the communication kernels hold, the HBM bandwidth their traffic takes). An event
    simulation over the stages; at rate 1 it equals :func:`schedule`. The compute seconds lost: the compute
    stream's busy time beyond its stages' solo seconds."""
    tasks = (_tasks(a, 0), _tasks(b, 1))
    order = _stream_order(*tasks)
    pos = [0, 0]  # next position in each stream's order
    done = [-1, -1]  # each micro-batch's last finished stage
    left: list[float | None] = [None, None]  # work left of each stream's running stage (None: idle)
    now = busy = 0.0
    while True:
        moved = True
        while moved:  # start what is ready: the stream idle and the micro-batch's previous stage done
            moved = False
            for st in (0, 1):
                while left[st] is None and pos[st] < len(order[st]):
                    mb, i = order[st][pos[st]]
                    if done[mb] != i - 1:
                        break
                    w = tasks[mb][i][2]
                    if w > 0.0:
                        left[st] = w
                        break
                    done[mb] = i  # an empty stage ends at once
                    pos[st] += 1
                    moved = True
        if left[0] is None and left[1] is None:
            break
        if left[1] is not None and left[0] is not None:
            (cmb, ci), (mmb, mi) = order[0][pos[0]], order[1][pos[1]]
            r = rate(cmb, tasks[cmb][ci][3], mmb, tasks[mmb][mi][3])
            if not 0.0 < r <= 1.0:
                raise ValueError(f"rate must be in (0, 1], got {r}")
        else:
            r = 1.0
        dt = min(x / v for x, v in ((left[0], r), (left[1], 1.0)) if x is not None)
        now += dt
        for st, v in ((0, r), (1, 1.0)):
            if left[st] is None:
                continue
            if st == 0:
                busy += dt
            left[st] -= dt * v
            if left[st] <= 1e-15 * max(1.0, now):
                mb, i = order[st][pos[st]]
                done[mb] = i
                pos[st] += 1
                left[st] = None
    return now, max(busy - float(a.compute + b.compute), 0.0)


def _prefill_ops(model: ModelSpec, sc: Scenario, pr: Pricer) -> tuple[OpGraph, int]:
    """A micro-batch's prefill: its graph (every pass's ops merged, when its prompts take several passes) and
    its pass count."""
    pipe = pipeline(model, sc)
    if not chunked(sc):
        return pipe.stages[0].prefill, 1
    _, graphs, _ = price_chunked(model, sc, pipe, pr)
    n = sum(p.repeat for p in prefill_passes(sc.batch, sc.input_len, sc.max_prefill_tokens))
    return graphs()[0], n


@dataclass(frozen=True, slots=True)
class Overlap:
    """A phase under TBO: the step's ``time_s`` (an array over decode contexts for a decode sweep) and what the
    two streams did: ``compute_s`` (both micro-batches' compute at solo speed, back to back on the compute
    stream), ``communication_s`` (their all-to-alls), ``back_to_back_s`` (the two micro-batches one after the
    other), ``contention_s`` (compute seconds lost to the SMs the communication kernels hold) and
    ``contention`` (how that was priced, in words)."""

    time_s: Seconds
    compute_s: Seconds
    communication_s: Seconds
    back_to_back_s: Seconds
    contention_s: Seconds = 0.0
    contention: str = "none: the low-latency kernels hold no SMs"

    def at(self, i: int) -> "Overlap":
        """Decode step ``i`` of a sweep."""
        return Overlap(*(float(np.asarray(x)[i]) if np.ndim(x) else float(x)
                         for x in (self.time_s, self.compute_s, self.communication_s, self.back_to_back_s,
                                   self.contention_s)),
                       self.contention)

    @property
    def exposed_s(self) -> Seconds:
        """All-to-all seconds the compute stream's solo work does not cover: waits for the communication stream
        plus the compute lost to contention (never below 0 by rounding)."""
        return np.maximum(self.time_s - self.compute_s, 0.0)


def overlap(a: Stages, b: Stages | None, passes: int = 1, rate: float = 1.0,
            contention: str = "none: the low-latency kernels hold no SMs") -> Overlap:
    """``passes`` passes of micro-batches ``a`` and ``b`` (:func:`schedule`; with a compute ``rate`` below 1
    while an all-to-all runs, :func:`schedule_shared`), with the streams' totals."""
    both = (a,) if b is None else (a, b)
    if b is None or rate >= 1.0:
        t, lost = schedule(a, b), 0.0
    else:
        t, lost = schedule_shared(a, b, rate)
    return Overlap(passes * t, passes * sum(s.compute for s in both),
                   passes * sum(s.communication for s in both),
                   passes * sum(s.compute + s.communication for s in both), passes * lost, contention)


def normal_kernel_rate(sm_count: int | None) -> tuple[float, str]:
    """(compute rate while DeepEP's normal kernels run, how it was priced) on a device of ``sm_count`` SMs."""
    if sm_count is None:
        return 1.0, (f"not priced: the device gives no sm_count (DeepEP's normal kernels hold {DEEPEP_NORMAL_SMS} "
                     "SMs while they run)")
    free = max(sm_count - DEEPEP_NORMAL_SMS, 1)
    return free / sm_count, (f"DeepEP's normal kernels hold {DEEPEP_NORMAL_SMS} of {sm_count} SMs while they run: "
                             f"overlapped compute at {free}/{sm_count}")


@dataclass(frozen=True, slots=True)
class MicroBatch:
    """One micro-batch's ops with each op's cost per run (:meth:`Pricer.shared`), grouped over ``passes``."""

    ops: tuple[Op, ...]
    costs: tuple[OpCost, ...]
    passes: int = 1

    def stages(self, model: ModelSpec, per_op: list[float] | None = None) -> Stages:
        """Its :class:`Stages` of ``per_op`` seconds (or bytes) over all runs; None: its solo seconds."""
        if per_op is None:
            per_op = [c.time_s * o.count for o, c in zip(self.ops, self.costs)]
        return stages(model, self.ops, per_op, self.passes)

    def contended(self, model: ModelSpec, sm_rate: float, hbm_share: float) -> Stages:
        """Its stages with each compute op slowed by the other stream's kernels: the whole op at ``sm_rate`` of
        the SMs, or its DRAM stream at ``1 - hbm_share`` of the HBM bandwidth (``time_s`` is the largest of its
        compute, memory and network terms plus its fixed costs: the memory term grows), whichever is longer;
        communication ops unchanged."""
        stretch = 1.0 / (1.0 - hbm_share)
        return self.stages(model, [c.time_s * o.count if o.kind is OpKind.ALLTOALL else o.count * max(
            c.time_s / sm_rate,
            c.time_s - max(c.compute_s, c.memory_s, c.network_s) + max(c.compute_s, c.memory_s * stretch, c.network_s))
            for o, c in zip(self.ops, self.costs)])


def contention(model: ModelSpec, parts: list[MicroBatch], bandwidth: float, sm_rate: float,
               sm_how: str) -> tuple[Rate, str]:
    """The compute stages' :data:`Rate` while each all-to-all runs, and how it was priced: the SMs the
    communication kernels hold (``sm_rate``, :func:`normal_kernel_rate`), and the share of the device's HBM
    ``bandwidth`` (bytes/s) their traffic takes (the all-to-all's ``hbm_bytes`` over its seconds: the bytes it
    reads at the sender and writes at the receiver)."""
    solo = [p.stages(model) for p in parts]
    hbm = [p.stages(model, [float(c.terms.get("hbm_bytes", 0.0)) * o.count if o.kind is OpKind.ALLTOALL else 0.0
                            for o, c in zip(p.ops, p.costs)]) for p in parts]
    # the share of HBM each communication stage takes while it runs; two links cannot outrun HBM, the cap
    # only keeps a malformed device file finite
    share = {(mb, k): min(getattr(h, k) / getattr(s, k) / bandwidth, 0.95) if getattr(s, k) > 0 else 0.0
             for mb, (s, h) in enumerate(zip(solo, hbm)) for k in ("dispatch", "combine")}
    slowed = {key: [p.contended(model, sm_rate, sh) for p in parts] for key, sh in share.items()}

    def rate(mb: int, stage: str, comm_mb: int, comm: str) -> float:
        t, c = getattr(solo[mb], stage), getattr(slowed[(comm_mb, comm)][mb], stage)
        return t / c if c > 0 else 1.0

    lo, hi = min(share.values()), max(share.values())
    how = (f"{sm_how}; the all-to-alls' HBM traffic (read at the sender, written at the receiver) takes "
           f"{100 * lo:.1f}-{100 * hi:.1f} % of the {bandwidth / 1e12:.2f} TB/s while they run: overlapped ops "
           "stream DRAM at the rest")
    return rate, how


def prefill_overlap(model: ModelSpec, sc: Scenario, pr: Pricer) -> tuple[Overlap, tuple[OpGraph, ...]]:
    """The prefill of ``sc`` under TBO, and each micro-batch's graph (per-op rows)."""
    graphs = [_prefill_ops(model, m, pr) for m in micro_batches(sc) if m is not None]
    # pass i of one micro-batch runs beside pass i of the other (the halves of one engine pass); the second
    # (floor) half's work is spread over the first's passes when an odd batch gives it fewer
    n = graphs[0][1]
    parts = [MicroBatch(g.ops, tuple(pr.shared(o) for o in g.ops), n) for g, _ in graphs]
    st = [p.stages(model) for p in parts]
    sm_rate, sm_how = normal_kernel_rate(pr.hw.sm_count)
    if len(st) == 1:
        return overlap(st[0], None, n), tuple(g for g, _ in graphs)
    rate, how = contention(model, parts, pr.hw.memory_bandwidth, sm_rate, sm_how)
    return _contended(st[0], st[1], rate, how, n), tuple(g for g, _ in graphs)


def _contended(a: Stages, b: Stages, rate: Rate, how: str, passes: int = 1) -> Overlap:
    t, lost = schedule_contended(a, b, rate)
    return Overlap(passes * t, passes * (a.compute + b.compute), passes * (a.communication + b.communication),
                   passes * (a.compute + a.communication + b.compute + b.communication), passes * lost, how)


def decode_overlap(model: ModelSpec, sc: Scenario, pr: Pricer, contexts: np.ndarray) -> tuple[Overlap, tuple[Pipeline, ...]]:
    """The decode steps of ``sc`` at ``contexts`` under TBO (arrays over them), and each micro-batch's pipeline."""
    pipes = tuple(pipeline(model, m) for m in micro_batches(sc) if m is not None)
    ctx = [int(c) for c in contexts]
    if len(pipes) == 1:
        t = pipes[0].stages[0].decode
        per_ctx = [t.varying_ops(c) for c in ctx]
        totals: list[Seconds] = [np.full(len(ctx), pr.time(o) * o.count) for o in t.fixed]
        ops = list(t.fixed)
        for j in range(len(t.varying)):
            col = [v[j] for v in per_ctx]
            ops.append(col[0])
            totals.append(pr.sweep(col) * col[0].count)
        return overlap(stages(model, tuple(ops), totals), None), pipes
    # the low-latency kernels hold no SMs; their HBM traffic still slows the other micro-batch's DRAM stream:
    # each context's step as its own event simulation
    fixed = [tuple(p.stages[0].decode.fixed) for p in pipes]
    steps, how = [], ""
    for c in ctx:
        parts = []
        for p, f in zip(pipes, fixed):
            ops = f + tuple(p.stages[0].decode.varying_ops(c))
            parts.append(MicroBatch(ops, tuple(pr.shared(o) for o in ops)))
        rate, how = contention(model, parts, pr.hw.memory_bandwidth, 1.0, "the low-latency kernels hold no SMs")
        steps.append(_contended(*(p.stages(model) for p in parts), rate, how))
    arrays = [np.array([getattr(o, k) for o in steps]) for k in ("time_s", "compute_s", "communication_s",
                                                                   "back_to_back_s", "contention_s")]
    return Overlap(*arrays, how), pipes


def explained(ops: tuple[Op, ...], costs: tuple[OpCost, ...], ov: Overlap) -> tuple[OpCost, ...]:
    """Per-op rows of a TBO phase: each op's own time, the all-to-alls' terms saying which share of them the
    other micro-batch's compute hid (the rows' compute plus the all-to-alls' exposed seconds is the phase)."""
    comm = float(ov.communication_s)
    exposed = min(float(ov.exposed_s) / comm, 1.0) if comm > 0 else 0.0
    out = []
    for o, c in zip(ops, costs):
        if o.kind is OpKind.ALLTOALL:
            c = replace(c, terms={**c.terms, "two_batch_overlap": "overlapped with the other micro-batch's compute",
                                  "tbo_hidden_fraction": 1.0 - exposed, "tbo_exposed_s": c.total_s * exposed,
                                  "tbo_contention": ov.contention,
                                  "tbo_contention_s": float(ov.contention_s) * c.total_s / comm if comm > 0 else 0.0})
        out.append(c)
    return tuple(out)


def micro_batch_graph(graphs: tuple[OpGraph, ...]) -> OpGraph:
    """The micro-batches' graphs as one, op names prefixed ``mb0/``, ``mb1/``."""
    g0 = graphs[0]
    ops = tuple(o.renamed(f"mb{i}/{o.name}") for i, g in enumerate(graphs) for o in g.ops)
    return OpGraph(phase=g0.phase, ops=ops, tokens=sum(g.tokens for g in graphs), context=g0.context)


__all__ = ["CATEGORIES", "DEEPEP_NORMAL_SMS", "MicroBatch", "Overlap", "Rate", "Stages", "category", "contention",
           "decode_overlap", "explained", "grouped", "in_step", "layer_runs", "leading_dense", "micro_batch_graph",
           "micro_batches", "normal_kernel_rate", "overlap", "prefill_overlap", "schedule", "schedule_contended",
           "schedule_shared", "split_point", "stages", "sums"]
