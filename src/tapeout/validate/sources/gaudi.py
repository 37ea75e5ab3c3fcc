"""Published end-to-end measurements on Intel Gaudi (typed, shipped: ``validate/published/gaudi_published.csv``).

A check only: no fit set of :mod:`tapeout.fit` names ``e2e-gaudi-published``, so ``tapeout fit`` never reads
these rows (docs/calibration.md, "Gaudi").
"""

from __future__ import annotations

from pathlib import Path

from tapeout.validate.cases import PUBLISHED_DIR, Case, e2e_case, read_dicts, scenario
from tapeout.validate.registry import END_TO_END, register


@register("e2e-gaudi-published", kind=END_TO_END, shipped=True,
          description="Gaudi 2: optimum-habana text-generation throughput, Llama-2-70B on 8 cards (bf16 batch 2; "
                      "fp8 batch 300), Mistral-7B-Instruct-v0.2 fp8 on 1 card (batch 896, 128 + 128; batch 120, "
                      "2048 + 128)")
def load_e2e_gaudi(data_dir: Path) -> list[Case]:
    """validate/published/gaudi_published.csv: optimum-habana ``run_generation.py`` runs typed from its pull
    requests, each with its command. Its "Throughput (including tokenization)" is the batch's generated tokens
    over the time of ``generate()`` (the prefill included): compared per card as output tokens per
    GPU-second of the whole generation (``gpu_s_per_token``). tapeout's default framework profile (the
    device's graph-compiled runtime). op class = ``<weights>/b<batch>``. ``data_dir`` is unused.
    """
    cases = []
    for row in read_dicts(PUBLISHED_DIR / "gaudi_published.csv"):
        tp, batch, w = int(row["tp"]), int(row["batch"]), row["weights"].strip()
        sc = scenario(model=row["model"].strip(), batch=batch, input_len=int(row["input_len"]),
                      output_len=int(row["output_len"]), tp=tp, weights=w, activations=row["activations"].strip(),
                      kv_cache=row["kv_cache"].strip())
        cases.append(e2e_case("e2e-gaudi-published", f"{w}/b{batch}", row["device"].strip(), sc, "gpu_s_per_token",
                              float(row["throughput_tok_s"]) / tp, tp, row, source=row["source"]))
    return cases
