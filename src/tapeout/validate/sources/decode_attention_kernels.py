"""Published decode-attention kernel timings (one query token per sequence against a KV cache), typed and shipped:
``validate/published/decode_attention_kernels.csv``.

One row per (kernel, device, shape) as a public benchmark printed it: FlashAttention-2's paged-KV decode
(``flash_attn_with_kvcache`` with a block table) on H100 SXM, from the nvbench tables of onnxruntime pull request
#21414. Each row keeps its source (repository, pull request, comment and section), the printed line, the page size and
the kernel. Rows marked ``fitted`` (op class = the kernel) enter the tiled fit with vidur's A100 decode grid
(``decode_tile_latencies`` per device with rows); the others (op class ``<kernel>-check``: a table whose own heading
the stored source does not show) are checks (docs/calibration.md, "Decode-attention kernels per device").
"""

from __future__ import annotations

from pathlib import Path

from tapeout.errors import TapeoutError
from tapeout.validate.cases import PUBLISHED_DIR, Case, kernel_rows, to_seconds
from tapeout.validate.registry import PER_OP, register
from tapeout.workload.standalone import attention_op

DATASET = "decode-attention-kernels"
#: kernel column -> what it is (the op class of its fitted rows)
KERNELS: dict[str, str] = {
    "fa2-paged": "FlashAttention-2 split-KV decode over a paged KV cache (flash_attn_with_kvcache with a block table)",
}
#: the op class of a kernel's rows that no step fits on
CHECK_SUFFIX = "-check"


def op_class(kernel: str, fitted: str) -> str:
    """The kernel for a row the fit reads (``fitted`` = ``true``), ``<kernel>-check`` for one it does not."""
    if fitted not in ("true", "false"):
        raise TapeoutError(f"decode_attention_kernels.csv fitted {fitted!r}; allowed: true, false", field="fitted")
    return kernel if fitted == "true" else kernel + CHECK_SUFFIX


@register(DATASET, kind=PER_OP, shipped=True,
          description="decode attention kernels (one query token per sequence, paged KV): FlashAttention-2 (H100 SXM); "
                      "op class = kernel (fitted: decode_tile_latencies), <kernel>-check (checks)")
def load_decode_attention_kernels(data_dir: Path) -> list[Case]:
    """validate/published/decode_attention_kernels.csv: one decode step of ``batch`` sequences of ``context`` cached
    tokens, ``heads`` query and ``kv_heads`` key/value heads of ``head_dim``, as
    :func:`~tapeout.workload.standalone.attention_op` (``sq = 1``); op class: :func:`op_class`. ``data_dir`` is
    unused."""
    cases = []
    for kernel, row in kernel_rows(PUBLISHED_DIR / "decode_attention_kernels.csv", KERNELS):
        b, h, kv = int(row["batch"]), int(row["heads"]), int(row["kv_heads"])
        s, d = int(row["context"]), int(row["head_dim"])
        op = attention_op(b, h, kv, d, sq=1, prefix=s, dtype=row["dtype"].strip(), name=kernel)
        cases.append(Case(dataset=DATASET, op_class=op_class(kernel, row["fitted"].strip()), device=row["device"].strip(),
                          ops=(op,),
                          measured_s=to_seconds(float(row["value"]), row["unit"]),
                          info=(("batch", b), ("heads", h), ("kv_heads", kv), ("context", s), ("d", d),
                                ("page_size", int(row["page_size"])), ("kernel", kernel), ("source", row["source"]),
                                ("line", row["line"]))))
    return cases
