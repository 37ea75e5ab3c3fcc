"""Incremental pricing (system/compose.py, system/pricing.py, workload.build.pipeline) equals pricing every op
of every stage's graph at every decode context from scratch; a prefill beyond the token budget
(system/chunked.py: pass kinds, memoised templates, merged rows) equals pricing every forward pass one by one."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tapeout
from tapeout.models.catalog import load_model
from tapeout.perf import estimate, sweep
from tapeout.system.compose import decode_contexts
from tapeout.system.chunked import chunked
from tapeout.workload.build import IterationTemplate, _Builder, _stage_groups, build_graph, pipeline
from tapeout.workload.ops import OpKind, OpSweep
from tapeout.workload.scenario import Scenario, balanced_stages

REL = 1e-9


def _reference(model, hw, sc, tier):  # noqa: ANN001, ANN202
    """The straightforward composition: build each stage's whole graph per phase and context (no template,
    no shared stages, no memo) and price every op with ``perf.estimate``."""

    def chunked_stage_times() -> list[float]:
        """Every forward pass of a prefill beyond the token budget, one by one: the prompts' tokens cut every
        ``budget`` tokens, each piece attending to the tokens of its prompt before it."""
        budget, n = sc.max_prefill_tokens, sc.input_len
        tokens = [(j, i) for j in range(sc.batch) for i in range(n)]  # (prompt, position), laid end to end
        out = [0.0] * sc.pp
        for s in range(sc.pp):
            t = IterationTemplate(model, sc, s, _stage_groups(model, sc, s))
            for start in range(0, len(tokens), budget):
                piece = tokens[start:start + budget]
                ops = list(t.token_ops(len(piece), eager=True))
                groups: dict[tuple[int, int], int] = {}  # pieces of equal (length, cached tokens) share a kernel
                for j in sorted({j for j, _ in piece}):
                    pos = [i for jj, i in piece if jj == j]
                    groups[(len(pos), pos[0])] = groups.get((len(pos), pos[0]), 0) + 1
                for (chunk, prior), seqs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
                    ops += t.prefill_attention(seqs, chunk, prior, eager=True)
                ends = sum(1 for _, i in piece if i == n - 1)
                if ends:
                    ops += t.head_ops(ends, eager=True)
                out[s] += sum(estimate(o, hw, tier).total_s for o in ops)
        return out

    def stage_times(phase: str, context: int) -> list[float]:
        out = []
        for s in range(sc.pp):
            g = _Builder(model, sc, s).build(phase, context)
            out.append(sum(estimate(o, hw, tier).total_s for o in g.ops))
        return out

    pre = stage_times("prefill", sc.input_len) if not chunked(sc) else chunked_stage_times()
    ctx, w = decode_contexts(sc)
    steps = [stage_times("decode", int(c)) for c in ctx]
    mb = sc.pp_microbatches
    tpot = sum(wi * max(sum(s), mb * max(s)) for wi, s in zip(w, steps))
    ttft = sum(pre)
    total = ttft + (mb - 1) * max(pre) + (sc.output_len - 1) * tpot
    return {"ttft": ttft, "tpot": tpot, "throughput": sc.dp * mb * sc.batch * sc.output_len / total, "prefill": pre,
            "steps": steps, "contexts": [int(c) for c in ctx]}


def _check(p, ref) -> None:  # noqa: ANN001
    r = p.result
    assert r.ttft_s == pytest.approx(ref["ttft"], rel=REL)
    assert r.tpot_s == pytest.approx(ref["tpot"], rel=REL)
    assert r.throughput_tok_s == pytest.approx(ref["throughput"], rel=REL)
    assert list(r.prefill.stage_times) == pytest.approx(ref["prefill"], rel=REL)
    assert [list(row) for row in r.decode.stage_times] == [pytest.approx(s, rel=REL) for s in ref["steps"]]
    assert [s.graph.context for s in r.decode_steps] == ref["contexts"]


CASES = [
    ("llama-2-7b", "a100-sxm-80gb", dict(tier="tiled", batch=1, input_len=1024, output_len=128)),
    # chunked prefills: prompts split across passes, eager attention against cached keys, pipeline stages
    ("llama-3-8b", "a100-sxm-80gb", dict(tier="tiled", batch=3, attention="naive", pp=2, input_len=700,
                                         output_len=10, max_prefill_tokens=512, framework="llamacpp")),
    ("gemma-2-9b", "h100-sxm", dict(tier="roofline", batch=5, input_len=1500, output_len=8, max_prefill_tokens=1024)),
    ("llama-2-7b", "a100-sxm-80gb", dict(tier="roofline", batch=64, input_len=300, output_len=40)),
    ("mixtral-8x7b", "h100-sxm", dict(tier="tiled", batch=8, tp=2, ep=2, input_len=512, output_len=100)),
    ("llama-2-70b", "a100-sxm-80gb", dict(tier="tiled", batch=4, tp=2, pp=4, pp_microbatches=2, input_len=256,
                                          output_len=90, kv_cache="int8")),
    ("llama-3-8b", "a100-sxm-80gb", dict(tier="tiled", batch=8, attention="naive", input_len=200, output_len=70)),
    ("llama-3-8b", "a100-sxm-80gb", dict(tier="roofline", batch=8, attention="naive", input_len=200, output_len=20)),
    ("llama-2-7b", "h100-sxm", dict(tier="tiled", framework="llamacpp", input_len=128, output_len=100)),
    ("llama-2-13b", "a100-sxm-80gb", dict(tier="roofline", batch=4, weights="int4", kv_cache="fp8", pp=3,
                                          input_len=128, output_len=100,
                                          scenario={"layers": [{"match": "mlp", "layers": [0, 1, 2, 20],
                                                                "weights": "int8"}]})),
    ("opt-13b", "a100-sxm-80gb", dict(tier="tiled", batch=2, framework="fastertransformer", input_len=64,
                                      output_len=65)),
    ("llama-2-70b", "b200", dict(tier="tiled", batch=16, tp=2, pp=2, input_len=512, output_len=128)),
    # frontier: decode crossing Gemma 2's 4096 window and Llama 4's 8192-token chunk boundary, MLA in both forms,
    # sliding + full layers under eager attention (soft-capped scores), pipeline stages over mixed spans
    ("gemma-2-9b", "h100-sxm", dict(tier="tiled", batch=2, input_len=4000, output_len=200)),
    ("gemma-2-27b", "h100-sxm", dict(tier="roofline", batch=2, attention="naive", input_len=4050, output_len=90)),
    ("llama-4-scout", "h100-sxm", dict(tier="tiled", batch=2, tp=4, input_len=8150, output_len=100)),
    ("deepseek-v2-lite", "h100-sxm", dict(tier="tiled", batch=4, input_len=300, output_len=100)),
    ("deepseek-v2-lite", "a100-sxm-80gb", dict(tier="roofline", batch=3, tp=2, mla_attention="naive", input_len=200,
                                               output_len=50)),
    ("gpt-oss-20b", "h100-sxm", dict(tier="tiled", batch=3, pp=3, input_len=100, output_len=70)),
    # wide expert parallelism: data-parallel attention over two nodes, all-to-alls over NVLink and the NICs
    ("deepseek-v2-lite", "h100-sxm", dict(tier="tiled", batch=2, ep=16, input_len=128, output_len=80)),
]


@pytest.mark.parametrize("model,hw,kw", CASES, ids=[f"{m}-{h}-{k['tier']}-{i}" for i, (m, h, k) in enumerate(CASES)])
def test_incremental_composition_equals_full_repricing(model, hw, kw):
    p = tapeout.predict(model, hw, **kw)
    _check(p, _reference(p.model, p.hardware, p.scenario, p.tier))


@given(batch=st.sampled_from([1, 3, 32]), input_len=st.integers(1, 3000), output_len=st.integers(1, 400),
       pp=st.integers(1, 5), attention=st.sampled_from(["flash", "naive", "mmha"]),
       tier=st.sampled_from(["roofline", "tiled"]))
@settings(max_examples=12, deadline=None)
def test_incremental_equals_full_repricing_on_random_scenarios(batch, input_len, output_len, pp, attention, tier):
    p = tapeout.predict("llama-3.1-8b", "h100-sxm", batch=batch, input_len=input_len, output_len=output_len,
                        pp=pp, pp_microbatches=min(pp, 2), attention=attention, tier=tier)
    _check(p, _reference(p.model, p.hardware, p.scenario, p.tier))


def test_templates_rebuild_the_same_graphs_as_the_builder():
    m = load_model("llama-2-70b")
    rules = {"layers": [{"match": "attention", "layers": list(range(0, 80, 7)), "keep": 0.5}]}
    for sc in (Scenario(batch=3, input_len=100, output_len=50, tp=2, pp=3, attention="naive", **rules),
               Scenario(batch=2, input_len=100, output_len=50, pp=4, kv_cache="int4_g64")):
        for s in range(sc.pp):
            for c in (101, 117, 149):
                assert build_graph(m, sc, "decode", c, stage=s) == _Builder(m, sc, s).build("decode", c)
            assert build_graph(m, sc, "prefill", stage=s) == _Builder(m, sc, s).build("prefill", sc.input_len)


def test_stages_with_equal_contents_share_their_graphs():
    m = load_model("llama-3.1-405b")
    pipe = pipeline(m, Scenario(tp=8, pp=32, input_len=64, output_len=8))
    assert len(pipe.stages) == 32
    assert len(pipe.distinct()) < 8  # first, last and a few middle layer counts
    assert pipe.stages[0] is not pipe.stages[-1]


def test_pipeline_phase_rows_name_their_stage_and_match_direct_pricing():
    p = tapeout.predict("llama-2-7b", "a100-sxm-80gb", batch=2, input_len=64, output_len=8, pp=3, tier="tiled")
    ph = p.result.decode_representative
    c = ph.graph.context
    direct = [estimate(o, p.hardware, "tiled") for s in range(3) for o in _Builder(p.model, p.scenario, s)
              .build("decode", c).ops]
    assert [o.name.split("/")[0] for o in ph.ops][0] == "s0" and ph.ops[-1].name.startswith("s2/")
    assert [x.name.split("/", 1)[1] for x in ph.costs] == [d.name for d in direct]
    assert [x.time_s for x in ph.costs] == [d.time_s for d in direct]
    assert [x.count for x in ph.costs] == [d.count for d in direct]
    assert sum(x.total_s for x in ph.costs) == pytest.approx(ph.time_s, rel=REL)


@pytest.mark.parametrize("hw", ["a100-sxm-80gb", "h100-sxm", "mi300x", "l4", "gaudi2"])
@pytest.mark.parametrize("tier", ["roofline", "tiled"])
def test_sweeps_equal_one_by_one_estimates(hw, tier):
    m = load_model("llama-2-70b")
    base = tapeout.load_hardware(hw)
    eff = base.efficiency.model_copy(update={"host_overhead_us": 7.0, "launch_overhead_us": 3.0})
    for hw_spec, sc in ((base, s) for s in (Scenario(batch=5, input_len=1000, output_len=3000, tp=2),
               Scenario(batch=1, input_len=10, output_len=20, attention="mmha"),
               Scenario(batch=64, input_len=10, output_len=20, attention="naive"))):
        ctx = [11, 64, 65, 300, 1023, 1024, 1025, 4000]
        graphs = [build_graph(m, sc, "decode", c) for c in ctx]
        varying = [i for i, o in enumerate(graphs[0].ops) if o != graphs[-1].ops[i]]
        assert varying  # attention reads the cache
        for i in varying:
            ops = [g.ops[i] for g in graphs]
            t = sweep(OpSweep.of(ops), hw_spec, tier)
            if t is None:
                assert ops[0].kind is not OpKind.ATTENTION or tier == "roofline" and ops[0].kernel != "dense"
                continue
            assert list(t) == pytest.approx([estimate(o, hw_spec, tier).time_s for o in ops], rel=1e-12)
        # with host and launch overheads
        slow = hw_spec.model_copy(update={"efficiency": eff})
        ops = [g.ops[varying[0]] for g in graphs]
        t = sweep(OpSweep.of(ops), slow, tier)
        if t is not None:
            assert list(t) == pytest.approx([estimate(o, slow, tier).time_s for o in ops], rel=1e-12)


@pytest.mark.parametrize("model,kw", [
    ("llama-2-70b", dict(batch=3, tp=2, pp=3)),
    ("llama-2-7b", dict(batch=2, attention="mmha", kv_cache="int8")),
    ("llama-3-8b", dict(batch=4, kv_cache="int4_g64", tp=2)),
    ("llama-3-8b", dict(batch=2, attention="naive")),
    ("gemma-2-9b", dict(batch=2)),  # sliding-window layers: keys stop growing at the window
    ("llama-4-scout", dict(batch=1, tp=4)),  # chunked layers: keys restart at each chunk
    ("deepseek-v2-lite", dict(batch=2)),  # MLA absorbed decode: replayed per context
    ("deepseek-v2-lite", dict(batch=2, mla_attention="naive")),
])
def test_template_sweeps_equal_the_ops_replayed_per_context(model, kw):
    m = load_model(model)
    sc = Scenario(input_len=4000, output_len=9000, **kw)
    ctx, _ = decode_contexts(sc)
    assert ctx.min() < 4096 < 8192 < ctx.max()  # crosses Gemma 2's window and Llama 4's chunk
    for stage in pipeline(m, sc).distinct():
        t = stage.decode
        sweeps = t.sweeps(ctx)
        assert t.sweeps(ctx) is sweeps  # memoised
        per = [t.varying_ops(int(c)) for c in ctx]
        assert len(sweeps) == len(per[0])
        for j, s in enumerate(sweeps):
            assert s.uniform and len(s) == len(ctx)
            assert [s.op_at(i) for i in range(len(ctx))] == [p[j] for p in per]
            assert s.ops() == tuple(p[j] for p in per)
            for name in ("flops", "bytes_read", "bytes_written", "vector_ops"):
                assert list(s.field(name)) == [getattr(p[j], name) for p in per]


def test_op_sweep_of_ops_differing_in_more_than_their_work_is_not_uniform():
    m = load_model("llama-2-7b")
    sc = Scenario(batch=2, input_len=100, output_len=50)
    att = [o for o in build_graph(m, sc, "decode", 101).ops if o.kind is OpKind.ATTENTION][0]
    s = OpSweep.of([att, att])
    assert s.uniform and not s.fields and not s.dims
    assert not OpSweep.of([att, replace(att, compute_dtype="fp8")]).uniform
    assert not OpSweep.of([att, replace(att, shape=att.shape[:-1] + (("e", 1),))]).uniform
    swept = OpSweep.of([att, replace(att, flops=2 * att.flops, shape=tuple((k, v + 1 if k == "skv" else v)
                                                                            for k, v in att.shape))])
    assert set(swept.fields) == {"flops"} and set(swept.dims) == {"skv"}
    assert sweep(OpSweep.of([att, replace(att, compute_dtype="fp8")]), tapeout.load_hardware("h100-sxm"),
                 "tiled") is None


def _greedy(pp: int, layers: int, first: float, last: float) -> tuple[range, ...]:
    """The definition: every further layer to the least-loaded stage (ties: the earlier one), O(layers x pp)."""
    extra = [0.0] * pp
    extra[0] += first
    extra[-1] += last
    n = [1] * pp
    for _ in range(layers - pp):
        i = min(range(pp), key=lambda s: (n[s] + extra[s], s))
        n[i] += 1
    starts = [sum(n[:i]) for i in range(pp)]
    return tuple(range(a, a + k) for a, k in zip(starts, n))


@given(layers=st.integers(1, 130), pp=st.integers(1, 64), first=st.floats(0, 8), last=st.floats(0, 8))
@settings(max_examples=300, deadline=None)
def test_balanced_stages_follow_the_greedy_definition(layers, pp, first, last):
    if pp > layers:
        return
    assert balanced_stages(pp, layers, first, last) == _greedy(pp, layers, first, last)
