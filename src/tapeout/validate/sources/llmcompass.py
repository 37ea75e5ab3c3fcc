"""LLMCompass's real-hardware measurements (its artifact's figure 5 and extracted all-reduce curve).

PyTorch ops timed with a host wall clock around op + synchronize (harness ``llmcompass``: a host term per
op family, ``fitted/harness.toml``); the all-reduce curve is NCCL's. Device mapping: ``A100`` ->
``a100-sxm-80gb`` (its README: 80 GB SXM), ``MI210`` -> ``mi210``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from tapeout import units
from tapeout.errors import TapeoutError
from tapeout.validate.cases import LLMCOMPASS, Case, allreduce_cases, num, read_dicts, read_rows
from tapeout.validate.registry import PER_OP, register
from tapeout.workload.ops import Op, OpKind
from tapeout.workload.standalone import activation_op, bmm_op, collective_op, gemm_op, norm_op, softmax_op


LLMCOMPASS_DEVICES = {"A100": "a100-sxm-80gb", "MI210": "mi210"}


def _fig5(data_dir: Path, sub: str, stem: str) -> Iterator[tuple[str, list[list[str]]]]:
    for tag, device in LLMCOMPASS_DEVICES.items():
        path = data_dir / "llmcompass" / "ae" / "figure5" / sub / "real_hardware" / f"{stem}_{tag}.csv"
        if path.is_file():
            yield device, read_rows(path)


@register("llmcompass-matmul", kind=PER_OP, files=("llmcompass/ae/figure5/ab/real_hardware/matmul_*.csv",),
          description="LLMCompass torch.matmul bf16 sweeps, A100 and MI210 (host-timed)")
def load_llmcompass_matmul(data_dir: Path) -> list[Case]:
    """torch.matmul in bf16: M x K times K x N, latency column "0.1900ms"."""
    cases = []
    for device, rows in _fig5(data_dir, "ab", "matmul"):
        for r in rows:
            m, n, k = int(r[0]), int(r[1]), int(r[2])
            cases.append(Case(
                dataset="llmcompass-matmul", op_class="matmul", device=device,
                ops=(gemm_op(m, n, k, dtype="bf16", name="matmul"),), measured_s=num(r[3]) * units.MS,
                harness=LLMCOMPASS, info=(("M", m), ("N", n), ("K", k)),
            ))
    return cases


def _rate_cases(dataset: str, op_class: str, data_dir: Path, sub: str, stem: str,
                make: Callable[[list[str]], tuple[Op, float]]) -> list[Case]:
    cases = []
    for device, rows in _fig5(data_dir, sub, stem):
        for r in rows:
            op, elements = make(r)
            gelems = float(r[-1])  # throughput in G elements/s
            cases.append(Case(
                dataset=dataset, op_class=op_class, device=device, ops=(op,),
                measured_s=elements / (gelems * 1e9), harness=LLMCOMPASS,
                info=tuple((k, int(v)) for k, v in zip(("M", "N"), r[:-1])) if len(r) == 3
                else (("elements", int(r[0])),),
            ))
    return cases


@register("llmcompass-softmax", kind=PER_OP, files=("llmcompass/ae/figure5/cf/real_hardware/softmax_*.csv",),
          description="LLMCompass softmax fp16 sweeps, A100 and MI210 (host-timed)")
def load_llmcompass_softmax(data_dir: Path) -> list[Case]:
    def make(r: list[str]) -> tuple[Op, float]:
        m, n = int(r[0]), int(r[1])
        return softmax_op(m, n, dtype="fp16"), m * n
    return _rate_cases("llmcompass-softmax", "softmax", data_dir, "cf", "softmax", make)


@register("llmcompass-layernorm", kind=PER_OP,
          files=("llmcompass/ae/figure5/de/real_hardware/layernorm_*.csv",),
          description="LLMCompass layernorm fp16 sweeps, A100 and MI210 (host-timed)")
def load_llmcompass_layernorm(data_dir: Path) -> list[Case]:
    def make(r: list[str]) -> tuple[Op, float]:
        m, n = int(r[0]), int(r[1])
        return norm_op(m, n, norm="layernorm", dtype="fp16", name="layernorm"), m * n
    return _rate_cases("llmcompass-layernorm", "layernorm", data_dir, "de", "layernorm", make)


@register("llmcompass-gelu", kind=PER_OP, files=("llmcompass/ae/figure5/g/real_hardware/gelu_*.csv",),
          description="LLMCompass GELU fp16 sweeps, A100 and MI210 (host-timed)")
def load_llmcompass_gelu(data_dir: Path) -> list[Case]:
    def make(r: list[str]) -> tuple[Op, float]:
        n = int(r[0])
        return activation_op(n, n, activation="gelu_tanh", dtype="fp16", name="gelu"), n
    return _rate_cases("llmcompass-gelu", "gelu", data_dir, "g", "gelu", make)


#: GPT-3 175B layer, TP=4 per GPU (LLMCompass Fig. 5i/5k)
GPT3 = {"hidden": 12288, "heads": 96, "head_dim": 128, "ffn": 4 * 12288, "tp": 4, "batch": 8,
        "prefill_seq": 2048, "decode_kv": 3072}
GPT3_TOTAL_MS = {"prefill": 66.747, "decode": 1.111}


def gpt3_layer_ops(phase: str) -> list[tuple[str, Op]]:
    """(op class, op) for the 12 rows of LLMCompass's transformer files, in file order."""
    g = GPT3
    tp, h, hd, B = g["tp"], g["hidden"], g["head_dim"], g["batch"]
    H = g["heads"] // tp
    ffn = g["ffn"] // tp
    if phase == "prefill":
        S, ctx = g["prefill_seq"], g["prefill_seq"]
    elif phase == "decode":
        S, ctx = 1, g["decode_kv"]
    else:
        raise ValueError(phase)
    T = B * S
    dt = "fp16"
    return [
        ("gemm", gemm_op(T, H * hd, h, dtype=dt, name="qkv_proj", count=3)),  # Q, K, V: 3 GEMMs summed
        ("attn_bmm", bmm_op(B * H, S, ctx, hd, dtype=dt, name="q_kt")),
        ("attn_bmm", bmm_op(B * H, S, hd, ctx, dtype=dt, name="a_v")),
        ("gemm", gemm_op(T, h, H * hd, dtype=dt, name="out_proj")),
        ("gemm", gemm_op(T, ffn, h, dtype=dt, name="ffn_w1")),
        ("gemm", gemm_op(T, h, ffn, dtype=dt, name="ffn_w2")),
        ("softmax", softmax_op(B * H * S, ctx, dtype=dt)),
        ("layernorm", norm_op(T, h, norm="layernorm", dtype=dt, name="layernorm_mha")),
        ("layernorm", norm_op(T, h, norm="layernorm", dtype=dt, name="layernorm_ffn")),
        ("gelu", activation_op(T * ffn, T * ffn, activation="gelu_tanh", dtype=dt, name="gelu")),
        ("allreduce", collective_op(OpKind.ALLREDUCE, T * h * 2, tp, name="allreduce_mha")),
        ("allreduce", collective_op(OpKind.ALLREDUCE, T * h * 2, tp, name="allreduce_ffn")),
    ]


