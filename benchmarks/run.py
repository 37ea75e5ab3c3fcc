"""Speed figures (one JSON object per line: name, value, unit; extra keys say how it was measured).

    python benchmarks/run.py [--quick] [--repeat R]

Targets (issue 11; benchmarks, not timed tests):

(a) ``predict`` of Llama-2-7B on A100-SXM-80GB, tier tiled, batch 1, 1024 in / 128 out: warm <= 1 ms
    (graphs, kernel plans and op costs cached; the composition is computed anew) and <= 5x llm-analysis's
    closed-form ``LLMAnalysis.inference()`` timed in the same run (when ``llm_analysis`` is importable:
    ``pip install llm-analysis``; it is not a tapeout dependency); cold <= 5 ms (every graph, plan and
    cost cache cleared; catalog specs stay loaded). Medians, with the best in ``min``.
(b) ``explore`` on the shipped space ``gpt3-decode-heavy`` (``batch = "max"``): design points per minute
    on the roofline tier (>= 10,000 on 2 cores) and with its tier set to tiled (>= 3,000), through
    ``tapeout.explore.run`` with 2 local jobs (pool start-up and the SQLite store included), and in one
    process (``evaluate`` on the same points).
(c) Pipeline parallelism: cold ``predict`` of Llama-3.1-405B on H100-SXM, TP8, pp32 over pp1 (<= 3).
(d) GPT-3 175B prefill + decode step op graphs on 4x A100 (LLMCompass's Figure 5 case), cold mapper
    throughput, and a cold 405B TP8 predict.
(e) Serving (issue 14): ``tapeout.simulate`` of 10,000 ShareGPT-like requests through Llama-3.1-8B on one
    H100 (tiled, every cache cleared first), all at once and at 20 requests/s (<= 5 s each on one core); and
    ``tapeout capacity`` answering the issue's question -- Llama-3.1-70B on H100s at 20 requests/s, p99
    TTFT <= 1 s and TPOT <= 50 ms, the cheapest configuration and its $/Mtok -- (<= 60 s; not with --quick).
(f) ``explore`` with serving objectives: design points per minute of the shipped spaces ``llama8b-goodput``
    (``goodput_rps`` at 24 requests/s: one simulation per point) and ``llama8b-serving``
    (``usd_per_mtok_at_slo`` at the highest rate meeting the SLOs: a rate search per point), 200
    ShareGPT-like requests each, roofline, in one process (``evaluate``, every cache cleared first).

numpy's thread pools are pinned to one thread before numpy loads. The machine may be shared: each line
carries the 1-minute load average. The whole script runs in under 4 minutes (``--quick``: about one).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

LLMCOMPASS_GPT3_S = 16 * 60.0  # LLMCompass paper, Figure 5 case on 4x A100: ~16 minutes
SPACE = Path(__file__).resolve().parents[1] / "src/tapeout/explore/spaces/gpt3-decode-heavy.toml"
LLAMA7B = dict(batch=1, input_len=1024, output_len=128, tier="tiled")


def _emit(name: str, value: float, unit: str, **extra: object) -> None:
    line = {"name": name, "value": round(value, 6), "unit": unit, **extra, "load": round(os.getloadavg()[0], 2)}
    print(json.dumps(line), flush=True)


def _cold() -> None:
    try:
        from tapeout.system.compose import clear_caches
    except ImportError:  # a checkout from before the memoised pipeline (for before/after figures)
        from tapeout.perf import tiled
        from tapeout.workload.build import build_graph

        tiled.clear_caches()
        build_graph.cache_clear()
        return
    clear_caches()


CPU: list[float] = []  # process CPU seconds of the last _times call, run by run


def _times(fn, n: int, cold: bool = False) -> list[float]:  # noqa: ANN001
    """Wall seconds of ``n`` runs (``CPU`` gets their process CPU seconds: less sensitive to a loaded
    machine)."""
    out = []
    CPU.clear()
    for _ in range(n):
        if cold:
            _cold()
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
        CPU.append(time.process_time() - c0)
    return out


def _cpu_ms() -> float:
    return round(statistics.median(CPU) * 1e3, 4)


def predict_llama7b(n_warm: int, n_cold: int) -> float:
    """(a): warm and cold predict; returns the warm median in seconds."""
    import tapeout

    def call() -> None:
        tapeout.predict("llama-2-7b", "a100-sxm-80gb", **LLAMA7B)

    call()
    warm = _times(call, n_warm)
    warm_cpu = _cpu_ms()
    cold = _times(call, n_cold, cold=True)
    call()  # leave the caches warm
    w = statistics.median(warm)
    _emit("predict_warm_llama2_7b_a100_tiled", w * 1e3, "ms", min=round(min(warm) * 1e3, 4), cpu=warm_cpu,
          runs=n_warm, target_max=1.0)
    _emit("predict_cold_llama2_7b_a100_tiled", statistics.median(cold) * 1e3, "ms",
          min=round(min(cold) * 1e3, 4), cpu=_cpu_ms(), runs=n_cold, target_max=5.0)
    return w


def llm_analysis_ratio(warm_s: float, n: int) -> None:
    """(a): llm-analysis's closed form on the same case, timed in this run."""
    try:
        import logging

        from llm_analysis import analysis as la
    except ImportError:
        print(json.dumps({"name": "predict_warm_over_llm_analysis", "skipped": "llm_analysis is not importable "
                          "(pip install llm-analysis to measure this ratio)"}), flush=True)
        return
    la.logger.setLevel(logging.ERROR)
    obj = la.LLMAnalysis(la.get_model_config_by_name("NousResearch_Llama-2-7b-hf"),
                         la.get_gpu_config_by_name("a100-sxm-80gb"), la.get_dtype_config_by_name("w16a16e16"),
                         la.ParallelismConfig(tp_size=1, pp_size=1, dp_size=1))

    def call() -> None:
        obj.inference(batch_size_per_gpu=1, seq_len=1024, num_tokens_to_generate=128)

    call()
    ts = _times(call, n)
    m = statistics.median(ts)
    _emit("llm_analysis_inference_llama2_7b_a100", m * 1e3, "ms", min=round(min(ts) * 1e3, 4), cpu=_cpu_ms(),
          runs=n)
    _emit("predict_warm_over_llm_analysis", warm_s / m, "x", target_max=5.0)


