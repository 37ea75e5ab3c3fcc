"""End-to-end composition: invariants and published facts."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import tapeout
from tapeout import load_hardware, load_model
from tapeout.errors import TapeoutError
from tapeout.system import compose as compose_mod
from tapeout.system.compose import compose, compose_batch
from tapeout.workload.scenario import Scenario

M7 = "llama-2-7b"
A100 = "a100-sxm-80gb"


def test_prediction_keys_and_consistency():
    p = tapeout.predict(M7, A100, batch=4, input_len=512, output_len=64)
    d = p.to_dict()
    for k in ("ttft_s", "tpot_s", "e2e_latency_s", "throughput_tok_s", "memory", "inputs", "ops"):
        assert k in d
    for k in ("weights_bytes", "kv_cache_bytes", "activation_bytes", "total_bytes", "capacity_bytes", "fits"):
        assert k in d["memory"]
    assert d["e2e_latency_s"] == pytest.approx(d["ttft_s"] + 63 * d["tpot_s"])
    assert d["throughput_tok_s"] == pytest.approx(4 * 64 / d["e2e_latency_s"])
    assert d["ttft_s"] == pytest.approx(sum(r["total_s"] for r in d["ops"] if r["phase"] == "prefill"))
    assert {r["bound"] for r in d["ops"]} <= {"compute", "memory", "network", "overhead"}


def test_fp16_weights_bytes_are_two_per_param():
    p = tapeout.predict(M7, A100, batch=1, input_len=128, output_len=8)
    assert p.memory.weights_bytes == pytest.approx(2 * load_model(M7).total_params(), rel=1e-9)


def test_int4_weights_are_a_quarter_of_linear_bytes():
    m = load_model(M7)
    p16 = tapeout.predict(m, A100, input_len=128, output_len=8)
    p4 = tapeout.predict(m, A100, input_len=128, output_len=8, weights="int4")
    emb = 2 * (m.embedding_params() + m.lm_head_params())
    assert (p4.memory.weights_bytes - emb) == pytest.approx((p16.memory.weights_bytes - emb) / 4, rel=0.01)
    # decode at batch 1 is weight-streaming bound: int4 weights must make it faster
    assert p4.tpot_s < p16.tpot_s


def test_kv_cache_bytes_published_values():
    # Llama-2-7B (MHA, 32 layers x 4096): 0.5 MiB/token in fp16; Llama-2-70B (GQA 8x128, 80 layers): 320 KiB
    assert tapeout.predict("llama-2-7b", A100, input_len=100, output_len=2).memory.kv_cache_bytes_per_token == 524288
    p = tapeout.predict("llama-2-70b", "h100-sxm", tp=4, input_len=100, output_len=2)
    assert p.memory.kv_cache_bytes_per_token == 327680 / 4


def test_tpot_sampling_error_is_bounded():
    m, hw = load_model(M7), load_hardware(A100)
    sc = Scenario(batch=16, input_len=1000, output_len=3000)
    approx = compose(m, hw, sc).tpot_s
    steps = [compose_mod.price(compose_mod.build_graph(m, sc, "decode", c), hw, "roofline").time_s
             for c in range(sc.input_len + 1, sc.input_len + sc.output_len)]
    assert approx == pytest.approx(float(np.mean(steps)), rel=1e-3)


def test_tensor_parallel_reduces_memory_and_latency_for_70b():
    p1 = tapeout.predict("llama-2-70b", "h100-sxm", tp=2, batch=1, input_len=2048, output_len=32)
    p4 = tapeout.predict("llama-2-70b", "h100-sxm", tp=4, batch=1, input_len=2048, output_len=32)
    assert p4.memory.weights_bytes < p1.memory.weights_bytes / 1.9
    assert p4.tpot_s < p1.tpot_s
    assert p4.ttft_s < p1.ttft_s


def test_fits_and_max_batch():
    p = tapeout.predict("llama-2-70b", A100, tp=1, input_len=2048, output_len=128)
    assert not p.memory.fits and p.memory.max_batch == 0  # 138 GB of weights on 80 GB
    p = tapeout.predict("llama-2-70b", "h100-sxm", tp=4, input_len=2048, output_len=128)
    assert p.memory.fits and p.memory.max_batch > 1
    at_max = tapeout.predict("llama-2-70b", "h100-sxm", tp=4, batch=p.memory.max_batch, input_len=2048, output_len=128)
    over = tapeout.predict("llama-2-70b", "h100-sxm", tp=4, batch=p.memory.max_batch + 1, input_len=2048, output_len=128)
    assert at_max.memory.fits and not over.memory.fits


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"batch": 0}, "batch"),
        ({"input_len": -5}, "input_len"),
        ({"weights": "fp7"}, "weights"),
        ({"tp": 3}, "tp"),
        ({"tier": "magic"}, "tier"),
        ({"attention": "sparse"}, "attention"),
    ],
)
def test_bad_inputs_name_the_field(kwargs, field):
    with pytest.raises(TapeoutError) as e:
        tapeout.predict(M7, A100, **kwargs)
    assert field in str(e.value) and "\n" not in str(e.value)


def test_unknown_names_suggest_close_matches():
    with pytest.raises(TapeoutError, match="llama-2-7b"):
        tapeout.predict("llama-2-7", A100)
    with pytest.raises(TapeoutError, match="h100-sxm"):
        tapeout.predict(M7, "h100-sxn")


# ---- invariants (hypothesis) -------------------------------------------------------------

scen = st.builds(
    Scenario,
    batch=st.integers(1, 64),
    input_len=st.integers(1, 4096),
    output_len=st.integers(1, 64),
    tp=st.sampled_from([1, 2, 4, 8]),
    weights=st.sampled_from(["fp16", "int8", "int4", "fp8"]),
)


@settings(max_examples=25, deadline=None)
@given(sc=scen, factor=st.floats(1.01, 4.0))
def test_more_bandwidth_or_peak_never_slower(sc, factor):
    m, hw = load_model(M7), load_hardware(A100)
    base = compose(m, hw, sc)
    faster_mem = hw.model_copy(update={"memory": hw.memory.model_copy(
        update={"bandwidth_gbps": hw.memory.bandwidth_gbps * factor})})
    faster_peak = hw.model_copy(update={"peak_tflops": {k: v * factor for k, v in hw.peak_tflops.items()}})
    for fast in (faster_mem, faster_peak):
        r = compose(m, fast, sc)
        assert r.ttft_s <= base.ttft_s * (1 + 1e-12)
        assert r.tpot_s <= base.tpot_s * (1 + 1e-12)


@settings(max_examples=25, deadline=None)
@given(b=st.integers(1, 16), s=st.integers(1, 8000), ds=st.integers(1, 4000))
@example(b=15, s=7664, ds=441)  # 14 full passes and a 272-token one against 14 and a 6,887-token one
def test_prefill_time_grows_with_prompt_length(b, s, ds):
    # the batch's own prefill (compose_batch): under compose, a KV pool too small for the longer prompts runs
    # fewer sequences in the first wave, whose TTFT may then be shorter
    m, hw = load_model(M7), load_hardware("h100-sxm")
    t1 = compose_batch(m, hw, Scenario(batch=b, input_len=s, output_len=1)).ttft_s
    t2 = compose_batch(m, hw, Scenario(batch=b, input_len=s + ds, output_len=1)).ttft_s
    assert t2 > t1


@settings(max_examples=20, deadline=None)
@given(b=st.integers(1, 16), k=st.integers(2, 4))
def test_decode_step_sublinear_in_batch_when_memory_bound(b, k):
    m, hw = load_model(M7), load_hardware(A100)
    t1 = compose(m, hw, Scenario(batch=b, input_len=512, output_len=2)).tpot_s
    tk = compose(m, hw, Scenario(batch=b * k, input_len=512, output_len=2)).tpot_s
    assert t1 <= tk < k * t1


@settings(max_examples=25, deadline=None)
@given(b=st.integers(1, 32), ctx=st.integers(16, 8000), k=st.integers(2, 5))
def test_kv_memory_linear_in_batch_times_context(b, ctx, k):
    m = load_model("llama-3-8b")
    p = tapeout.predict(m, A100, batch=b, input_len=ctx, output_len=1)
    q = tapeout.predict(m, A100, batch=b * k, input_len=ctx, output_len=1)
    assert q.memory.kv_cache_bytes == pytest.approx(k * p.memory.kv_cache_bytes)
    assert p.memory.kv_cache_bytes == b * ctx * p.memory.kv_cache_bytes_per_token


def test_framework_profile_adds_its_host_overhead_per_op():
    base = tapeout.predict(M7, A100, batch=1, input_len=128, output_len=16)
    ds = tapeout.predict(M7, A100, batch=1, input_len=128, output_len=16, framework="deepspeed")
    assert ds.to_dict()["inputs"]["framework"] == "deepspeed"
    steps = sum(r["count"] for r in ds.to_dict()["ops"] if r["phase"] == "decode")
    from tapeout.system.frameworks import framework

    assert ds.tpot_s - base.tpot_s == pytest.approx(steps * framework("deepspeed").host_overhead_us * 1e-6, rel=0.02)
    # an explicit efficiency override wins over the profile
    own = tapeout.predict(M7, A100, batch=1, input_len=128, output_len=16, framework="deepspeed",
                          efficiency={"host_overhead_us": 0.0})
    assert own.tpot_s == pytest.approx(base.tpot_s)
    with pytest.raises(TapeoutError, match="framework"):
        tapeout.predict(M7, A100, framework="vllm-magic")


def test_python_scheduler_profile_adds_host_time_per_sequence_each_step():
    """python-scheduler extends the default profile (its prefill host gap and one-shot all-reduce) with the
    host's per-sequence work between steps, carried by each step's sampling op: once per sequence that produces a
    token, in every decode step and in the prefill pass that samples the first tokens, not per layer or kernel."""
    from tapeout.system.frameworks import framework

    ps, k = framework("python-scheduler"), framework("kernels")
    assert ps.base == "kernels" and ps.sequence_host_overhead_us > 0 and k.sequence_host_overhead_us == 0
    assert (ps.prefill_host_overhead_us, ps.oneshot_allreduce_latency_us) == (
        k.prefill_host_overhead_us, k.oneshot_allreduce_latency_us)
    per = ps.sequence_host_overhead_us * 1e-6
    for tier in ("roofline", "tiled"):
        base = tapeout.predict(M7, A100, batch=48, input_len=256, output_len=8, tier=tier)
        py = tapeout.predict(M7, A100, batch=48, input_len=256, output_len=8, tier=tier, framework="python-scheduler")
        assert py.tpot_s - base.tpot_s == pytest.approx(48 * per, rel=1e-6)
        assert py.ttft_s - base.ttft_s == pytest.approx(48 * per, rel=1e-6)
        samp = next(c for o, c in zip(py.result.decode_representative.ops, py.result.decode_representative.costs)
                    if o.kind.value == "sampling")
        assert samp.terms["sequence_host_us"] == pytest.approx(48 * ps.sequence_host_overhead_us)
    own = tapeout.predict(M7, A100, batch=48, input_len=256, output_len=8, framework="python-scheduler",
                          efficiency={"sequence_host_overhead_us": 0.0})
    assert own.tpot_s == pytest.approx(tapeout.predict(M7, A100, batch=48, input_len=256, output_len=8).tpot_s)
    for bad in (-1.0, float("nan"), True, 1e7):
        with pytest.raises(TapeoutError, match="sequence_host_overhead_us") as err:
            tapeout.predict(M7, A100, efficiency={"sequence_host_overhead_us": bad})
        assert "\n" not in str(err.value)


def test_a_profile_extends_its_base_and_refuses_unknown_or_circular_bases():
    """``base`` takes the other profile's definition and fitted values under the profile's own; a base that does
    not exist or leads back to the profile is a one-line error when the profiles load."""
    from tapeout.system import frameworks as fw

    data = {"k": {"description": "base", "prefill_host_overhead_us": 3.0, "oneshot_allreduce_max_bytes": 1024},
            "p": {"base": "k", "description": "child", "sequence_host_overhead_us": 5.0}}
    got, _ = fw._fields("p", data)
    assert got["prefill_host_overhead_us"] == 3.0 and got["oneshot_allreduce_max_bytes"] == 1024
    assert got["sequence_host_overhead_us"] == 5.0 and got["description"] == "child"
    for bad, match in (({"a": {"base": "b", "description": "x"}, "b": {"base": "a", "description": "y"}}, "cycle"),
                       ({"a": {"base": "zz", "description": "x"}}, "unknown profile 'zz'")):
        with pytest.raises(RuntimeError, match=match) as err:
            fw._fields("a", bad)
        assert "\n" not in str(err.value)


def test_the_simulator_prices_the_per_sequence_host_time_as_predict_does():
    """One cost core: a static batch simulated under python-scheduler pays the same per-sequence host time per
    step as predict's decode step."""
    per = 1e-6 * __import__("tapeout.system.frameworks", fromlist=["framework"]).framework(
        "python-scheduler").sequence_host_overhead_us
    kw = dict(batch=32, input_len=128, output_len=6)
    sims = [tapeout.simulate(M7, A100, scheduler="static", max_batch=32, num_requests=32, input_len=128,
                             output_len=6, framework=f) for f in ("kernels", "python-scheduler")]
    assert sims[1].itl.mean() - sims[0].itl.mean() == pytest.approx(32 * per, rel=1e-3)
    preds = [tapeout.predict(M7, A100, framework=f, **kw) for f in ("kernels", "python-scheduler")]
    assert preds[1].tpot_s - preds[0].tpot_s == pytest.approx(32 * per, rel=1e-6)


