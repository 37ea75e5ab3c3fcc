"""Serving simulation (issue 14): consistency with predict, engine invariants, bucketing error, workloads,
metrics as the benchmark clients define them, the CLI, capacity, exports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import tapeout
from tapeout.cli import app
from tapeout.errors import TapeoutError

FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sim(**kw):
    kw.setdefault("tier", "roofline")
    return tapeout.simulate(kw.pop("model", "llama-3.1-8b"), kw.pop("hardware", "h100-sxm"), **kw)


# ---- consistency with predict ------------------------------------------------------------------------

@pytest.mark.parametrize("case", [
    dict(model="llama-3.1-8b", hardware="h100-sxm", batch=8, input_len=512, output_len=128, tp=1),
    dict(model="llama-3.1-8b", hardware="a100-sxm-80gb", batch=32, input_len=200, output_len=300, tp=1),
    dict(model="llama-3.1-70b", hardware="h100-sxm", batch=16, input_len=1000, output_len=64, tp=4),
    dict(model="mixtral-8x7b", hardware="h100-sxm", batch=4, input_len=300, output_len=40, tp=2, ep=2),
    dict(model="llama-2-13b", hardware="a100-sxm-80gb", batch=6, input_len=128, output_len=16, tp=2, pp=2),
    dict(model="gemma-2-9b", hardware="h100-sxm", batch=4, input_len=6000, output_len=20, tp=1),
    dict(model="deepseek-v2-lite", hardware="h100-sxm", batch=8, input_len=700, output_len=30, tp=1),
])
@pytest.mark.parametrize("tier", ["tiled", "roofline"])
def test_one_static_batch_equals_predict(case, tier):
    """scheduler=static with one batch of equal requests is predict's scenario: e2e latency and throughput
    within 1% (measured: equal to 1e-9 where no bucket is crossed; pipeline, MoE, sliding windows and MLA
    included). The static scheduler prefills a batch in one iteration, as a static engine without a token
    budget does: predict's ``max_prefill_tokens=None``."""
    c = dict(case)
    b = c.pop("batch")
    p = tapeout.predict(c["model"], c["hardware"], batch=b, tier=tier, max_prefill_tokens=None,
                        **{k: v for k, v in c.items() if k not in ("model", "hardware")})
    r = tapeout.simulate(c.pop("model"), c.pop("hardware"), scheduler="static", num_requests=b, max_batch=b,
                         rate=math.inf, tier=tier, **c)
    m = r.metrics()
    assert m["completed"] == b
    assert m["e2e_latency_s"]["mean"] == pytest.approx(p.e2e_latency_s, rel=0.01)
    assert m["e2e_latency_s"]["p99"] == pytest.approx(p.e2e_latency_s, rel=0.01)
    assert m["output_throughput_tok_s"] == pytest.approx(p.throughput_tok_s, rel=0.01)
    assert m["ttft_s"]["mean"] == pytest.approx(p.ttft_s, rel=0.01)
    assert m["tpot_s"]["mean"] == pytest.approx(p.tpot_s, rel=0.01)


@pytest.mark.parametrize("scheduler", ["continuous", "chunked"])
@pytest.mark.parametrize("model,hardware,tp,lens", [
    ("llama-3.1-8b", "h100-sxm", 1, (512, 64)),
    ("llama-3.1-70b", "h200", 4, (1500, 32)),
])
def test_low_rate_ttft_is_predicts_batch_one_ttft(scheduler, model, hardware, tp, lens):
    """At 0.2% of the replica's capacity (its offline request throughput) requests hardly meet: mean TTFT within
    5% of predict's batch-1 TTFT (and TPOT within 5% of its batch-1 TPOT). At 1%, 8B's requests (50 req/s
    offline, 0.45 s each alone) overlap a fifth of the time and TTFT is 12% above: queueing, not pricing."""
    S, O = lens
    offline = tapeout.simulate(model, hardware, tp=tp, input_len=S, output_len=O, num_requests=64, scheduler=scheduler)
    capacity = offline.metrics()["request_throughput_rps"]
    r = tapeout.simulate(model, hardware, tp=tp, input_len=S, output_len=O, num_requests=40,
                         rate=0.002 * capacity, scheduler=scheduler, seed=3)
    p = tapeout.predict(model, hardware, tp=tp, batch=1, input_len=S, output_len=O)
    assert r.metrics()["ttft_s"]["mean"] == pytest.approx(p.ttft_s, rel=0.05)
    assert r.metrics()["tpot_s"]["mean"] == pytest.approx(p.tpot_s, rel=0.05)


def test_closed_loop_of_equal_requests_runs_as_static_batches():
    """C clients sending equal requests whose prompts fit one iteration move in lockstep: the throughput of
    predict's batch of C (within 0.5%)."""
    for C, S, O in ((8, 512, 64), (32, 100, 200)):
        p = tapeout.predict("llama-3.1-8b", "h100-sxm", batch=C, input_len=S, output_len=O, tier="roofline")
        r = sim(input_len=S, output_len=O, num_requests=3 * C, concurrency=C, max_batch=C)
        assert r.metrics()["output_throughput_tok_s"] == pytest.approx(p.throughput_tok_s, rel=0.005)


# ---- engine invariants (hypothesis) -----------------------------------------------------------------

SCHEDULERS = st.sampled_from(["static", "continuous", "chunked"])


@FAST
@given(scheduler=st.sampled_from(["continuous", "chunked"]), S=st.sampled_from([16, 64, 256, 1024, 3000]),
       O=st.sampled_from([2, 4, 32, 128]), n=st.integers(20, 50), mb=st.sampled_from([4, 16, 64, 256]),
       seed=st.integers(0, 1000), r0=st.floats(0.5, 100), policy=st.sampled_from(["reserve", "paged", "turbomind"]))
def test_p99_ttft_does_not_fall_as_the_rate_rises(scheduler, S, O, n, mb, seed, r0, policy):
    """The same requests (seed) at rates r0, 2 r0, 4 r0: p99 TTFT never falls by more than the alignment of an
    arrival with the iteration in flight (at most the longest iteration of the lighter run); static batching
    is left out: a later arrival there may catch an earlier batch. Every KV policy."""
    prev, slack = None, 0.0
    for rate in (r0, 2 * r0, 4 * r0):
        r = sim(scheduler=scheduler, input_len=S, output_len=O, num_requests=n, rate=rate, max_batch=mb, seed=seed,
                kv_policy=policy)
        p99 = float(np.percentile(r.ttft, 99))
        if prev is not None:
            assert p99 >= prev - slack - 1e-12
        longest = max((b - a) / s for rep in r.replicas for a, b, s, *_ in rep.timeline)
        prev, slack = p99, longest


