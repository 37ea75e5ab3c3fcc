"""``tapeout.simulate``: requests through one or many serving replicas, metrics as benchmark clients report.

Metrics follow vLLM's ``benchmarks/benchmark_serving.py`` (the client the TensorRT-LLM online-serving
table's columns match; LMDeploy's ``profile_throughput.py`` defines the same quantities):

- ``ttft_s``: per request, first token time - send time (queueing and prefill included);
- ``tpot_s``: per request with more than one output token, (e2e latency - TTFT) / (output tokens - 1);
- ``itl_s``: every gap between consecutive tokens of a request, pooled over all requests;
- ``e2e_latency_s``: per request, last token time - send time;
  each as ``mean``, ``p50``, ``p90``, ``p99`` (``numpy.percentile``, linear, as the client computes them);
- ``duration_s``: from the first request's send time to the last request's last token;
- ``request_throughput_rps`` = requests / duration, ``output_throughput_tok_s`` = output tokens /
  duration, ``total_throughput_tok_s`` = (prompt + output tokens) / duration;
- ``goodput_rps``: requests meeting every SLO given (TTFT <= ``slo_ttft``, TPOT <= ``slo_tpot``; a one-token
  request's TPOT counts as 0, as vLLM's ``--goodput``) / duration; without SLOs every request counts;
- ``kv_utilization``: blocks in use over the pool, time-weighted ``mean`` over the run and ``max``
  (replicas averaged / maximised); ``preemptions``: requests preempted (counted each time).

Nothing outside the engine is modelled: no HTTP/RPC, tokenization or detokenization time.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tapeout.errors import TapeoutError
from tapeout.serving.engine import EngineConfig, Recorder, Replica, Req
from tapeout.serving.inputs import (SCENARIO_EXCLUDE, SCENARIO_KEYS, ServingInputs,  # noqa: F401 - re-exported
                                    serving_inputs, split)
from tapeout.serving.iteration import iteration_pricer, stage_pricers
from tapeout.serving.wide import DPGroup, dp_ranks
from tapeout.serving.workload import Requests, make_requests
from tapeout.specio import keyword_api
from tapeout.workload.scenario import PredictInputs, Scenario

#: max_num_tokens when not given: TensorRT-LLM's trtllm-build default for in-flight batching (8192) and
#: vLLM's default token budget with chunked prefill (2048); static batches have no token limit
DEFAULT_MAX_NUM_TOKENS = {"continuous": 8192, "chunked": 2048, "static": None}
PERCENTILES = (50, 90, 99)


def _stats(x: np.ndarray) -> dict[str, float]:
    if x.size == 0:
        return {"mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0}
    p = np.percentile(x, PERCENTILES)
    return {"mean": float(x.mean()), "p50": float(p[0]), "p90": float(p[1]), "p99": float(p[2])}


@dataclass
class SimResult:
    """A simulated serving run. ``to_dict()`` is exactly ``tapeout simulate --format json``."""

    inputs: dict[str, Any]
    engine: dict[str, Any]
    requests: Requests
    recorder: Recorder
    replicas: list[Replica]
    slo_ttft: float | None = None
    slo_tpot: float | None = None
    _metrics: dict[str, Any] | None = field(default=None, repr=False)

    # ---- per-request values ---------------------------------------------------------------------------
    @property
    def ttft(self) -> np.ndarray:
        return self.recorder.first - self.recorder.sent

    @property
    def e2e(self) -> np.ndarray:
        return self.recorder.finish - self.recorder.sent

    @property
    def tpot(self) -> np.ndarray:
        """TPOT of every request with more than one output token."""
        out = self.requests.output_len
        many = out > 1
        return (self.e2e[many] - self.ttft[many]) / (out[many] - 1)

    @property
    def itl(self) -> np.ndarray:
        return self.recorder.itl()

    def within_slo(self) -> np.ndarray:
        """Per request: within every SLO given (a one-token request's TPOT counts as 0, as vLLM's ``--goodput``)."""
        ttft, out = self.ttft, self.requests.output_len
        good = np.ones(len(self.requests), dtype=bool)
        if self.slo_ttft is not None:
            good &= ttft <= self.slo_ttft
        if self.slo_tpot is not None:
            good &= np.where(out > 1, (self.e2e - ttft) / np.maximum(out - 1, 1), 0.0) <= self.slo_tpot
        return good

    def metrics(self) -> dict[str, Any]:
        if self._metrics is not None:
            return self._metrics
        rec, reqs = self.recorder, self.requests
        n = len(reqs)
        duration = float(np.max(rec.finish) - np.min(rec.sent)) if n else 0.0
        duration = duration if duration > 0 else float("nan")
        ttft, e2e = self.ttft, self.e2e
        out = reqs.output_len
        good = self.within_slo()
        means, maxes = [], []
        for r in self.replicas:
            nb = r.cfg.num_blocks
            if not r.timeline or nb <= 0:
                continue
            tl = np.array([(a, b, u0, u1) for a, b, _, _, _, _, u0, u1 in r.timeline])
            area = float(np.sum((tl[:, 1] - tl[:, 0]) * (tl[:, 2] + tl[:, 3]) / 2))
            means.append(area / nb / duration if math.isfinite(duration) else 0.0)
            maxes.append(float(tl[:, 2:].max()) / nb)
        iterations = sum(sum(s for _, _, s, *_ in r.timeline) for r in self.replicas)
        d = duration if math.isfinite(duration) else 0.0
        rate = (lambda x: float(x / duration)) if math.isfinite(duration) else (lambda x: 0.0)
        self._metrics = {
            "completed": int(np.isfinite(rec.finish).sum()),
            "duration_s": d,
            "request_throughput_rps": rate(n),
            "output_throughput_tok_s": rate(float(out.sum())),
            "total_throughput_tok_s": rate(float(out.sum() + reqs.input_len.sum())),
            "goodput_rps": rate(float(good.sum())),
            "ttft_s": _stats(ttft),
            "tpot_s": _stats(self.tpot),
            "itl_s": _stats(self.itl),
            "e2e_latency_s": _stats(e2e),
            "kv_utilization": {"mean": float(np.mean(means)) if means else 0.0,
                               "max": float(np.max(maxes)) if maxes else 0.0},
            "preemptions": int(rec.preemptions.sum()),
            "iterations": int(iterations),
            "mean_batch_size": float(self._mean_batch()),
            "total_input_tokens": int(reqs.input_len.sum()),
            "total_output_tokens": int(out.sum()),
        }
        return self._metrics

    def _mean_batch(self) -> float:
        """Running requests per iteration, averaged over iterations."""
        w = sum(s * b for r in self.replicas for _, _, s, _, _, b, _, _ in r.timeline)
        n = sum(s for r in self.replicas for _, _, s, *_ in r.timeline)
        return w / n if n else 0.0

    def __getattr__(self, name: str) -> Any:  # result.ttft_s, result.output_throughput_tok_s, ...
        if name.startswith("_"):
            raise AttributeError(name)
        m = self.metrics()
        if name in m:
            return m[name]
        raise AttributeError(f"SimResult has no attribute {name!r}")

    def to_dict(self) -> dict[str, Any]:
        from tapeout.cliutil import json_safe

        return json_safe({"inputs": dict(self.inputs), "engine": dict(self.engine), **self.metrics()})

    def timeline(self) -> list[dict[str, Any]]:
        """Per replica and iteration (or run of equal decode steps): times, steps, prefill tokens, decoding
        and running requests, KV blocks in use at its start and end."""
        keys = ("start_s", "end_s", "steps", "prefill_tokens", "decodes", "running", "blocks_start", "blocks_end")
        return [{"replica": r.rid, **dict(zip(keys, row))} for r in self.replicas for row in r.timeline]

    def write_trace(self, path: str | Path) -> Path:
        from tapeout.serving.export import write_chrome_trace

        return write_chrome_trace(self, path)

    def plot(self, folder: str | Path) -> list[Path]:
        from tapeout.serving.export import write_plots

        return write_plots(self, folder)


class _Source:
    """The client: scheduled send times, at most ``concurrency`` requests in flight. A request held back by the
    cap is sent when one of the client's requests completes (:meth:`reacting`)."""

    def __init__(self, reqs: Requests) -> None:
        self.sched = reqs.arrival_s
        self.cap = reqs.concurrency
        self.n = len(reqs)
        self.i = 0
        self.inflight = 0
        self.floor = 0.0

    def next_time(self) -> float:
        if self.i >= self.n or (self.cap is not None and self.inflight >= self.cap):
            return math.inf
        return max(float(self.sched[self.i]), self.floor)

    def reacting(self) -> bool:
        """The next request goes out in reaction to a completion (held back by the cap until then)."""
        return self.cap is not None and self.i >= self.cap and self.floor > 0 and self.floor >= self.sched[self.i]

    def issue(self) -> tuple[int, float]:
        t = self.next_time()
        self.i += 1
        self.inflight += 1
        return self.i - 1, t

    def complete(self, t: float) -> None:
        if self.cap is not None and self.inflight >= self.cap:
            self.floor = max(self.floor, t)
        self.inflight -= 1


