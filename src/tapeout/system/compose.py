"""Compose per-op costs into phases: TTFT, TPOT, end-to-end latency, throughput, memory.

TPOT is the mean decode-step time over the contexts the generation actually sees: step j
(j = 1 .. output_len-1) attends to input_len + j keys. Up to ``EXACT_STEPS`` steps are all
evaluated; longer generations are integrated with the trapezoid rule on ``SAMPLES`` evenly
spaced contexts. Under the roofline tier each op's step time is a maximum of two affine
functions of the context, so the trapezoid error is confined to the one interval holding each
op's kink; tests bound the relative error of TPOT below 0.1% against the exact per-step mean.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tapeout.hardware.spec import HardwareSpec
from tapeout.models.spec import ModelSpec
from tapeout.perf import estimate
from tapeout.perf.cost import OpCost
from tapeout.system.memory import MemoryPlan, plan
from tapeout.workload.build import build_graph
from tapeout.workload.ops import Op, OpGraph
from tapeout.workload.scenario import Scenario

EXACT_STEPS = 64
SAMPLES = 65


@dataclass(frozen=True, slots=True)
class PhaseCost:
    phase: str
    time_s: float
    graph: OpGraph
    costs: tuple[OpCost, ...]
    #: time of each pipeline stage (one entry without pipeline parallelism); time_s is their sum
    stage_times: tuple[float, ...] = ()

    @property
    def ops(self) -> tuple[Op, ...]:
        return self.graph.ops


def price(graph: OpGraph, hw: HardwareSpec, tier: str) -> PhaseCost:
    costs = tuple(estimate(op, hw, tier) for op in graph.ops)
    host = hw.efficiency.prefill_host_overhead_us
    if graph.phase == "prefill" and host > 0:
        costs = tuple(_with_prefill_host(c, host) for c in costs)
    t = sum(c.total_s for c in costs)
    return PhaseCost(graph.phase, t, graph, costs, (t,))


def _with_prefill_host(c: OpCost, host_us: float) -> OpCost:
    """The op's cost with the host's dispatch time of an eager (graph-less) prefill launch added."""
    extra = host_us * 1e-6
    over = c.overhead_s + extra
    bound = "overhead" if over > max(c.compute_s, c.memory_s, c.network_s) else c.bound
    return replace(c, time_s=c.time_s + extra, overhead_s=over, bound=bound,
                   terms={**c.terms, "prefill_host_us": host_us})


def price_stages(model: ModelSpec, hw: HardwareSpec, sc: Scenario, tier: str, phase: str,
                 context: int | None = None) -> PhaseCost:
    """One phase over every pipeline stage: the stages run one after the other for a batch (their times
    add up); op names carry their stage (``s1/qkv_proj``) when there is more than one."""
    if sc.pp == 1:
        return price(build_graph(model, sc, phase, context), hw, tier)
    parts = [price(build_graph(model, sc, phase, context, stage=s), hw, tier) for s in range(sc.pp)]
    ops = tuple(replace(o, name=f"s{s}/{o.name}") for s, p in enumerate(parts) for o in p.graph.ops)
    costs = tuple(replace(c, name=f"s{s}/{c.name}") for s, p in enumerate(parts) for c in p.costs)
    g0 = parts[0].graph
    graph = OpGraph(phase=g0.phase, ops=ops, tokens=g0.tokens, context=g0.context)
    return PhaseCost(phase, sum(p.time_s for p in parts), graph, costs, tuple(p.time_s for p in parts))


def decode_contexts(sc: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """(contexts, weights) whose weighted sum of step times is the mean decode step time."""
    first, last = sc.input_len + 1, sc.input_len + max(sc.output_len - 1, 1)
    n = last - first + 1
    if n <= EXACT_STEPS:
        ctx = np.arange(first, last + 1)
        return ctx, np.full(n, 1.0 / n)
    x = np.linspace(first, last, SAMPLES)
    ctx = np.rint(x).astype(int)
    w = np.full(SAMPLES, 1.0)
    w[0] = w[-1] = 0.5
    return ctx, w / w.sum()


@dataclass(frozen=True, slots=True)
class Composition:
    prefill: PhaseCost
    decode_steps: tuple[PhaseCost, ...]
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
    def decode_representative(self) -> PhaseCost:
        """The decode step at the middle of the generation, for per-op reports."""
        return self.decode_steps[len(self.decode_steps) // 2]


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
    tokens = sc.pp_microbatches * b * sc.output_len
    per_seq = sc.pp_microbatches * sc.output_len  # generated tokens of one sequence slot
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
    """
    prefill = price_stages(model, hw, sc, tier, "prefill")
    ctx, weights = decode_contexts(sc)
    steps = tuple(price_stages(model, hw, sc, tier, "decode", int(c)) for c in ctx)
    mb = sc.pp_microbatches
    cycles = [max(s.time_s, mb * max(s.stage_times)) for s in steps]
    tpot = float(np.dot(weights, cycles))
    ttft = prefill.time_s
    e2e = ttft + (sc.output_len - 1) * tpot
    prefill_pipe = prefill.time_s + (mb - 1) * max(prefill.stage_times)
    total = prefill_pipe + (sc.output_len - 1) * tpot
    mem = plan(model, hw, sc, [prefill.graph, steps[-1].graph])
    return Composition(
        prefill=prefill, decode_steps=steps, decode_weights=tuple(float(w) for w in weights), memory=mem,
        ttft_s=ttft, tpot_s=tpot, e2e_latency_s=e2e, throughput_tok_s=mb * sc.batch * sc.output_len / total,
    )
