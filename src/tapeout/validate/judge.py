"""How the technique models compare with FP6-LLM and Flash-LLM measurements (A100).

Run ``python -m tapeout.validate.judge [--data DIR]``. The figures (docs/techniques.md):

FP6-LLM (``measured/fp6_llm.csv``), end to end in DeepSpeed, prompt 512, 1536 generated tokens:
- OPT-30B, one A100 80GB: throughput ratio FP6 / FP16 at batch 1, 2, 4 (published 1.91, 1.84, 1.72);
- LLaMA-70B (Llama-2-70B): tokens per GPU-second of FP6 on one GPU over FP16 on two (TP2), batch
  1..32 (digitized curves; the README gives the range 1.69-2.65);
- linear-layer (MatMul) speedups from the latency breakdowns: OPT-30B batch 1-4 (2.39), LLaMA-70B
  batch 1-32 (1.2); the kernel's best speedup over cuBLAS (2.6).
DeepSpeed runs eagerly, so every kernel carries a host-side gap; the one framework parameter,
``host_overhead_us`` per op, is fitted on the whole set's absolute throughputs at batch <= 4 (FP16 and
FP6 rows of both models together, both tiers; :mod:`tapeout.fit.frameworks`) and then used for
every prediction of the set, FP16 and FP6 alike. DeepSpeed's decode attention is priced as ``mmha``
(:data:`DEEPSPEED_ATTENTION`: K/V read once per query head, GQA sharing unused), which is what makes
LLaMA-70B's large batches slow.

Flash-LLM (``measured/flash_llm.csv``), kernel benchmark: SpMM / cuBLAS speedup per OPT layer shape at
70/80/90% sparsity and N = 8/16/32 (published averages 1.4/1.7/2.1): Flash-LLM SpMM (Tiled-CSL on
tensor cores) against the dense fp16 GEMM, both predicted by the same tier. Flash-LLM's M is our
n (output features), its N our m (tokens).

Every figure is judged for both tiers (``--tier`` picks one); the kernel constants are fitted once,
on both tiers together (a technique's kernel is a property of the software, not of a tier), by
``tapeout fit`` (:mod:`tapeout.fit.kernels`, which prices these figures with candidate constants passed
explicitly: ``constants``, a :class:`~tapeout.fitted.KernelConstants`, and the efficiencies ``onchip_eta``
and ``tiled_csl_stream_eta`` on the device). It lives with validation: it reads measured data and imports
the runtime; nothing in the runtime imports it.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEVICE = "a100-sxm-80gb"
FP6_OPT_RATIOS = {1: 1.91, 2: 1.84, 4: 1.72}
#: DeepSpeed's decode attention in these measurements reads K/V once per query head (GQA sharing unused),
#: as TensorRT-LLM's kernels did before XQA (validate/sources/fp6llm.py, load_e2e_fp6llm); OPT-30B is MHA either way
DEEPSPEED_ATTENTION = "mmha"
FLASH_AVERAGES = {0.7: 1.4, 0.8: 1.7, 0.9: 2.1}


def data_dir(path: str | Path | None = None) -> Path:
    """The reference-data directory: ``path``, else the default of :mod:`tapeout.datadir`."""
    from tapeout.datadir import resolve_data_dir

    return resolve_data_dir(path)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _graded(row: dict[str, str]) -> bool:
    conf = (row.get("confidence") or "").lower()
    return not (conf.startswith("suspicious") or conf.startswith("missing"))


# ---- FP6-LLM ---------------------------------------------------------------------------------

@dataclass
class Fp6Case:
    model: str
    weights: str
    tp: int
    batch: int
    measured: float  # tokens per GPU-second


def fp6_cases(data: Path) -> list[Fp6Case]:
    out = []
    for r in _rows(data / "measured" / "fp6_llm.csv"):
        if r["metric"] != "tokens_per_gpu_second" or not _graded(r):
            continue
        model = "opt-30b" if "OPT" in r["model"] else "llama-2-70b"
        w = "fp6_e3m2" if r["weight_precision"].strip().startswith("fp6") else "fp16"
        out.append(Fp6Case(model, w, int(r["tp"]), int(r["batch"]), float(r["value"])))
    return out


def _hw(host_us: float):  # noqa: ANN202
    from tapeout import load_hardware

    hw = load_hardware(DEVICE)
    return hw.with_efficiency(host_overhead_us=host_us)


def default_tier() -> str:
    """The tier ``predict`` uses on the judged device (tiled where it has a micro-architecture)."""
    from tapeout import load_hardware
    from tapeout.api import default_tier as predict_default

    return predict_default(load_hardware(DEVICE))


def deepspeed_host_us() -> float:
    """DeepSpeed's per-op host gap on A100, µs: the stored ``deepspeed`` profile's (fitted on this set's
    batch <= 4 rows, :mod:`tapeout.fit.frameworks`)."""
    from tapeout.system.frameworks import framework

    return framework("deepspeed").host_overhead_us


@dataclass
class Figure:
    name: str
    measured: float
    predicted: float
    tolerance: float  # relative

    @property
    def error(self) -> float:
        return self.predicted / self.measured - 1

    @property
    def ok(self) -> bool:
        return abs(self.error) <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "measured": self.measured, "predicted": self.predicted,
                "error_pct": 100 * self.error, "tolerance_pct": 100 * self.tolerance, "ok": self.ok}


@dataclass
class Report:
    title: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.figures)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "ok": self.ok, "figures": [f.to_dict() for f in self.figures],
                "notes": self.notes}

    def render(self) -> str:
        lines = [self.title]
        for f in self.figures:
            lines.append(f"  {f.name:<46} measured {f.measured:7.3f}  predicted {f.predicted:7.3f}  "
                         f"{100 * f.error:+6.1f}%  (target ±{100 * f.tolerance:.0f}%) {'ok' if f.ok else 'MISS'}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _gemm_time(p: Any) -> float:
    """Decode-step time of the transformer's linear layers (lm_head excluded)."""
    ph = p.result.decode_representative
    return sum(c.total_s for o, c in zip(ph.ops, ph.costs) if o.kind.value == "gemm" and o.name != "lm_head")


