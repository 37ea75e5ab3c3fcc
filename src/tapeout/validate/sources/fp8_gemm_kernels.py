"""Published FP8 GEMM kernel throughputs at LLM shapes, with the 16-bit baseline where the same table prints
one, typed and shipped: ``validate/published/fp8_gemm_kernels.csv``.

One row per (kernel, device, shape) as a public benchmark printed it: DeepGEMM's block-scaled FP8 GEMMs at
DeepSeek-V3's shapes on H800 (dense and M-grouped MoE, its README's first performance table), and vLLM's
block-scaled FP8 kernels (Triton, CUTLASS) next to torch's bf16 GEMM on H100 SXM (a pull request's
benchmark_w8a8_block_fp8.py print). Activations and weights take tapeout's format names: ``fp8_g128`` (one
scale per 1 x 128 activation group) and ``fp8_b128`` (one scale per 128 x 128 weight block). A check of the
tiled and roofline GEMM models on the fp8 path (docs/calibration.md, "FP8 GEMM kernels"), fitted on by no step.
"""

from __future__ import annotations

from pathlib import Path

from tapeout import dtypes
from tapeout.validate.cases import PUBLISHED_DIR, Case, kernel_rows, to_seconds
from tapeout.validate.registry import PER_OP, register
from tapeout.workload.kernels import linear

DATASET = "fp8-gemm-kernels"
#: kernel column -> what it is
KERNELS = {
    "deepgemm": "DeepGEMM gemm_fp8_fp8_bf16_nt: block-scaled FP8 (1x128 activation, 128x128 weight scales), "
                "Hopper wgmma with promotion on CUDA cores",
    "deepgemm-grouped": "DeepGEMM m_grouped_gemm_fp8_fp8_bf16_nt_contiguous: the same kernel over MoE experts "
                        "(groups of M rows, one launch)",
    "vllm-block-triton": "vLLM's Triton w8a8_block_fp8_matmul (block-scaled FP8, tuned config per shape and device)",
    "vllm-block-cutlass": "vLLM's CUTLASS SM90 block-scaled FP8 GEMM",
    "torch-bf16": "torch's bf16 GEMM (cuBLAS) in the same table: the 16-bit baseline of the device",
}


def gemm_flops(groups: int, m: int, n: int, k: int) -> float:
    """The FLOPs a benchmark divides by its time: 2 x groups x M x N x K."""
    return 2.0 * groups * m * n * k


@register(DATASET, kind=PER_OP, shipped=True,
          description="FP8 GEMM kernels at LLM shapes: DeepGEMM block-scaled (H800; dense and MoE-grouped), vLLM "
                      "block-scaled Triton / CUTLASS with torch bf16 (H100 SXM); op class = kernel (a check)")
def load_fp8_gemm_kernels(data_dir: Path) -> list[Case]:
    """validate/published/fp8_gemm_kernels.csv: ``groups`` x ``m`` activation rows (per group) times a (``k`` x
    ``n``) weight matrix per group, activations in ``act`` and weights in ``weights``; a ``tflops`` value is the
    time of :func:`gemm_flops` at that rate. Op class: the kernel, ``<kernel>-excluded`` where ``excluded`` gives
    a reason. ``data_dir`` is unused."""
    cases = []
    for kernel, row in kernel_rows(PUBLISHED_DIR / "fp8_gemm_kernels.csv", KERNELS):
        groups, m, n, k = int(row["groups"]), int(row["m"]), int(row["n"]), int(row["k"])
        act, weights = dtypes.parse(row["act"].strip()), dtypes.parse(row["weights"].strip())
        value, unit = float(row["value"]), row["unit"].strip()
        secs = gemm_flops(groups, m, n, k) / (value * 1e12) if unit.lower() == "tflops" else to_seconds(value, unit)
        op = linear(kernel, m=m, n=n, k=k, count=1, w=weights, a=act, experts=groups)
        excluded = row["excluded"].strip()
        cases.append(Case(
            dataset=DATASET, op_class=f"{kernel}-excluded" if excluded else kernel, device=row["device"].strip(),
            ops=(op,), measured_s=secs,
            info=(("groups", groups), ("M", m), ("N", n), ("K", k), ("act", act.name), ("weights", weights.name),
                  ("tflops", gemm_flops(groups, m, n, k) / secs / 1e12), ("kernel", kernel),
                  ("source", row["source"]), ("line", row["line"]))))
    return cases
