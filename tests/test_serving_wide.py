"""Serving simulation with data-parallel attention and wide expert parallelism (ep > tp): ranks in step, each
with its own scheduler and KV pool, requests routed among them (tapeout.serving.wide)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tapeout

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LITE = "deepseek-v2-lite"  # 64 routed experts, top-6; fits one H100 whole, so ep = 1 replicas compare


def sim(model=LITE, hardware="h100-sxm", **kw):
    kw.setdefault("tier", "roofline")
    return tapeout.simulate(model, hardware, **kw)


#: saturated wide-EP cases (model, ep, sequences per rank, tier) checked against predict, with and without TBO
SATURATED = [(LITE, 4, 16, "roofline"), ("mixtral-8x7b", 8, 8, "tiled"), ("deepseek-v3", 16, 32, "roofline")]


def _trace(tmp_path, rows) -> str:
    f = tmp_path / "trace.jsonl"
    f.write_text("".join(json.dumps(dict(zip(("arrival_s", "input_len", "output_len"), r))) + "\n" for r in rows))
    return str(f)


@pytest.mark.parametrize("model,ep,batch,tier", SATURATED)
@pytest.mark.parametrize("scheduler", ["static", "continuous"])
def test_saturated_ranks_equal_predicts_data_parallel_step(model, ep, batch, tier, scheduler):
    """ep x batch equal requests at once, ``batch`` per rank: every rank prefills its batch in the same
    iteration and decodes in step, which is predict's data-parallel scenario (every device its own batch, the
    experts meeting all ep devices' tokens): TTFT, TPOT, e2e latency and throughput (all ranks' tokens) within
    1% (measured equal to 1e-12)."""
    # one prefill iteration per rank (static; continuous with a budget of the whole batch): predict unchunked
    p = tapeout.predict(model, "h100-sxm", ep=ep, batch=batch, input_len=512, output_len=64, tier=tier,
                        max_prefill_tokens=None)
    r = sim(model, ep=ep, scheduler=scheduler, num_requests=batch * ep, max_batch=batch, rate=math.inf,
            input_len=512, output_len=64, tier=tier, max_num_tokens=batch * 512 if scheduler != "static" else None)
    m = r.metrics()
    assert m["completed"] == batch * ep
    assert np.bincount(r.recorder.replica).tolist() == [batch] * ep  # round robin: batch requests per rank
    assert r.inputs["replicas"] == 1 and r.engine["gpus"] == ep
    assert m["ttft_s"]["p99"] == pytest.approx(p.ttft_s, rel=0.01)
    assert m["tpot_s"]["mean"] == pytest.approx(p.tpot_s, rel=0.01)
    assert m["e2e_latency_s"]["mean"] == pytest.approx(p.e2e_latency_s, rel=0.01)
    assert m["output_throughput_tok_s"] == pytest.approx(p.throughput_tok_s, rel=0.01)


def test_the_slowest_rank_sets_every_ranks_pace(tmp_path):
    """A long prompt on one rank and a short one on the other, sent together: the short request's first token
    waits for the long prefill (the MoE all-to-alls hold the ranks in step), where two independent replicas
    serve it at its own pace."""
    trace = _trace(tmp_path, [(0.0, 8000, 8), (0.0, 16, 8)])
    wide = sim(ep=2, trace=trace)
    assert wide.recorder.replica.tolist() == [0, 1]
    assert wide.ttft[1] == pytest.approx(wide.ttft[0], rel=1e-12)
    assert wide.e2e[1] == pytest.approx(wide.e2e[0], rel=1e-12)
    apart = sim(replicas=2, trace=trace)
    assert apart.ttft[1] < wide.ttft[1] / 4 and apart.ttft[0] > 4 * apart.ttft[1]  # apart, the short one is quick


def test_idle_ranks_share_the_experts_not_the_load():
    """One client on ep = 8 ranks: the experts see one rank's tokens, so its steps are faster than predict's
    batch 1 (all 8 ranks busy); 8 clients fill one rank each and run at predict's batch 1 exactly (equal)."""
    p = tapeout.predict(LITE, "h100-sxm", ep=8, batch=1, input_len=512, output_len=64, tier="roofline")
    one = sim(ep=8, num_requests=16, concurrency=1, input_len=512, output_len=64).metrics()
    eight = sim(ep=8, num_requests=64, concurrency=8, input_len=512, output_len=64).metrics()
    assert eight["tpot_s"]["mean"] == pytest.approx(p.tpot_s, rel=1e-9)
    assert eight["ttft_s"]["mean"] == pytest.approx(p.ttft_s, rel=1e-9)
    assert one["tpot_s"]["mean"] < 0.95 * p.tpot_s
    assert one["ttft_s"]["mean"] < 0.98 * p.ttft_s