class _Router:
    """Picks a replica by ``policy``; inside a replica of several virtual engines (pipeline micro-batches), the
    engine with the fewest unfinished requests (vLLM's)."""

    def __init__(self, pool: list[Replica], policy: str) -> None:
        self.groups = [r.group for r in pool if r.group[0] is r]
        self.policy, self.i = policy, 0

    def pick(self) -> Replica:
        gs = self.groups
        if self.policy == "round_robin" or len(gs) == 1:
            g = gs[self.i % len(gs)]
            self.i += 1
        else:
            g = min(gs, key=lambda g: (sum(r.outstanding for r in g), g[0].rid))
        return g[0] if len(g) == 1 else min(g, key=lambda r: (r.unfinished(), r.rid))


def _replicas(n: int, first: int, microbatches: int, make, dp: int = 1,  # noqa: ANN001 - make(rid) -> Replica
              router: str = "round_robin") -> list:
    """``n`` replicas of ``microbatches`` virtual engines each (rids from ``first``), each group sharing its stages;
    or, with ``dp`` > 1, of ``dp`` data-parallel attention ranks in step (:class:`DPGroup`), routed by ``router``."""
    out: list = []
    for i in range(n):
        group = [make(first + i * microbatches * dp + j) for j in range(microbatches * dp)]
        if dp > 1:
            out.append(DPGroup(group, _Router(group, router).pick))
            continue
        for r in group:
            r.group = group
        out += group
    return out


