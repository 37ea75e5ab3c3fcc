"""The judged figures: FP6-LLM and Flash-LLM on A100 (measured/fp6_llm.csv, measured/flash_llm.csv).

These fail when a change moves the technique models out of the targets of the issue:
FP6-LLM end-to-end ratios within 15%; Flash-LLM SpMM/cuBLAS speedups with a median error within 15%
per sparsity and averages within 10% of the published 1.4/1.7/2.1. Every figure is checked for both
tiers (tiled is the default on A100, roofline the fallback elsewhere).
"""

import pytest

from tapeout.validate import judge


@pytest.fixture(scope="module", params=["roofline", "tiled"])
def tier(request):
    return request.param


@pytest.fixture(scope="module")
def fp6(shared_data, tier):
    return judge.fp6_llm(shared_data, tier=tier)


@pytest.fixture(scope="module")
def flash(shared_data, tier):
    return judge.flash_llm_rows(shared_data, tier=tier)


def test_fp6_llm_opt30b_ratios(fp6):
    figs = [f for f in fp6.figures if f.name.startswith("OPT-30B")]
    assert [f.measured for f in figs] == [1.91, 1.84, 1.72]
    for f in figs:
        assert f.ok, f"{f.name}: predicted {f.predicted:.3f} vs {f.measured} ({100 * f.error:+.1f}%)"
    # the ratio falls with batch, as measured
    assert figs[0].predicted > figs[1].predicted > figs[2].predicted


def test_fp6_llm_llama70b_one_gpu_vs_two(fp6):
    figs = [f for f in fp6.figures if f.name.startswith("LLaMA-70B")]
    assert len(figs) == 6  # batch 1..32
    # target: each within 15% (digitized values, +-3%); DeepSpeed's decode attention is priced as "mmha"
    # (K/V read per query head). The guard holds every point within 20% and all but one within 15%
    # (docs/techniques.md); today all are within 15% in both tiers
    for f in figs:
        assert abs(f.error) <= 0.20, f"{f.name}: predicted {f.predicted:.3f} vs {f.measured:.3f} ({100 * f.error:+.1f}%)"
    assert sum(f.ok for f in figs) >= len(figs) - 1, [(f.name, round(f.error, 3)) for f in figs]
    assert figs[0].predicted > figs[-1].predicted + 0.4  # the FP6 advantage shrinks as batch grows (measured: -1.0)


def test_flash_llm_speedups(flash):
    for s, st in flash.by_sparsity().items():
        assert st["median_abs_error"] <= 0.15, (s, st)
        published = judge.FLASH_AVERAGES[s]
        assert st["avg_predicted"] == pytest.approx(published, rel=0.10), (s, st)
        assert st["avg_predicted"] == pytest.approx(st["avg_measured"], rel=0.10), (s, st)
    avg = {s: st["avg_predicted"] for s, st in flash.by_sparsity().items()}
    assert avg[0.7] < avg[0.8] < avg[0.9]


def test_stored_kernel_constants_are_the_whole_set_fits(shared_data):
    from tapeout.fit import kernels as fit_kernels
    from tapeout.fitted import kernel_constants

    k = kernel_constants()
    eta_s, eta_d, loss, rows = fit_kernels.fit_flash(shared_data)
    assert (eta_s, eta_d) == pytest.approx((k.onchip_eta, k.tiled_csl_stream_eta), abs=0.011) and rows >= 100
    a, b, c, n, _ = fit_kernels.fit_sputnik(shared_data)
    assert a == pytest.approx(k.sputnik_ops_per_nnz, rel=0.02)
    assert b == pytest.approx(k.sputnik_ops_per_nnz_col, abs=0.05)
    assert c == pytest.approx(k.sputnik_ops_per_row, rel=0.02)


def test_stored_framework_profiles_are_the_whole_set_fits(shared_data):
    """Each stored profile value is the minimum of its fit's loss (checked at +-10 %: the full search is
    ``tapeout fit --only frameworks``) and explains most of the framework's gap. A field fitted on two sources
    (python-scheduler's per-sequence host time) is checked on their rows together."""
    from tapeout.fit import frameworks as ff
    from tapeout.system.frameworks import framework
    from tapeout.validate.registry import load_cases

    cases = load_cases(shared_data, list(ff.fit_datasets()))
    assert {fs.framework for fs in ff.FIT_SETS} == {"deepspeed", "fastertransformer", "llamacpp", "gptfast",
                                                    "kernels", "python-scheduler"}
    for sets in ff.fit_groups():
        fs = sets[0]
        rows = [c for s in sets for c in ff._rows(cases, s)]
        assert rows and all(ff._rows(cases, s) for s in sets), fs.framework
        v = getattr(framework(fs.framework), fs.param)
        at = ff.loss(rows, v, param=fs.param)
        assert at <= ff.loss(rows, 0.9 * v, param=fs.param) and at <= ff.loss(rows, 1.1 * v, param=fs.param), fs
        none = ff.loss_without(rows, fs)
        # a host or streaming term explains most of its framework's gap; the prefill host gap explains ~half of
        # the first-token gap (the rest: prefill GEMM efficiency, which it must not absorb)
        assert at < (0.6 if fs.param == "prefill_host_overhead_us" else 0.5) * none, fs.framework
    assert framework("deepspeed").host_overhead_us == judge.deepspeed_host_us()


def test_fp6_vs_trt_llm_w4a16(shared_data, tier):
    rep = judge.fp6_vs_w4a16(shared_data, tier=tier)
    assert len(rep.figures) == 6
    for f in rep.figures:
        assert f.ok, f"{f.name}: predicted {f.predicted:.3f} vs {f.measured} ({100 * f.error:+.1f}%)"
    # per-channel W4A16 is faster than FP6 at every batch; group scales cost FP6's whole margin
    coarse = [f for f in rep.figures if "per-channel" in f.name]
    assert all(f.predicted > 1.05 for f in coarse)


def test_stored_int_kernel_constants_are_the_whole_set_fit(shared_data):
    from tapeout.fit import kernels as fit_kernels
    from tapeout.fitted import kernel_constants

    k = kernel_constants()
    s, e, loss, n = fit_kernels.fit_int_kernel(shared_data)
    assert (s, e) == pytest.approx((k.int_group_scale_ops, k.int_kernel_overhead_ops), abs=0.01)
    assert loss < 0.08 and n == 6


def test_sparse24_published_gemm_is_reported(tier):
    rep = judge.sparse24(tier=tier)
    (f,) = rep.figures
    assert f.measured == pytest.approx(0.870 / 0.630)
    # compute-bound GEMM: 2:4 pays, but never beyond the sparse / dense peak ratio
    assert 1.0 < f.predicted <= 2.0 + 1e-9