def test_routing_inside_and_across_data_parallel_replicas(tmp_path):
    """round_robin: request i goes to replica i mod 2, and inside it to rank (i // 2) mod dp (SGLang's default
    dispatch); least_tokens keeps short requests off the rank busy with a long one."""
    r = sim(ep=4, replicas=2, num_requests=24, input_len=64, output_len=8)
    i = np.arange(24)
    assert r.recorder.replica.tolist() == ((i % 2) * 4 + (i // 2) % 4).tolist()
    assert r.engine["gpus"] == 8 and r.inputs["replicas"] == 2
    trace = _trace(tmp_path, [(0.0, 6000, 400)] + [(0.0, 50, 20)] * 3)
    assert sim(ep=2, trace=trace, router="least_tokens").recorder.replica.tolist() == [0, 1, 1, 1]
    assert sim(ep=2, trace=trace, router="round_robin").recorder.replica.tolist() == [0, 1, 0, 1]


@FAST
@given(scheduler=st.sampled_from(["static", "continuous", "chunked"]),
       policy=st.sampled_from(["paged", "reserve", "turbomind"]), n=st.integers(5, 60), ep=st.sampled_from([2, 4]),
       rate=st.sampled_from([math.inf, 20.0]), seed=st.integers(0, 1000), disagg=st.booleans(),
       router=st.sampled_from(["round_robin", "least_tokens"]))
def test_ranks_run_in_step_and_lose_nothing(scheduler, policy, n, ep, rate, seed, disagg, router):
    """Small pools (preemption), any scheduler, policy, router, with or without disaggregation: every request
    completes once having streamed its tokens; blocks stay within each rank's pool and return to it; and the
    ranks of a replica run in step -- no rank's iteration straddles a boundary of another rank's."""
    pools = dict(prefill_replicas=1, decode_replicas=1) if disagg and scheduler != "static" else {}
    r = sim(ep=ep, scheduler=scheduler, kv_policy=policy, kv_tokens=3000, input_len="uniform:low=1,high=300",
            output_len="uniform:low=1,high=300", num_requests=n, rate=rate, max_batch=8, max_num_tokens=512,
            seed=seed, router=router, **pools)
    rec = r.recorder
    assert np.isfinite(rec.finish).all() and r.metrics()["completed"] == n
    assert (rec.sent <= rec.first).all() and (rec.first <= rec.finish).all()
    assert r.itl.size == int((r.requests.output_len - 1).sum())
    for rep in r.replicas:
        assert all(0 <= u0 <= rep.cfg.num_blocks and 0 <= u1 <= rep.cfg.num_blocks for *_, u0, u1 in rep.timeline)
        assert rep.used == 0 and not rep.has_work() and rep.outstanding == 0
    for g in range(len(r.replicas) // ep):
        rows = [row[:2] for rep in r.replicas[g * ep:(g + 1) * ep] for row in rep.timeline]
        bounds = np.unique(np.array(rows).ravel())
        for a, b in rows:
            inside = bounds[(bounds > a) & (bounds < b)]
            assert inside.size == 0, (a, b, inside)


# ---- two-batch overlap (system/overlap.py) in the ranks' iterations ----------------------------------------

@pytest.mark.parametrize("model,ep,batch,tier", SATURATED)
@pytest.mark.parametrize("scheduler", ["static", "continuous"])
def test_saturated_ranks_with_two_batch_overlap_equal_predicts_overlapped_step(model, ep, batch, tier, scheduler):
    """With two_batch_overlap, ep x batch equal requests at once run predict's TBO scenario: each rank's batch
    in two micro-batches whose all-to-alls overlap the other's compute, the prefill's compute on the SMs DeepEP's
    normal kernels leave (H100: 112 of 132). TTFT, TPOT, e2e latency and throughput within 1% of predict's TBO
    figures (measured equal to 5e-7 before predict priced the all-to-alls' HBM traffic, which the simulator's
    iterations do not: a few % of HBM, under 1 % of a step), and apart from predict's figures without TBO."""
    kw = dict(ep=ep, input_len=512, output_len=64, tier=tier)
    p = tapeout.predict(model, "h100-sxm", batch=batch, max_prefill_tokens=None, two_batch_overlap=True, **kw)
    plain = tapeout.predict(model, "h100-sxm", batch=batch, max_prefill_tokens=None, **kw)
    r = sim(model, scheduler=scheduler, num_requests=batch * ep, max_batch=batch, rate=math.inf,
            max_num_tokens=batch * 512 if scheduler != "static" else None, two_batch_overlap=True, **kw)
    m = r.metrics()
    assert m["completed"] == batch * ep
    assert m["ttft_s"]["p99"] == pytest.approx(p.ttft_s, rel=0.01)
    assert m["tpot_s"]["mean"] == pytest.approx(p.tpot_s, rel=0.01)
    assert m["e2e_latency_s"]["mean"] == pytest.approx(p.e2e_latency_s, rel=0.01)
    assert m["output_throughput_tok_s"] == pytest.approx(p.throughput_tok_s, rel=0.01)
    assert abs(p.tpot_s / plain.tpot_s - 1) > 0.02 and abs(p.ttft_s / plain.ttft_s - 1) > 0.02
    assert r.inputs["two_batch_overlap"] is True


def test_two_batch_overlap_off_leaves_the_simulation_as_it_was():
    """two_batch_overlap=False is the default run, metric for metric (the same pricer path); on, the same run
    differs."""
    kw = dict(ep=4, workload="sharegpt", num_requests=60, rate=30.0, seed=3)
    base = sim(**kw).metrics()
    assert sim(two_batch_overlap=False, **kw).metrics() == base
    assert sim(two_batch_overlap=True, **kw).metrics()["tpot_s"]["mean"] != base["tpot_s"]["mean"]


def test_one_sequence_per_rank_is_not_split():
    """A rank's batch of one is not split (predict's batch 1): with one client per rank every iteration prices
    as without the overlap, to rounding."""
    kw = dict(ep=8, num_requests=32, concurrency=8, input_len=300, output_len=40)
    on, off = sim(two_batch_overlap=True, **kw).metrics(), sim(**kw).metrics()
    for k in ("ttft_s", "tpot_s", "e2e_latency_s"):
        assert on[k]["mean"] == pytest.approx(off[k]["mean"], rel=1e-9)


def _pricer(model=LITE, ep=4, tbo=True, tier="roofline"):
    from tapeout.api import prepare
    from tapeout.serving.iteration import iteration_pricer
    from tapeout.workload.scenario import PredictInputs

    pre = prepare(model, "h100-sxm", PredictInputs(ep=ep, two_batch_overlap=tbo, tier=tier))
    return iteration_pricer(pre.model, pre.hardware, pre.scenario, pre.tier)


def test_ranks_that_disagree_on_the_mode_run_without_the_overlap():
    """SGLang runs TBO only when every rank's batch is of one mode (``TboDPAttentionPreparer.compute_output``:
    the ranks' can-run flags and forward modes all-gathered, idle counting as decode): an iteration where one
    rank prefills and another decodes (or idles) is priced as without the overlap, exactly."""
    on, off = _pricer(), _pricer(tbo=False)
    for ranks in ([([(700, 0)], 0, 0.0, 1), ([], 12, 900.0, 12)],
                  [([(300, 0), (200, 100)], 5, 400.0, 6), ([], 0, 0.0, 0)]):
        ranks = ranks + [([], 3, 50.0, 3)] * 2
        assert on.wide_iteration(ranks) == off.wide_iteration(ranks)
    same = [([(700, 0), (640, 0)], 0, 0.0, 2)] * 4
    assert on.wide_iteration(same) != off.wide_iteration(same)


@settings(max_examples=40, deadline=None)
@given(tokens=st.lists(st.integers(1, 5000), min_size=1, max_size=40))
def test_the_split_balances_the_tokens(tokens):
    """SGLang's split (``_split_array_by_half_sum``): the first micro-batch takes the prefix whose tokens are
    closest to half (no split point does better), at least one sequence on each side; equal sequences split as
    predict's micro-batches, ceil(n / 2) first."""
    from tapeout.system.overlap import split_point

    n = len(tokens)
    k = split_point(tokens)
    if n == 1:
        assert k == 1
        return
    assert 1 <= k <= n - 1
    total = sum(tokens)
    assert abs(2 * sum(tokens[:k]) - total) == min(abs(2 * sum(tokens[:i]) - total) for i in range(1, n))
    assert split_point([tokens[0]] * n) == n - n // 2


@FAST
@given(decodes=st.lists(st.integers(0, 64), min_size=4, max_size=4), grow=st.integers(0, 3),
       extra=st.integers(1, 32), ctx=st.integers(10, 4000))
def test_the_busiest_rank_sets_the_overlapped_pace(decodes, grow, extra, ctx):
    """Ranks in step under TBO: more decodes on one rank never make the step faster (each stage is the slowest
    rank's, the experts see every rank's tokens), and the step is never below that rank's own overlapped step
    with the others idle."""
    pr = _pricer()
    if not any(decodes):
        decodes[0] = 1
    ranks = [(d, float(ctx)) for d in decodes]
    more = list(ranks)
    more[grow] = (decodes[grow] + extra, float(ctx))
    t, t_more = pr.wide_decode_steps(ranks, 3), pr.wide_decode_steps(more, 3)
    assert (t_more >= t * (1 - 1e-12)).all()
    alone = [(0, 0.0)] * 4
    alone[grow] = more[grow]
    assert (t_more >= pr.wide_decode_steps(alone, 3) * (1 - 1e-12)).all()


def test_two_batch_overlap_needs_wide_expert_parallelism():
    """Without data-parallel attention (tp = 1, ep > 1) the option is the one-line error predict gives."""
    from tapeout.errors import TapeoutError

    with pytest.raises(TapeoutError) as pe:
        tapeout.predict("mixtral-8x7b", "h100-sxm", tp=2, ep=2, two_batch_overlap=True)
    with pytest.raises(TapeoutError) as se:
        sim("mixtral-8x7b", tp=2, ep=2, two_batch_overlap=True)
    assert str(se.value) == str(pe.value) and "\n" not in str(se.value)
    assert "two_batch_overlap needs wide expert parallelism" in str(se.value)