def run(reqs: Requests, replicas: list[Replica], router: str, rec: Recorder, *, decode_pool: list[Replica] | None
        = None, transfer=None, progress=None) -> None:  # noqa: ANN001
    """Drive the requests through the replicas in time order (arrivals first on ties, but one sent in reaction
    to a completion: see below). With a ``decode_pool`` the replicas are prefill replicas: each prefilled
    request moves there after ``transfer(tokens)`` seconds.

    A closed-loop client sends its next request when it has received the last token of one before, which the
    engine streams at the end of an iteration; the engine does not wait for it: it takes its queued requests
    and starts the next iteration at once (LMDeploy TurboMind's ``LlamaBatch::InternalThreadEntry`` loop,
    InternLM/lmdeploy ``src/turbomind/models/llama/LlamaBatch.cc``, v0.1 and v0.2 eras: ``Finish`` invokes
    the stream callbacks and signals the finished requests, then the loop returns to
    ``request_queue.dequeue``, which blocks only when the batch is empty). So such a request reaches a busy
    engine after its next iteration has begun and waits for it (one iteration more in its first-token
    latency); an idle engine takes it at once, with every other request sent then."""
    src = _Source(reqs)
    front = _Router(replicas, router)
    back = _Router(decode_pool, router) if decode_pool else None
    everyone = replicas + (decode_pool or [])
    moves: list[tuple[float, int, Req]] = []
    done_count = 0
    while True:
        ta = src.next_time()
        tm = moves[0][0] if moves else math.inf
        busy = [r for r in everyone if r.has_work()]
        rmin = min(busy, key=lambda r: r.clock) if busy else None
        t_next = min(ta, tm)
        if rmin is None or t_next < rmin.clock or (t_next == rmin.clock and (
                tm <= ta or not src.reacting() or rmin.woke == ta)):
            if t_next == math.inf:
                if rmin is None:
                    return
            elif tm < ta:
                t, _, r = heapq.heappop(moves)
                assert back is not None
                back.pick().submit(r, t)
                continue
            else:
                idx, t = src.issue()
                rec.sent[idx] = t
                front.pick().submit(Req(idx, int(reqs.input_len[idx]), int(reqs.output_len[idx])), t)
                continue
        assert rmin is not None
        done, handoffs = rmin.step(t_next)
        for _, t in done:
            src.complete(t)
        if done and progress is not None:
            done_count += len(done)
            progress(done_count)
        for r, t in handoffs:
            r.kv_ready = True
            r.blocks = 0
            r.done = 0
            heapq.heappush(moves, (t + transfer(r.target), r.idx, r))


