"""Speed figures of the tiled tier (one JSON object per line: name, value, unit).

    python benchmarks/run.py [--shapes N] [--repeat R]

(a) GPT-3 175B on 4x A100-SXM-80GB, TP4: the op graphs of a prefill (batch 8 x 2048 tokens) and of
    one decode step at context 3072 (LLMCompass's Figure 5 case), every op priced by the tiled
    tier with a full mapper search from cold caches. LLMCompass needs ~16 minutes for this case.
(b) Cold-cache GEMM mapper throughput: distinct random shapes, each priced through
    ``perf.estimate(op, hw, "tiled")`` (the full search, no cache hits), shapes per second.
(c) ``tapeout.predict`` of Llama-3.1-405B on H100 SXM, TP8, 2048 in / 512 out, tier "tiled", cold.

Every figure is the best of ``--repeat`` runs (each from cold caches) on one core: numpy's
thread pools are pinned to one thread before numpy loads. Not a timed test: CI does not run it.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

LLMCOMPASS_GPT3_S = 16 * 60.0  # LLMCompass paper, Figure 5 case on 4x A100: ~16 minutes


def _emit(name: str, value: float, unit: str, **extra: object) -> None:
    print(json.dumps({"name": name, "value": round(value, 6), "unit": unit, **extra}), flush=True)


def _cold() -> None:
    from tapeout.perf import tiled
    from tapeout.workload.build import build_graph

    tiled.clear_caches()
    build_graph.cache_clear()


def gpt3_case(repeat: int) -> None:
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


def predict_case(repeat: int) -> None:
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", type=int, default=5000, help="distinct random GEMM shapes for (b)")
    ap.add_argument("--repeat", type=int, default=3, help="cold runs per figure; the best is reported")
    args = ap.parse_args(argv)
    import numpy  # noqa: F401  (load outside the timed regions)
    import tapeout.perf.tiled  # noqa: F401

    gpt3_case(args.repeat)
    mapper_throughput(args.shapes, args.repeat)
    predict_case(args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
