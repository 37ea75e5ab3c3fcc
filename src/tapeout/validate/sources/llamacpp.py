"""llama.cpp's llama-bench results (``measured/llamacpp_gpu_benchmarks.csv``): prompt processing and text
generation of Llama-3 8B/70B, Q4_K_M and F16, on consumer and data-centre GPUs.
"""

from __future__ import annotations

import re
from pathlib import Path

from tapeout.validate.cases import Case, e2e_case, e2e_model, graded_out, kept, read_dicts, scenario
from tapeout.validate.e2e import e2e_predict
from tapeout.validate.registry import END_TO_END, register


#: llama.cpp benchmark hardware_class -> catalog device (the others: no catalog entry, skipped)
LLAMACPP_DEVICES = {
    "RTX-3090": "rtx-3090",
    "RTX-4090": "rtx-4090",
    "RTX-A6000": "a6000",
    "A40": "a40",
    "L40S": "l40s",
    "L4": "l4",
    "A100-80GB-PCIe": "a100-pcie-80gb",
    "A100-80GB-SXM": "a100-sxm-80gb",
    "H100-PCIe": "h100-pcie",
}

#: llama-bench runs without FlashAttention unless given ``-fa 1`` (``cmd_params_defaults``: ``flash_attn
#: {false}``, ``n_ubatch {512}``, in examples/llama-bench/llama-bench.cpp of the 2024 builds): a prompt's
#: attention is separate kernels -- K·Q into a materialized score matrix, a softmax, then V·softmax -- which
#: tapeout's ``naive`` prefill describes. Its decode kernels broadcast the GQA group's K/V instead of copying
#: them per query head (ggml_mul_mat's broadcast), so a step reads the cache once as a fused kernel does; the
#: fp32 score row adds at most H x 16 bytes per cached token (an eighth of Llama-3-8B's 4,096 bytes of K/V)
#: and is left out: text generation keeps the default fused attention.
LLAMA_BENCH_PROMPT_ATTENTION = "naive"
#: llama-bench's ``n_ubatch`` (512, same defaults): the tokens one forward pass runs, so a prompt's
#: activations (its score matrices included) are those of 512 tokens at a time
LLAMA_BENCH_UBATCH = 512


def q4_k_m_format(bits_per_weight: float = 4.8) -> str:
    """The int4 format whose storage bytes per weight are closest to GGUF Q4_K_M's average.

    Q4_K stores 4-bit weights in super-blocks of 256 with a 6-bit scale and a 6-bit min per 32-weight
    sub-block (4.5 bits/weight); the "_M" mix keeps half of attn_v / ffn_down and the output matrix in
    Q6_K (6.56 bits/weight), ~4.8-4.9 bits/weight on average (the data: "~4.8"). tapeout's group formats
    store 4 bits + a 16-bit scale (+ a 16-bit zero point with "z") per group: int4_g128 4.125, int4_g64z 4.5,
    int4_g32z 5.0 bits/weight. The zero-point form (Q4_K has a min per sub-block, i.e. is asymmetric) whose
    group size gives the stated average is 4 + 32/g = 4.8 -> int4_g40z; int4_g32z would add 4 % of bytes.
    Only the bytes matter to the prediction: weight-only formats run fp16 matrix math
    (:func:`tapeout.dtypes.matmul_compute_dtype`).
    """
    from tapeout import dtypes

    best = min(range(8, 257), key=lambda g: (abs(dtypes.parse(f"int4_g{g}z").bytes * 8 - bits_per_weight), -g))
    return f"int4_g{best}z"


def _gguf_format(text: str) -> tuple[str, str] | None:
    """(op-class format label, tapeout weight format) of a llama.cpp weight_precision; None if unknown."""
    t = text.lower()
    if "q4_k_m" in t:
        m = re.search(r"([\d.]+)\s*bits/weight", t)  # no file sizes in the data: use the stated average
        return "q4_k_m", q4_k_m_format(float(m.group(1)) if m else 4.85)
    if "f16" in t or t.strip().startswith("fp16"):
        return "f16", "fp16"
    return None


