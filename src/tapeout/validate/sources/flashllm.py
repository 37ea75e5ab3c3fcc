"""Flash-LLM (``measured/flash_llm.csv``, A100): its kernel benchmark (dense cuBLAS and sparse SpMM of OPT
layer shapes) and its end-to-end OPT-66B/175B tokens per GPU-second (FasterTransformer, DeepSpeed,
Flash-LLM at 80 % sparsity).
"""

from __future__ import annotations

from pathlib import Path

from tapeout.errors import TapeoutError
from tapeout.validate.cases import (Case, e2e_case, e2e_model, kept, leading_int, read_dicts, scenario, to_seconds,
                                   weight_format)
from tapeout.validate.registry import END_TO_END, PER_OP, register
from tapeout.workload.standalone import gemm_op


#: Flash-LLM kernel_benchmark software column prefix -> op class (SparTA is not modelled: left out)
FLASHLLM_KERNELS = {"cublas_tc": "cublas", "flash-llm spmm": "flash-llm", "sputnik": "sputnik"}
#: (dataset, op class) pairs that check a technique's kernel model: never fitted on by the device
#: efficiency fits (the technique constants have their own whole-set fits, validate/judge.py)
TECHNIQUE_CLASSES = frozenset({("flashllm-kernels", "flash-llm"), ("flashllm-kernels", "sputnik")})


def is_technique_case(case: Case) -> bool:
    return (case.dataset, case.op_class) in TECHNIQUE_CLASSES


@register("flashllm-kernels", kind=PER_OP, files=("measured/flash_llm.csv",),
          description="Flash-LLM kernel benchmark, A100: dense cuBLAS (fitted on), Flash-LLM and Sputnik SpMM (checks)")
def load_flashllm_kernels(data_dir: Path) -> list[Case]:
    """measured/flash_llm.csv, metric kernel_latency_derived: Flash-LLM's kernel benchmark on A100.

    The latencies are derived from bar heights digitized off Flash-LLM's kernel figure (TFLOP/s of
    ``spmm_test.cu``, which times the kernels with CUDA events: no host term), as 2 M N K / TFLOP/s.
    Flash-LLM's M x K weight times K x N activations is our (m = N tokens, n = M, k = K). op classes:
    ``cublas`` (dense fp16 cuBLAS with tensor cores, every shape digitized once per sparsity panel),
    ``flash-llm`` (Tiled-CSL SpMM on tensor cores, ``sparse_kernel="tensor"``) and ``sputnik`` (CSR
    SpMM on CUDA cores, ``sparse_kernel="cuda"``) at 70/80/90 % sparsity; SparTA is not modelled.
    Device "A100 (variant unstated)", 80 GB assumed by the data: the dense streams reach 1.7 TB/s,
    above the 40 GB card's 1.56 TB/s; mapped to a100-sxm-80gb like the set's end-to-end rows (OPT-175B
    TP8 needs the NVSwitch box). These are the only kernel-timed GEMMs of an A100 SXM in the shared
    data: the dense rows stream weights at 0.64-0.84 of 2,039 GB/s (median 0.79; the 7168 x 7168 shapes
    lowest) and are fitted on (device efficiencies); the host-timed LLMCompass GPT-3 decode layer
    implies ~0.92 for the same shapes once its fitted 25 µs harness term is taken off
    (docs/calibration.md). The sparse classes are technique checks (:data:`TECHNIQUE_CLASSES`), never
    fitted on by the device fits.
    """
    cases = []
    for r in read_dicts(data_dir / "measured" / "flash_llm.csv"):
        if r["metric"] != "kernel_latency_derived" or not kept(r):
            continue
        sw = r["software"].strip().lower()
        op_class = next((v for k, v in FLASHLLM_KERNELS.items() if sw.startswith(k)), None)
        if op_class is None:
            continue
        tokens, n_out, k_in = int(r["N"]), int(r["M"]), int(r["K"])
        sparsity = float(r["sparsity"] or 0)
        if op_class == "cublas":
            op = gemm_op(tokens, n_out, k_in, name="cublas")
        else:
            op = gemm_op(tokens, n_out, k_in, name=op_class, sparsity=sparsity,
                         sparse_kernel="tensor" if op_class == "flash-llm" else "cuda")
        cases.append(Case(dataset="flashllm-kernels", op_class=op_class, device="a100-sxm-80gb", ops=(op,),
                          measured_s=to_seconds(float(r["value"]), r["unit"]),
                          info=(("M", tokens), ("N", n_out), ("K", k_in), ("sparsity", sparsity),
                                ("model", r["model"]))))
    return cases



#: Flash-LLM's software column -> op class
FLASHLLM_SOFTWARE = {"fastertransformer": "fastertransformer", "deepspeed": "deepspeed"}


@register("e2e-flashllm", kind=END_TO_END, files=("measured/flash_llm.csv",),
          description="Flash-LLM: tokens/GPU/s of OPT-66B/175B in FasterTransformer, DeepSpeed and Flash-LLM, A100")
def load_e2e_flashllm(data_dir: Path) -> list[Case]:
    """measured/flash_llm.csv, metric tokens_per_gpu_second: dense FP16 OPT-66B (TP2, TP4), OPT-175B (TP8).

    Software: FasterTransformer and DeepSpeed-Inference (op class). Sequence lengths are stated as
    "64 (inferred)" / "512 (inferred)" (from the repo's DeepSpeed example): the numbers are used.
    Device: "A100 (variant unstated)", 80 GB assumed by the data; mapped to a100-sxm-80gb (TP8 on
    one node needs the NVSwitch box). Compared quantity: ``num_gpus / throughput_tok_s``.

    The 80%-sparse Flash-LLM rows (Flash-LLM inside FasterTransformer) are their own op class and
    run with ``sparsity`` set. Every row carries its framework's host-overhead profile
    (``system/frameworks.toml``): the FasterTransformer gap is fitted on this set's dense
    FasterTransformer rows, the DeepSpeed gap on FP6-LLM's (so the DeepSpeed rows here stay a check).
    """
    cases = []
    for row in read_dicts(data_dir / "measured" / "flash_llm.csv"):
        if row["metric"] != "tokens_per_gpu_second" or not kept(row):
            continue
        sparsity = float(row["sparsity"] or 0)
        sw = row["software"].lower()
        framework = next((v for k, v in FLASHLLM_SOFTWARE.items() if k in sw), None)
        if framework is None:
            raise TapeoutError(f"flash_llm.csv: unknown software {row['software']!r}", field="software")
        op_class = f"flash-llm sparse {sparsity:g}" if sparsity > 0 else framework
        gpus = int(row["num_gpus"] or 1)
        sc = scenario(model=e2e_model(row["model"]), batch=int(row["batch"]),
                      input_len=leading_int(row["input_len"]), output_len=leading_int(row["output_len"]),
                      tp=int(row["tp"] or gpus), weights=weight_format(row["weight_precision"]),
                      activations=row["act_precision"].strip() or "fp16",
                      kv_cache=row["kv_precision"].strip() or "fp16", framework=framework,
                      **({"sparsity": sparsity} if sparsity > 0 else {}))
        cases.append(e2e_case("e2e-flashllm", op_class, "a100-sxm-80gb", sc, "gpu_s_per_token",
                              float(row["value"]), gpus, row, software=row["software"]))
    return cases
