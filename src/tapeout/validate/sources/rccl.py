"""RCCL all-reduce on one 8x MI300X node (typed from AMD's ROCm blog, shipped: ``validate/published/rccl_mi300x.csv``).

The only MI300X collective timings in tapeout's data: rccl-tests' ``all_reduce_perf`` from 8 B to 16 GiB per
rank, fp32, one process per GPU over the xGMI full mesh, in eager and graph (``-G 1``) mode, out-of-place and
in-place. The eager out-of-place rows from 1 KiB up are fitted on (MI300X's tiled collective values and
roofline ``collective_latency_us`` / ``interconnect_eta``: ``fit/tiled.py``, ``fit/roofline.py``); the other
classes check them (docs/calibration.md, "MI300X collectives").
"""

from __future__ import annotations

from pathlib import Path

from tapeout.errors import TapeoutError
from tapeout.validate.cases import PUBLISHED_DIR, Case, read_dicts, to_seconds
from tapeout.validate.registry import PER_OP, register
from tapeout.workload.ops import OpKind
from tapeout.workload.standalone import collective_op

DATASET = "rccl-mi300x"
#: the fitted class: rccl-tests' default run (eager launches, out-of-place buffers), as the other devices'
#: all-reduce sets (vidur's and LLMCompass's eager torch.distributed / NCCL calls)
FIT_CLASS = "allreduce"
#: below 1 KiB RCCL takes another path: the eager table is slower at 8-512 B (16-23 us) than at 1-128 KiB
#: (13-14 us), the graph table at 8-16 B (16 us against 6-7.5 us from 32 B): such rows are checks
MIN_FIT_BYTES = 1024
MODES = ("eager", "graph")
PLACEMENTS = ("out-of-place", "in-place")


def op_class(mode: str, placement: str, nbytes: int) -> str:
    """``allreduce`` (eager, out-of-place, >= 1 KiB: fitted), else a check class naming what differs:
    ``allreduce-graph``, ``allreduce-inplace`` (either mode), ``allreduce-sub1k``."""
    if nbytes < MIN_FIT_BYTES:
        return "allreduce-sub1k"
    if placement == "in-place":
        return "allreduce-inplace"
    return FIT_CLASS if mode == "eager" else "allreduce-graph"


def _choice(row: dict[str, str], field: str, allowed: tuple[str, ...]) -> str:
    value = row[field].strip()
    if value not in allowed:
        raise TapeoutError(f"rccl_mi300x.csv {field} {value!r}; allowed: {', '.join(allowed)}", field=field)
    return value


@register(DATASET, kind=PER_OP, shipped=True,
          description="RCCL all-reduce over 8 MI300X (xGMI mesh), 1 KiB-16 GiB fp32: eager out-of-place (fitted), "
                      "graph mode, in-place and < 1 KiB (checks)")
def load_rccl_mi300x(data_dir: Path) -> list[Case]:
    """validate/published/rccl_mi300x.csv: one row per message size, launch mode and buffer placement; the
    time of one all-reduce as rccl-tests prints it (mean of 20 iterations). op class: :func:`op_class`.
    ``data_dir`` is unused: the file ships with tapeout."""
    cases = []
    for row in read_dicts(PUBLISHED_DIR / "rccl_mi300x.csv"):
        if row["collective"].strip() != "all_reduce":
            raise TapeoutError(f"rccl_mi300x.csv collective {row['collective']!r}; allowed: all_reduce",
                               field="collective")
        mode, placement = _choice(row, "mode", MODES), _choice(row, "placement", PLACEMENTS)
        size, ranks = int(row["bytes_per_rank"]), int(row["ranks"])
        cases.append(Case(
            dataset=DATASET, op_class=op_class(mode, placement, size), device=row["device"].strip(),
            ops=(collective_op(OpKind.ALLREDUCE, size, ranks, dtype=row["dtype"].strip(), name="rccl"),),
            measured_s=to_seconds(float(row["time_us"]), "us"),
            info=(("bytes", size), ("group", ranks), ("mode", mode), ("placement", placement),
                  ("busbw_gbps", float(row["busbw_gbps"])), ("source", row["source"]))))
    return cases