def _space(tier: str):  # noqa: ANN202
    import tomllib

    from tapeout.explore.space import load_space

    data = tomllib.loads(SPACE.read_text(encoding="utf-8"))
    data["tier"] = tier
    return load_space(data)


def explore_rate(tier: str, points: int, target: float) -> None:
    """(b): design points per minute, 2 local jobs through explore.run, and one process."""
    from tapeout.explore.evaluate import context, evaluate
    from tapeout.explore.run import run

    space = _space(tier)
    _cold()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        s = run(space, Path(tmp) / "bench.db", executor="local", jobs=2, method="random", trials=points)
        dt = time.perf_counter() - t0
    _emit(f"explore_{tier}_points_per_min", 60 * s.evaluated / dt, "points/min", jobs=2, points=s.evaluated,
          space=f"{SPACE.stem} (tier {tier})", target_min=target)
    rng = random.Random(1)
    n = max(points // 2, 1)
    pts = [space.point(rng.randrange(space.grid_size())) for _ in range(n)]
    ctx = context(space)
    _cold()
    c0, t0 = time.process_time(), time.perf_counter()
    for p in pts:
        evaluate(ctx, p)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    _emit(f"explore_{tier}_points_per_min_one_process", 60 * n / dt, "points/min", jobs=1, points=n,
          per_cpu_min=round(60 * n / cpu, 1))


def pipeline_ratio(repeat: int) -> None:
    """(c): cold predict of Llama-3.1-405B TP8 at pp32 over pp1."""
    import tapeout

    def best(pp: int) -> tuple[float, float]:
        wall = min(_times(lambda: tapeout.predict("llama-3.1-405b", "h100-sxm", tp=8, pp=pp, input_len=2048,
                                                  output_len=512, tier="tiled"), repeat, cold=True))
        return wall, min(CPU)

    (one, one_cpu), (many, many_cpu) = best(1), best(32)  # each the best of ``repeat`` cold runs
    _emit("predict_llama31_405b_tp8_pp1_cold", one * 1e3, "ms", cpu=round(one_cpu * 1e3, 4))
    _emit("predict_llama31_405b_tp8_pp32_cold", many * 1e3, "ms", cpu=round(many_cpu * 1e3, 4))
    _emit("predict_pp32_over_pp1_llama31_405b_tp8", many / one, "x", cpu=round(many_cpu / one_cpu, 4),
          target_max=3.0)


def gpt3_case(repeat: int) -> None:
    """(d): every op of a GPT-3 175B prefill and decode step priced by the tiled tier from cold caches."""
    from tapeout import load_hardware, load_model
    from tapeout.perf import estimate
    from tapeout.workload.build import build_graph
    from tapeout.workload.scenario import Scenario

    model = load_model("gpt-3-175b")
    hw = load_hardware("a100-sxm-80gb")
    sc = Scenario(batch=8, input_len=2048, output_len=2, tp=4)
    best, result = float("inf"), (0.0, 0.0, 0)
    for _ in range(repeat):
        _cold()
        t0 = time.perf_counter()
        pre = build_graph(model, sc, "prefill")
        dec = build_graph(model, sc, "decode", 3072)
        prefill_s = sum(estimate(op, hw, "tiled").total_s for op in pre.ops)
        decode_s = sum(estimate(op, hw, "tiled").total_s for op in dec.ops)
        dt = time.perf_counter() - t0
        if dt < best:
            best, result = dt, (prefill_s, decode_s, len(pre.ops) + len(dec.ops))
    _emit("gpt3_175b_tp4_a100_prefill_plus_decode_wall", best, "s", ops=result[2])
    _emit("gpt3_175b_tp4_a100_speedup_vs_llmcompass", LLMCOMPASS_GPT3_S / best, "x")
    _emit("gpt3_175b_tp4_a100_predicted_prefill", result[0] * 1e3, "ms")
    _emit("gpt3_175b_tp4_a100_predicted_decode_step", result[1] * 1e3, "ms")


def mapper_throughput(n: int, repeat: int) -> None:
    """(d): distinct random GEMM shapes priced from cold caches, per second."""
    from tapeout import load_hardware
    from tapeout.perf import estimate
    from tapeout.perf.tiled.device import device
    from tapeout.perf.tiled.mapper import plan_gemm
    from tapeout.workload.standalone import gemm_op

    hw = load_hardware("a100-sxm-80gb")
    rng = random.Random(2024)
    shapes: set[tuple[int, int, int]] = set()
    while len(shapes) < n:
        shapes.add((rng.randint(1, 16384), rng.randint(16, 32768), rng.randint(16, 32768)))
    ops = [gemm_op(m, nn, k) for m, nn, k in sorted(shapes)]
    best = float("inf")
    for _ in range(repeat):
        _cold()
        t0 = time.perf_counter()
        for op in ops:
            estimate(op, hw, "tiled")
        best = min(best, time.perf_counter() - t0)
    _emit("mapper_cold_gemm_shapes_per_s", len(ops) / best, "shapes/s", shapes=len(ops), path="perf.estimate")
    dev = device(hw)
    best = float("inf")
    for _ in range(repeat):
        _cold()
        t0 = time.perf_counter()
        for m, nn, k in shapes:
            plan_gemm(dev, m, nn, k, 1, "fp16", 2.0, 2.0, 2.0)
        best = min(best, time.perf_counter() - t0)
    _emit("mapper_cold_plan_gemm_per_s", len(shapes) / best, "shapes/s", shapes=len(shapes), path="mapper.plan_gemm")


def predict_405b(repeat: int) -> None:
    """(d): a cold predict of Llama-3.1-405B on H100 SXM, TP8, 2048 in / 512 out, tier tiled."""
    import tapeout

    best, pred = float("inf"), None
    for _ in range(repeat):
        _cold()
        t0 = time.perf_counter()
        pred = tapeout.predict("llama-3.1-405b", "h100-sxm", tp=8, batch=1, input_len=2048, output_len=512,
                               tier="tiled")
        best = min(best, time.perf_counter() - t0)
    _emit("predict_llama31_405b_tp8_h100_tiled_wall", best, "s")
    _emit("predict_llama31_405b_tp8_h100_ttft", pred.ttft_s * 1e3, "ms")
    _emit("predict_llama31_405b_tp8_h100_tpot", pred.tpot_s * 1e3, "ms")


def serving(quick: bool) -> None:
    import math

    import tapeout
    from tapeout.serving.capacity import capacity

    for rate, label in ((math.inf, "all_at_once"), (20.0, "rate20")):
        _cold()
        t, c = time.perf_counter(), time.process_time()
        r = tapeout.simulate("llama-3.1-8b", "h100-sxm", workload="sharegpt", num_requests=10_000, rate=rate, seed=0)
        m = r.metrics()
        _emit(f"simulate_10k_sharegpt_llama31_8b_h100_{label}_wall", time.perf_counter() - t, "s", target_max=5.0,
              cpu=round(time.process_time() - c, 3), iterations=m["iterations"],
              output_tok_s=round(m["output_throughput_tok_s"], 1), ttft_p99_s=round(m["ttft_s"]["p99"], 4))
    if quick:
        return
    _cold()
    t, c = time.perf_counter(), time.process_time()
    d = capacity("llama-3.1-70b", "h100-sxm", rate=20, slo_ttft=1.0, slo_tpot=0.05, percentile=99, workload="sharegpt")
    b = d["best"] or {}
    _emit("capacity_llama31_70b_h100_rate20_wall", time.perf_counter() - t, "s", target_max=60.0,
          cpu=round(time.process_time() - c, 3), configs=len(d["configs"]), best_tp=b.get("tp"),
          best_gpus=b.get("gpus"), usd_per_mtok=b.get("usd_per_mtok"))


def explore_serving(quick: bool) -> None:
    """(f): serving-objective design points per minute, one process."""
    from tapeout.explore.evaluate import context, evaluate
    from tapeout.explore.space import load_space

    for name in ("llama8b-goodput", "llama8b-serving"):
        space = load_space(SPACE.parent / f"{name}.toml")
        pts = list(space.grid())[: 6 if quick else None]
        ctx = context(space)
        _cold()
        c0, t0 = time.process_time(), time.perf_counter()
        feasible = sum(bool(evaluate(ctx, p)["feasible"]) for p in pts)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        _emit(f"explore_serving_{name}_points_per_min_one_process", 60 * len(pts) / dt, "points/min", jobs=1,
              points=len(pts), feasible=feasible, per_cpu_min=round(60 * len(pts) / cpu, 1),
              num_requests=space.serving.num_requests if space.serving else None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs and points (about 30 s)")
    ap.add_argument("--repeat", type=int, default=3, help="cold runs per best-of figure")
    args = ap.parse_args(argv)
    import numpy  # noqa: F401  (load outside the timed regions)
    import tapeout.api  # noqa: F401
    import tapeout.perf.tiled  # noqa: F401

    q = args.quick
    t0 = time.perf_counter()
    warm = predict_llama7b(n_warm=100 if q else 500, n_cold=10 if q else 40)
    llm_analysis_ratio(warm, n=100 if q else 500)
    pipeline_ratio(max(args.repeat, 5))
    explore_rate("roofline", points=300 if q else 1500, target=10_000)
    explore_rate("tiled", points=100 if q else 500, target=3_000)
    gpt3_case(args.repeat)
    mapper_throughput(1000 if q else 3000, args.repeat)
    predict_405b(args.repeat)
    serving(q)
    explore_serving(q)
    _emit("benchmark_wall", time.perf_counter() - t0, "s", target_max=240)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
