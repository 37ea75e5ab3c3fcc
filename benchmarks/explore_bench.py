"""Exploration throughput: design points per minute for a GPT-3 175B prefill + decode workload.

    python benchmarks/explore_bench.py [--points 1500] [--jobs N] [--executor local|ray] [--tier roofline]

Every point builds a design (micro-architecture, memory, die), prices it (area, yield, die and
device cost, power) and predicts two workloads of GPT-3 175B on 8-way tensor parallelism:
a prefill (batch 8, 2048-token prompts) and a decode run (the largest batch that fits, 2048 + 1024
tokens; the batch search costs an extra prediction). Results go to a fresh SQLite run database,
one commit per point, exactly as ``tapeout explore`` does. The figure includes pool start-up.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from tapeout.explore.run import run
from tapeout.explore.space import load_space


def bench_space(tier: str) -> dict:
    return {
        "name": "bench-gpt3",
        "base": "a100-sxm-80gb",
        "tier": tier,
        "parameters": {
            "cores": {"min": 32, "max": 160, "step": 8},  # 17
            "matrix_unit_dim": [8, 16, 32, 64],  # 4
            "l2_mb": [16, 32, 48, 64, 80],  # 5
            "memory": [{"kind": "HBM2e", "interfaces": 5}, {"kind": "HBM3", "interfaces": 5},
                       {"kind": "HBM3e", "interfaces": 6}, {"kind": "GDDR6", "interfaces": 12},
                       {"kind": "CXL-DDR5", "bandwidth_gbps": 1024, "capacity_gb": 512}],  # 5
            "clock_mhz": [1200, 1410, 1600],  # 3
        },
        "workloads": [
            {"name": "prefill", "model": "gpt-3-175b", "batch": 8, "input_len": 2048, "output_len": 1, "tp": 8},
            {"name": "decode", "model": "gpt-3-175b", "batch": "max", "input_len": 2048, "output_len": 1024, "tp": 8},
        ],
        "constraints": {"max_area_mm2": 858},
        "objectives": ["ttft@prefill", "throughput@decode", "perf_per_dollar"],
        "search": {"method": "random", "trials": 1500, "seed": 0},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1500, help="design points to evaluate")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--executor", default="local", choices=["local", "ray"])
    ap.add_argument("--tier", default="roofline")
    args = ap.parse_args(argv)
    space = load_space(bench_space(args.tier))
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        t0 = time.perf_counter()
        s = run(space, db, executor=args.executor, jobs=args.jobs, method="random", trials=args.points)
        dt = time.perf_counter() - t0
    rate = 60 * s.evaluated / dt
    print(f"space: {space.grid_size():,} grid points; evaluated {s.evaluated} sampled points "
          f"(GPT-3 175B prefill + decode, tp 8, tier {args.tier})")
    print(f"executor {args.executor}, {args.jobs} jobs on {os.cpu_count()} CPUs: {dt:.1f} s")
    print(f"design points per minute: {rate:,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
