"""A fixed grid of predictions, saved and compared: the guard of refactors that must not move a number.

    python benchmarks/regression_grid.py --save before.json      # before a change
    python benchmarks/regression_grid.py --compare before.json   # after it: max relative change per field

Each case is one ``tapeout.predict`` call; the stored figures are TTFT, TPOT, e2e latency, throughput,
the decode's first/last step and stage times, and the memory plan (weights, KV cache, activations,
total, max batch). The grid spans dense and MoE models, devices with and without a micro-architecture,
both tiers, tp / pp / ep, batch 1 and 64, quantized and sparse formats, per-layer rules, framework
profiles, the three attention variants, fused residual norms and pp_microbatches > 1.

``--compare`` exits 1 when any figure moved by more than ``--tol`` (default 0.1%). Compare against
another checkout by pointing PYTHONPATH at its ``src`` when saving.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

#: (label, model, hardware, keyword arguments of tapeout.predict)
CASES: list[tuple[str, str, str, dict[str, Any]]] = []


def _case(model: str, hw: str, **kw: Any) -> None:
    label = f"{model}@{hw}:" + ",".join(f"{k}={v}" for k, v in sorted(kw.items()) if k != "scenario")
    if "scenario" in kw:
        label += ",scenario=layers"
    CASES.append((label, model, hw, kw))


for _tier in ("roofline", "tiled"):
    for _b in (1, 64):
        _case("llama-2-7b", "a100-sxm-80gb", tier=_tier, batch=_b, input_len=1024, output_len=128)
        _case("llama-2-7b", "a100-sxm-80gb", tier=_tier, batch=_b, input_len=512, output_len=32)  # exact steps
        _case("mixtral-8x7b", "h100-sxm", tier=_tier, batch=_b, tp=2, input_len=1024, output_len=128)
        _case("mixtral-8x7b", "h100-sxm", tier=_tier, batch=_b, tp=2, ep=2, input_len=1024, output_len=128)
        _case("llama-2-70b", "a100-sxm-80gb", tier=_tier, batch=_b, tp=4, pp=2, input_len=1024, output_len=128)
    _case("llama-2-70b", "a100-sxm-80gb", tier=_tier, batch=8, tp=2, pp=4, pp_microbatches=4, input_len=512,
          output_len=100)
    _case("llama-3.1-405b", "h100-sxm", tier=_tier, tp=8, pp=4, input_len=2048, output_len=256)
    _case("llama-2-13b", "a100-sxm-80gb", tier=_tier, batch=4, weights="int4_g128", input_len=1024, output_len=128)
    _case("llama-2-13b", "a100-sxm-80gb", tier=_tier, batch=16, weights="fp8", activations="fp8",
          kv_cache="fp8", input_len=1024, output_len=64)
    _case("opt-13b", "a100-sxm-80gb", tier=_tier, batch=2, sparsity=0.8, input_len=256, output_len=200)
    _case("llama-2-7b", "a100-sxm-80gb", tier=_tier, batch=4, sparsity="2:4", input_len=256, output_len=64)
    _case("llama-2-7b", "h100-sxm", tier=_tier, batch=1, framework="llamacpp", input_len=512, output_len=128)
    _case("opt-30b", "a100-sxm-80gb", tier=_tier, batch=8, tp=2, framework="deepspeed", input_len=512,
          output_len=128)
    _case("llama-2-70b", "a100-sxm-80gb", tier=_tier, batch=1, tp=8, framework="gptfast", input_len=128,
          output_len=200)
    _case("llama-2-7b", "a100-sxm-80gb", tier=_tier, batch=8, attention="naive", input_len=512, output_len=64)
    _case("llama-3-8b", "a100-sxm-80gb", tier=_tier, batch=8, attention="mmha", fuse_residual_norm=True,
          input_len=512, output_len=300)
    _case("gpt-3-175b", "a100-sxm-80gb", tier=_tier, batch=8, tp=8, input_len=2048, output_len=1024)
    _case("falcon-40b", "h100-sxm", tier=_tier, batch=4, tp=2, input_len=1024, output_len=128)
    _case("llama-2-7b", "a100-sxm-80gb", tier=_tier, batch=2, input_len=512, output_len=128,
          scenario={"layers": [{"match": "mlp", "layers": [0, 15], "weights": "int4"},
                               {"match": "attention", "keep": 0.75}]})
    _case("llama-2-70b", "b200", tier=_tier, batch=64, tp=2, input_len=1024, output_len=128)  # tiled: explicit tier
    _case("llama-3.1-8b", "gaudi2", tier=_tier, batch=1, input_len=1024, output_len=128)  # no micro-arch
    _case("mixtral-8x7b", "mi300x", tier=_tier, batch=32, tp=2, pp=2, ep=2, pp_microbatches=2, input_len=512,
          output_len=128)


def _figures(p: Any) -> dict[str, float]:
    r = p.result
    out = {"ttft_s": r.ttft_s, "tpot_s": r.tpot_s, "e2e_latency_s": r.e2e_latency_s,
           "throughput_tok_s": r.throughput_tok_s,
           "first_step_s": r.decode_steps[0].time_s, "last_step_s": r.decode_steps[-1].time_s}
    for i, t in enumerate(r.prefill.stage_times):
        out[f"prefill_stage{i}_s"] = t
    for i, t in enumerate(r.decode_representative.stage_times):
        out[f"decode_mid_stage{i}_s"] = t
    mem = r.memory
    for k in ("weights_bytes", "kv_cache_bytes", "activation_bytes", "total_bytes", "max_batch",
              "kv_cache_bytes_per_token"):
        out[f"memory.{k}"] = float(getattr(mem, k))
    out["memory.fits"] = float(mem.fits)
    out["ops_prefill_total_s"] = sum(c.total_s for c in r.prefill.costs)
    out["ops_decode_mid_total_s"] = sum(c.total_s for c in r.decode_representative.costs)
    return out


def run_grid() -> dict[str, dict[str, float]]:
    import tapeout

    out: dict[str, dict[str, float]] = {}
    for label, model, hw, kw in CASES:
        out[label] = _figures(tapeout.predict(model, hw, **kw))
    return out


def _rel(a: float, b: float) -> float:
    if a == b:
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def compare(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> tuple[float, str, list[str]]:
    """(max relative change, where, problems: cases or fields missing on one side)."""
    worst, where, problems = 0.0, "", []
    for label, figs in before.items():
        if label not in after:
            problems.append(f"missing case {label}")
            continue
        for k, v in figs.items():
            if k not in after[label]:
                problems.append(f"missing {label} {k}")
                continue
            r = _rel(v, after[label][k])
            if r > worst:
                worst, where = r, f"{label} {k}: {v!r} -> {after[label][k]!r}"
    return worst, where, problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--save", metavar="PATH", help="write the grid's figures to PATH (JSON)")
    g.add_argument("--compare", metavar="PATH", help="compare the grid with the figures saved in PATH")
    ap.add_argument("--tol", type=float, default=1e-3, help="largest allowed relative change (default 0.1%%)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    figures = run_grid()
    dt = time.perf_counter() - t0
    if args.save:
        with open(args.save, "w") as f:
            json.dump(figures, f, indent=1, sort_keys=True)
        print(f"saved {len(figures)} cases to {args.save} ({dt:.1f} s)")
        return 0
    with open(args.compare) as f:
        before = json.load(f)
    worst, where, problems = compare(before, figures)
    for p in problems:
        print(p)
    print(json.dumps({"cases": len(figures), "max_rel_change": worst, "where": where, "seconds": round(dt, 2)}))
    return 1 if problems or worst > args.tol else 0


if __name__ == "__main__":
    sys.exit(main())
