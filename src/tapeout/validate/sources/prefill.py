"""Published prefill-dominated measurements: long prompts, time to first token at batch 1 (typed, shipped:
``validate/published/prefill_published.csv``).

A check, never a fit: no fit set of :mod:`tapeout.fit` names ``e2e-prefill-published``, so ``tapeout fit`` never
reads it and ``tapeout validate --cv`` scores it with parameters fitted on other sources only.
"""

from __future__ import annotations

from pathlib import Path

from tapeout.validate.cases import PUBLISHED_DIR, Case, e2e_case, read_dicts, scenario, to_seconds
from tapeout.validate.registry import END_TO_END, register


@register("e2e-prefill-published", kind=END_TO_END, shipped=True,
          description="prefill-dominated first-token latency: MInference's FlashAttention-2 baseline and two reruns "
                      "of its script on a second A100 80GB, Llama-3-8B (1M-context variant) bf16, one 10K-500K-token "
                      "prompt")
def load_e2e_prefill(data_dir: Path) -> list[Case]:
    """validate/published/prefill_published.csv: the time of one forward pass over a long prompt (a prefill)
    as published, with the setup of each row (docs/calibration.md, "Prefill measurements", lists the rows left
    out and why).

    The rows are MInference's end-to-end benchmark (experiments/README.md), column FlashAttention-2: Hugging Face
    transformers with ``flash_attention_2`` runs ``model(input_ids, use_cache=False)`` over one prompt of
    ``input_len`` tokens on one A100 80GB in bf16 and the mean of ten timed passes is printed
    (experiments/benchmarks/benchmark_e2e.py at commit 0ff346d891f993a208a1e81808301ab09f21f1ac). That is
    tapeout's scenario at ``batch`` = 1 with ``output_len`` = 1, compared on ``ttft_s``: one forward pass over
    the whole prompt (``max_prefill_tokens`` = None; the engine has no token budget), fused causal attention
    (``attention`` = ``flash``; FlashAttention-2), the default framework profile (the passes are 1-450 s long,
    so per-kernel host gaps are immaterial). "A100 80GB" without a form factor is taken as the SXM part (as
    the vidur sets). Two more rows are one user's runs of the same script on another A100 80GB (MInference issue
    #84): its ``hf`` path at 50K tokens (PyTorch SDPA attention, a FlashAttention-2 kernel for bf16 causal) and
    MInference's own dense attention kernel at 300K, priced the same way (``attention`` = ``flash``). op class =
    ``<precision>/ttft``. ``data_dir`` is unused.
    """
    cases = []
    for row in read_dicts(PUBLISHED_DIR / "prefill_published.csv"):
        prec, tp = row["precision"].strip(), int(row["tp"])
        sc = scenario(model=row["model"].strip(), batch=int(row["batch"]), input_len=int(row["input_len"]),
                      output_len=1, tp=tp, weights=prec, activations=prec, kv_cache=prec, attention="flash",
                      max_prefill_tokens=None)
        seconds = to_seconds(float(row["value"]), row["unit"])
        cases.append(e2e_case("e2e-prefill-published", f"{prec}/ttft", row["device"].strip(), sc, "ttft_s",
                              1.0 / seconds, tp, row, engine=row["engine"], table=row["table"],
                              source=row["source"]))
    return cases