def test_llamacpp_profile_caps_streaming_by_cores_and_clock():
    """llama.cpp's generation streams at most stream_bytes_per_core_clock x cores x clock: on A100 that
    binds well below HBM bandwidth, on an RTX 4090 (GDDR6X, many fast SMs) it does not."""
    from tapeout.system.frameworks import framework

    per = framework("llamacpp").stream_bytes_per_core_clock
    a100 = tapeout.load_hardware(A100)
    base = tapeout.predict(M7, A100, batch=1, input_len=1, output_len=32)
    lc = tapeout.predict(M7, A100, batch=1, input_len=1, output_len=32, framework="llamacpp")
    assert lc.to_dict()["inputs"]["framework"] == "llamacpp" and lc.tpot_s > 1.2 * base.tpot_s
    ua = a100.microarch
    gemm = next(c for o, c in zip(lc.result.decode_representative.ops, lc.result.decode_representative.costs)
                if o.kind.value == "gemm" and o.name == "mlp_down")
    assert gemm.terms["stream_cap_gbps"] == pytest.approx(ua.cores * ua.clock_mhz * 1e6 * per / 1e9)
    assert gemm.bound == "memory" and gemm.memory_s == pytest.approx(gemm.terms["stream_cap_s"])
    g = tapeout.predict(M7, "rtx-4090", batch=1, input_len=1, output_len=32)
    g_lc = tapeout.predict(M7, "rtx-4090", batch=1, input_len=1, output_len=32, framework="llamacpp")
    assert g_lc.tpot_s == pytest.approx(g.tpot_s, rel=0.02)


