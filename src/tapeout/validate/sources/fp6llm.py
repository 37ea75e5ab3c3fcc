"""FP6-LLM (TC-FPx, ``measured/fp6_llm.csv``): DeepSpeed end-to-end generation on A100 80GB, FP16 and FP6.

The same file's kernel figures (W4A16 comparisons, speedups) are read by :mod:`tapeout.validate.judge`,
which fits the intN weight-only kernel constants on them.
"""

from __future__ import annotations

from pathlib import Path

from tapeout.errors import TapeoutError
from tapeout.validate.cases import Case, e2e_case, e2e_model, kept, read_dicts, scenario, weight_format
from tapeout.validate.registry import END_TO_END, register


@register("e2e-fp6llm", kind=END_TO_END, files=("measured/fp6_llm.csv",),
          description="FP6-LLM: DeepSpeed tokens/GPU/s of OPT-30B and LLaMA-70B, FP16 and FP6, A100")
def load_e2e_fp6llm(data_dir: Path) -> list[Case]:
    """measured/fp6_llm.csv, metric tokens_per_gpu_second: DeepSpeed generation, prompt 512, 1536 new tokens.

    OPT-30B on one A100 80GB (fp16 and FP6-LLM's fp6_e3m2), LLaMA-70B (= llama-2-70b) on one A100 in
    fp6 or on two (TP2) in fp16; batch 1..32. The README says "80GB A100"; SXM assumed (as the data do).
    Compared quantity: ``num_gpus / throughput_tok_s``. op class = weight format. FP6-LLM's on-the-fly
    dequantization is modelled by the weight-only kernel (perf/quant.py); the fp6 rows are their own
    group. Every row runs with the DeepSpeed host-overhead profile (fitted on this set's batch <= 4 rows)
    and ``attention="mmha"``: DeepSpeed's decode attention here reads K/V once per query head (GQA
    sharing unused), like TensorRT-LLM's kernels before XQA (its XQA blog); with GQA-aware attention the
    LLaMA-70B rows at batch 32 would be predicted 56-80 % too fast, with it -10 %..+16 % at every batch.
    OPT-30B is multi-head: the same either way.
    """
    cases = []
    for row in read_dicts(data_dir / "measured" / "fp6_llm.csv"):
        if row["metric"] != "tokens_per_gpu_second" or not kept(row):
            continue
        if row["hardware_class"].strip() != "A100-80GB-SXM":
            raise TapeoutError(f"fp6_llm.csv: unexpected device {row['hardware_class']!r}", field="hardware")
        fmt = weight_format(row["weight_precision"])
        gpus = int(row["num_gpus"] or 1)
        sc = scenario(model=e2e_model(row["model"]), batch=int(row["batch"]), input_len=int(row["input_len"]),
                      output_len=int(row["output_len"]), tp=int(row["tp"] or 1), weights=fmt,
                      activations=row["act_precision"].strip() or "fp16",
                      kv_cache=row["kv_precision"].strip() or "fp16", framework="deepspeed", attention="mmha")
        cases.append(e2e_case("e2e-fp6llm", "fp6" if fmt.startswith("fp6") else fmt, "a100-sxm-80gb", sc,
                              "gpu_s_per_token", float(row["value"]), gpus, row, software=row["software"]))
    return cases