@FAST
@given(scheduler=SCHEDULERS, C=st.integers(1, 48), S=st.integers(1, 2500), O=st.integers(1, 200),
       closed=st.booleans(), mnt=st.sampled_from([None, 512, 4096]), seed=st.integers(0, 100))
def test_throughput_never_exceeds_the_static_decode_bound(scheduler, C, S, O, closed, mnt, seed):
    """At most C requests run at once, so an iteration emits at most C tokens and lasts at least a decode step
    of the requests it emits for: output throughput <= max over k <= C of k / (decode step of k at context
    S + 1), the rate of a static batch that never prefills (predict's first decode step)."""
    kw = dict(concurrency=C, max_batch=256) if closed else dict(rate=math.inf, max_batch=C)
    r = sim(scheduler=scheduler, input_len=S, output_len=O, num_requests=2 * C + 3, max_num_tokens=mnt,
            seed=seed, **kw)
    price = r.replicas[0].price
    bound = max(k / price.decode_steps(k, S + 1, 1)[0] for k in range(1, C + 1))
    assert r.metrics()["output_throughput_tok_s"] <= bound * (1 + 1e-9)
    p = tapeout.predict("llama-3.1-8b", "h100-sxm", batch=C, input_len=S, output_len=2, tier="roofline")
    assert C / p.result.decode.step_times[0] <= bound * (1 + 1e-9)


@FAST
@given(scheduler=SCHEDULERS, policy=st.sampled_from(["paged", "reserve", "turbomind"]), n=st.integers(5, 60),
       kv_blocks=st.integers(40, 400), bs=st.sampled_from([8, 16, 64]), rate=st.sampled_from([math.inf, 5.0, 50.0]),
       mb=st.sampled_from([2, 8, 64]), seed=st.integers(0, 1000), replicas=st.integers(1, 3),
       micro=st.sampled_from([1, 1, 2, 3]), passes=st.sampled_from(["fused", "separate", "alone"]))
def test_no_request_is_lost_and_blocks_stay_within_the_pool(scheduler, policy, n, kv_blocks, bs, rate, mb, seed,
                                                             replicas, micro, passes):
    """A KV pool small enough to preempt: every request completes once, in order sent <= first token <= last
    token, having streamed exactly its output tokens (the pooled ITL list holds sum(output - 1) gaps); the
    blocks in use never exceed the pool and all return to it. Pipeline micro-batches (virtual engines) and
    separate prefill passes (not with chunks) and prefills run alone (continuous, not turbomind) too."""
    pipe = {"pp": 2, "pp_microbatches": micro} if micro > 1 else {}
    if (passes == "separate" and scheduler == "chunked") or (passes == "alone" and (
            scheduler != "continuous" or policy == "turbomind")):
        passes = "fused"
    r = sim(scheduler=scheduler, kv_policy=policy, kv_tokens=kv_blocks * bs + 600, block_size=bs,
            input_len="uniform:low=1,high=300", output_len="uniform:low=1,high=300", num_requests=n, rate=rate,
            max_batch=mb, seed=seed, replicas=replicas, max_num_tokens=512, prefill_pass=passes, **pipe)
    rec = r.recorder
    assert np.isfinite(rec.finish).all() and r.metrics()["completed"] == n
    assert (rec.sent <= rec.first).all() and (rec.first <= rec.finish).all()
    assert r.itl.size == int((r.requests.output_len - 1).sum())
    assert (r.itl >= 0).all()
    for rep in r.replicas:
        nb = rep.cfg.num_blocks
        assert all(0 <= u0 <= nb and 0 <= u1 <= nb for *_, u0, u1 in rep.timeline)
        assert rep.used == 0 and not rep.has_work() and rep.outstanding == 0
    if policy == "reserve" or scheduler == "static":
        assert r.metrics()["preemptions"] == 0


# ---- pipeline parallelism with several batches in flight ----------------------------------------------

def test_pipeline_microbatches_one_request_at_a_time_is_one_batch_in_flight():
    """One client at a time keeps one virtual engine busy: exactly the single-batch pipeline (the per-stage
    pricers add up to the whole-pipeline pricer; a lone batch passes the stages once)."""
    kw = dict(model="llama-2-13b", hardware="a100-sxm-80gb", tp=2, pp=2, concurrency=1, num_requests=12,
              input_len="uniform:low=50,high=900", output_len="uniform:low=2,high=200", seed=4)
    one, two = sim(**kw).metrics(), sim(pp_microbatches=2, **kw).metrics()
    for k in ("ttft_s", "tpot_s", "e2e_latency_s"):
        assert two[k]["mean"] == pytest.approx(one[k]["mean"], rel=1e-9)
    assert two["output_throughput_tok_s"] == pytest.approx(one["output_throughput_tok_s"], rel=1e-9)
    assert sim(pp_microbatches=2, **kw).inputs["replicas"] == 1 and sim(pp_microbatches=2, **kw).engine["gpus"] == 4


@pytest.mark.parametrize("scheduler", ["static", "continuous"])
@pytest.mark.parametrize("model,hardware,tp,pp,batch,tier", [
    ("llama-3.1-8b", "h100-sxm", 1, 4, 16, "roofline"),
    ("llama-2-13b", "a100-sxm-80gb", 2, 2, 6, "tiled"),
    # uneven layer splits: 13/14/13 layers, 8/13/13/8 (sliding windows), 14/13 (MoE, MLA)
    ("llama-2-13b", "a100-sxm-80gb", 1, 3, 6, "roofline"),
    ("gemma-2-9b", "h100-sxm", 1, 4, 8, "roofline"),
    ("deepseek-v2-lite", "h100-sxm", 1, 2, 8, "roofline"),
])
def test_pipeline_microbatches_static_decode_cycle_equals_predict(model, hardware, tp, pp, batch, tier, scheduler):
    """m = pp batches at once fill the pipeline one slowest stage apart: the first batch's first token comes at
    predict's TTFT (one pass), the last's at predict's pipelined prefill (one pass + (m - 1) x the slowest
    stage), both to 1e-9; every request's TPOT is predict's decode cycle (max(one pass, m x the slowest
    stage)) and the throughput predict's, within 1% (measured: p99 TPOT equal, mean TPOT 0.5% and 0.03%
    below, throughput 0.7% and 0.04% above: the batches that started first finish first, and the pipeline
    drains faster than predict's full cycles). The p99 TPOT is predict's to 1e-6 on the tiled tier: its decode
    attention is not linear in the context (the per-tile fixed work overlaps the main loop by the p-norm), so
    the iteration grid's interpolation between context nodes is off by ~1e-6 (8e-7 here). Each stage is priced
    with its own layers (the first with the embedding, the last with the head), so with uneven splits the
    slowest stage, the fill and the cycle are predict's too (measured: first and last TTFT equal, p99 TPOT to
    5e-16, throughput within 0.9%)."""
    p = tapeout.predict(model, hardware, batch=batch, tp=tp, pp=pp, pp_microbatches=pp, input_len=512,
                        output_len=128, tier=tier)
    r = sim(model=model, hardware=hardware, tp=tp, pp=pp, pp_microbatches=pp, scheduler=scheduler,
            num_requests=batch * pp, max_batch=batch, max_num_tokens=batch * 512, rate=math.inf, input_len=512,
            output_len=128, tier=tier)
    m = r.metrics()
    assert m["completed"] == batch * pp
    stages = p.result.prefill.stage_times
    assert r.ttft.min() == pytest.approx(p.ttft_s, rel=1e-9)
    assert r.ttft.max() == pytest.approx(sum(stages) + (pp - 1) * max(stages), rel=1e-9)
    assert m["tpot_s"]["p99"] == pytest.approx(p.tpot_s, rel=1e-9 if tier == "roofline" else 1e-6)
    assert m["tpot_s"]["mean"] == pytest.approx(p.tpot_s, rel=0.01)
    assert m["output_throughput_tok_s"] == pytest.approx(p.throughput_tok_s, rel=0.01)