def fp6_llm(data: Path, host_us: float | None = None, tolerance: float = 0.15, tier: str = "roofline") -> Report:
    from tapeout import predict

    host_us = deepspeed_host_us() if host_us is None else host_us
    rep = Report(f"FP6-LLM on {DEVICE}, {tier} tier (DeepSpeed host gap {host_us:g} us/op)")
    cases = fp6_cases(data)
    hw = _hw(host_us)

    def run(model: str, weights: str, tp: int, batch: int) -> Any:
        return predict(model, hw, tp=tp, batch=batch, input_len=512, output_len=1536, weights=weights,
                       tier=tier, attention=DEEPSPEED_ATTENTION)

    for b, published in FP6_OPT_RATIOS.items():
        p6, p16 = run("opt-30b", "fp6_e3m2", 1, b), run("opt-30b", "fp16", 1, b)
        rep.figures.append(Figure(f"OPT-30B FP6/FP16 throughput, batch {b}", published,
                                  p6.throughput_tok_s / p16.throughput_tok_s, tolerance))
    llama = {(c.weights, c.batch): c.measured for c in cases if c.model == "llama-2-70b"}
    for b in sorted({bb for (_, bb) in llama}):
        if ("fp6_e3m2", b) not in llama or ("fp16", b) not in llama:
            continue
        p6, p16 = run("llama-2-70b", "fp6_e3m2", 1, b), run("llama-2-70b", "fp16", 2, b)
        measured = llama[("fp6_e3m2", b)] / llama[("fp16", b)]
        rep.figures.append(Figure(f"LLaMA-70B FP6 1 GPU / FP16 2 GPUs, batch {b}", measured,
                                  p6.throughput_tok_s / (p16.throughput_tok_s / 2), tolerance))
    # kernel-level figures: GPU time of the linear layers, without the framework's host gaps
    hw = _hw(0.0)
    mm = [_gemm_time(run("llama-2-70b", "fp16", 2, b)) / _gemm_time(run("llama-2-70b", "fp6_e3m2", 1, b))
          for b in (1, 2, 4, 8, 16, 32)]
    opt_mm = [_gemm_time(run("opt-30b", "fp16", 1, b)) / _gemm_time(run("opt-30b", "fp6_e3m2", 1, b))
              for b in (1, 2, 4)]
    rep.notes.append(f"linear layers, OPT-30B batch 1-4: FP6/FP16 speedup {sum(opt_mm) / 3:.2f} (published 2.39)")
    rep.notes.append(f"linear layers, LLaMA-70B batch 1-32 (1 GPU FP6 vs 2 GPUs FP16): {sum(mm) / len(mm):.2f} "
                         "(published 1.2)")
    rep.notes.append(f"best linear-layer speedup over cuBLAS: {max(opt_mm):.2f} (published max 2.6, average 2.1)")
    return rep


