"""Published measurements of the frontier architectures (typed, shipped: ``validate/published/frontier_published.csv``)."""

from __future__ import annotations

from pathlib import Path

from tapeout.validate.cases import PUBLISHED_DIR, Case, e2e_case, read_dicts, scenario
from tapeout.validate.registry import END_TO_END, register

#: phase -> the per-GPU quantity its published rate is compared with
PHASE_QUANTITY = {"decode": "decode_gpu_s_per_token", "prefill": "prefill_gpu_s_per_token"}


@register("e2e-frontier-published", kind=END_TO_END, shipped=True,
          description="SGLang's DeepSeek-V3 wide-EP decode (EP72) and prefill (EP32) throughput per H100")
def load_e2e_frontier(data_dir: Path) -> list[Case]:
    """validate/published/frontier_published.csv: per-phase throughput of frontier models as their engines'
    blogs publish it, with the setup of each row (docs/frontier-validation.md lists what was left out and why).

    The rows are SGLang's DeepSeek deployment on H100 (LMSYS, May 2025): prefill and decode run on separate
    nodes (prefill-decode disaggregation), each measured with the other phase unlimited, so each row is one
    phase of tapeout's scenario: data-parallel attention (``tp`` = 1) with the experts over ``ep`` devices,
    ``batch`` sequences per device. Decode rows compare tokens per GPU-second of a decode step at
    ``input_len`` tokens of context (``batch`` / TPOT); prefill rows the prompt tokens per GPU-second of the
    prefill (``batch`` x ``input_len`` / TTFT). The published rate is per node of ``gpus_per_node`` GPUs.
    Weights as shipped (fp8 with 128 x 128 block scales), KV cache bf16. ``data_dir`` is unused.
    op class = ``<phase>/ep<ep>`` (``/uniform`` for rows whose routing was simulated uniform).
    """
    cases = []
    for row in read_dicts(PUBLISHED_DIR / "frontier_published.csv"):
        tp, ep, phase = int(row["tp"]), int(row["ep"]), row["phase"].strip()
        sc = scenario(model=row["model"].strip(), batch=int(row["batch"]), input_len=int(row["input_len"]),
                      output_len=int(row["output_len"]), tp=tp, ep=ep, kv_cache=row["kv_cache"].strip())
        rate = float(row["value"]) / int(row["gpus_per_node"])  # per GPU
        op_class = f"{phase}/ep{ep}" + ("/uniform" if row["routing"].strip() == "uniform" else "")
        cases.append(e2e_case("e2e-frontier-published", op_class, row["device"].strip(), sc, PHASE_QUANTITY[phase],
                              rate, max(tp, ep), row, engine=row["engine"], table=row["table"],
                              source=row["source"], nodes=int(row["nodes"])))
    return cases