def simulate(model: Any, hardware: Any, *, progress: bool = False, **kwargs: Any) -> SimResult:
    """Simulate serving ``num_requests`` requests of ``model`` on replicas of ``tp`` x ``pp`` ``hardware``.

    The keywords are :class:`~tapeout.serving.inputs.ServingInputs`' (engine, cluster, traffic, SLOs: declared
    there with their defaults, allowed values and checks), then :func:`tapeout.predict`'s scenario keywords
    (:class:`~tapeout.workload.scenario.PredictInputs`) but :data:`SCENARIO_EXCLUDE`; ``progress`` shows a bar.

    Engine: ``scheduler`` static | continuous | chunked (:mod:`tapeout.serving.engine`), at most
    ``max_batch`` running requests and ``max_num_tokens`` tokens per iteration (default 8192 continuous,
    2048 chunked); a paged KV pool of ``block_size``-token blocks holding ``kv_fraction`` of the memory left
    after weights, the largest iteration's activations and the runtime reserve (``kv_tokens`` sets the pool
    in tokens instead, for an engine that states it), ``kv_policy`` paged (vLLM's: preemption by recompute),
    turbomind (LMDeploy TurboMind's: swap-out keeping the prefix's KV) or reserve (the default: TensorRT-LLM's
    guaranteed-no-evict). The scenario keywords: parallelism, formats, attention, ``kv_fraction``,
    ``framework``, ``scenario``, ``tier``, ``efficiency``.

    Traffic (:func:`tapeout.serving.workload.make_requests`): ``input_len`` / ``output_len`` (an int, a
    distribution mapping or text such as ``"lognormal:mean=250,sigma=1"``), ``workload="sharegpt"``, or a
    JSONL ``trace``; ``rate`` requests/s (``inf``: all at once) with ``arrival`` poisson | gamma
    (``burstiness``), ``concurrency`` (requests in flight; closed loop with ``rate=inf``); ``seed``.

    Pipeline: with ``pp`` stages, ``pp_microbatches`` m > 1 runs m batches in flight in each replica (m virtual
    engines, each with ``max_batch`` and 1/m of the KV pool, sharing the stages; :mod:`tapeout.serving.engine`).

    Wide expert parallelism: with ``ep`` > ``tp`` each replica is ``ep`` data-parallel attention ranks in step,
    each with its own scheduler and pool, requests placed on them by ``router`` (:mod:`tapeout.serving.wide`).

    Cluster: ``replicas`` engines behind a ``router`` (round_robin | least_tokens: fewest outstanding
    prompt + output tokens), or prefill/decode disaggregation with ``prefill_replicas`` and
    ``decode_replicas`` (each prefilled request's KV cache moves to a decode replica, priced as a
    point-to-point send; its first token leaves the prefill replica). ``slo_ttft`` / ``slo_tpot`` (seconds)
    define ``goodput_rps``. ``exact`` prices every iteration without shape buckets (slower).
    """
    from tapeout.api import predict_inputs, prepare
    from tapeout.system.memory import plan
    from tapeout.workload.build import pipeline

    own, scenario_inputs = split(kwargs, "simulate", ServingInputs, PredictInputs)
    bad = sorted(set(scenario_inputs) & set(SCENARIO_EXCLUDE))
    if bad:
        raise TypeError(f"simulate() got an unexpected keyword argument {bad[0]!r}")
    args = predict_inputs(scenario_inputs, fn="simulate")
    s = serving_inputs(own)
    tp, pp, ep, pp_microbatches = args.tp, args.pp, args.ep, args.pp_microbatches
    scheduler, max_batch, block_size = s.scheduler, s.max_batch, s.block_size
    if scheduler == "chunked" and args.attention == "naive":
        raise TapeoutError("chunked prefill needs fused attention; allowed: flash, mmha", field="attention")

    reqs = make_requests(input_len=s.input_len, output_len=s.output_len, num_requests=s.num_requests, rate=s.rate,
                         arrival=s.arrival, burstiness=s.burstiness, concurrency=s.concurrency, trace=s.trace,
                         workload=s.workload, seed=s.seed)
    mnt = DEFAULT_MAX_NUM_TOKENS[scheduler] if s.max_num_tokens is None else s.max_num_tokens
    kv_tokens, disagg = s.kv_tokens, s.disaggregated
    longest = int(reqs.input_len.max())
    # the largest iteration: the token budget, a longer prompt alone, or a whole static batch
    peak_tokens = max(mnt or 0, longest) if scheduler != "static" else min(max_batch, len(reqs)) * longest
    # peak_tokens is the largest pass already: no prefill budget on top
    pre = prepare(model, hardware, args.model_copy(update={"batch": 1, "input_len": peak_tokens, "output_len": 1,
                                                           "max_prefill_tokens": None}))
    m, hw, tier, sc = pre.model, pre.hardware, pre.tier, pre.scenario
    pipe = pipeline(m, sc)
    distinct = pipe.distinct()
    mem = plan(m, hw, sc, [st.prefill for st in distinct], pipe.same_as)
    pool = mem.kv_capacity_tokens if kv_tokens is None else kv_tokens
    if kv_tokens is None and m.local_attention is not None:
        # the plan's rate is the mean per token at its context, windows reclaimed; the block manager counts
        # every token at the all-layer rate (conservative: sliding windows are not reclaimed)
        from tapeout.system.memory import kv_bytes_per_token

        pool = int(pool * mem.kv_cache_bytes_per_token / kv_bytes_per_token(m, sc))
    num_blocks = pool // block_size
    if s.prefill_pass != "fused" and sc.dp > 1:
        raise TapeoutError(f"{s.prefill_pass} prefill passes are not modelled for data-parallel attention ranks; "
                           "allowed with dp > 1: fused", field="prefill_pass")
    cfg = EngineConfig(scheduler=scheduler, max_batch=max_batch, max_num_tokens=mnt, block_size=block_size,
                       num_blocks=num_blocks, kv_policy=s.kv_policy, prefill_pass=s.prefill_pass)
    need = int(np.max(reqs.input_len + reqs.output_len - 1)) + cfg.lookahead
    if (num_blocks - cfg.watermark_blocks) * block_size < need:
        what = (f"weights and activations need {mem.weights_bytes / 1e9:.1f} + {mem.activation_bytes / 1e9:.1f} GB "
                f"of the device's {mem.capacity_bytes / 1e9:.1f} GB") if kv_tokens is None else "kv_tokens"
        raise TapeoutError(
            f"the KV pool holds {num_blocks * block_size} tokens ({what}); the longest request needs {need}; "
            "allowed: a larger kv_fraction or tp, a smaller max_num_tokens, or shorter requests",
            field="kv_fraction" if kv_tokens is None else "kv_tokens")
    price = iteration_pricer(m, hw, sc, tier, exact=s.exact)
    stages = stage_pricers(m, hw, sc, tier, exact=s.exact) if pp_microbatches > 1 else None
    rec = Recorder(len(reqs))
    mb = pp_microbatches
    if disagg:
        pre = _replicas(s.prefill_replicas, 0, mb, lambda i: Replica(i, cfg, price, rec, role="prefill", stages=stages),
                        sc.dp, s.router)
        dec = _replicas(s.decode_replicas, s.prefill_replicas * mb * sc.dp, mb,
                        lambda i: Replica(i, cfg, price, rec, role="decode", stages=stages), sc.dp, s.router)
        per_token = mem.kv_cache_bytes_per_token
        reps, pool_list = dp_ranks(pre + dec), (pre, dec)
    else:
        drivers = _replicas(s.replicas, 0, mb, lambda i: Replica(i, cfg, price, rec, stages=stages), sc.dp, s.router)
        reps, pool_list = dp_ranks(drivers), (drivers, None)
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task("simulating", total=len(reqs))
        bar.start()

        def tick(n: int) -> None:
            if n % 64 == 0 or n == len(reqs):
                bar.update(task, completed=n)
    try:
        run(reqs, pool_list[0], s.router, rec, decode_pool=pool_list[1],
            transfer=(lambda tokens: price.kv_transfer(tokens, per_token)) if disagg else None,
            progress=tick if bar is not None else None)
    finally:
        if bar is not None:
            bar.stop()
    inputs = {"model": m.name, "hardware": hw.name, **scenario_inputs_ran(args, sc, tier),
              **s.ran(max_num_tokens=mnt, replicas=len(reps) // (mb * sc.dp) if not disagg else 0,
                      num_requests=len(reqs))}
    engine = {
        "kv_capacity_tokens": int(pool), "num_blocks": int(num_blocks),
        "kv_cache_bytes_per_token": float(mem.kv_cache_bytes_per_token),
        "weights_bytes": float(mem.weights_bytes), "activation_bytes": float(mem.activation_bytes),
        "watermark_blocks": cfg.watermark_blocks, "gpus": len(reps) // mb * tp * pp,
        "mean_input_len": float(reqs.input_len.mean()), "mean_output_len": float(reqs.output_len.mean()),
    }
    return SimResult(inputs, engine, reqs, rec, reps, s.slo_ttft, s.slo_tpot)


#: ``simulate``'s signature: ``progress``, :class:`ServingInputs`' fields, then :class:`PredictInputs`' but
#: :data:`SCENARIO_EXCLUDE`
keyword_api(simulate, ServingInputs, (PredictInputs, SCENARIO_EXCLUDE))


def scenario_inputs_ran(args: PredictInputs, sc: Scenario, tier: str) -> dict[str, Any]:
    """The scenario part of ``SimResult.inputs``: every keyword of :data:`SCENARIO_KEYS`, in their declared
    order, as the resolved :class:`Scenario` dumps it where it resolves it (formats by name, the framework
    profile), the tier that ran, the others as given (a scenario file's path); then the per-layer rules a
    scenario file set (``layers``), as ``predict``'s ``to_dict()["inputs"]`` writes them."""
    given = args.model_dump(mode="json", include=set(SCENARIO_KEYS))
    ran = sc.model_dump(include=set(Scenario.model_fields) - set(SCENARIO_EXCLUDE))
    return given | ran | {"tier": tier}


__all__ = ["DEFAULT_MAX_NUM_TOKENS", "SCENARIO_EXCLUDE", "SCENARIO_KEYS", "SimResult", "run",
           "scenario_inputs_ran", "simulate"]