# ---- FP6-LLM vs TensorRT-LLM's intN weight-only kernels --------------------------------------------

#: LLaMA-2-70B's four linear layers (n out, k in): fused QKV, output projection, fused gate+up, down. The
#: README's "LLaMA layer shapes L1-L4" are drawn in a figure only; the 70B model of the same README's
#: end-to-end section is assumed (both kernels are core-bound there, so the ratios depend little on it)
LLAMA70B_LAYERS = ((10240, 8192), (8192, 8192), (57344, 8192), (8192, 28672))


def w4a16_figures(data: Path) -> dict[str, dict[int, float]]:
    """FP6-LLM README: {"fine": {batch: FP6 speed / fine-grained W4A16 speed}, "coarse": {batch: FP6 time /
    coarse-grained (per-channel) W4A16 time}} at batch 8/16/32 (TensorRT-LLM kernels, A100)."""
    out: dict[str, dict[int, float]] = {"fine": {}, "coarse": {}}
    for r in _rows(data / "measured" / "fp6_llm.csv"):
        if not _graded(r) or "W4A16" not in r["weight_precision"]:
            continue
        if r["metric"] == "kernel_speedup_sum_of_4_layers":
            out["fine"][int(r["batch"])] = float(r["value"])
        elif r["metric"] == "kernel_slowdown_vs_coarse_w4a16":
            out["coarse"][int(r["batch"])] = 1.0 + float(r["value"])
    return out


def _layers_time(weights: str, batch: int, tier: str, hw: Any = None, constants: Any = None) -> float:
    from tapeout import load_hardware
    from tapeout.perf import estimate
    from tapeout.workload.standalone import gemm_op

    hw = hw or load_hardware(DEVICE)
    return sum(estimate(gemm_op(batch, n, k, weights=weights, constants=constants), hw, tier).time_s
               for n, k in LLAMA70B_LAYERS)


#: tapeout's formats for TensorRT-LLM's W4A16 kernels: fine-grained = group 128 with zero points (AWQ /
#: GPTQ style), coarse-grained = one scale per output channel
W4A16_FORMATS = {"fine": "int4_g128z", "coarse": "int4_c"}


def w4a16_ratios(figs: dict[str, dict[int, float]], tier: str, hw: Any = None, constants: Any = None
                 ) -> list[tuple[str, int, float, float]]:
    """(kind, batch, measured, predicted) for every figure; both as FP6-LLM's time over... see w4a16_figures
    (``constants``: the kernel constants, None for the stored ones)."""
    out = []
    for kind, by_batch in figs.items():
        for b, measured in sorted(by_batch.items()):
            t6 = _layers_time("fp6_e3m2", b, tier, hw, constants)
            t4 = _layers_time(W4A16_FORMATS[kind], b, tier, hw, constants)
            out.append((kind, b, measured, t4 / t6 if kind == "fine" else t6 / t4))
    return out


