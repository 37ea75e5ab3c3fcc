"""One serving replica: a paged KV-cache block manager and an iteration-level scheduler.

**KV blocks.** The pool holds ``num_blocks`` blocks of ``block_size`` tokens (its capacity comes from
memory planning, :func:`tapeout.serving.sim.simulate`). Policy ``paged`` (vLLM's): a request is admitted
when the blocks of the tokens it prefills are free beyond a watermark (1% of the pool, vLLM's default);
each decode step takes a new block when a sequence's last block is full; when no block is left, the most
recently admitted running request is preempted by recompute: its blocks are freed, it goes back to the
front of the queue, and when re-admitted it prefills its prompt and the tokens it had generated (the last
of them included), then goes on generating. Policy ``reserve`` (TensorRT-LLM's guaranteed-no-evict): a
request is admitted when the blocks of its whole final context (prompt + output - 1 tokens) are free, and
is never preempted. Policy ``turbomind`` (LMDeploy TurboMind's ``SequenceManager``, v0.1/v0.2): see
:meth:`Replica._materialize`.

**Schedulers** (``max_batch`` running requests at most; ``max_num_tokens`` tokens per iteration):

- ``static``: whole batches, as :func:`tapeout.predict` assumes. When the replica is idle it takes up to
  ``max_batch`` queued requests (first come first served, each reserving its final context), prefills
  them in one iteration, then runs decode steps over the whole batch until its longest output is done
  (requests that finish earlier stay in the batch as padding; each completes at its own last token).
- ``continuous``: iteration-level batching (TensorRT-LLM's in-flight batching): every iteration runs one
  decode step of each running request and, in the same forward pass, the whole prompts of newly admitted
  requests, first come first served while the iteration's tokens (decodes + prompts) stay within
  ``max_num_tokens``; a prompt longer than ``max_num_tokens`` runs alone with the decodes.
- ``chunked``: chunked prefill under a token budget (Sarathi-Serve, vLLM's chunked prefill): decodes
  first, then prefill chunks of the requests being prefilled and of newly admitted ones fill the rest of
  ``max_num_tokens``.

**Prefill passes** (``prefill_pass``). ``fused`` (vLLM, TensorRT-LLM's in-flight batching, TurboMind from
v0.2): an iteration's prefill chunks and decode step are one forward pass. ``separate`` (LMDeploy TurboMind
v0.1): ``LlamaBatch::InternalThreadEntry`` runs ``ContextDecode()`` over every newly admitted (or swapped-in)
request, in sub-batches of at most ``max_num_tokens`` tokens, each a forward pass of its own, and then
``Generate()``, one decode step of every active request, the new ones' last prompt token included (their
first token comes out of it); read from InternLM/lmdeploy ``src/turbomind/models/llama/LlamaBatch.cc`` of
the v0.1 era (the index holds no copy at the table's commit ebe90bc9; the versions before the unified
``Forward``/``forwardUnified`` all have this loop). Every admitting iteration then reads the weights and
launches once more per context sub-batch.

``alone`` (vLLM's V0 scheduler without chunked prefill, ``Scheduler._schedule_default``; SGLang's
``get_next_batch_to_run``): an iteration that admits prompts runs their prefill only, up to ``max_num_tokens``
prompt tokens, and emits their first tokens at its end; the running requests wait for the next iteration's decode
step (their inter-token gap spans the prefill). Continuous scheduler, paged or reserve blocks.

**Iterations** are priced by :class:`~tapeout.serving.iteration.IterationPricer`. Runs of pure decode
steps during which nothing can change (no completion, no admissible arrival, blocks enough) are priced
and applied in one vectorised pass; their result equals stepping one iteration at a time.

**Pipeline micro-batches.** With ``pp`` stages and ``pp_microbatches`` m > 1, a replica is m virtual engines
(vLLM's: each has its own scheduler, ``max_batch`` and 1/m of the KV pool; a request goes to the one with
the fewest unfinished requests) sharing the stages, so m batches are in flight at once. An iteration of one
of them takes max(one pass through the stages, n x the slowest stage), n the virtual engines with work when
it starts: a stage serves one batch at a time, so n busy engines share the slowest stage's time (the fluid
form of ``predict``'s decode cycle with m batches in flight). n counts, at the iteration's start, the
engines with work and those already simulated past that time (busy then); a run of decode steps stops where
an engine ahead of it fell idle. An engine behind it that falls idle later in its run is seen at the run's
next start (a completion or an arrival); that changes only the max's second term, by at most the stages'
imbalance (m x the slowest stage over one pass: 6% for Llama-3.1-8B pp4 on an H100).

The pipeline fills: an engine starting from idle (nothing running) enters one slowest stage (of the batch
before it) after the latest batch of its group entered, and that first iteration passes the stages one
behind the others, without meeting them (one pass). m batches sent together thus finish their prefills one
slowest stage apart, after one pass and up to one pass + (m - 1) x the slowest stage, as ``predict``'s
pipelined prefill.

Token timing follows a streaming client: a request's first token leaves at the end of the iteration that
completes its prefill; each decode step emits one token per running request at its end; the gap between a
request's consecutive tokens is one inter-token latency (ITL), including stalls behind prefills and
preemptions.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from tapeout.serving.iteration import IterationPricer

SCHEDULERS = ("static", "continuous", "chunked")
KV_POLICIES = ("paged", "reserve", "turbomind")
PREFILL_PASSES = ("fused", "separate", "alone")
ROLES = ("both", "prefill", "decode")
#: most decode steps priced in one vectorised pass (longer runs take several)
MAX_RUN = 4096


@dataclass(frozen=True, slots=True)
class EngineConfig:
    scheduler: str
    max_batch: int
    max_num_tokens: int | None
    block_size: int
    num_blocks: int
    kv_policy: str = "paged"
    #: fraction of the pool an admission must leave free (paged policy; vLLM's default 0.01)
    watermark: float = 0.01
    #: fused: an iteration's prefill chunks and decode step are one forward pass; separate (TurboMind v0.1's):
    #: context passes of at most ``max_num_tokens`` tokens, then the decode step (``IterationPricer.separate_iteration``);
    #: alone (vLLM V0's, SGLang's): an admitting iteration runs the prompts only, the decodes wait
    prefill_pass: str = "fused"

    @property
    def prefill_budget(self) -> int:
        """Prefill tokens an iteration may take: ``max_num_tokens``, or every prompt admitted when the passes are
        separate (TurboMind v0.1's ``ContextDecode`` runs every swapped-in request, in as many sub-batches as
        ``max_context_token_num`` makes)."""
        return 1 << 62 if self.prefill_pass == "separate" or not self.max_num_tokens else self.max_num_tokens

    @property
    def watermark_blocks(self) -> int:
        return int(self.watermark * self.num_blocks) if self.kv_policy == "paged" else 0

    @property
    def lookahead(self) -> int:
        """Tokens a sequence's blocks hold beyond its KV cache before a step: TurboMind's blocks cover its
        context (every token so far, the last generated one included) + ``step_length`` (1); vLLM's the KV
        cache after the step."""
        return 1 if self.kv_policy == "turbomind" else 0


@dataclass(slots=True)
class Plan:
    """An engine's next iteration, scheduled (admissions, blocks and preemptions done) but not yet priced:
    prefill ``chunks`` ((new tokens, cached tokens, request)) with one decode step of ``decodes`` requests
    (``steps`` = 1), or up to ``steps`` pure decode steps in which nothing can change. ``context``: the
    decodes' mean context at the first step; ``heads``: sequences producing a token; ``joined``: requests
    that join the decodes after it; ``batch``: a static batch that this prefill starts."""

    chunks: list[tuple[int, int, Req]]
    joined: list[Req]
    decodes: int
    context: float
    heads: int
    steps: int
    batch: list[Req] | None = None

    def shape(self) -> tuple[list[tuple[int, int]], int, float, int]:
        """(chunks, decodes, context, heads) as :meth:`IterationPricer.iteration` takes them."""
        return [(n, p) for n, p, _ in self.chunks], self.decodes, self.context, self.heads


def until(now: float, durs: np.ndarray, limit: float) -> np.ndarray:
    """The steps of ``durs`` run from ``now``, up to the first that starts at or after ``limit`` (one at least)."""
    if len(durs) > 1:
        ends = now + np.cumsum(durs)
        if limit < ends[-1]:
            return durs[:1 + int(np.searchsorted(ends[:-1], limit, side="left"))]
    return durs


class Recorder:
    """Per-request times and the pooled inter-token gaps of a run (shared by every replica)."""

    def __init__(self, n: int) -> None:
        self.sent = np.zeros(n)
        self.first = np.full(n, np.nan)
        self.finish = np.full(n, np.nan)
        self.preemptions = np.zeros(n, dtype=np.int64)
        self.replica = np.full(n, -1, dtype=np.int64)
        self.gaps: list[np.ndarray] = []
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []

    def itl(self) -> np.ndarray:
        """Every inter-token gap of every request (vLLM's pooled ITL list), in no particular order."""
        parts = list(self.gaps) + [np.repeat(d, w) for d, w in self.runs]
        return np.concatenate(parts) if parts else np.zeros(0)


class Req:
    """A request inside a replica."""

    __slots__ = ("idx", "L_in", "L_out", "g", "target", "done", "blocks", "order", "kv_ready", "last")

    def __init__(self, idx: int, L_in: int, L_out: int) -> None:
        self.idx = idx
        self.L_in = L_in
        self.L_out = L_out
        self.g = 0  # tokens emitted so far
        self.target = L_in  # tokens the current prefill covers (prompt + generated on recompute)
        self.done = 0  # of which prefilled
        self.blocks = 0
        self.order = 0
        self.kv_ready = False  # KV cache already present (a decode replica receiving a prefilled request)
        self.last = 0.0  # time of its last token

    def outstanding(self) -> int:
        return (0 if self.kv_ready else self.target - self.done) + self.L_out - self.g


def _ceil_div(a: np.ndarray | int, b: int) -> np.ndarray | int:
    return -(-a // b)


class Replica:
    """One engine instance (a tensor/pipeline-parallel group of devices)."""

    def __init__(self, rid: int, cfg: EngineConfig, price: IterationPricer, rec: Recorder, role: str = "both",
                 stages: list[tuple[IterationPricer, int]] | None = None) -> None:
        self.rid, self.cfg, self.price, self.rec, self.role = rid, cfg, price, rec, role
        #: pipeline micro-batches: each distinct stage's pricer and count, and the virtual engines sharing them
        self.stages = stages
        self.group: list[Replica] = [self]
        self.clock = 0.0
        self.waiting: deque[Req] = deque()
        self.prefilling: list[Req] = []
        #: turbomind: requests in the batch not scheduled this iteration (new, or swapped out keeping blocks)
        self.swapped: list[Req] = []
        self.dreq: list[Req] = []
        self.kv = np.zeros(0, dtype=np.int64)  # tokens in the cache
        self.rem = np.zeros(0, dtype=np.int64)  # tokens still to emit
        self.last = np.zeros(0)
        self.dblk = np.zeros(0, dtype=np.int64)
        self.order = np.zeros(0, dtype=np.int64)
        self.used = 0
        self.next_order = 0
        self.outstanding = 0
        self.preemptions = 0
        self.static_active = False
        #: pipeline micro-batches: (start, slowest stage's seconds) of this engine's latest iteration
        self.started = (-math.inf, 0.0)
        #: when a request last found this engine idle (the requests sent then all join its first iteration)
        self.woke = -math.inf
        #: (start, end, steps, prefill tokens, decoding sequences, running requests, blocks used at start, at end)
        self.timeline: list[tuple[float, float, int, int, int, int, int, int]] = []

    # ---- queue ----------------------------------------------------------------------------------------
    def has_work(self) -> bool:
        return bool(self.waiting or self.prefilling or self.dreq or self.swapped)

    def submit(self, r: Req, t: float) -> None:
        if not self.has_work():
            self.clock = max(self.clock, t)
            self.woke = t
        if self.cfg.kv_policy == "turbomind":  # its priority: arrival order (LlamaBatch::ProcessInferRequests)
            r.order = self.next_order
            self.next_order += 1
            if r.kv_ready:  # received from a prefill replica with its prompt's KV cache
                r.done = r.target
        self.waiting.append(r)
        self.outstanding += r.outstanding()
        self.rec.replica[r.idx] = self.rid

    def running(self) -> int:
        return len(self.prefilling) + len(self.dreq)

    def unfinished(self) -> int:
        return len(self.waiting) + self.running() + len(self.swapped)

    # ---- pricing ----------------------------------------------------------------------------------------
    def _busy(self) -> int:
        """Engines of the group busy at this one's clock: with work, or idle now after working past it."""
        t = self.clock
        return sum(1 for r in self.group if r.has_work() or r.clock > t)

    def _iteration(self, chunks: list[tuple[int, int]], decodes: int, ctx: float, heads: int,
                   alone: bool = False) -> float:
        """``alone``: a batch entering the filling pipeline one slowest stage behind the one before it passes
        the stages without meeting the others (one pass)."""
        separate = self.cfg.prefill_pass == "separate" and bool(chunks)

        def priced(p: IterationPricer) -> float:
            return (p.separate_iteration(chunks, decodes, ctx, self.cfg.max_num_tokens) if separate
                    else p.iteration(chunks, decodes, ctx, heads))

        if self.stages is None:
            return priced(self.price)
        t = [priced(p) for p, _ in self.stages]
        self.started = (self.clock, max(t))
        one = sum(n * x for x, (_, n) in zip(t, self.stages))
        return one if alone else max(one, self._busy() * max(t))

    def _decode_steps(self, decodes: int, ctx: float, k: int) -> np.ndarray:
        if self.stages is None:
            return self.price.decode_steps(decodes, ctx, k)
        t = [p.decode_steps(decodes, ctx, k) for p, _ in self.stages]
        slowest = np.max(t, axis=0)
        self.started = (self.clock, float(slowest[0]))
        total = sum(n * x for x, (_, n) in zip(t, self.stages))
        return np.maximum(total, self._busy() * slowest)

    def _entry(self) -> float:
        """When a batch may enter the group's pipeline: one slowest stage (of the batch before it) after the
        latest batch entered, as a pipeline fills."""
        return max(r.started[0] + r.started[1] for r in self.group if r is not self)

    # ---- decode arrays ----------------------------------------------------------------------------------
    def _add_decodes(self, rs: list[Req], kvs: list[int], lasts: list[float]) -> None:
        if not rs:
            return
        self.dreq.extend(rs)
        self.kv = np.concatenate([self.kv, np.array(kvs, dtype=np.int64)])
        self.rem = np.concatenate([self.rem, np.array([r.L_out - r.g for r in rs], dtype=np.int64)])
        self.last = np.concatenate([self.last, np.array(lasts, dtype=float)])
        self.dblk = np.concatenate([self.dblk, np.array([r.blocks for r in rs], dtype=np.int64)])
        self.order = np.concatenate([self.order, np.array([r.order for r in rs], dtype=np.int64)])

    def _keep(self, mask: np.ndarray) -> None:
        self.dreq = [self.dreq[i] for i in np.flatnonzero(mask).tolist()]
        self.kv, self.rem, self.last = self.kv[mask], self.rem[mask], self.last[mask]
        self.dblk, self.order = self.dblk[mask], self.order[mask]

    def _finish_decodes(self, t: float) -> list[tuple[int, float]]:
        """Remove the decoding requests with nothing left to emit (finished at ``t``)."""
        if not self.dreq or int(self.rem.min()) > 0:
            return []
        done = self.rem <= 0
        out = []
        for i in np.flatnonzero(done):
            r = self.dreq[i]
            self.rec.finish[r.idx] = t
            out.append((r.idx, t))
        self.used -= int(self.dblk[done].sum())
        self._keep(~done)
        return out

    # ---- admission and preemption -----------------------------------------------------------------------
    def _admit_blocks(self, r: Req) -> int | None:
        """Blocks ``r`` takes on admission, or None when they are not free."""
        cfg = self.cfg
        bs = cfg.block_size
        if cfg.kv_policy == "reserve":
            need = int(_ceil_div(r.L_in + r.L_out - 1, bs))
        else:
            need = int(_ceil_div(r.target, bs))
        if cfg.num_blocks - self.used - need < cfg.watermark_blocks:
            return None
        return need

    def _take(self, r: Req, need: int) -> None:
        r.blocks = need
        self.used += need
        r.order = self.next_order
        self.next_order += 1

    def _preempt_latest(self) -> None:
        """Preempt (by recompute) the most recently admitted running request."""
        best_d = int(np.argmax(self.order)) if self.dreq else -1
        od = int(self.order[best_d]) if best_d >= 0 else -1
        op = max((r.order for r in self.prefilling), default=-1)
        if od < 0 and op < 0:
            raise RuntimeError("KV pool exhausted with nothing to preempt")
        if op > od:
            r = next(x for x in self.prefilling if x.order == op)
            self.prefilling.remove(r)
            self.used -= r.blocks
        else:
            r = self.dreq[best_d]
            mask = np.ones(len(self.dreq), dtype=bool)
            mask[best_d] = False
            self.used -= int(self.dblk[best_d])
            r.last = float(self.last[best_d])
            r.g = r.L_out - int(self.rem[best_d])  # the arrays count its tokens while it decodes
            self._keep(mask)
        before = r.outstanding()
        r.blocks = 0
        r.kv_ready = False
        r.target = r.L_in + r.g
        r.done = 0
        self.outstanding += r.outstanding() - before
        self.waiting.appendleft(r)
        self.preemptions += 1
        self.rec.preemptions[r.idx] += 1

    # ---- one step -------------------------------------------------------------------------------------
    def step(self, limit: float) -> tuple[list[tuple[int, float]], list[tuple[Req, float]]]:
        """Run the next iteration (or a run of pure decode steps, none starting at or after ``limit``).
        Returns (completions as (request, time), handoffs to decode replicas as (request, time))."""
        fresh = False
        if len(self.group) > 1:  # an engine ahead of this one that fell idle lightens the stages at its clock
            ahead = [r.clock for r in self.group if r is not self and not r.has_work() and r.clock > self.clock]
            limit = min([limit, *ahead])
            fresh = not self.running() and not self.swapped and not self.static_active
            if fresh and self._entry() > self.clock:  # a new batch waits to enter the filling pipeline
                self.clock = self._entry()
                return [], []
        p = self.plan()
        if p is None:
            return [], []
        return self.apply(p, self.clock, until(self.clock, self.price_plan(p, alone=fresh), limit))

    def price_plan(self, p: Plan, alone: bool = False) -> np.ndarray:
        """Seconds of each iteration of ``p`` (one with prefill chunks, else its decode steps); ``alone``: a
        prefill entering the filling pipeline (:meth:`_iteration`)."""
        if p.chunks:
            return np.array([self._iteration(*p.shape(), alone=alone)])
        return self._decode_steps(p.decodes, p.context, p.steps)

    def plan(self) -> Plan | None:
        """Schedule the next iteration (admissions, blocks, preemptions); None when only requests received with
        their KV cache joined the decodes (no time passes: plan again)."""
        if self.cfg.scheduler == "static":
            return self._plan_static()
        cfg, bs = self.cfg, self.cfg.block_size
        if cfg.kv_policy == "turbomind":
            chunks, joined, D = self._materialize(), [], len(self.dreq)
        else:
            chunks, joined, D = self._schedule(cfg.kv_policy == "paged", bs)
        if not chunks:
            if joined:  # received with their KV cache: scheduled again, now with them decoding
                self._add_decodes(joined, [r.target for r in joined], [r.last for r in joined])
                return None
            if D == 0:
                raise RuntimeError("a replica with queued work scheduled nothing")
            return Plan([], [], D, int(self.kv.sum()) / D + 1.0, D, self._run_length())
        # a mixed iteration: prefill chunks (+ the decode step of the running requests)
        completing = sum(1 for n, p, r in chunks if p + n == r.target)
        if cfg.prefill_pass == "alone":  # the prompts' own pass: the running requests wait for the next step
            return Plan(chunks, joined, 0, 0.0, completing, 1)
        ctx = int(self.kv.sum()) / D + 1.0 if D else 0.0
        return Plan(chunks, joined, D, ctx, D + completing, 1)

    def apply(self, p: Plan, now: float, durs: np.ndarray) -> tuple[list[tuple[int, float]], list[tuple[Req, float]]]:
        """The effects of ``p`` run from ``now`` with iterations of ``durs`` seconds (a run's first len(durs)
        steps). Returns what :meth:`step` does."""
        if p.batch is not None:
            return self._apply_static_prefill(p.batch, now, now + float(durs[0])), []
        if p.chunks:
            return self._apply_iteration(now, now + float(durs[0]), p.chunks, p.joined, p.decodes, self.used)
        if self.static_active:
            return self._apply_static_run(now, durs), []
        return self._apply_run(now, durs), []

    def _record(self, t0: float, t1: float, steps: int, prefill: int, decodes: int, u0: int) -> None:
        self.timeline.append((t0, t1, steps, prefill, decodes, self.running(), u0, self.used))

    def _schedule(self, paged: bool, bs: int) -> tuple[list[tuple[int, int, Req]], list[Req], int]:
        """Policies paged and reserve: the decodes' blocks (paged: preempting the latest when short), then
        first-come-first-served admissions. Returns (prefill chunks as (tokens, cached, request), requests
        received with their KV cache, decoding requests)."""
        cfg = self.cfg
        # (1) every decoding request needs a slot for this step's token: taken now, preempting when short
        if paged and self.dreq:
            while self.dreq:
                want = np.maximum(_ceil_div(self.kv + 1, bs), self.dblk)
                extra = int((want - self.dblk).sum())
                if self.used + extra <= cfg.num_blocks:
                    self.used += extra
                    self.dblk = want
                    break
                self._preempt_latest()
        D = len(self.dreq)
        # (2) prefill chunks and admissions (a prefill that runs alone shares its pass with no decode)
        budget = cfg.prefill_budget - (0 if cfg.prefill_pass == "alone" else D)
        chunks: list[tuple[int, int, Req]] = []
        if cfg.scheduler == "chunked":
            for r in self.prefilling:
                if budget <= 0:
                    break
                n = min(r.target - r.done, budget)
                chunks.append((n, r.done, r))
                budget -= n
        joined: list[Req] = []
        while self.waiting and self.running() + len(joined) < cfg.max_batch:
            r = self.waiting[0]
            if not r.kv_ready:
                if cfg.scheduler == "chunked":
                    if budget <= 0:
                        break
                elif r.target > budget and (chunks or r.target <= (cfg.max_num_tokens or 0)):
                    break  # a prompt longer than max_num_tokens runs alone with the decodes
            need = self._admit_blocks(r)
            if need is None:
                break
            self.waiting.popleft()
            self._take(r, need)
            if r.kv_ready:
                joined.append(r)
                continue
            n = min(r.target, budget) if cfg.scheduler == "chunked" else r.target
            chunks.append((n, 0, r))
            budget -= n
            self.prefilling.append(r)
        return chunks, joined, D

    def _materialize(self) -> list[tuple[int, int, Req]]:
        """Policy turbomind: LMDeploy TurboMind's block scheduling, run before every iteration.

        From ``SequenceManager::Materialize`` and the ``Transaction``/``Schedule`` helpers in
        ``src/turbomind/models/llama/SequenceManager.cc``, ``LlamaBatch::ProcessInferRequests`` and
        ``LlamaBatch::Initialize`` (``LlamaBatch.cc``) and ``BlockManager::Touch``/``Evict``
        (``BlockManager.cc``) of InternLM/lmdeploy at its v0.2.0 era (Jan 2024: the version whose
        ``Materialize`` takes the prefill budget, ``max_prefill_iters``); the v0.1.0 era's ``Materialize``
        (Dec 2023) sorts, allocates and preempts the same way. What it does, step by step:

        - The batch holds up to ``max_batch`` requests, running or not (``request_queue.dequeue`` fills its
          free slots in arrival order); each gets its priority on entry, its arrival order
          (``r->priority``/``unique_id = request_count_++``), kept while it lives, preempted or not.
        - ``Materialize`` visits the batch's requests by priority, oldest first. Each needs blocks for its
          context (every token so far, the last generated one included) + ``step_length`` (1), less the
          blocks it holds (``CountRequiredBlocks``). It takes them from the free blocks, then from the
          blocks released in this pass, then preempts the newest requests holding blocks (``victims``,
          from the lowest priority up, until their blocks cover the shortfall): they are swapped out. Only
          the shortfall is evicted, the victims' blocks in the order they were released, each one's last
          blocks first (``Touch`` stamps a sequence's blocks from its last to its first, ``Evict`` takes
          the oldest stamps); a victim keeps the rest, and with them the KV of its prefix
          (``VerifyAndLockCached`` truncates its cache to the blocks still valid and locks them again).
        - A request that cannot be covered, even by every newer request's blocks, is not scheduled this
          iteration (a running one is swapped out holding its blocks) and the pass goes on: a newer one
          that fits is scheduled (no head-of-line blocking). No watermark is kept.
        - A request scheduled again computes the tokens whose KV it lacks (its prompt when new; when swapped
          out, the evicted tail and its last generated token) and emits its next token; lacking only the
          last token, it is a plain decode step.

        The iteration's token budget (``max_num_tokens``, TurboMind's ``max_context_token_num``) holds back
        prefills as the other policies do (chunked: the last one chunked; with ``prefill_pass="separate"``,
        v0.1's, nothing: it bounds each context pass instead); decode steps are never held back.
        Returns the iteration's prefill chunks as (tokens, cached tokens, request).
        """
        cfg, bs = self.cfg, self.cfg.block_size
        while self.waiting and len(self.dreq) + len(self.prefilling) + len(self.swapped) < cfg.max_batch:
            self.swapped.append(self.waiting.popleft())
        want = np.maximum(_ceil_div(self.kv + 1 + cfg.lookahead, bs), self.dblk)
        extra = int((want - self.dblk).sum())
        if not self.swapped and not self.prefilling and self.used + extra <= cfg.num_blocks:
            self.used += extra  # every running request decodes, its blocks taken from the free ones
            self.dblk = want
            return []
        D0 = len(self.dreq)
        others = self.prefilling + self.swapped
        order = np.concatenate([self.order, np.array([r.order for r in others], dtype=np.int64)])
        held = np.concatenate([self.dblk, np.array([r.blocks for r in others], dtype=np.int64)])
        ctx = np.concatenate([self.kv + 1, np.array([r.L_in + r.g for r in others], dtype=np.int64)])
        cached = np.concatenate([self.kv, np.array([r.done for r in others], dtype=np.int64)])
        srt = np.argsort(order, kind="stable")
        held, ctx, cached = held[srt], ctx[srt], cached[srt]
        need = np.maximum(_ceil_div(ctx + cfg.lookahead, bs) - held, 0)
        missing = ctx - cached
        n = len(srt)
        # the easy ones: a decode step within the blocks held; the rest visited in priority order
        easy = (need == 0) & (missing == 1)
        easy_before = np.cumsum(easy) - easy
        mnt = cfg.prefill_budget
        free, released, evict, last, spent, prefills = cfg.num_blocks - self.used, 0, 0, n, 0, False
        active = easy.copy()
        take = easy.astype(np.int64)
        victims: list[int] = []
        for i in np.flatnonzero(~easy).tolist():
            if i >= last:
                break
            m = int(missing[i])
            if m > 1:  # a prefill: held back by the token budget
                budget = mnt - int(easy_before[i]) - spent
                if cfg.scheduler == "chunked":
                    if budget <= 0:
                        continue
                    t = min(m, budget)
                elif m > budget and (prefills or m <= mnt):
                    continue
                else:
                    t = m
            else:
                t = 1
            short = int(need[i])
            a = min(free, short)
            e = min(released, short - a)
            short -= a + e
            if short:
                freed, vs, v = 0, [], last - 1
                while v > i:
                    if held[v] > 0:
                        vs.append(v)
                        freed += int(held[v])
                        if freed >= short:
                            break
                    v -= 1
                if freed < short:
                    continue  # not even every newer request's blocks cover it
                last = v
                victims += vs
                released += freed
                e += short
            free -= a
            released -= e
            evict += e
            active[i], take[i] = True, t
            spent += t
            prefills |= m > 1
        active[last:] = False
        lost = np.zeros(n, dtype=bool)
        for v in victims:  # the evicted blocks: the first victim's last blocks first
            k = min(int(held[v]), evict)
            held[v] -= k
            evict -= k
            lost[v] = k > 0
        held = held + np.where(active, need, 0)
        # back in the requests' order: apply
        pos = np.empty(n, dtype=np.int64)
        pos[srt] = np.arange(n)
        a_, h_, t_, l_ = active[pos], held[pos], take[pos], lost[pos]
        self.used = int(h_.sum())  # every block is held by a request of the batch
        out = [i for i in range(D0) if not a_[i]]
        swapped: list[Req] = []
        for i in out:  # running requests swapped out, holding what eviction left them
            r = self.dreq[i]
            r.g = r.L_out - int(self.rem[i])
            r.last = float(self.last[i])
            r.blocks = int(h_[i])
            before = r.L_out - r.g
            r.kv_ready = False  # its KV cache is this pool's now (recomputed where evicted)
            r.target = r.L_in + r.g
            r.done = min(int(self.kv[i]), r.blocks * bs)
            self.outstanding += r.outstanding() - before
            swapped.append(r)
            self.preemptions += 1
            self.rec.preemptions[r.idx] += 1
        self.dblk = h_[:D0].copy()
        if out:
            keep = np.ones(D0, dtype=bool)
            keep[out] = False
            self._keep(keep)
        chunks: list[tuple[int, int, Req]] = []
        joined: list[Req] = []
        running = set(map(id, self.prefilling))
        self.prefilling, self.swapped = [], swapped
        for j, r in enumerate(others, start=D0):
            before = r.outstanding()
            r.blocks = int(h_[j])
            if l_[j]:  # the KV of its evicted blocks is gone (VerifyAndLockCached)
                r.kv_ready = False
                r.done = min(r.done, r.blocks * bs)
            if not a_[j]:
                if id(r) in running:
                    self.preemptions += 1
                    self.rec.preemptions[r.idx] += 1
                self.swapped.append(r)
            elif r.g and r.L_in + r.g - r.done == 1:  # lacks only its last token's KV: a decode step
                r.target = r.done
                joined.append(r)
            else:
                r.target = r.L_in + r.g
                chunks.append((int(t_[j]), r.done, r))
                self.prefilling.append(r)
            self.outstanding += r.outstanding() - before
        self._add_decodes(joined, [r.done for r in joined], [r.last for r in joined])
        return chunks

    def _apply_iteration(self, now: float, end: float, chunks: list[tuple[int, int, Req]], joined: list[Req],
                         D: int, u0: int) -> tuple[list[tuple[int, float]], list[tuple[Req, float]]]:
        """The effects of a mixed iteration ending at ``end``: a token for each of the D decoding requests and
        for each request whose prefill completes."""
        done: list[tuple[int, float]] = []
        handoffs: list[tuple[Req, float]] = []
        if D:
            self.rec.gaps.append(end - self.last)
            self.kv += 1
            self.rem -= 1
            self.last[:] = end
            self.outstanding -= D
            done += self._finish_decodes(end)
        self._add_decodes(joined, [r.target for r in joined], [r.last for r in joined])
        moved: list[Req] = []
        prefill_tokens = 0
        for n, p, r in chunks:
            r.done += n
            prefill_tokens += n
            self.outstanding -= n
            if r.done < r.target:
                continue
            self.prefilling.remove(r)
            r.g += 1
            self.outstanding -= 1
            if r.g == 1:
                self.rec.first[r.idx] = end
            else:
                self.rec.gaps.append(np.array([end - r.last]))
            r.last = end
            if r.g >= r.L_out:
                self.rec.finish[r.idx] = end
                self.used -= r.blocks
                done.append((r.idx, end))
            elif self.role == "prefill":
                self.used -= r.blocks
                self.outstanding -= r.L_out - r.g
                handoffs.append((r, end))
            else:
                moved.append(r)
        self._add_decodes(moved, [r.target for r in moved], [end] * len(moved))
        self._record(now, end, 1, prefill_tokens, D, u0)
        self.clock = end
        return done, handoffs

    def _block_limit(self, kmax: int) -> int:
        """Most decode steps (<= kmax) whose blocks fit in the pool."""
        bs, free = self.cfg.block_size, self.cfg.num_blocks - self.used
        kv, dblk = self.kv + self.cfg.lookahead, self.dblk

        def extra(k: int) -> int:
            return int((np.maximum(_ceil_div(kv + k, bs), dblk) - dblk).sum())

        if extra(kmax) <= free:
            return kmax
        lo, hi = 1, kmax  # extra(lo) fits (checked by the caller), extra(hi) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if extra(mid) <= free:
                lo = mid
            else:
                hi = mid
        return lo

    def _run_length(self) -> int:
        """Most pure decode steps in which nothing can change: up to the first completion and the pool's
        blocks."""
        D = len(self.dreq)
        k = min(int(self.rem.min()), MAX_RUN)
        grows = self.cfg.kv_policy != "reserve"  # blocks taken as tokens come
        if grows and self.used + D * ((k + self.cfg.lookahead) // self.cfg.block_size + 1) > self.cfg.num_blocks:
            k = self._block_limit(k)
        return k

    def _apply_run(self, now: float, durs: np.ndarray) -> list[tuple[int, float]]:
        """len(durs) pure decode steps of every decoding request."""
        D, k = len(self.dreq), len(durs)
        ends = now + np.cumsum(durs)
        grows = self.cfg.kv_policy != "reserve"
        u0 = self.used
        self.rec.gaps.append(ends[0] - self.last)
        if k > 1:
            self.rec.runs.append((durs[1:], np.full(k - 1, D)))
        self.kv += k
        self.rem -= k
        end = float(ends[-1])
        self.last[:] = end
        self.outstanding -= D * k
        if grows:
            want = np.maximum(_ceil_div(self.kv + self.cfg.lookahead, self.cfg.block_size), self.dblk)
            self.used += int((want - self.dblk).sum())
            self.dblk = want
        u_end = self.used
        done = self._finish_decodes(end)
        self.timeline.append((now, end, k, 0, D, D, u0, u_end))
        self.clock = end
        return done

    # ---- static batches ---------------------------------------------------------------------------------
    def _plan_static(self) -> Plan:
        """An idle engine takes a new batch (up to ``max_batch`` queued requests, each reserving its final
        context) and prefills it; a busy one runs decode steps over its whole batch."""
        cfg = self.cfg
        if not self.static_active:
            batch: list[Req] = []
            while self.waiting and len(batch) < cfg.max_batch:
                need = int(_ceil_div(self.waiting[0].L_in + self.waiting[0].L_out - 1, cfg.block_size))
                if self.used + need > cfg.num_blocks:
                    break
                r = self.waiting.popleft()
                self._take(r, need)
                batch.append(r)
            if not batch:
                raise RuntimeError("a static batch found no request that fits the KV pool")
            return Plan([(r.L_in, 0, r) for r in batch], [], 0, 0.0, len(batch), 1, batch)
        D = len(self.dreq)
        return Plan([], [], D, float(self.kv.mean()) + 1.0, D, min(int(self.rem.max()), MAX_RUN))

    def _apply_static_prefill(self, batch: list[Req], now: float, end: float) -> list[tuple[int, float]]:
        for r in batch:
            r.g = 1
        done = []
        self._add_decodes(batch, [r.L_in for r in batch], [end] * len(batch))
        for r in batch:
            self.rec.first[r.idx] = end
            self.outstanding -= r.L_in + 1
            if r.L_out == 1:
                self.rec.finish[r.idx] = end
                done.append((r.idx, end))
        self.static_active = True
        self._record(now, end, 1, sum(r.L_in for r in batch), 0, self.used)
        self.clock = end
        if int(self.rem.max()) <= 0:
            self._end_static()
        return done

    def _apply_static_run(self, now: float, durs: np.ndarray) -> list[tuple[int, float]]:
        """len(durs) decode steps of the whole batch (finished requests stay in it as padding)."""
        D, k = len(self.dreq), len(durs)
        ends = now + np.cumsum(durs)
        rem = self.rem
        active = rem > 0
        self.rec.gaps.append(ends[0] - self.last[active])
        if k > 1:
            srt = np.sort(rem[active])
            w = srt.size - np.searchsorted(srt, np.arange(1, k), side="right")  # requests with rem > j
            self.rec.runs.append((durs[1:], w))
        emitted = np.minimum(rem, k) * active
        done = []
        fin = active & (rem <= k)
        for i in np.flatnonzero(fin):
            t = float(ends[rem[i] - 1])
            self.rec.finish[self.dreq[i].idx] = t
            done.append((self.dreq[i].idx, t))
        self.last = np.where(active, ends[np.maximum(np.minimum(rem, k), 1) - 1], self.last)
        self.outstanding -= int(emitted.sum())
        self.kv += k
        self.rem = rem - k
        end = float(ends[-1])
        self.timeline.append((now, end, k, 0, D, D, self.used, self.used))
        self.clock = end
        if int(self.rem.max()) <= 0:
            self._end_static()
        return done

    def _end_static(self) -> None:
        self.used -= int(self.dblk.sum())
        self._keep(np.zeros(len(self.dreq), dtype=bool))
        self.static_active = False


__all__ = ["EngineConfig", "KV_POLICIES", "PREFILL_PASSES", "Plan", "ROLES", "Recorder", "Replica", "Req", "SCHEDULERS", "until"]
