"""HCCL collectives on Gaudi (typed from Intel's Gaudi docs, shipped: ``validate/published/hccl_gaudi.csv``)."""

from __future__ import annotations

from pathlib import Path

from tapeout.validate.cases import PUBLISHED_DIR, Case, read_dicts
from tapeout.validate.registry import PER_OP, register
from tapeout.workload.ops import OpKind
from tapeout.workload.standalone import collective_op

#: hccl_demo's test names -> the op kind tapeout prices
KINDS = {"all_reduce": OpKind.ALLREDUCE, "all_gather": OpKind.ALLGATHER}


@register("hccl-gaudi", kind=PER_OP, shipped=True,
          description="HCCL all-reduce (256 MiB) and all-gather (16 MiB shards) over 8 Gaudi 3 in one box")
def load_hccl_gaudi(data_dir: Path) -> list[Case]:
    """validate/published/hccl_gaudi.csv: Intel's hccl_demo runs on one 8-card box (docs.habana.ai, Collectives
    Performance): an fp32 all-reduce of 256 MiB per rank and an all-gather of 16 MiB shards, 1000 iterations
    each, the time of one as measured. Large messages only: they measure the fabric's attainable bandwidth
    (``interconnect_eta``), not its per-step latency. The page does not name the generation: its bus
    bandwidth (513 GB/s per direction) exceeds Gaudi 2's scale-up peak (262.5 GB/s), so the rows are Gaudi 3's
    (525 GB/s). ``data_dir`` is unused: the file ships with tapeout. op class = the collective."""
    cases = []
    for row in read_dicts(PUBLISHED_DIR / "hccl_gaudi.csv"):
        kind = KINDS[row["collective"].strip()]
        size, ranks = int(row["input_bytes_per_rank"]), int(row["ranks"])
        secs = float(row["total_time_s"]) / int(row["iterations"])
        cases.append(Case(
            dataset="hccl-gaudi", op_class=kind.value, device="gaudi3",
            ops=(collective_op(kind, size, ranks, dtype="fp32", name=row["collective"].strip()),), measured_s=secs,
            info=(("bytes", size), ("group", ranks), ("algo_gbps", float(row["algo_bandwidth_gbps"])),
                  ("nw_gbps", float(row["nw_bandwidth_gbps"])), ("source", row["source"]))))
    return cases