def fp6_vs_w4a16(data: Path, tier: str = "roofline", tolerance: float = 0.15) -> Report:
    rep = Report(f"FP6-LLM vs TensorRT-LLM W4A16 kernels on {DEVICE}, {tier} tier (LLaMA-70B layers L1-L4, sum)")
    for kind, b, measured, predicted in w4a16_ratios(w4a16_figures(data), tier):
        name = (f"FP6 speed / fine-grained W4A16, batch {b}" if kind == "fine"
                else f"FP6 time / per-channel W4A16, batch {b}")
        rep.figures.append(Figure(name, measured, predicted, tolerance))
    mean8 = [_layers_time("int8_c", b, tier) / _layers_time("fp6_e3m2", b, tier) for b in (1, 2, 4, 8, 16, 32)]
    rep.notes.append(f"FP6 speed / W8A16 (int8 per channel), batch 1-32 average {sum(mean8) / len(mean8):.2f} "
                     "(published average 1.3 over the README's shapes and batches)")
    return rep


# ---- Flash-LLM -------------------------------------------------------------------------------

def flash_table(data: Path) -> dict[tuple[int, int, int], dict[tuple[str, float], float]]:
    """(N batch, M out, K in) -> {(software, sparsity): effective TFLOP/s}."""
    t: dict[tuple[int, int, int], dict[tuple[str, float], float]] = defaultdict(dict)
    for r in _rows(data / "measured" / "flash_llm.csv"):
        if r["metric"] != "effective_tflops" or not _graded(r):
            continue
        sw = r["software"].split()[0].split("_")[0].lower()  # flash-llm, cublas, sputnik, sparta
        t[(int(r["N"]), int(r["M"]), int(r["K"]))][(sw, float(r["sparsity"]))] = float(r["value"])
    return t


def kernel_time(n: int, k: int, m: int, sparsity: float | None, kernel: str, hw: Any = None,
                tier: str = "roofline", constants: Any = None) -> float:
    from tapeout import load_hardware
    from tapeout.perf import estimate
    from tapeout.workload.standalone import gemm_op

    hw = hw or load_hardware(DEVICE)
    return estimate(gemm_op(m, n, k, sparsity=sparsity, sparse_kernel=kernel, constants=constants), hw, tier).time_s


