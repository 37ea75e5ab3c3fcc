"""Published end-to-end measurements on AMD Instinct MI300X and their NVIDIA controls (typed, shipped:
``validate/published/mi300x_published.csv``).

A check only: no fitted parameter reads these rows (docs/calibration.md, "MI300X end to end"). The control
rows come from the same sources, harnesses and commands on B200 / H200, so that a device's share of the gap
can be told from the engine's and the model's.
"""

from __future__ import annotations

from pathlib import Path

from tapeout import units
from tapeout.errors import TapeoutError
from tapeout.validate.cases import PUBLISHED_DIR, Case, e2e_case, read_dicts, scenario
from tapeout.validate.registry import END_TO_END, register

#: metric -> the end-to-end quantity it is compared with
METRIC_QUANTITY = {"tpot": "decode_step_s", "ttft": "ttft_s", "offline_tok_s": "gpu_s_per_token"}


def published_rate(row: dict[str, str]) -> float:
    """The row's rate in its quantity's unit: tokens/s of one request's decode (``tpot``), 1/s (``ttft``) or
    output tokens per GPU-second (``offline_tok_s``: the published input+output rate of all GPUs, its output
    share ``output_len / (input_len + output_len)``, over ``tp``)."""
    metric, value = row["metric"].strip(), float(row["value"])
    if metric in ("tpot", "ttft"):
        return 1.0 / (value * units.MS)
    if metric == "offline_tok_s":
        inp, out = int(row["input_len"]), int(row["output_len"])
        return value * out / (inp + out) / int(row["tp"])
    raise TapeoutError(f"mi300x row metric {metric!r}; allowed: {', '.join(METRIC_QUANTITY)}", field="metric")


@register("e2e-mi300x-published", kind=END_TO_END, shipped=True,
          description="MI300X: batch-1 decode and first-token latency (SGLang DeepSeek-V3.1 / Kimi-K2, vLLM "
                      "Llama-3.1-405B to 128K context) and DeepSeek-R1 batch-32 throughput, all TP8; with "
                      "NVIDIA controls from the same harnesses (SGLang DeepSeek-R1 on B200, dstack on H200)")
def load_e2e_mi300x(data_dir: Path) -> list[Case]:
    """validate/published/mi300x_published.csv: MI300X measurements from engine docs and independent benchmarks,
    and the NVIDIA rows of the same sources as controls.

    Every row runs 8 GPUs with tensor parallelism 8: MI300X, or (the controls) B200 / H200 with the same
    source, benchmark command and lengths and the engine at most one release from the MI300X run's.
    ``tpot``: one request at a time (concurrency 1), the time per output token after the first, compared
    with ``tpot_s`` of a batch of 1 with the run's mean prompt and output lengths; ``ttft``: that run's mean
    first-token latency; ``offline_tok_s``: a batch of all prompts at once (``benchmark_throughput.py``),
    compared per GPU as output tokens per GPU-second. Weights as the checkpoint ships them (DeepSeek and
    Kimi: fp8 with 128 x 128 block scales) unless ``weights`` names a format; KV cache ``kv_cache``.
    tapeout's default framework profile (a current engine with graph-captured decode). op class =
    ``<engine>/<metric>`` (groups are per device, so a control scores beside its MI300X row). ``data_dir``
    is unused.
    """
    cases = []
    for row in read_dicts(PUBLISHED_DIR / "mi300x_published.csv"):
        metric, tp, w = row["metric"].strip(), int(row["tp"]), row["weights"].strip()
        fmt = {"weights": w, "activations": w} if w else {}
        sc = scenario(model=row["model"].strip(), batch=int(row["batch"]), input_len=int(row["input_len"]),
                      output_len=int(row["output_len"]), tp=tp, kv_cache=row["kv_cache"].strip(), **fmt)
        engine = row["engine"].split()[0].lower()
        cases.append(e2e_case("e2e-mi300x-published", f"{engine}/{metric}", row["device"].strip(), sc,
                              METRIC_QUANTITY[metric], published_rate(row), tp, row, engine=row["engine"],
                              table=row["table"], source=row["source"]))
    return cases
