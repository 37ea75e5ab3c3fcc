"""Where does weight-only quantization stop paying? The batch-size crossover vs fp16, from the model's terms.

    python benchmarks/crossover.py [--devices a100-sxm-80gb h100-sxm] [--formats int4 fp6] [--model llama-2-70b]

For each device and weight format it sweeps the tokens per GEMM (the decode batch) over the linear
layers of one transformer layer of ``--model`` (tp=1) and prints the smallest batch at which the
quantized layer is no faster than fp16, with the terms that decide it:

- fp16 GEMM: max(DRAM time of 2-byte weights, MMA time) -- memory-bound until the ridge point;
- weight-only GEMM: max(DRAM time of the low-bit weights, MMA time + dequantization time), because
  the same warps dequantize in registers and then issue the MMA (TC-FPx, Marlin); the dequantization
  is repeated for every 64-row pass over the activations; for large batches a dequantize-then-fp16 path
  (extra 16-bit weight traffic) is the alternative the model falls back to.

So the crossover M* solves MMA(M*) + dequant(M*) = fp16 DRAM time: the fewer bytes buy nothing once
the vector units' dequantization plus the tensor-core work exceeds what the fp16 kernel spends streaming
weights. It also prints the whole decode step (TPOT) crossover of the model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tapeout import load_hardware, load_model, predict  # noqa: E402
from tapeout.perf import estimate  # noqa: E402
from tapeout.workload.standalone import gemm_op  # noqa: E402


def layer_shapes(model_name: str) -> list[tuple[str, int, int]]:
    m = load_model(model_name)
    h, q, kv = m.hidden_size, m.q_size, m.kv_size
    ups = 2 if m.gated_mlp else 1
    return [("qkv_proj", q + 2 * kv, h), ("out_proj", h, q), ("up", ups * m.intermediate_size, h),
            ("down", h, m.intermediate_size)]


def layer_cost(hw, shapes, m: int, weights: str) -> tuple[float, dict[str, float]]:  # noqa: ANN001
    total = 0.0
    terms = {"memory_s": 0.0, "matrix_s": 0.0, "dequant_s": 0.0}
    kernels = set()
    for _, n, k in shapes:
        c = estimate(gemm_op(m, n, k, dtype="fp16", weights=weights), hw)
        total += c.time_s
        terms["memory_s"] += c.memory_s
        terms["matrix_s"] += float(c.terms.get("matrix_s", c.compute_s))
        terms["dequant_s"] += float(c.terms.get("dequant_s", 0.0))
        kernels.add(str(c.terms.get("kernel", "dense")))
    terms["kernel"] = "+".join(sorted(kernels))  # type: ignore[assignment]
    return total, terms


BATCHES = sorted({*range(1, 65), *range(64, 1025, 8), 1024})


def crossover(hw, shapes, weights: str) -> tuple[int | None, list[tuple[int, float, float, dict, dict]]]:  # noqa: ANN001
    rows = []
    first = None
    for m in BATCHES:
        t16, a = layer_cost(hw, shapes, m, "fp16")
        tq, b = layer_cost(hw, shapes, m, weights)
        rows.append((m, t16, tq, a, b))
        if first is None and tq >= t16:
            first = m
    return first, rows


def step_crossover(model: str, device, weights: str) -> int | None:  # noqa: ANN001
    for b in (1, 2, 4, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512):
        p16 = predict(model, device, batch=b, input_len=512, output_len=2, tier="roofline")
        pq = predict(model, device, batch=b, input_len=512, output_len=2, weights=weights, tier="roofline")
        if pq.tpot_s >= p16.tpot_s:
            return b
    return None


INT32_LANES = 64  # NVIDIA Volta..Hopper: 64 INT32 lanes per SM (H100 whitepaper: 128 FP32, 64 INT32 per SM)


def int32_variant(hw):  # noqa: ANN001, ANN201
    """The device with its vector ALU rate set by 64 INT32 lanes per SM, when its file only gives more FP32 lanes."""
    ua = hw.microarch
    if ua is None or getattr(ua.vector, "int32_lanes_per_core", None) or ua.vector.fp32_lanes_per_core <= INT32_LANES:
        return None
    vec = ua.vector.model_copy(update={"fp32_lanes_per_core": INT32_LANES})
    return hw.model_copy(update={"microarch": ua.model_copy(update={"vector": vec})})


def us(x: float) -> str:
    return f"{x * 1e6:8.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", nargs="+", default=["a100-sxm-80gb", "h100-sxm"])
    ap.add_argument("--formats", nargs="+", default=["int4", "int4_g128", "fp6"])
    ap.add_argument("--model", default="llama-2-70b", help="model whose layer shapes are swept")
    ap.add_argument("--step-model", default="llama-2-7b", help="model whose whole decode step is swept (1 GPU)")
    args = ap.parse_args(argv)
    shapes = layer_shapes(args.model)
    print(f"linear layers of one {args.model} layer: " + ", ".join(f"{n} {a}x{b}" for n, a, b in shapes))
    for dev in args.devices:
        hw = load_hardware(dev)
        from tapeout.perf.quant import rates

        r = rates(hw)
        print(f"\n== {dev}: DRAM {hw.memory.bandwidth_gbps:.0f} GB/s x eta {hw.efficiency.memory_eta}, fp16 matrix "
              f"{hw.peak_tflops.get('fp16')} TFLOP/s x eta {hw.efficiency.matmul_eta}, vector ALU "
              f"{r.alu_ops / 1e12:.1f} T lane-instr/s ({r.source})")
        for w in args.formats:
            m_star, rows = crossover(hw, shapes, w)
            print(f"  {w}: weight-only stops beating fp16 at batch {m_star if m_star else '> 1024'} "
                  f"(tokens per GEMM)")
            show = [1, 16, 32, 64]
            if m_star:
                show += [m for m, *_ in rows if m < m_star][-1:] + [m_star]
            print("     batch   fp16 us  quant us  speedup | fp16: memory  matrix | quant: memory  matrix  dequant  kernel")
            for m, t16, tq, a, b in rows:
                if m in sorted(set(show)):
                    print(f"    {m:6d} {us(t16)} {us(tq)}   {t16 / tq:5.2f}  | {us(a['memory_s'])} {us(a['matrix_s'])} | "
                          f"{us(b['memory_s'])} {us(b['matrix_s'])} {us(b['dequant_s'])}  {b['kernel']}")
            if m_star:
                _, t16, tq, a, b = next(x for x in rows if x[0] == m_star)
                print(f"     why: at batch {m_star} the quantized layer needs matrix {b['matrix_s'] * 1e6:.0f} us + "
                      f"dequant {b['dequant_s'] * 1e6:.0f} us on core (its {b['memory_s'] * 1e6:.0f} us of weight "
                      f"loads hide behind it), while fp16 needs max(memory {a['memory_s'] * 1e6:.0f}, matrix "
                      f"{a['matrix_s'] * 1e6:.0f}) us")
            s = step_crossover(args.step_model, hw, w)
            print(f"     whole decode step of {args.step_model} (prompt 512): {w} stops beating fp16 at batch "
                  f"{s if s else '> 512'}")
            lean = int32_variant(hw)
            if lean is not None:
                m2, _ = crossover(lean, shapes, w)
                s2 = step_crossover(args.step_model, lean, w)
                print(f"     sensitivity: with the {INT32_LANES} INT32 lanes per SM of the whitepaper (the device file "
                      f"gives FP32 lanes only) the crossover is batch {m2} (layer), {s2} (decode step)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