@pytest.mark.parametrize("pp", [2, 4])
def test_pipeline_microbatches_saturated_throughput_is_bounded_by_the_slowest_stage(pp):
    """Saturated (all at once, long outputs), pp batches in flight serve pp x one batch's throughput, except
    for the slowest stage: the gain is min(pp, one pass / slowest stage) (the stage times are predict's)."""
    kw = dict(model="llama-3.1-8b", hardware="h100-sxm", pp=pp, rate=math.inf, num_requests=256,
              input_len=128, output_len=1024, max_batch=32)
    one = sim(**kw).metrics()["output_throughput_tok_s"]
    many = sim(pp_microbatches=pp, **kw).metrics()["output_throughput_tok_s"]
    st = tapeout.predict("llama-3.1-8b", "h100-sxm", batch=32, pp=pp, input_len=128, output_len=1024,
                         tier="roofline").result.decode_representative.stage_times
    bound = min(pp, sum(st) / max(st))
    assert pp * max(st) > sum(st)  # the stages are uneven (the last holds lm_head): the bound is below pp
    assert many / one == pytest.approx(bound, rel=0.03)
    assert many / one <= pp


def test_preemption_happens_and_recomputes():
    """A pool that holds a few requests' worth of tokens preempts (recompute), and still completes them all; a
    larger pool is faster. The default policy (reserve) never preempts; the paged one recomputes what it
    preempted, and streams each token once."""
    small = sim(workload="sharegpt", num_requests=120, rate=math.inf, kv_tokens=6000, seed=1, kv_policy="paged")
    big = sim(workload="sharegpt", num_requests=120, rate=math.inf, seed=1, kv_policy="paged")
    assert small.metrics()["preemptions"] > 0 and big.metrics()["preemptions"] == 0
    assert small.metrics()["completed"] == 120
    assert small.metrics()["kv_utilization"]["max"] <= 1.0
    assert small.metrics()["duration_s"] > big.metrics()["duration_s"]
    kw = dict(input_len=128, output_len=2048, num_requests=300, max_batch=4096, kv_tokens=60_000)
    reserve, paged = sim(**kw), sim(kv_policy="paged", **kw)

    # every prompt is prefilled once; a preempted request re-prefills its prompt and the tokens it had
    assert reserve.metrics()["preemptions"] == 0 and _prefilled(reserve) == 300 * 128
    assert paged.metrics()["preemptions"] > 0 and _prefilled(paged) > 300 * 128 + paged.metrics()["preemptions"]
    assert paged.itl.size == reserve.itl.size == 300 * 2047


def _trace(tmp_path, *reqs):
    path = tmp_path / "trace.jsonl"
    path.write_text("".join(json.dumps({"arrival_s": 0.0, "input_len": i, "output_len": o}) + "\n" for i, o in reqs))
    return path


def test_a_closed_loop_request_sent_on_a_completion_waits_for_the_iteration_then_started(tmp_path):
    """Two clients: the first's request (2 tokens) completes while the second's (40 tokens) keeps the engine
    busy. The engine starts its next iteration at that completion without the reaction (TurboMind's loop
    dequeues right after streaming), so the third request's prefill runs in the iteration after: its TTFT
    spans two iterations. When the completion leaves the engine idle, the next request starts at once."""
    r = sim(trace=_trace(tmp_path, (64, 2), (64, 40), (64, 5)), concurrency=2)
    sent = r.recorder.sent[2]
    assert sent == r.recorder.finish[0] > 0
    tl = r.replicas[0].timeline
    at = [row for row in tl if row[0] == sent]
    assert len(at) == 1 and at[0][3] == 0  # an iteration starts at the send time, without the new prompt
    nxt = next(row for row in tl if row[0] >= at[0][1] and row[3] > 0)
    assert nxt[0] == at[0][1] and r.recorder.first[2] == nxt[1]
    alone = sim(trace=_trace(tmp_path, (64, 2), (64, 5)), concurrency=1)
    assert alone.recorder.sent[1] == alone.recorder.finish[0]
    assert any(row[0] == alone.recorder.sent[1] and row[3] == 64 for row in alone.replicas[0].timeline)


def _prefilled(r):
    return sum(p for rep in r.replicas for _, _, _, p, *_ in rep.timeline)


def test_turbomind_swaps_out_the_newest_keeping_its_prefix(tmp_path):
    """TurboMind (SequenceManager::Materialize): two 8-token prompts in a pool of 6 blocks of 4 tokens each take
    3 blocks (context + 1 token). When the older needs a 4th (its context reaches 12 tokens), the newer is
    swapped out and only its last block is evicted: it keeps 2 blocks, the KV of its prompt. When the older
    finishes (6 tokens), the newer comes back recomputing only the 4 tokens it lost (3 generated ones and the
    last, whose KV it never had), not its prompt: 8 + 8 + 4 prefilled tokens, one preemption. vLLM's policy
    (paged) frees every block of the preempted request and recomputes all of it."""
    kw = dict(trace=_trace(tmp_path, (8, 6), (8, 12)), kv_tokens=24, block_size=4, max_batch=8)
    tm, paged = sim(kv_policy="turbomind", **kw), sim(kv_policy="paged", **kw)
    assert tm.metrics()["preemptions"] == 1 and tm.recorder.preemptions.tolist() == [0, 1]
    assert _prefilled(tm) == 8 + 8 + 4
    assert paged.metrics()["preemptions"] >= 1 and _prefilled(paged) >= 8 + 8 + 8 + 3
    # the older request never waits: its tokens come one decode step apart, as if alone after the prefill
    assert tm.recorder.finish[0] < tm.recorder.finish[1]
    assert tm.itl.size == paged.itl.size == 5 + 11


