"""torchao's batch-1 decode benchmarks on A100 (typed from its READMEs, shipped: ``validate/published/torchao_a100.csv``)."""

from __future__ import annotations

from pathlib import Path

from tapeout.validate.cases import PUBLISHED_DIR, Case, e2e_case, e2e_model, read_dicts, scenario
from tapeout.validate.registry import END_TO_END, register


@register("e2e-torchao", kind=END_TO_END, shipped=True,
          description="torchao batch-1 decode tokens/s, Llama-2-7B / Llama-3-8B, bf16/int8/int4/2:4, A100")
def load_e2e_torchao(data_dir: Path) -> list[Case]:
    """validate/published/torchao_a100.csv: torchao's batch-1 decode benchmarks on A100 (typed from its READMEs).

    Llama-2-7B and Llama-3-8B through ``torchao/_models/llama/generate.py`` (gpt-fast's generate.py: torch.compile,
    CUDA graphs, so the ``gptfast`` framework profile: device time, Inductor's generated kernels), prompt "Hello, my name is" (6 tokens), 200 new tokens; tokens/s
    = 1 / decode step. Formats: bf16, int8 weight-only per channel (``int8_c``), int4 weight-only group 64
    with zero points (``int4_g64z``, tinygemm), and int4 group 128 on a 2:4-sparse weight (Sparse-Marlin,
    ``int4_g128`` + ``sparsity="2:4"``); the lm_head is quantized as well (the rows' model sizes say so:
    tapeout's weight bytes without the embedding table equal them within 2%). Rows with ``use = no``
    are left out, each with its reason (W8A8 dynamic at batch 1: an untuned path 11x slower than bf16;
    duplicates; per-layer autoquant). Device "A100" / "NVIDIA-A100-80GB": mapped to a100-sxm-80gb.
    ``data_dir`` is unused: the file ships with tapeout. op class = format (+ ``/2:4``).
    """
    cases = []
    for row in read_dicts(PUBLISHED_DIR / "torchao_a100.csv"):
        if row["use"].strip() != "yes":
            continue
        w, sp, lm = row["weights"].strip(), row["sparsity"].strip(), row["lm_head"].strip()
        sc = scenario(model=e2e_model(row["model"]), batch=int(row["batch"]), input_len=int(row["input_len"]),
                      output_len=int(row["output_len"]), tp=1, weights=w, activations="bf16", kv_cache="bf16",
                      lm_head=lm, framework="gptfast", **({"sparsity": sp} if sp else {}))
        cases.append(e2e_case("e2e-torchao", w + (f"/{sp}" if sp else ""), "a100-sxm-80gb", sc, "decode_step_s",
                              float(row["tokens_per_s"]), 1, row, technique=row["technique"],
                              model_size_gb=float(row["model_size_gb"]), source=row["source"]))
    return cases