def test_gptfast_profile_runs_small_allreduces_one_shot():
    """PyTorch's intra-node all-reduce reads the peers' buffers in one step: at TP 8 a decode all-reduce
    costs its fixed latency plus 7 small reads, far less than NCCL's 14 ring steps; large messages keep
    NCCL's algorithms (above 256 KiB)."""
    from tapeout.perf import estimate
    from tapeout.system.frameworks import framework
    from tapeout.workload.standalone import collective_op

    fw = framework("gptfast")
    hw = tapeout.load_hardware(A100)
    hw_fw = hw.with_efficiency(**fw.efficiency())
    small = collective_op("allreduce", 16384, 8)
    big = collective_op("allreduce", 8 * 2**20, 8)
    for tier in ("roofline", "tiled"):
        nccl, one = estimate(small, hw, tier), estimate(small, hw_fw, tier)
        assert one.terms["algorithm"] == "one-shot" and one.time_s < 0.6 * nccl.time_s
        assert one.network_s == pytest.approx(7 * 16384 / (hw.interconnect.bandwidth * one.terms["eta_interconnect"]))
        assert estimate(big, hw_fw, tier).terms.get("algorithm") != "one-shot"
    nccl = tapeout.predict(M7, A100, tp=8, batch=1, input_len=8, output_len=16,
                           efficiency={"oneshot_allreduce_max_bytes": None})
    gf = tapeout.predict(M7, A100, tp=8, batch=1, input_len=8, output_len=16, framework="gptfast")
    assert gf.tpot_s < nccl.tpot_s
    # the default profile runs the same one-shot all-reduce (current runtimes' custom all-reduce)
    base = tapeout.predict(M7, A100, tp=8, batch=1, input_len=8, output_len=16)
    assert base.tpot_s == pytest.approx(gf.tpot_s)
    # a PCIe-only device has no switched NVLink fabric: the profile changes nothing there
    pc = tapeout.predict(M7, "rtx-4090", tp=2, batch=1, input_len=8, output_len=16)
    pc_gf = tapeout.predict(M7, "rtx-4090", tp=2, batch=1, input_len=8, output_len=16, framework="gptfast")
    assert pc_gf.tpot_s == pytest.approx(pc.tpot_s)