@register("llmcompass-gpt3-layer", kind=PER_OP,
          files=("llmcompass/ae/figure5/ijkl/real_hardware/transformer*_A100.csv",),
          description="LLMCompass GPT-3 175B layer on 4xA100 (TP4), prefill and decode, per op and total")
def load_llmcompass_gpt3_layer(data_dir: Path) -> list[Case]:
    """Per-op rows of one GPT-3 175B layer on 4xA100 (TP4), plus the stated totals (op class "total")."""
    cases = []
    base = data_dir / "llmcompass" / "ae" / "figure5" / "ijkl" / "real_hardware"
    for phase, stem in (("prefill", "transformer_A100"), ("decode", "transformerAR_A100")):
        path = base / f"{stem}.csv"
        if not path.is_file():
            continue
        values = [float(r[0]) for r in read_rows(path)]
        ops = gpt3_layer_ops(phase)
        if len(values) != len(ops):
            raise TapeoutError(f"{path.name}: expected {len(ops)} rows, found {len(values)}", field="data")
        for (op_class, op), secs in zip(ops, values):
            cases.append(Case(
                dataset="llmcompass-gpt3-layer", op_class=f"{phase}/{op_class}", device="a100-sxm-80gb",
                ops=(op,), measured_s=secs, harness=LLMCOMPASS, info=(("phase", phase), ("row", op.name)),
            ))
        cases.append(Case(
            dataset="llmcompass-gpt3-layer", op_class=f"{phase}/total", device="a100-sxm-80gb",
            ops=tuple(op for _, op in ops), measured_s=GPT3_TOTAL_MS[phase] * units.MS, harness=LLMCOMPASS,
            info=(("phase", phase), ("row", "total"), ("sum_of_rows_s", sum(values))),
        ))
    return cases


@register("llmcompass-allreduce", kind=PER_OP,
          files=("llmcompass/extracted_from_code/allreduce_A100x4_nvlink.csv",),
          description="LLMCompass all-reduce curve, 4xA100 NVLink (NCCL)")
def load_llmcompass_allreduce(data_dir: Path) -> list[Case]:
    """extracted_from_code/allreduce_A100x4_nvlink.csv: 4xA100 NVLink (NVSwitch), size_bytes, latency_us."""
    path = data_dir / "llmcompass" / "extracted_from_code" / "allreduce_A100x4_nvlink.csv"
    rows = ((float(r["size_bytes"]), 4, float(r["latency_us"]) * units.US) for r in read_dicts(path))
    return allreduce_cases("llmcompass-allreduce", "a100-sxm-80gb", rows)