@dataclass
class FlashResult:
    rows: list[dict[str, Any]]

    def by_sparsity(self) -> dict[float, dict[str, float]]:
        out: dict[float, dict[str, float]] = {}
        for s in sorted({r["sparsity"] for r in self.rows}):
            rs = [r for r in self.rows if r["sparsity"] == s]
            errs = sorted(abs(r["predicted"] / r["measured"] - 1) for r in rs)
            med = errs[len(errs) // 2] if len(errs) % 2 else (errs[len(errs) // 2 - 1] + errs[len(errs) // 2]) / 2
            out[s] = {"rows": len(rs), "avg_measured": sum(r["measured"] for r in rs) / len(rs),
                      "avg_predicted": sum(r["predicted"] for r in rs) / len(rs), "median_abs_error": med,
                      "max_abs_error": errs[-1]}
        return out


def flash_llm_rows(data: Path, hw: Any = None, tier: str = "roofline", constants: Any = None,
                   table: Any = None) -> FlashResult:
    """Every Flash-LLM shape and sparsity: measured and predicted speedups (``constants``: the kernel
    constants, None for the stored ones; ``table``: :func:`flash_table`'s, read once by a fit)."""
    rows = []
    for (N, M, K), v in sorted((table or flash_table(data)).items()):
        dense = v.get(("cublas", 0.0))
        if dense is None:
            continue
        t_dense = kernel_time(M, K, N, None, "dense", hw, tier, constants)
        for s in (0.7, 0.8, 0.9):
            flash = v.get(("flash-llm", s))
            if flash is None:
                continue
            t_sp = kernel_time(M, K, N, s, "tensor", hw, tier, constants)
            t_cuda = kernel_time(M, K, N, s, "cuda", hw, tier, constants)
            sput = v.get(("sputnik", s))
            rows.append({"n_out": M, "k_in": K, "batch": N, "sparsity": s, "measured": flash / dense,
                         "predicted": t_dense / t_sp, "sputnik_measured": None if sput is None else sput / dense,
                         "sputnik_predicted": t_dense / t_cuda})
    return FlashResult(rows)


def flash_llm(data: Path, median_tol: float = 0.15, avg_tol: float = 0.10, tier: str = "roofline") -> Report:
    res = flash_llm_rows(data, tier=tier)
    rep = Report(f"Flash-LLM SpMM / cuBLAS on {DEVICE}, {tier} tier (per OPT layer shape, N = 8/16/32)")
    for s, st in res.by_sparsity().items():
        rep.figures.append(Figure(f"average speedup, {s:.0%} sparsity", FLASH_AVERAGES.get(s, st["avg_measured"]),
                                  st["avg_predicted"], avg_tol))
        rep.figures.append(Figure(f"average speedup (digitized bars), {s:.0%}", st["avg_measured"],
                                  st["avg_predicted"], avg_tol))
        rep.notes.append(f"{s:.0%}: median |error| per shape {100 * st['median_abs_error']:.1f}% "
                         f"(target 15%), max {100 * st['max_abs_error']:.1f}%, {st['rows']} shapes")
    sput = [r for r in res.rows if r["sputnik_measured"]]
    if sput:
        errs = sorted(abs(r["sputnik_predicted"] / r["sputnik_measured"] - 1) for r in sput)
        rep.notes.append(f"Sputnik (CUDA-core SpMM) / cuBLAS: median |error| {100 * errs[len(errs) // 2]:.1f}% "
                         f"over {len(errs)} rows")
    return rep


def flash_median_ok(data: Path, tol: float = 0.15, tier: str = "roofline") -> bool:
    return all(st["median_abs_error"] <= tol for st in flash_llm_rows(data, tier=tier).by_sparsity().values())


# ---- 2:4 sparsity (typed published figures; one GEMM: a check, never fitted) ----------------------

def sparse24_rows() -> list[dict[str, str]]:
    from tapeout.validate.cases import PUBLISHED_DIR

    return _rows(PUBLISHED_DIR / "sparse24_a100.csv")


def sparse24(tier: str = "roofline", tolerance: float = 0.15) -> Report:
    """2:4-sparse GEMM speedups over dense (validate/published/sparse24_a100.csv), A100 SXM 80GB."""
    from tapeout import load_hardware
    from tapeout.perf import estimate
    from tapeout.workload.standalone import gemm_op

    hw = load_hardware(DEVICE)
    rep = Report(f"2:4 sparse GEMM / dense on {DEVICE}, {tier} tier (published single measurements)")
    for r in sparse24_rows():
        m, n, k = int(r["m_tokens"]), int(r["n_out"]), int(r["k_in"])
        dense = estimate(gemm_op(m, n, k, dtype=r["dtype"]), hw, tier)
        sp = estimate(gemm_op(m, n, k, dtype=r["dtype"], sparsity="2:4"), hw, tier)
        rep.figures.append(Figure(f"{m}x{n}x{k} {r['dtype']} ({r['kernel'].split()[0]})",
                                  float(r["dense_ms"]) / float(r["sparse_ms"]), dense.time_s / sp.time_s, tolerance))
        rep.notes.append(f"dense {m}x{n}x{k}: measured {float(r['dense_ms']):.3f} ms, predicted "
                         f"{dense.time_s * 1e3:.3f} ms; 2:4: measured {float(r['sparse_ms']):.3f} ms, predicted "
                         f"{sp.time_s * 1e3:.3f} ms")
    rep.notes.append("one published GEMM: the 2:4 model (2x matrix peak, values + 2-bit metadata) is not fitted")
    return rep


def main(argv: list[str] | None = None) -> int:
    from tapeout.datadir import DATA_HELP

    ap = argparse.ArgumentParser(prog="python -m tapeout.validate.judge", description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help=DATA_HELP)
    ap.add_argument("--tier", action="append", choices=("roofline", "tiled"),
                    help="tier(s) to judge (repeatable; default: both)")
    args = ap.parse_args(argv)
    data = data_dir(args.data)
    tiers = args.tier or ["roofline", "tiled"]
    host = deepspeed_host_us()
    reports = [r for t in tiers for r in (fp6_llm(data, host, tier=t), fp6_vs_w4a16(data, tier=t),
                                          flash_llm(data, tier=t))]
    checks = [sparse24(tier=t) for t in tiers]
    for r in reports + checks:
        print(r.render())
        print()
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
