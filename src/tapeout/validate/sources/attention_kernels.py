"""Published forward-pass prefill-attention kernel timings across devices, typed and shipped:
``validate/published/attention_kernels.csv``.

One row per (kernel, device, shape) as a public benchmark printed it: FlashAttention-2 (the sm80 ``mma.sync``
kernels, also what runs on Hopper and Blackwell), FlashAttention-3 (Hopper ``wgmma``), FlashAttention-4 (Blackwell
``tcgen05``), aiter's hand-written fmha_fwd_v3 (MI300X). Each row keeps its source (repository, issue or pull
request), the printed line and the benchmark's FLOP convention. A check of the tiled and roofline attention
models (docs/calibration.md, "Attention kernels"), fitted on by no step.
"""

from __future__ import annotations

from pathlib import Path

from tapeout.errors import TapeoutError
from tapeout.validate.cases import PUBLISHED_DIR, Case, read_dicts, to_seconds
from tapeout.validate.registry import PER_OP, register
from tapeout.workload.standalone import attention_op

DATASET = "attention-kernels"
#: kernel column -> (what it is, the op tags it prices with)
KERNELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "fa2": ("FlashAttention-2: sm80 mma.sync kernels (the previous-generation matrix path on Hopper and Blackwell)",
            ("fa2",)),
    "fa3": ("FlashAttention-3: Hopper wgmma kernels", ()),
    "fa4": ("FlashAttention-4: Blackwell tcgen05 (CuTe DSL) kernels", ()),
    "aiter-asm": ("aiter fmha_fwd_v3: AMD's hand-written CDNA3 assembly forward kernel", ()),
}
#: how the benchmark counts FLOPs: 4 b h s^2 d, or that halved when the mask is causal
CONVENTIONS = ("full", "halved")


def benchmark_flops(b: int, heads: int, s: int, d: int, causal: bool, convention: str) -> float:
    """The FLOPs a benchmark divides by its time: 4 b h s^2 d (QK^T and PV), halved for a causal mask under the
    ``halved`` convention (FlashAttention's, aiter's)."""
    if convention not in CONVENTIONS:
        raise TapeoutError(f"attention_kernels.csv flops_convention {convention!r}; allowed: {', '.join(CONVENTIONS)}",
                           field="flops_convention")
    f = 4.0 * b * heads * s * s * d
    return f / 2 if causal and convention == "halved" else f


def measured_seconds(row: dict[str, str], causal: bool) -> float:
    """The row's time: as printed (ms, us, s), or its printed TFLOP/s turned into seconds by the benchmark's own
    FLOP count (:func:`benchmark_flops`)."""
    value, unit = float(row["value"]), row["unit"].strip()
    if unit.lower() != "tflops":
        return to_seconds(value, unit)
    flops = benchmark_flops(int(row["batch"]), int(row["heads"]), int(row["seqlen"]), int(row["head_dim"]), causal,
                            row["flops_convention"].strip())
    return flops / (value * 1e12)


@register(DATASET, kind=PER_OP, shipped=True,
          description="prefill attention forward kernels: FlashAttention-2/3 (H100), FlashAttention-2/4 (B200), "
                      "aiter asm (MI300X); op class = kernel (a check)")
def load_attention_kernels(data_dir: Path) -> list[Case]:
    """validate/published/attention_kernels.csv: self-attention forward (sq = skv = ``seqlen``) of ``batch``
    sequences, ``heads`` query and ``kv_heads`` key/value heads of ``head_dim``, causal or not, as
    :func:`~tapeout.workload.standalone.attention_op`; op class = the kernel. ``data_dir`` is unused."""
    cases = []
    for row in read_dicts(PUBLISHED_DIR / "attention_kernels.csv"):
        kernel = row["kernel"].strip()
        if kernel not in KERNELS:
            raise TapeoutError(f"attention_kernels.csv kernel {kernel!r}; allowed: {', '.join(KERNELS)}", field="kernel")
        causal = row["causal"].strip() == "true"
        b, h, kv = int(row["batch"]), int(row["heads"]), int(row["kv_heads"])
        s, d = int(row["seqlen"]), int(row["head_dim"])
        op = attention_op(b, h, kv, d, sq=s, dtype=row["dtype"].strip(), causal=causal, tags=KERNELS[kernel][1],
                          name=kernel)
        cases.append(Case(dataset=DATASET, op_class=kernel, device=row["device"].strip(), ops=(op,),
                          measured_s=measured_seconds(row, causal),
                          info=(("batch", b), ("heads", h), ("kv_heads", kv), ("seq", s), ("d", d), ("causal", causal),
                                ("kernel", kernel), ("source", row["source"]), ("line", row["line"]))))
    return cases