def test_turbomind_schedules_a_newer_request_that_fits_while_an_older_waits(tmp_path):
    """No head-of-line blocking: in a pool of 5 blocks of 4 tokens, the first request (8 tokens) takes 3 (its
    context + 1 token); the second (16 tokens) needs 5 and no newer request holds blocks to preempt, so it
    waits; the third (4 tokens) needs 2 and is scheduled at once. Its first token comes with the first's, before
    the second's; first come first served (paged: 2 blocks, then 4 of the 3 left) holds it behind the second."""
    kw = dict(trace=_trace(tmp_path, (8, 2), (16, 2), (4, 2)), kv_tokens=20, block_size=4, max_batch=8)
    first = sim(kv_policy="turbomind", **kw).recorder.first
    assert first[2] == first[0] < first[1]
    first = sim(kv_policy="paged", **kw).recorder.first
    assert first[0] < first[1] <= first[2]


# ---- separate prefill passes (LMDeploy TurboMind v0.1) -------------------------------------------------

def test_separate_passes_read_the_weights_again_and_split_at_the_context_bound():
    """TurboMind v0.1's ContextDecode then Generate: an admitting iteration is a context pass (the prompts but
    their last token) plus a decode step of the running and the new sequences, so it costs more than the fused
    pass by at least one more read of the weights (memory-bound, 8B fp16: ~16 GB at ~2-3 TB/s, >= 4 ms on an
    H100). Sub-batches follow LlamaBatch.cc's rule, a new one where the tokens so far plus the next request's
    context exceed the bound: two 100-token prompts (99 + 100 = 199) share a pass at 199 and not at 198."""
    r = sim(num_requests=1, input_len=8, output_len=2)
    price = r.replicas[0].price
    chunks, D, ctx = [(100, 0), (100, 0)], 30, 400.0
    fused = price.iteration(chunks, D, ctx, D + 2)
    one = price.separate_iteration(chunks, D, ctx, None)
    assert one - fused > 4e-3
    assert price.separate_iteration(chunks, D, ctx, 199) == one
    assert price.separate_iteration(chunks, D, ctx, 198) - one > 4e-3  # a second context pass: the weights again
    # the new sequences decode in the same step: its price is that of 32 decodes at the mean context
    ctx_all = (D * ctx + 2 * 100) / (D + 2)
    step = price.decode_steps(D + 2, ctx_all, 1)[0]
    assert one == pytest.approx(price.iteration([(99, 0), (99, 0)], 0, 0.0, 0, eager=True) + step, rel=1e-12)


def test_separate_passes_run_every_admitted_prompt_and_give_the_first_token_from_the_decode_step(tmp_path):
    """Four 400-token prompts sent together under a 512-token bound: fused admits one per iteration (the budget
    holds the others back), separate runs all four in that iteration's context passes (one per prompt: 400 +
    400 > 512), and their first tokens all come out of the decode step that follows. A lone request's TTFT is
    its context pass of 399 tokens plus one decode step at 400 keys."""
    kw = dict(trace=_trace(tmp_path, *[(400, 3)] * 4), max_num_tokens=512, max_batch=8)
    sep, fused = sim(prefill_pass="separate", **kw), sim(**kw)
    assert len(set(sep.recorder.first.tolist())) == 1
    assert len(set(fused.recorder.first.tolist())) == 4
    price = sep.replicas[0].price
    passes = 4 * price.iteration([(399, 0)], 0, 0.0, 0, eager=True) + price.decode_steps(4, 400, 1)[0]
    assert sep.recorder.first[0] == pytest.approx(passes, rel=0.02)
    alone = sim(prefill_pass="separate", trace=_trace(tmp_path, (400, 3)))
    ttft = price.iteration([(399, 0)], 0, 0.0, 0, eager=True) + price.decode_steps(1, 400, 1)[0]
    assert alone.recorder.first[0] == pytest.approx(ttft, rel=0.02)
    assert alone.recorder.first[0] > sim(trace=_trace(tmp_path, (400, 3))).recorder.first[0]


def test_separate_passes_are_refused_where_they_are_not_modelled():
    with pytest.raises(TapeoutError, match="prefill_pass.*fused"):
        sim(scheduler="chunked", prefill_pass="separate", num_requests=2)


# ---- prefills run alone (vLLM's V0 scheduler, SGLang) ------------------------------------------------------

def test_a_prefill_run_alone_holds_the_running_requests_back(tmp_path):
    """vLLM V0's default scheduler and SGLang never mix prompts with decodes: while a request decodes, a new
    prompt's iteration is its prefill alone (a pass of its own, eager) and the running request gets no token in
    it, so that request's gap spans the prefill pass and the next decode step. The new request's first token
    comes at the end of its pass, sooner than in the fused iteration (which also carries the decode step)."""
    first = (8, 40)
    late = {"arrival_s": 0.0, "input_len": 600, "output_len": 4}
    path = tmp_path / "trace.jsonl"
    path.write_text(json.dumps({"arrival_s": 0.0, "input_len": first[0], "output_len": first[1]}) + "\n")
    solo = sim(trace=path)
    t_in = float(solo.recorder.first[0]) + 5 * float(np.median(solo.itl))  # mid-decode of the first request
    path.write_text(path.read_text() + json.dumps({**late, "arrival_s": t_in}) + "\n")
    alone, fused = sim(trace=path, prefill_pass="alone"), sim(trace=path)
    price = alone.replicas[0].price
    pass_s = price.iteration([(600, 0)], 0, 0.0, 1, eager=True)
    big = alone.itl.max()
    # the stalled gap of the first request: the prefill pass plus its own decode step (at least the pass)
    assert big >= pass_s and big == pytest.approx(pass_s + float(np.median(alone.itl)), rel=0.05)
    # the second request's first token: at the end of its own pass, before the fused iteration's end
    assert alone.recorder.first[1] < fused.recorder.first[1]
    # and both complete every token
    assert alone.itl.size == fused.itl.size == (first[1] - 1) + (late["output_len"] - 1)


def test_prefills_run_alone_only_where_they_are_modelled():
    for kw in (dict(scheduler="chunked"), dict(scheduler="static"), dict(kv_policy="turbomind")):
        with pytest.raises(TapeoutError, match="prefill_pass: alone") as err:
            sim(prefill_pass="alone", num_requests=2, **kw)
        assert "\n" not in str(err.value)


