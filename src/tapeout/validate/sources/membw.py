"""Published STREAM-like device-memory copies (BabelStream), typed and shipped:
``validate/published/membw_published.csv``.

Each row is one device-to-device copy kernel run by BabelStream (University of Bristol) on one GPU: ``elements``
8-byte values read from one array and written to another, the array far larger than the last-level cache (the
benchmark's rule: 268 MB against 40-50 MB of L2 on A100/H100/H200; 2.1 GB against MI300X's 256 MB Infinity Cache),
so the kernel streams DRAM. The measured time is the bytes moved (read + written) over the tabled rate (MB =
1e6 bytes, BabelStream's unit). tapeout has no fp64 format and a copy moves bytes, not values: a row is priced as
an elementwise copy of ``2 x elements`` fp32 values (the same bytes), no arithmetic.

Copies that fit a cache are left out by construction: CUDA samples' ``bandwidthTest`` (32 MB) and
``p2pBandwidthLatencyTest`` (40 MB) device-local copies run from the 40-50 MB L2 of A100/H100/H200 and
report more than the DRAM peak. Copy-engine memcpy (``nvbandwidth device_local_copy``) is not an SM kernel and is
not used either.

What the rows fit (``fit/roofline.py`` and ``fit/tiled.py``, :data:`DATASET`): a device's copy fraction of its
datasheet bandwidth, carried to the fields that price its weight streams and elementwise kernels by the ratio
measured on devices that have both (docs/calibration.md, "DRAM fraction from copy benchmarks"). The op class is the
benchmark kernel (``copy``).
"""

from __future__ import annotations

from pathlib import Path

from tapeout.errors import TapeoutError
from tapeout.validate.cases import PUBLISHED_DIR, Case, read_dicts
from tapeout.workload.ops import OpKind
from tapeout.validate.registry import PER_OP, register
from tapeout.workload.standalone import elementwise_op

DATASET = "membw-published"
#: BabelStream kernel -> arrays read and written per element (copy: c[i] = a[i])
KERNELS = {"copy": (1, 1)}
#: bytes per element of the benchmark's precision (BabelStream's default is double)
ELEMENT_BYTES = {"fp64": 8}
#: rate units -> bytes per second (BabelStream prints MBytes/sec with MB = 1e6 bytes)
RATE_UNITS = {"MB/s": 1e6, "GB/s": 1e9, "TB/s": 1e12}


def copy_bytes(kernel: str, elements: int, dtype: str) -> tuple[float, float]:
    """(bytes read, bytes written) of one run of ``kernel`` over ``elements`` values of ``dtype``."""
    if kernel not in KERNELS:
        raise TapeoutError(f"membw_published.csv kernel {kernel!r}; allowed: {', '.join(KERNELS)}", field="kernel")
    if dtype not in ELEMENT_BYTES:
        raise TapeoutError(f"membw_published.csv dtype {dtype!r}; allowed: {', '.join(ELEMENT_BYTES)}", field="dtype")
    reads, writes = KERNELS[kernel]
    return reads * elements * ELEMENT_BYTES[dtype], writes * elements * ELEMENT_BYTES[dtype]


@register(DATASET, kind=PER_OP, shipped=True,
          description="BabelStream device-memory copies (arrays >> last-level cache) on A100 SXM 40/80 GB, H100 SXM, "
                      "H200, MI300X: the attainable DRAM fraction of devices without weight-streaming kernel rows")
def load_membw(data_dir: Path) -> list[Case]:
    """validate/published/membw_published.csv: one row per device and kernel, with its source file and line.

    op class: the kernel (``copy``); an ``excluded`` row gets ``<kernel>-excluded``. ``data_dir`` is unused.
    """
    cases = []
    for row in read_dicts(PUBLISHED_DIR / "membw_published.csv"):
        kernel, dtype, unit = row["kernel"].strip(), row["dtype"].strip(), row["unit"].strip()
        if unit not in RATE_UNITS:
            raise TapeoutError(f"membw_published.csv unit {unit!r}; allowed: {', '.join(RATE_UNITS)}", field="unit")
        rd, wr = copy_bytes(kernel, int(row["elements"]), dtype)
        rate = float(row["value"]) * RATE_UNITS[unit]
        op = elementwise_op(kernel, OpKind.ELEMENTWISE, rd / 4, wr / 4, 0.0, dtype="fp32")
        cases.append(Case(
            dataset=DATASET, op_class=f"{kernel}-excluded" if row["excluded"].strip() else kernel,
            device=row["device"].strip(), ops=(op,), measured_s=(rd + wr) / rate,
            info=(("bytes", rd + wr), ("gbps", rate / 1e9), ("benchmark", row["benchmark"].strip()),
                  ("source", row["source"]), ("line", row["line"]))))
    return cases