def llamacpp_selection(data_dir: Path) -> tuple[list[Case], dict[str, int]]:
    """The usable single-GPU rows of measured/llamacpp_gpu_benchmarks.csv and why the others were left out.

    llama-bench at batch 1: ``pp N`` = tokens/s processing an N-token prompt (prediction: N / ttft_s with
    input_len N), ``tg N`` = tokens/s generating N tokens from an empty context (prediction: 1 / tpot_s with
    input_len 1, output_len N). Multi-GPU rows are llama.cpp's layer split: contiguous layers per GPU run
    one after the other, which is pipeline parallelism with one batch in flight (``pp`` = GPUs,
    ``pp_microbatches`` = 1); their generation rows are op classes ``tg/<format>/pp<N>``. Their prompt
    rows are left out: llama.cpp pipelines a long prompt's 512-token ubatches across the GPUs, which
    the model does not describe.
    Skip reasons, first match counts: ``graded`` (suspicious/missing), ``no_value`` (e.g. "OOM" printed
    instead of a rate), ``multi_gpu_prompt``, ``no_catalog_device``
    (Apple, RTX 30x0/40x0 below the 3090/4090, RTX Ada workstation cards), ``unknown_format``,
    ``does_not_fit`` (``predict(...).memory.fits`` is false on the catalog device). Every row runs with the
    ``llamacpp`` framework profile (its kernels' streaming cap, fitted on the f16 generation rows).
    """
    from tapeout.hardware.catalog import load_hardware

    cases: list[Case] = []
    skipped = dict.fromkeys(("graded", "no_value", "multi_gpu_prompt", "no_catalog_device", "unknown_format",
                             "does_not_fit"), 0)
    for row in read_dicts(data_dir / "measured" / "llamacpp_gpu_benchmarks.csv"):
        if row["metric"] not in ("prefill_tokens_per_s", "decode_tokens_per_s"):
            continue
        if not kept(row):
            skipped["graded" if graded_out(row) else "no_value"] += 1
            continue
        gpus = int(row["num_gpus"] or 1)
        if gpus != 1 and row["metric"] == "prefill_tokens_per_s":
            skipped["multi_gpu_prompt"] += 1
            continue
        device = LLAMACPP_DEVICES.get(row["hardware_class"].strip())
        if device is None:
            skipped["no_catalog_device"] += 1
            continue
        fmt = _gguf_format(row["weight_precision"])
        if fmt is None:
            skipped["unknown_format"] += 1
            continue
        label, weights = fmt
        if row["metric"] == "prefill_tokens_per_s":
            stage, quantity = "pp", "prefill_s_per_token"
            n = int(row["input_len"])
            sc = scenario(model=e2e_model(row["model"]), batch=int(row["batch"] or 1), input_len=n, output_len=1,
                          tp=1, weights=weights, activations="fp16", kv_cache=row["kv_precision"].strip() or "fp16",
                          framework="llamacpp", attention=LLAMA_BENCH_PROMPT_ATTENTION,
                          max_prefill_tokens=LLAMA_BENCH_UBATCH)
        else:
            stage, quantity = "tg", "decode_step_s"
            n = int(row["output_len"])
            sc = scenario(model=e2e_model(row["model"]), batch=int(row["batch"] or 1), input_len=1, output_len=n,
                          tp=1, weights=weights, activations="fp16", kv_cache=row["kv_precision"].strip() or "fp16",
                          framework="llamacpp", **({"pp": gpus} if gpus > 1 else {}))
        point = e2e_predict(load_hardware(device), sc)
        if not point.fits:
            skipped["does_not_fit"] += 1
            continue
        op_class = f"{stage}/{label}" + (f"/pp{gpus}" if gpus > 1 else "")
        cases.append(e2e_case("e2e-llamacpp", op_class, device, sc, quantity, float(row["value"]), 1, row,
                              bench=f"{stage}{n}", hardware=row["hardware"], gpus=gpus))
    return cases, skipped


@register("e2e-llamacpp", kind=END_TO_END, files=("measured/llamacpp_gpu_benchmarks.csv",),
          description="llama.cpp llama-bench prompt and generation tokens/s, Llama-3 8B/70B, Q4_K_M and F16")
def load_e2e_llamacpp(data_dir: Path) -> list[Case]:
    """measured/llamacpp_gpu_benchmarks.csv: single-GPU llama-bench rows (see :func:`llamacpp_selection`)."""
    return llamacpp_selection(data_dir)[0]


#: the end-to-end datasets (never fitted on: a check of the calibrated per-op model)
