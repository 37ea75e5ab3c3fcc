"""stas00's maximum achievable matmul FLOPS (``measured/mamf_stas00.csv``): the best matmul TFLOP/s a shape
search found per device and format.
"""

from __future__ import annotations

from pathlib import Path

from tapeout.validate.cases import Case, kept, read_dicts
from tapeout.validate.registry import PER_OP, register
from tapeout.workload.standalone import gemm_op


MAMF_DEVICES = {
    "NVIDIA A100 SXM": "a100-sxm-80gb",
    "NVIDIA A100 PCIe": "a100-pcie-80gb",
    "NVIDIA H100 SXM": "h100-sxm",
    "NVIDIA H200 SXM": "h200",
    "NVIDIA GH200 SXM": "gh200",
    "NVIDIA B200 SXM": "b200",
    "NVIDIA GB200 SXM": "gb200",
    "AMD MI300X": "mi300x",
    "Intel Gaudi 2": "gaudi2",
    "Intel Gaudi 3": "gaudi3",
}


@register("mamf", kind=PER_OP, files=("measured/mamf_stas00.csv",),
          description="best achievable matmul TFLOP/s per device (bf16/fp8), as the time of that GEMM")
def load_mamf(data_dir: Path) -> list[Case]:
    """measured/mamf_stas00.csv: the best matmul TFLOP/s a shape search found, as the time of that GEMM.

    Devices without a catalog entry (B300, MI325X, MI355X) are left out.
    """
    cases = []
    for row in read_dicts(data_dir / "measured" / "mamf_stas00.csv"):
        if row["metric"] != "max_achievable_matmul_tflops" or not kept(row):
            continue
        device = MAMF_DEVICES.get(row["hardware"].strip())
        if device is None:
            continue
        prec = row["act_precision"].strip()
        dtype = "fp8" if prec.startswith("fp8") else prec
        m, n, k = int(row["M"]), int(row["N"]), int(row["K"])
        tflops = float(row["value"])
        cases.append(Case(
            dataset="mamf", op_class=f"matmul_{dtype}", device=device,
            ops=(gemm_op(m, n, k, dtype=dtype, name="mamf"),), measured_s=2.0 * m * n * k / (tflops * 1e12),
            info=(("M", m), ("N", n), ("K", k), ("tflops", tflops), ("hardware", row["hardware"])),
        ))
    return cases
