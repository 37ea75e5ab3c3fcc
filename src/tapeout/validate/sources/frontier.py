"""Published measurements of the frontier architectures (typed, shipped: ``validate/published/frontier_published.csv``)."""

from __future__ import annotations

from pathlib import Path

from tapeout.errors import TapeoutError
from tapeout.validate.cases import PUBLISHED_DIR, Case, e2e_case, read_dicts, scenario
from tapeout.validate.registry import END_TO_END, register

#: phase -> the per-GPU quantity its published rate is compared with
PHASE_QUANTITY = {"decode": "decode_gpu_s_per_token", "prefill": "prefill_gpu_s_per_token"}


def per_gpu(row: dict[str, str]) -> float:
    """The published rate per GPU: a rate per node is divided by the node's GPUs, a rate per GPU kept."""
    unit, value = row["unit"].strip(), float(row["value"])
    if unit.endswith("per node"):
        return value / int(row["gpus_per_node"])
    if unit.endswith("per GPU"):
        return value
    raise TapeoutError(f"frontier row unit {unit!r}; allowed: '... per node', '... per GPU'", field="unit")


def layer_rules(text: str) -> tuple[tuple[tuple[str, str], ...], ...]:
    """'experts: nvfp4; out_proj: nvfp4' -> per-layer rules whose weights and GEMM inputs are in that format
    (the FP4 tensor-core GEMMs quantize both), as the hashable pairs :func:`~tapeout.validate.e2e.e2e_predict`
    reads."""
    rules = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        match, _, fmt = (s.strip() for s in part.partition(":"))
        if not (match and fmt):
            raise TapeoutError(f"frontier row layers {part!r}; expected '<layer class>: <format>'", field="layers")
        rules.append((("activations", fmt), ("match", match), ("weights", fmt)))
    return tuple(rules)


def fp8_attention(text: str) -> bool:
    """The row's engine runs decode attention in fp8 over its fp8 cache ("true"), or dequantizes it ("false")."""
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise TapeoutError(f"frontier row fp8_attention {text!r}; allowed: true, false", field="fp8_attention")
    return value == "true"


@register("e2e-frontier-published", kind=END_TO_END, shipped=True,
          description="SGLang's DeepSeek-V3 wide-EP throughput per GPU: decode (EP72) and prefill (EP32) on H100, "
                      "decode (EP48, NVFP4 experts) on GB200 NVL72")
def load_e2e_frontier(data_dir: Path) -> list[Case]:
    """validate/published/frontier_published.csv: per-phase throughput of frontier models as their engines'
    blogs publish it, with the setup of each row (docs/frontier-validation.md lists what was left out and why).

    The rows are SGLang's DeepSeek deployments (LMSYS): on H100 (May 2025) and on GB200 NVL72 (Part II,
    September 2025). Prefill and decode run on separate nodes (prefill-decode disaggregation), each measured
    with the other phase unlimited, so each row is one phase of tapeout's scenario: data-parallel attention
    (``tp`` = 1) with the experts over ``ep`` devices, ``batch`` sequences per device. Decode rows compare
    tokens per GPU-second of a decode step at ``input_len`` tokens of context (``batch`` / TPOT); prefill rows
    the prompt tokens per GPU-second of the prefill (``batch`` x ``input_len`` / TTFT). The published rate is
    per node of ``gpus_per_node`` GPUs or per GPU (``unit``). Weights as shipped (fp8 with 128 x 128 block
    scales) except the layer classes ``layers`` names (``class: format``, weights and GEMM inputs); KV cache
    ``kv_cache``, decode attention in fp8 over it where ``fp8_attention`` is true (docs/fp8-attention.md).
    ``data_dir`` is unused.
    op class = ``<phase>/ep<ep>`` (``/uniform`` for rows whose routing was simulated uniform, ``/<format>``
    for rows with per-layer formats).
    """
    cases = []
    for row in read_dicts(PUBLISHED_DIR / "frontier_published.csv"):
        tp, ep, phase = int(row["tp"]), int(row["ep"]), row["phase"].strip()
        rules = layer_rules(row["layers"])
        sc = scenario(model=row["model"].strip(), batch=int(row["batch"]), input_len=int(row["input_len"]),
                      output_len=int(row["output_len"]), tp=tp, ep=ep, kv_cache=row["kv_cache"].strip(),
                      fp8_attention=fp8_attention(row["fp8_attention"]),
                      **({"layers": rules} if rules else {}))
        op_class = (f"{phase}/ep{ep}" + ("/uniform" if row["routing"].strip() == "uniform" else "")
                    + "".join(sorted({f"/{dict(r)['weights']}" for r in rules})))
        cases.append(e2e_case("e2e-frontier-published", op_class, row["device"].strip(), sc, PHASE_QUANTITY[phase],
                              per_gpu(row), max(tp, ep), row, engine=row["engine"], table=row["table"],
                              source=row["source"], nodes=int(row["nodes"])))
    return cases