def test_disaggregation_moves_the_kv_cache_and_pays_for_it():
    """P/D: first tokens come from the prefill pool, the rest from the decode pool, after a KV transfer priced
    as a point-to-point send (positive, growing with the prompt)."""
    r = sim(workload="sharegpt", num_requests=80, rate=20, prefill_replicas=1, decode_replicas=2, seed=2)
    m = r.metrics()
    assert m["completed"] == 80
    roles = {rep.rid: rep.role for rep in r.replicas}
    assert sorted(roles.values()) == ["decode", "decode", "prefill"]
    pre = [rep for rep in r.replicas if rep.role == "prefill"][0]
    dec = [rep for rep in r.replicas if rep.role == "decode"]
    assert all(d == 0 for *_, d, _, _, _ in pre.timeline)  # prefill replicas never decode
    assert all(p == 0 for rep in dec for _, _, _, p, *_ in rep.timeline)  # decode replicas never prefill
    price = pre.price
    kvb = r.engine["kv_cache_bytes_per_token"]
    assert 0 < price.kv_transfer(100, kvb) < price.kv_transfer(4000, kvb)


def test_routers_spread_requests():
    rr = sim(workload="sharegpt", num_requests=90, rate=30, replicas=3, seed=4)
    lot = sim(workload="sharegpt", num_requests=90, rate=30, replicas=3, router="least_tokens", seed=4)
    assert np.bincount(rr.recorder.replica).tolist() == [30, 30, 30]
    counts = np.bincount(lot.recorder.replica, minlength=3)
    assert counts.min() > 0 and counts.sum() == 90
    one = sim(workload="sharegpt", num_requests=90, rate=30, seed=4)
    assert rr.metrics()["ttft_s"]["p99"] <= one.metrics()["ttft_s"]["p99"]


# ---- bucketing error ------------------------------------------------------------------------------------

@pytest.mark.parametrize("model,hardware,tp,bound", [
    ("llama-3.1-8b", "h100-sxm", 1, 0.02),
    ("llama-3.1-70b", "h100-sxm", 4, 0.02),
    ("mixtral-8x7b", "a100-sxm-80gb", 2, 0.12),
])
def test_bucketing_error_is_bounded(model, hardware, tp, bound):
    """Bucketed vs exact prices of random iterations (tiled tier): within 2% for dense models (the module's
    stated bound: the per-token kernels' cap steps in where their tensors outgrow L2, so an iteration whose
    token count straddles that step between two grid nodes is interpolated across it); MoE models, whose
    per-expert rows round onto tiles between grid nodes, within 12%; 1% on average."""
    from tapeout.api import prepare
    from tapeout.serving.iteration import IterationPricer

    rng = np.random.default_rng(0)
    pre = prepare(model, hardware, {"batch": 1, "input_len": 1, "output_len": 1, "tp": tp}, tier="tiled")
    m, hw, tier, sc = pre.model, pre.hardware, pre.tier, pre.scenario
    b, e = IterationPricer(m, hw, sc, tier), IterationPricer(m, hw, sc, tier, exact=True)
    errs = []
    for _ in range(150):
        k = int(rng.integers(0, 5))
        chunks = [(int(rng.integers(1, 3000)), int(rng.choice([0, rng.integers(0, 4000)]))) for _ in range(k)]
        D = int(rng.integers(0 if k else 1, 300))
        ctx = float(rng.integers(10, 6000)) if D else 0.0
        heads = D + int(rng.integers(0, k + 1))
        errs.append(abs(b.iteration(chunks, D, ctx, heads) / e.iteration(chunks, D, ctx, heads) - 1))
    assert max(errs) <= bound
    assert np.mean(errs) <= 0.01
    runs = [np.max(np.abs(b.decode_steps(D, c, 50) / e.decode_steps(D, c, 50) - 1))
            for D, c in ((1, 100.5), (37, 2000.0), (256, 700.25))]
    assert max(runs) <= 0.02


def test_bucketed_simulation_matches_exact_pricing():
    kw = dict(workload="sharegpt", num_requests=120, rate=12, seed=3, tier="tiled")
    ra, rb = sim(**kw), sim(exact=True, **kw)
    a, b = ra.metrics(), rb.metrics()
    for k in ("tpot_s", "itl_s", "e2e_latency_s"):
        assert a[k]["mean"] == pytest.approx(b[k]["mean"], rel=0.005)
    assert a["output_throughput_tok_s"] == pytest.approx(b["output_throughput_tok_s"], rel=0.005)
    # a request arriving within the bucketing error of an iteration boundary is admitted one iteration later: its
    # first token moves by one ITL (two of 120 here with H100's fitted decode-attention fixed work); every other
    # first token agrees within 0.5 %
    ta, tb = np.asarray(ra.ttft), np.asarray(rb.ttft)
    itl = b["itl_s"]["mean"]
    flip = np.abs(ta - tb) > 0.5 * itl
    assert flip.sum() <= 2 and np.all(np.abs(ta - tb)[flip] <= 1.5 * itl)
    assert ta[~flip].mean() == pytest.approx(tb[~flip].mean(), rel=0.005)


# ---- workloads ---------------------------------------------------------------------------------------------

def test_workloads_are_seeded_and_deterministic():
    from tapeout.serving.workload import make_requests

    a = make_requests(workload="sharegpt", num_requests=200, rate=5, seed=7)
    b = make_requests(workload="sharegpt", num_requests=200, rate=5, seed=7)
    c = make_requests(workload="sharegpt", num_requests=200, rate=5, seed=8)
    assert np.array_equal(a.arrival_s, b.arrival_s) and np.array_equal(a.input_len, b.input_len)
    assert not np.array_equal(a.input_len, c.input_len)
    assert sim(workload="sharegpt", num_requests=50, rate=5, seed=7).to_dict() == \
        sim(workload="sharegpt", num_requests=50, rate=5, seed=7).to_dict()


def test_arrival_processes():
    from tapeout.serving.workload import make_requests

    p = make_requests(num_requests=20000, rate=4.0, seed=1)
    gaps = np.diff(p.arrival_s)
    assert p.arrival_s[0] == 0.0 and gaps.mean() == pytest.approx(0.25, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)  # Poisson: CV 1
    g = make_requests(num_requests=20000, rate=4.0, arrival="gamma", burstiness=4.0, seed=1)
    gg = np.diff(g.arrival_s)
    assert gg.mean() == pytest.approx(0.25, rel=0.03) and gg.std() / gg.mean() == pytest.approx(0.5, rel=0.05)
    inf = make_requests(num_requests=10, seed=1)
    assert (inf.arrival_s == 0).all()


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_a_run_offers_exactly_the_rate_asked_for(seed):
    """500 requests at 2 req/s span 249.5 s whatever the seed (seed 0's raw exponential gaps run 9.6 % long,
    which moved every light-load throughput of TensorRT-LLM 0.14's table by as much), and the gaps keep the
    draw's spread: a Poisson run's gaps are not evenly spaced."""
    from tapeout.serving.workload import make_requests

    for arrival, k in (("poisson", 1.0), ("gamma", 4.0)):
        r = make_requests(input_len=467, output_len=16, num_requests=500, rate=2.0, arrival=arrival, burstiness=k,
                          seed=seed)
        gaps = np.diff(r.arrival_s)
        assert r.arrival_s[0] == 0.0 and r.arrival_s[-1] == pytest.approx(249.5, rel=1e-12)
        assert (gaps > 0).all() and 0.7 / math.sqrt(k) < gaps.std() / gaps.mean() < 1.3 / math.sqrt(k)


