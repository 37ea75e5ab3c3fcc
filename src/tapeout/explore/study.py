"""LLMCompass's design study (Zhang et al., ISCA 2024, Sec. V, Table IV, Figs. 10-12) with tapeout.

    python -m tapeout.explore.study [--tier roofline] [--format markdown|json]

Three devices, all at TSMC N7 and 1410 MHz, derived from the A100's micro-architecture:

- GA100: the full die LLMCompass simulates (128 SMs, 48 MB L2, 5 of 6 HBM2e stacks, 80 GB);
- latency design: half the cores and half the L2 (64 SMs, 24 MB), same memory;
- throughput design: 64 cores with 4x the matrix units (4 x 32x32 per core), 768 KB local buffer,
  48 MB L2, and 512 GB of DRAM over 256 PCIe 5.0 / CXL lanes (1 TB/s) instead of HBM.

Workloads as in LLMCompass's artifact (ae/figure10, ae/figure12): GPT-3 175B layers in fp16,
inputs 256-2048 x outputs 256-2048 tokens; latency: batch 16, 4-way tensor parallelism, 48 layers
(half of GPT-3) per device group; throughput: the largest batch that fits, one device running 12
layers (a stage of an 8-way pipeline), throughput per device.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass, replace
from typing import Any

from tapeout.cost import area as am
from tapeout.cost import price as cp
from tapeout.cost.assumptions import Assumptions
from tapeout.explore import design as dz
from tapeout.hardware.catalog import load_hardware
from tapeout.models.catalog import load_model

INPUTS = (256, 512, 1024, 2048)
OUTPUTS = (256, 512, 768, 1024, 1280, 1536, 1792, 2048)

#: LLMCompass's published figures (paper Table IV and Sec. V text)
LLMCOMPASS = {
    "latency": {"die_area_mm2": 478, "ga100_die_area_mm2": 826, "performance": 0.953, "perf_per_cost": 1.06,
                "ttft_ratio": 1.82, "tbt_ratio": 1.0, "worst_cell": 0.80},
    "throughput": {"die_area_mm2": 787, "throughput": 1.42, "cost_ratio": 1 - 0.583, "perf_per_cost": 3.41,
                   "latency_ratio": 9.21},
    # Table IV "Estimated total cost" ($640 / $711 / $296) and the die costs quoted with it ($80 latency,
    # $151 GA100); memory = total - die; the throughput die cost is 'total - memory' at the implied price
    "total_cost_usd": {"latency": 640, "GA100": 711, "throughput": 296},
    "die_cost_usd": {"latency": 80, "GA100": 151, "throughput": 142},
    "memory_cost_usd": {"latency": 560, "GA100": 560, "throughput": 154},
}
#: the DRAM price LLMCompass's throughput-design cost implies: $154 for 512 GB
LLMCOMPASS_DRAM_USD_PER_GB = 154 / 512

DESIGNS: dict[str, dict[str, Any]] = {
    "GA100": {"cores": 128, "l2_mb": 48.0},
    "latency": {"cores": 64, "l2_mb": 24.0},
    "throughput": {"cores": 64, "matrix_units_per_core": 4, "matrix_unit_dim": 32, "shared_memory_kb_per_core": 768.0,
                   "l2_mb": 48.0, "memory": {"kind": "CXL-DDR5", "bandwidth_gbps": 1024.0, "capacity_gb": 512.0}},
}


@dataclass(frozen=True)
class Device:
    name: str
    design: dz.Design
    cost: cp.CostReport


def devices(a: Assumptions | None = None) -> dict[str, Device]:
    a = a or Assumptions.load()
    base = load_hardware("a100-sxm-80gb")
    base_die = am.die_for(base, a)
    out = {}
    for name, params in DESIGNS.items():
        d = dz.build(base, base_die, params, a, name=name)
        if d.die.memory_kind.startswith("HBM"):  # GA100's six HBM PHY sites (5 used), as LLMCompass counts
            d = replace(d, die=replace(d.die, memory_phys=6))
        b = am.breakdown(d.hardware, a, d.die)
        power = cp.modelled_power_w(d.hardware, b.area_mm2, b.node, a)["total"]
        d = dz.with_area_and_power(d, b.area_mm2, power)
        out[name] = Device(name, d, cp.estimate(d.hardware, a, die=d.die, breakdown=b))
    sold = load_hardware("a100-sxm-80gb")  # the A100 as sold: 108 of 128 SMs, harvested yield
    out["A100 (108 SMs, sold)"] = Device("A100", dz.Design(sold, am.die_for(sold, a)), cp.estimate(sold, a))
    return out


def _model(layers: int):  # noqa: ANN202
    return load_model("gpt-3-175b").model_copy(update={"num_layers": layers, "name": f"gpt-3-175b[{layers}L]"})


def latency_grid(hw, tier: str) -> dict[tuple[int, int], dict[str, float]]:  # noqa: ANN001
    from tapeout.api import predict

    m = _model(48)
    out = {}
    for i in INPUTS:
        for o in OUTPUTS:
            p = predict(m, hw, batch=16, input_len=i, output_len=o, tp=4, tier=tier)
            out[(i, o)] = {"latency_s": p.e2e_latency_s, "ttft_s": p.ttft_s, "tpot_s": p.tpot_s, "fits": p.memory.fits}
    return out


def throughput_grid(hw, tier: str) -> dict[tuple[int, int], dict[str, float]]:  # noqa: ANN001
    from tapeout.api import predict

    m = _model(12)
    out = {}
    for i in INPUTS:
        for o in OUTPUTS:
            probe = predict(m, hw, batch=1, input_len=i, output_len=o, tp=1, tier=tier)
            bs = probe.memory.max_batch
            p = predict(m, hw, batch=bs, input_len=i, output_len=o, tp=1, tier=tier)
            out[(i, o)] = {"batch": bs, "throughput_tok_s": p.throughput_tok_s, "latency_s": p.e2e_latency_s}
    return out


def gmean(xs: list[float]) -> float:
    return statistics.geometric_mean(xs)


def study(tier: str = "roofline", a: Assumptions | None = None) -> dict[str, Any]:
    devs = devices(a)
    lat = {k: latency_grid(devs[k].design.hardware, tier) for k in ("GA100", "latency")}
    thr = {k: throughput_grid(devs[k].design.hardware, tier) for k in ("GA100", "throughput")}
    cells = [(i, o) for i in INPUTS for o in OUTPUTS]
    g, ld, td = devs["GA100"], devs["latency"], devs["throughput"]
    norm_lat = [lat["GA100"][c]["latency_s"] / lat["latency"][c]["latency_s"] for c in cells]
    norm_thr = [thr["throughput"][c]["throughput_tok_s"] / thr["GA100"][c]["throughput_tok_s"] for c in cells]
    lat_worse = [thr["throughput"][c]["latency_s"] / thr["GA100"][c]["latency_s"] for c in cells]

    def costs(d: Device) -> dict[str, float]:
        c = d.cost
        return {"die_area_mm2": c.area_mm2, "yield": c.yield_fraction, "die_cost_usd": c.die_cost_usd,
                "memory_cost_usd": c.memory_cost_usd, "packaging_cost_usd": c.packaging_cost_usd,
                "board_cost_usd": c.board_cost_usd, "device_cost_usd": c.device_cost_usd,
                "die_plus_memory_usd": c.die_cost_usd + c.memory_cost_usd, "power_w": c.power_w,
                "usd_per_hour": c.usd_per_hour,
                "peak_tflops_fp16": d.design.hardware.peak_tflops.get("fp16"),
                "memory_gbps": d.design.hardware.memory.bandwidth_gbps,
                "memory_gb": d.design.hardware.memory.capacity_gb}

    cg, cl, ct = costs(g), costs(ld), costs(td)
    perf_l = gmean(norm_lat)
    perf_t = gmean(norm_thr)
    res = {
        "tier": tier,
        "devices": {k: costs(v) for k, v in devs.items()},
        "components_mm2": {k: v.cost.breakdown.components for k, v in devs.items() if v.cost.breakdown},
        "latency": {
            "performance": perf_l, "worst_cell": min(norm_lat), "best_cell": max(norm_lat),
            "worst_at": cells[norm_lat.index(min(norm_lat))],
            "ttft_ratio_2048": lat["latency"][(2048, 256)]["ttft_s"] / lat["GA100"][(2048, 256)]["ttft_s"],
            "tbt_ratio_2048_1024": lat["latency"][(2048, 1024)]["tpot_s"] / lat["GA100"][(2048, 1024)]["tpot_s"],
            "area_ratio": cl["die_area_mm2"] / cg["die_area_mm2"],
            "perf_per_cost_device": perf_l / (cl["device_cost_usd"] / cg["device_cost_usd"]),
            "perf_per_cost_die_memory": perf_l / (cl["die_plus_memory_usd"] / cg["die_plus_memory_usd"]),
            "perf_per_cost_die": perf_l / (cl["die_cost_usd"] / cg["die_cost_usd"]),
            "grid": {f"{i}x{o}": norm_lat[n] for n, (i, o) in enumerate(cells)},
        },
        "throughput": {
            "throughput": perf_t, "worst_cell": min(norm_thr), "best_cell": max(norm_thr),
            "latency_ratio": gmean(lat_worse),
            "batch_ga100": {f"{i}x{o}": thr["GA100"][(i, o)]["batch"] for i, o in cells},
            "batch_design": {f"{i}x{o}": thr["throughput"][(i, o)]["batch"] for i, o in cells},
            "cost_ratio_device": ct["device_cost_usd"] / cg["device_cost_usd"],
            "cost_ratio_die_memory": ct["die_plus_memory_usd"] / cg["die_plus_memory_usd"],
            "perf_per_cost_device": perf_t / (ct["device_cost_usd"] / cg["device_cost_usd"]),
            "perf_per_cost_die_memory": perf_t / (ct["die_plus_memory_usd"] / cg["die_plus_memory_usd"]),
            "grid": {f"{i}x{o}": norm_thr[n] for n, (i, o) in enumerate(cells)},
        },
        "llmcompass": LLMCOMPASS,
    }
    # tapeout's performance with LLMCompass's cost inputs: its die costs and memory prices
    lc = LLMCOMPASS
    res["with_llmcompass_costs"] = {
        "latency_perf_per_cost": perf_l / (lc["total_cost_usd"]["latency"] / lc["total_cost_usd"]["GA100"]),
        "throughput_perf_per_cost": perf_t / (lc["total_cost_usd"]["throughput"] / lc["total_cost_usd"]["GA100"]),
        # tapeout's die costs, LLMCompass's memory prices (HBM2e $7/GB, DRAM $0.30/GB)
        "throughput_perf_per_cost_our_dies": perf_t / ((ct["die_cost_usd"] + 512 * LLMCOMPASS_DRAM_USD_PER_GB)
                                                       / (cg["die_cost_usd"] + 560)),
        "latency_perf_per_cost_our_dies": perf_l / ((cl["die_cost_usd"] + 560) / (cg["die_cost_usd"] + 560)),
    }
    return res


def markdown(r: dict[str, Any]) -> str:
    d = r["devices"]
    lines = [f"tier: {r['tier']}", "", "| | GA100 (128 SMs) | latency design | throughput design | A100 as sold |",
             "|---|---|---|---|---|"]
    names = ["GA100", "latency", "throughput", "A100 (108 SMs, sold)"]
    rows = [("die area, mm2", "die_area_mm2", "{:.0f}"), ("yield", "yield", "{:.3f}"),
            ("die cost, $", "die_cost_usd", "{:,.0f}"), ("memory cost, $", "memory_cost_usd", "{:,.0f}"),
            ("packaging, $", "packaging_cost_usd", "{:,.0f}"), ("board, $", "board_cost_usd", "{:,.0f}"),
            ("device cost, $", "device_cost_usd", "{:,.0f}"), ("die + memory, $", "die_plus_memory_usd", "{:,.0f}"),
            ("power, W", "power_w", "{:.0f}"), ("fp16 peak, TFLOP/s", "peak_tflops_fp16", "{:.0f}"),
            ("memory, GB/s", "memory_gbps", "{:.0f}"), ("memory, GB", "memory_gb", "{:.0f}")]
    for label, key, f in rows:
        lines.append(f"| {label} | " + " | ".join(f.format(d[n][key]) for n in names) + " |")
    L, T = r["latency"], r["throughput"]
    lines += ["", f"latency design: performance {L['performance']:.3f} (worst {L['worst_cell']:.3f} at {L['worst_at']}), "
              f"TTFT x{L['ttft_ratio_2048']:.2f}, TBT x{L['tbt_ratio_2048_1024']:.3f}, area x{L['area_ratio']:.3f}, "
              f"perf/cost {L['perf_per_cost_device']:.2f} (device) / {L['perf_per_cost_die_memory']:.2f} (die+memory)",
              f"throughput design: throughput x{T['throughput']:.2f} (cells {T['worst_cell']:.2f}-{T['best_cell']:.2f}), "
              f"latency x{T['latency_ratio']:.2f}, cost x{T['cost_ratio_device']:.2f} (device) / "
              f"x{T['cost_ratio_die_memory']:.2f} (die+memory), perf/cost {T['perf_per_cost_device']:.2f} / "
              f"{T['perf_per_cost_die_memory']:.2f}"]
    w = r["with_llmcompass_costs"]
    lines += [f"with LLMCompass's costs ($640/$711/$296): perf/cost latency {w['latency_perf_per_cost']:.2f}, "
              f"throughput {w['throughput_perf_per_cost']:.2f}; our dies + LLMCompass memory prices: "
              f"latency {w['latency_perf_per_cost_our_dies']:.2f}, throughput {w['throughput_perf_per_cost_our_dies']:.2f}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tier", default="roofline")
    ap.add_argument("--format", default="markdown", choices=["markdown", "json"])
    args = ap.parse_args(argv)
    r = study(args.tier)
    if args.format == "json":
        print(json.dumps(r, indent=2, default=lambda x: list(x) if isinstance(x, tuple) else str(x)))
    else:
        print(markdown(r))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def recheck(db: str, tiers: tuple[str, ...] = ("roofline", "tiled"), top: int = 3) -> list[dict[str, Any]]:
    """Re-evaluate a run's best designs (best first objective, best second, and the GA100 and A100
    baselines as designs of the same space) under other tiers: a cross-check of the roofline search."""
    from tapeout.explore import report as rp
    from tapeout.explore.evaluate import context, evaluate
    from tapeout.explore.space import load_space
    from tapeout.explore.store import Store

    run = rp.load_run(db)
    st = Store(db)
    params = {k: p for k, p, _ in st.points()}
    st.close()
    front = run.pareto
    picks = {"best " + run.labels[0]: front[0]["key"]}
    if len(front) > 1:
        picks["best " + run.labels[1]] = front[-1]["key"]
    if len(front) > 2:
        picks["middle of the front"] = front[len(front) // 2]["key"]
    designs = {name: params[k] for name, k in list(picks.items())[:top]}
    base = {"cores": 128, "l2_mb": 48.0, "memory": {"kind": "HBM2e", "interfaces": 5}}
    designs["GA100 (128 SMs) as a design"] = base
    designs["A100 (108 SMs) as a design"] = {**base, "cores": 108, "l2_mb": 40.0}
    out = []
    for name, p in designs.items():
        row: dict[str, Any] = {"design": name, "params": p}
        for tier in tiers:
            sp = json.loads(run.space.to_json())
            sp["tier"] = tier
            sp["parameters"] = {}
            m = evaluate(context(load_space(sp, resolve=False)), p)
            row[tier] = {"feasible": m["feasible"], "objectives": m["objectives"], "violations": m["violations"],
                         "workloads": m.get("workloads"), "area_mm2": m.get("area_mm2"),
                         "device_cost_usd": m.get("device_cost_usd"), "power_w": m.get("power_w")}
        out.append(row)
    return out
