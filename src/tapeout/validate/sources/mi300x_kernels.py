"""Published MI300X kernel timings of decode-shaped GEMMs (1-4 tokens x a weight matrix) and of AMD's
max-achievable-FLOPS GEMMs (bf16, fp16, fp8 at one best shape each), typed and shipped:
``validate/published/mi300x_kernels.csv``.

These rows are the only MI300X measurements of weight streaming in tapeout's data: they fit MI300X's DRAM
attainable fraction (tiled ``dram_eta``, roofline ``memory_eta``; ``fit/tiled.py`` and ``fit/roofline.py``,
:data:`FIT_CLASSES`), and the other classes check it (docs/calibration.md, "MI300X kernels").
"""

from __future__ import annotations

from pathlib import Path

from tapeout import dtypes
from tapeout.errors import TapeoutError
from tapeout.validate.cases import PUBLISHED_DIR, Case, read_dicts, to_seconds
from tapeout.validate.registry import PER_OP, register
from tapeout.workload.standalone import gemm_op

DATASET = "mi300x-kernels"
#: kernel column -> what it is
KERNELS = {
    "wvspltk-rocblas": "rocBLAS's wave-split-K skinny kernel (wvSpltK) ported into hipBLASLt, ROCm/rocm-libraries#12329",
    "hipblaslt": "hipBLASLt's own kernel selection for the same shapes (torch.nn.functional.linear on MI300X)",
    "wvsplitk-vllm": "vLLM's ops.wvSplitK (csrc/rocm/skinny_gemms.cu), vllm-project/vllm#29937",
    "hipblaslt-maf": "hipBLASLt's max-achievable-FLOPS GEMM (AMD's best shape for 304 CUs, hipblaslt-bench), ROCm blog",
}
#: kernels timed at one best shape (a throughput, not a sweep): their own check class, whatever the weight size
BEST_SHAPE = ("hipblaslt-maf",)
#: the engines' decode GEMMs of 1-4 tokens: vLLM's rocm_unquantized_gemm sends fp16/bf16 GEMMs with 1-4
#: tokens (and K % 8 == 0, more than 8 output features) on gfx9 to wvSplitK (vllm/model_executor/layers/utils.py,
#: vllm-project/vllm commit 00358600ed52e00c3c99b35e54aa916f900c4c15); both wave-split-K implementations are
#: fitted on (each a group), hipBLASLt and the rows below stay checks
FIT_CLASSES = ("wvspltk-rocblas", "wvsplitk-vllm")
#: MI300X's memory-side Infinity Cache (AMD CDNA 3 white paper: 256 MB; hardware/catalog/mi300x.toml notes).
#: A benchmark that repeats one weight matrix no larger than it may read it from that cache, which tapeout
#: does not model: such rows get the op class ``<kernel>-llc`` and are checks
INFINITY_CACHE_BYTES = 256 * 2 ** 20


def op_class(kernel: str, weight_bytes: float, excluded: str) -> str:
    """``<kernel>`` (a fit or check class), ``<kernel>-llc`` (weights fit the Infinity Cache) or
    ``<kernel>-excluded`` (the row's ``excluded`` column gives the reason)."""
    if excluded:
        return f"{kernel}-excluded"
    if kernel in BEST_SHAPE:
        return kernel
    return f"{kernel}-llc" if weight_bytes <= INFINITY_CACHE_BYTES else kernel


@register(DATASET, kind=PER_OP, shipped=True,
          description="MI300X decode GEMMs (1-4 tokens): rocBLAS's wvSpltK and vLLM's wvSplitK (fitted on, MI300X "
                      "DRAM fraction), hipBLASLt (check)")
def load_mi300x_kernels(data_dir: Path) -> list[Case]:
    """validate/published/mi300x_kernels.csv: one row per kernel and shape, with its pull request and table.

    ``tokens`` activation rows times a (``k`` x ``n``) weight matrix (tapeout's m, n, k), 16-bit, on one MI300X.
    op class: :func:`op_class`. ``data_dir`` is unused.
    """
    cases = []
    for row in read_dicts(PUBLISHED_DIR / "mi300x_kernels.csv"):
        kernel = row["kernel"].strip()
        if kernel not in KERNELS:
            raise TapeoutError(f"mi300x_kernels.csv kernel {kernel!r}; allowed: {', '.join(KERNELS)}", field="kernel")
        tokens, n, k = int(row["tokens"]), int(row["n"]), int(row["k"])
        dt = dtypes.parse(row["dtype"].strip())
        weight_bytes = n * k * dt.bytes
        value, unit = float(row["value"]), row["unit"].strip()
        # a TFLOP/s row is the time of its GEMM (2 x tokens x n x k flops) at that rate
        secs = 2.0 * tokens * n * k / (value * 1e12) if unit == "tflops" else to_seconds(value, unit)
        cases.append(Case(
            dataset=DATASET, op_class=op_class(kernel, weight_bytes, row["excluded"].strip()),
            device=row["device"].strip(), ops=(gemm_op(tokens, n, k, dtype=dt, name=kernel),),
            measured_s=secs,
            info=(("M", tokens), ("N", n), ("K", k), ("weight_mb", weight_bytes / 1e6), ("kernel", kernel),
                  ("source", row["source"]), ("table", row["table"]))))
    return cases