def test_length_distributions():
    from tapeout.serving.workload import parse_length

    rng = np.random.default_rng(0)
    assert (parse_length(512, "input_len").sample(rng, 5) == 512).all()
    u = parse_length("uniform:low=10,high=20", "input_len").sample(rng, 5000)
    assert u.min() == 10 and u.max() == 20
    ln = parse_length({"dist": "lognormal", "mean": 300, "sigma": 0.8}, "x").sample(rng, 50000)
    assert ln.mean() == pytest.approx(300, rel=0.03)
    nm = parse_length("normal:mean=100,std=10,max=110", "x").sample(rng, 20000)
    assert nm.max() == 110 and nm.mean() == pytest.approx(99.6, abs=1)
    for bad in ("lognormal:mean=3", "zipf:a=1", "uniform:low=5,high=2", 0, -3, "normal:mean=x,std=1", True):
        with pytest.raises(TapeoutError):
            parse_length(bad, "input_len")


def test_empirical_lengths_and_traces(tmp_path):
    from tapeout.serving.workload import SAMPLE_TRACE, make_requests, parse_length, read_trace

    f = tmp_path / "lens.csv"
    f.write_text("tokens\n5\n7\n9\n")
    x = parse_length(f"empirical:path={f}", "input_len").sample(np.random.default_rng(0), 1000)
    assert set(x.tolist()) == {5, 7, 9}
    a, i, o = read_trace(SAMPLE_TRACE)
    assert len(a) == 64 and a[0] == 0 and (np.diff(a) >= 0).all() and (i >= 1).all() and (o >= 1).all()
    r = sim(trace="sample")
    assert r.metrics()["completed"] == 64 and r.requests.arrival_s.tolist() == a.tolist()
    assert make_requests(trace=SAMPLE_TRACE, num_requests=10).input_len.size == 10
    t = tmp_path / "t.jsonl"
    for text, msg in (('{"arrival_s": 0, "input_len": 3}', "line 1"), ('{"arrival_s": -1, "input_len": 3, '
                      '"output_len": 2}', "arrival_s"), ("not json", "not JSON"),
                      ('{"arrival_s": 0, "input_len": 2.5, "output_len": 2}', "input_len")):
        t.write_text(text + "\n")
        with pytest.raises(TapeoutError, match=msg):
            read_trace(t)


def test_sharegpt_preset_means():
    """The preset keeps the clients' filter; given means scale the counts and are met (within 3%); means the
    filter cannot reach are a one-line error naming the workload."""
    from tapeout.serving.workload import sharegpt_lengths

    a, b = sharegpt_lengths(np.random.default_rng(0), 50000)
    assert a.min() >= 4 and a.max() <= 1024 and b.min() >= 4 and (a + b).max() <= 2048
    for want in ((300, 150), (180, 400)):
        a, b = sharegpt_lengths(np.random.default_rng(0), 50000, *want)
        assert a.mean() == pytest.approx(want[0], rel=0.03) and b.mean() == pytest.approx(want[1], rel=0.03)
        assert a.min() >= 4 and a.max() <= 1024 and b.min() >= 4 and (a + b).max() <= 2048
    with pytest.raises(TapeoutError, match="cannot be met") as e:
        sharegpt_lengths(np.random.default_rng(0), 10, 1024, 1024)
    assert e.value.field == "workload"


def test_sharegpt_table_has_the_lmdeploy_runs_mean_lengths(shared_data):
    """The shipped ShareGPT token counts, filtered as the clients filter, have the mean prompt and completion
    lengths the LMDeploy Llama-2 runs imply (their token and request throughputs; within 1%): the table and
    its tokenizer are the benchmark's. Long prompts get shorter answers (the correlation a closed loop's KV
    demand depends on)."""
    from tapeout.serving.workload import _filtered
    from tapeout.validate.sources.serving import _lmdeploy_workloads
    from tapeout.serving.workload import parse_preset

    a, b = _filtered(1.0, 1.0)
    runs = parse_preset(_lmdeploy_workloads(shared_data)["llama-2-7b"])
    assert a.mean() == pytest.approx(runs["input_mean"], rel=0.01)
    assert b.mean() == pytest.approx(runs["output_mean"], rel=0.01)
    assert np.corrcoef(a, b)[0, 1] < -0.2


def test_lmdeploy_workload_means_are_read_from_the_runs(shared_data):
    """The LMDeploy sources' mean lengths come from the runs' own throughputs (never typed in): one family, one
    tokenizer, the same means for every size."""
    from tapeout.validate.sources.serving import _lmdeploy_workloads

    w = _lmdeploy_workloads(shared_data)
    assert w["llama-2-7b"] == w["llama-2-13b"] == w["llama-2-70b"] != w["internlm-20b"]
    assert all(v.startswith("sharegpt:input_mean=") for v in w.values())


# ---- metrics as the clients define them ------------------------------------------------------------------

def test_metrics_of_a_lone_request_are_its_iterations():
    """One request alone: TTFT is its prefill iteration, its ITL gaps are the decode steps, TPOT their mean,
    e2e their sum; duration from send to last token."""
    r = sim(input_len=300, output_len=6, num_requests=1)
    price = r.replicas[0].price
    pre = price.iteration([(300, 0)], 0, 0.0, 1)
    steps = price.decode_steps(1, 301, 5)
    m = r.metrics()
    assert m["ttft_s"]["mean"] == pytest.approx(pre)
    assert sorted(r.itl.tolist()) == pytest.approx(sorted(steps.tolist()))
    assert m["tpot_s"]["mean"] == pytest.approx(steps.mean())
    assert m["e2e_latency_s"]["mean"] == pytest.approx(pre + steps.sum())
    assert m["duration_s"] == pytest.approx(pre + steps.sum())
    assert m["output_throughput_tok_s"] == pytest.approx(6 / m["duration_s"])
    assert m["total_throughput_tok_s"] == pytest.approx(306 / m["duration_s"])


def test_goodput_counts_requests_within_every_slo():
    r = sim(workload="sharegpt", num_requests=200, rate=60, seed=5)
    ttft, tpot = r.ttft, r.metrics()["tpot_s"]["p50"]
    cut = float(np.median(ttft))
    g = sim(workload="sharegpt", num_requests=200, rate=60, seed=5, slo_ttft=cut, slo_tpot=tpot).metrics()
    out = r.requests.output_len
    tp_all = np.where(out > 1, (r.e2e - ttft) / np.maximum(out - 1, 1), 0.0)
    good = int(((ttft <= cut) & (tp_all <= tpot)).sum())
    assert g["goodput_rps"] == pytest.approx(good / g["duration_s"])
    assert r.metrics()["goodput_rps"] == pytest.approx(r.metrics()["request_throughput_rps"])


