"""TensorRT-LLM's published performance tables of v0.5 / v0.6.1 (typed, shipped:
``validate/published/trtllm_perf.csv``).
"""

from __future__ import annotations

from pathlib import Path

from tapeout import units
from tapeout.validate.cases import PUBLISHED_DIR, Case, e2e_case, read_dicts, scenario
from tapeout.validate.registry import END_TO_END, register


#: TensorRT-LLM's performance-table model names -> catalog (its methodology names Llama2-7b / -70b)
TRTLLM_MODELS = {"GPT-J 6B": "gpt-j-6b", "LLaMA 7B": "llama-2-7b", "LLaMA 70B": "llama-2-70b",
                 "Falcon 180B": "falcon-180b"}


@register("e2e-trtllm", kind=END_TO_END, shipped=True,
          description="TensorRT-LLM v0.5/v0.6.1 static-batch throughput and first-token latency, A100/H100/L40S")
def load_e2e_trtllm(data_dir: Path) -> list[Case]:
    """validate/published/trtllm_perf.csv: TensorRT-LLM's published performance tables (v0.5 / v0.6.1).

    gptSessionBenchmark, static batching: a fixed batch of prompts of ``input_len`` tokens generating
    ``output_len`` tokens, which is tapeout's scenario exactly. H100 and L40S run FP8 (``--enable_fp8
    --fp8_kv_cache``: fp8 weights, activations and KV cache), A100 FP16. Throughput rows are output
    tokens per second per GPU (the H100 table says so; the A100 table's header omits "/GPU" but its
    tensor-parallel rows are per GPU too: its LLaMA 70B TP4 row is 4.0x below H100's per-GPU figure,
    as GPT-J's single-GPU rows are 4.1x, where a total would be 16x); compared quantity
    ``num_gpus / throughput_tok_s``. Latency rows: first-token latency at batch 1 (``ttft_s``).
    "A100" is mapped to a100-sxm-80gb, "H100" to h100-sxm (the methodology names H100-HBM3-80GB).
    Decode attention is ``mmha``: these versions predate TensorRT-LLM's XQA kernel, whose blog
    (docs/source/blogs/XQA-kernel.md) introduces it because the masked multi-head attention kernel
    did not share K/V loads across a GQA/MQA group. No framework profile (TensorRT engines; device
    time). The KV cache is not a paged pool with a memory fraction: gptSessionBenchmark allocates it
    for exactly batch x (input + output) tokens, and the tables' largest batches (e.g. Llama-2-7B on A100
    at batch 60, 128 + 2048 tokens: 68 of the 72 GiB left after weights) use nearly all free memory, so
    these rows run with ``kv_fraction`` = 1. Nor is there a token budget: the session runs the whole batch's
    context phase as one forward pass (``max_prefill_tokens`` = None). op class = ``<precision>/<metric>``.
    ``data_dir`` is unused: the file ships with tapeout.
    """
    cases = []
    for row in read_dicts(PUBLISHED_DIR / "trtllm_perf.csv"):
        prec, tp = row["precision"].strip(), int(row["tp"])
        fmt = {"weights": prec, "activations": prec, "kv_cache": prec}
        sc = scenario(model=TRTLLM_MODELS[row["model"].strip()], batch=int(row["batch"]),
                      input_len=int(row["input_len"]), output_len=int(row["output_len"]), tp=tp,
                      attention="mmha", kv_fraction=1.0, max_prefill_tokens=None, **fmt)
        value = float(row["value"])
        if row["metric"] == "ttft":
            quantity, rate, gpus = "ttft_s", 1.0 / (value * units.MS), tp
        else:
            quantity, rate, gpus = "gpu_s_per_token", value, tp
        cases.append(e2e_case("e2e-trtllm", f"{prec}/{row['metric']}", row["device"].strip(), sc, quantity, rate,
                              gpus, row, table=row["table"], version=row["version"], source=row["source"]))
    return cases
