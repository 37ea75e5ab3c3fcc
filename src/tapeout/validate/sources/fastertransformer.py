"""FasterTransformer's own published end-to-end latencies (typed, shipped:
``validate/published/fastertransformer_published.csv``).
"""

from __future__ import annotations

from pathlib import Path

from tapeout.validate.cases import PUBLISHED_DIR, Case, e2e_case, read_dicts, scenario, to_seconds
from tapeout.validate.registry import END_TO_END, register

#: FasterTransformer's model names -> catalog (its GPT-175B: 96 layers, 96 heads of 128, FP16, the GPT-3
#: 175B shape; it states vocab_size 51200 where the catalog's GPT-3 has 50,257: 0.007 % of the weights)
FT_MODELS = {"GPT-175B": "gpt-3-175b"}


@register("e2e-fastertransformer-published", kind=END_TO_END, shipped=True,
          description="FasterTransformer's GPT-175B end-to-end latencies (TP8, FP16, 8xA100-80GB NVSwitch)")
def load_e2e_fastertransformer(data_dir: Path) -> list[Case]:
    """validate/published/fastertransformer_published.csv: the "FT Latency (ms)" column of the GPT-175B
    table of FasterTransformer's ``docs/gpt_guide.md`` (Performance section).

    One generate call of a static batch (``batch`` prompts of ``input_len`` tokens, ``output_len``
    tokens generated, top-p 0.9 sampling; FasterTransformer on Triton), timed end to end: compared with
    the prediction's ``e2e_latency_s`` (quantity ``e2e_s``). FasterTransformer's ParallelGpt runs the
    context decoder over the whole batch in one pass (``max_prefill_tokens`` = None) and then one decoder
    step per further token (its first generation step takes the context decoder's last hidden state),
    which is tapeout's prefill + (output_len - 1) decode steps. Hardware as the guide states it:
    8xA100-80GB linked by NVSwitch (an A100 SuperPod node: the SXM part; mapped to a100-sxm-80gb),
    tensor parallel 8. Every row runs the ``fastertransformer`` profile: its host gap per kernel is
    fitted on these rows together with Flash-LLM's dense FasterTransformer rows (fit/frameworks.py).
    op class ``<precision>/tp<tp>``. ``data_dir`` is unused: the file ships with tapeout.
    """
    cases = []
    for row in read_dicts(PUBLISHED_DIR / "fastertransformer_published.csv"):
        prec, tp = row["precision"].strip(), int(row["tp"])
        sc = scenario(model=FT_MODELS[row["model"].strip()], batch=int(row["batch"]),
                      input_len=int(row["input_len"]), output_len=int(row["output_len"]), tp=tp,
                      weights=prec, activations=prec, kv_cache=prec, max_prefill_tokens=None,
                      framework="fastertransformer")
        latency_s = to_seconds(float(row["value"]), row["unit"])
        cases.append(e2e_case("e2e-fastertransformer-published", f"{prec}/tp{tp}", row["device"].strip(), sc,
                              "e2e_s", 1.0 / latency_s, tp, row, table=row["table"], source=row["source"]))
    return cases