def test_result_keys_are_the_contract():
    d = sim(num_requests=5, input_len=64, output_len=8).to_dict()
    for k in ("ttft_s", "tpot_s", "itl_s", "e2e_latency_s"):
        assert set(d[k]) == {"mean", "p50", "p90", "p99"}
    for k in ("request_throughput_rps", "output_throughput_tok_s", "total_throughput_tok_s", "goodput_rps",
              "preemptions", "duration_s"):
        assert k in d
    assert set(d["kv_utilization"]) == {"mean", "max"}
    json.dumps(d, allow_nan=False)


# ---- interfaces -----------------------------------------------------------------------------------------------

MIXED = Path(__file__).parents[1] / "examples" / "mixed.toml"


def test_cli_json_is_to_dict(tmp_path):
    args = ["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--tier", "roofline", "--input-len", "200",
            "--output-len", "lognormal:mean=50,sigma=0.5", "--num-requests", "30", "--rate", "8", "--seed", "2",
            "--scenario", str(MIXED), "--fuse-residual-norm"]
    out = CliRunner().invoke(app, ["simulate", *args, "-f", "json", "--trace", str(tmp_path / "t.json")])
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    ref = sim(input_len=200, output_len="lognormal:mean=50,sigma=0.5", num_requests=30, rate=8.0, seed=2,
              scenario=MIXED, fuse_residual_norm=True).to_dict()
    assert d == json.loads(json.dumps(ref))
    # every scenario keyword simulate takes is reported, as run (the scenario file's formats and rules)
    from tapeout.serving.sim import SCENARIO_KEYS

    assert set(SCENARIO_KEYS) <= set(d["inputs"]) and d["inputs"]["scenario"] == str(MIXED)
    assert d["inputs"]["weights"] == "fp8_e4m3" and len(d["inputs"]["layers"]) == 2 and d["inputs"]["fuse_residual_norm"]
    trace = json.loads((tmp_path / "t.json").read_text())
    phases = {e["ph"] for e in trace["traceEvents"]}
    assert {"X", "C", "b", "e", "n", "M"} <= phases
    assert sum(e["ph"] == "b" for e in trace["traceEvents"]) == 30
    table = CliRunner().invoke(app, ["simulate", *args])
    assert table.exit_code == 0 and "TTFT" in table.stdout


@pytest.mark.parametrize("args,field", [
    (["--scheduler", "fifo"], "scheduler"), (["--rate", "-3"], "rate"), (["--rate", "fast"], "rate"),
    (["--input-len", "zipf:a=2"], "input_len"), (["--max-batch", "0"], "max_batch"),
    (["--kv-fraction", "0.0000001"], "kv_fraction"), (["--router", "random"], "router"),
    (["--prefill-replicas", "1"], "decode_replicas"), (["--requests", "/nonexistent.jsonl"], "trace"),
    (["--workload", "alpaca"], "workload"), (["--tp", "3"], "tp"), (["--kv-policy", "lru"], "kv_policy"),
    (["--slo-ttft", "0"], "slo_ttft"), (["--concurrency", "0"], "concurrency"),
])
def test_cli_errors_are_one_line_exit_2(args, field):
    out = CliRunner().invoke(app, ["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm",
                                   "--num-requests", "5", *args])
    assert out.exit_code == 2, out.output
    lines = [ln for ln in out.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in out.output


def test_api_rejects_bad_values():
    for kw, field in ((dict(max_num_tokens=0), "max_num_tokens"), (dict(replicas=True), "replicas"),
                      (dict(rate=float("nan")), "rate"), (dict(scheduler="static", prefill_replicas=1,
                                                                 decode_replicas=1), "scheduler"),
                      (dict(scheduler="chunked", attention="naive"), "attention"),
                      (dict(trace="sample", rate=3.0), "rate"), (dict(kv_tokens=100), "kv_tokens")):
        with pytest.raises(TapeoutError, match=field):
            sim(num_requests=3, **kw)


def test_capacity_highest_rate_and_cheapest(tmp_path):
    """The highest rate meeting the SLOs grows with the devices; the cheapest configuration for a rate meets
    it, and its $/Mtok comes from the cost model's $/device-hour."""
    from tapeout.serving.capacity import capacity

    kw = dict(slo_ttft=0.5, slo_tpot=0.05, percentile=90, tps=(1,), max_batches=(64,), input_len=256,
              output_len=64, num_requests=60, tier="roofline")
    one = capacity("llama-3.1-8b", "h100-sxm", gpus=1, **kw)
    two = capacity("llama-3.1-8b", "h100-sxm", gpus=2, **kw)
    assert one["best"]["meets_slo"] and two["best"]["rate_rps"] > 1.5 * one["best"]["rate_rps"]
    assert one["best"]["ttft_p_s"] <= 0.5 and one["best"]["tpot_p_s"] <= 0.05
    cheap = capacity("llama-3.1-8b", "h100-sxm", rate=1.5 * one["best"]["rate_rps"], **kw)
    b = cheap["best"]
    assert b["replicas"] >= 2 and b["usd_per_hour"] == pytest.approx(b["gpus"] * cheap["usd_per_device_hour"])
    assert b["usd_per_mtok"] == pytest.approx(b["usd_per_hour"] / (b["output_throughput_tok_s"] * 3600) * 1e6)
    out = CliRunner().invoke(app, ["capacity", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--tp", "1",
                                   "--max-batch", "64", "--input-len", "256", "--output-len", "64",
                                   "--num-requests", "40", "--slo-ttft", "0.5", "--gpus", "1", "-f", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["mode"] == "highest_rate"
    bad = CliRunner().invoke(app, ["capacity", "--model", "llama-3.1-8b", "--hardware", "h100-sxm"])
    assert bad.exit_code == 2 and "slo" in bad.output


def test_plots_are_written_lazily(tmp_path):
    import sys

    r = sim(workload="sharegpt", num_requests=40, rate=10)
    written = r.plot(tmp_path)
    assert {p.name for p in written} == {"serving.png", "serving.html"}
    assert all(p.stat().st_size > 1000 for p in written)
    import subprocess

    code = "import tapeout; r = tapeout.simulate('llama-3.1-8b', 'h100-sxm', num_requests=3, tier='roofline'); " \
           "r.to_dict(); import sys; print('matplotlib' in sys.modules, 'plotly' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


# ---- validation sources -----------------------------------------------------------------------------------

def test_serving_sources_load_and_fit_only_the_prefill_host_gap(shared_data):
    from tapeout.validate import load_cases
    from tapeout.validate.registry import calibration_names, e2e_names, source_of

    assert {"e2e-serving-trt014", "e2e-serving-lmdeploy"} <= set(e2e_names())
    assert not {"e2e-serving-trt014", "e2e-serving-lmdeploy"} & set(calibration_names())
    assert source_of("e2e-serving-trt014") == source_of("e2e-serving-lmdeploy") == "serving"
    from tapeout.fit.cv import parameters  # one fitted parameter reads the serving source: TensorRT-LLM 0.14's
    # light-load first tokens, with TensorRT-LLM v0.5's, fit the default profile's prefill host gap
    assert {p.name for p in parameters() if "serving" in p.sources} == {"kernels.prefill_host_overhead_us"}
    cases = load_cases(shared_data, ["e2e-serving-trt014", "e2e-serving-lmdeploy"])
    trt = [c for c in cases if c.dataset == "e2e-serving-trt014"]
    lmd = [c for c in cases if c.dataset == "e2e-serving-lmdeploy"]
    assert len(trt) == 72 * 4 and {c.device for c in trt} == {"h100-sxm", "h200"}
    assert len(lmd) == 13 * 4 + 4 * 4
    sc = dict(next(c for c in lmd if c.get("row_id") == "lmd010-001").scenario)
    assert sc["kv_tokens"] == 128000 and sc["block_size"] == 128 and sc["concurrency"] == 64
    assert sc["max_batch"] == 128


def test_serving_validation_mape(shared_data):
    """The serving sources, held out from every fit (roofline, as tapeout validate's default): TensorRT-LLM's
    throughput within 20% MAPE, its mean TTFT and ITL within 25% (the issue's targets); LMDeploy's on the
    tiled tier (roofline prices TurboMind's A100 iterations 20% fast): throughput within 20%, mean
    first-token latency within 40% (106% before the ShareGPT table and the closed loop's reaction time)."""
    from tapeout.validate import evaluate

    ev = evaluate(shared_data, "roofline", datasets=["e2e-serving-trt014", "e2e-serving-lmdeploy"])
    by = {}
    for r in ev.results:
        by.setdefault((r.case.dataset, r.case.op_class.split("_")[0]), []).append(r)
    from tapeout.validate.serving import scored

    def mape(rs):
        return 100 * np.mean([abs(scored(r.case, r.predicted_s) / scored(r.case, r.case.measured_s) - 1) for r in rs])

    assert mape(by[("e2e-serving-trt014", "output")]) <= 20
    tiled = {}
    for r in evaluate(shared_data, "tiled", datasets=["e2e-serving-lmdeploy"]).results:
        tiled.setdefault(r.case.op_class.split("_")[0], []).append(r)
    assert mape(tiled["output"]) <= 20
    assert mape(tiled["ttft"]) <= 40
    assert mape(by[("e2e-serving-trt014", "ttft")]) <= 25
    assert mape(by[("e2e-serving-trt014", "itl")]) <= 25


def test_trt014_engine_defaults_block_size_inert(shared_data):
    """The e2e-serving-trt014 scenario is TensorRT-LLM 0.14's defaults (sources at TRT014_ENGINE). The
    0.14-era tokens_per_block default is not in the index (64 in the 0.11 copies, 32 later); the docs claim
    it moves no prediction because the KV pool never fills at these rows: the fullest one (Llama-3.1-8B TP1,
    H100, 467/256, QPS inf) stays below the pool and gives the same result with 32-token blocks."""
    import math

    from tapeout import simulate
    from tapeout.validate.sources.serving import TRT014_ENGINE, load_e2e_serving_trt014

    assert TRT014_ENGINE["max_batch"] == 2048 and TRT014_ENGINE["max_num_tokens"] == 8192
    case = next(c for c in load_e2e_serving_trt014(shared_data)
                if dict(c.scenario)["model"] == "llama-3.1-8b" and c.device == "h100-sxm"
                and dict(c.scenario)["rate"] == math.inf and dict(c.scenario).get("output_len") == 256)
    kw = {k: v for k, v in case.scenario if k != "model"}
    a = simulate("llama-3.1-8b", "h100-sxm", **kw).to_dict()
    b = simulate("llama-3.1-8b", "h100-sxm", **{**kw, "block_size": 32}).to_dict()
    assert a["kv_utilization"]["max"] < 0.9
    assert a["output_throughput_tok_s"] == b["output_throughput_tok_s"] and a["ttft_s"] == b["ttft_s"]


def test_trt014_202_214_rows_are_sharegpt_shaped_lengths(shared_data):
    """The 202/214 pair is taken as the means of ShareGPT-shaped lengths, the 467-token pairs as fixed lengths
    (validate/sources/serving.py). At saturation (QPS inf, 500 requests at once) the printed rows behave as
    varying lengths do: fixed 202/214 lengths keep ~all 500 requests running to the end and predict Llama-3.1-70B
    TP4 on an H100 at 5,958 output tok/s with a 64 ms mean ITL, against the printed 3,459 tok/s and 50 ms; the
    ShareGPT-shaped draw at the same means, whose long answers drain at low concurrency, is within 25 % on both."""
    import math

    from tapeout.validate.serving import scored, simulated
    from tapeout.validate.sources.serving import TRT014_SHAREGPT, load_e2e_serving_trt014

    assert TRT014_SHAREGPT == {(202, 214)}
    cases = load_e2e_serving_trt014(shared_data)
    lengths = {dict(c.scenario).get("workload") or (dict(c.scenario)["input_len"], dict(c.scenario)["output_len"])
               for c in cases}
    assert lengths == {"sharegpt:input_mean=202,output_mean=214", (467, 256), (467, 16)}
    sat = {c.op_class: c for c in cases if c.device == "h100-sxm" and dict(c.scenario)["model"] == "llama-3.1-70b"
           and dict(c.scenario)["rate"] == math.inf and "workload" in dict(c.scenario)}
    assert round(scored(sat["output_tok_s"], sat["output_tok_s"].measured_s)) == 3459
    assert sat["itl_mean"].measured_s == pytest.approx(0.050)
    from tapeout.hardware.catalog import load_hardware

    hw = load_hardware("h100-sxm")
    got = simulated(hw, sat["output_tok_s"].scenario, "tiled")
    fixed_sc = tuple(sorted({**{k: v for k, v in sat["output_tok_s"].scenario if k != "workload"},
                             "input_len": 202, "output_len": 214}.items()))
    fixed = simulated(hw, fixed_sc, "tiled")
    for q, case in (("serving_output_tok_s", sat["output_tok_s"]), ("serving_mean_itl_s", sat["itl_mean"])):
        assert 0.75 < scored(case, got[q]) / scored(case, case.measured_s) < 1.25, q
        assert abs(math.log(scored(case, fixed[q]) / scored(case, case.measured_s))) > 0.25, q
