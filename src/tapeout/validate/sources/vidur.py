"""vidur (Microsoft's LLM-inference simulator) profiling data: fp16 GEMMs, elementwise ops, fused
attention and NCCL all-reduce, per-GPU tensor-parallel shards, device timers (CUDA events, NCCL, Kineto).

Device mapping (the data do not always name the exact SKU):

- compute ``a100`` -> ``a100-pcie-80gb`` (vidur does not say SXM or PCIe; see :data:`VIDUR_COMPUTE_DEVICES`),
  ``h100`` -> ``h100-sxm`` (SXM vs NVL not stated), ``a40`` -> ``a40``.
- network ``a100_dgx`` -> ``a100-sxm-80gb`` (NVSwitch), ``h100_dgx`` -> ``h100-sxm``,
  ``a100_pairwise_nvlink`` -> ``a100-pcie-80gb`` (NVLink bridge per pair, PCIe beyond),
  ``h100_pairwise_nvlink`` (4x H100 NVL) -> ``h100-pcie`` (the catalog has no NVL entry; both have a
  pairwise NVLink bridge of 300 GB/s per direction; NVL's HBM differs but no compute runs here).
"""

from __future__ import annotations

import math
from pathlib import Path

from tapeout import units
from tapeout.errors import TapeoutError
from tapeout.validate.cases import PUBLISHED_DIR, Case, allreduce_cases, kept_rows, read_dicts, to_seconds
from tapeout.validate.registry import PER_OP, register
from tapeout.workload.build import ROPE_FLOPS
from tapeout.workload.ops import Op, OpKind
from tapeout.workload.standalone import activation_op, attention_op, elementwise_op, gemm_op, norm_op


#: vidur's "a100" GEMMs peak at ~255 TFLOP/s (82% of the dense peak), the best-achievable figure of an
#: A100 PCIe in measured/mamf_stas00.csv (253), while SXM parts reach 271 (mamf) and 279 (LLMCompass):
#: the profile is taken as the PCIe card (vidur's docs list an Azure NC96ads A100 PCIe node)
VIDUR_COMPUTE_DEVICES = {"a100": "a100-pcie-80gb", "h100": "h100-sxm", "a40": "a40"}
VIDUR_NETWORK_DEVICES = {
    "A100-80GB-SXM": "a100-sxm-80gb",
    "H100-SXM": "h100-sxm",
    "A100-80GB-PCIe": "a100-pcie-80gb",
    "H100-NVL": "h100-pcie",
}
#: what the data do not say about a device mapping (copied into calibration sources)
DEVICE_CAVEATS = {
    "h100-sxm": "vidur's 'h100' compute profile does not say SXM or NVL (mapped to SXM)",
    "h100-pcie": "all-reduce rows are 4x H100 NVL with pairwise NVLink (vidur h100_pairwise_nvlink), "
                 "the nearest catalog entry",
    "a100-pcie-80gb": "vidur's 'a100' compute profile does not say SXM or PCIe (mapped to PCIe: its GEMM "
                      "ceiling matches the PCIe card's best-achievable matmul); all-reduce rows are Azure "
                      "NC96ads_A100_v4 (4x A100 80GB PCIe, pairwise NVLink)",
}
VIDUR_GEMM_CLASSES = {
    "attn_pre_proj": "qkv",
    "attn_post_proj": "out_proj",
    "mlp_up_proj": "mlp_up_gate",
    "mlp_down_proj": "mlp_down",
}


def _vidur_compute_device(row: dict[str, str]) -> str:
    src = row.get("source", "")
    for sku, dev in VIDUR_COMPUTE_DEVICES.items():
        if f"compute/{sku}/" in src:
            return dev
    cls = row.get("hardware_class", "").lower()
    for sku, dev in VIDUR_COMPUTE_DEVICES.items():
        if cls.startswith(sku):
            return dev
    raise TapeoutError(f"cannot map vidur hardware {row.get('hardware')!r} to a catalog device", field="hardware")


@register("vidur-gemm", kind=PER_OP, files=("measured/vidur_gemm_extract.csv",),
          description="vidur fp16 GEMMs (QKV, out-proj, MLP) of TP shards on A100, H100, A40")
def load_vidur_gemm(data_dir: Path) -> list[Case]:
    """measured/vidur_gemm_extract.csv: fp16 GEMMs (per-GPU TP shards), CUDA-event timers."""
    cases = []
    for row in kept_rows(data_dir / "measured" / "vidur_gemm_extract.csv"):
        stage = row["op_or_stage"].split(":")[0].strip()
        op_class = VIDUR_GEMM_CLASSES.get(stage)
        if op_class is None:
            continue
        m, n, k = int(row["M"]), int(row["N"]), int(row["K"])
        dtype = row.get("act_precision") or "fp16"
        cases.append(Case(
            dataset="vidur-gemm", op_class=op_class, device=_vidur_compute_device(row),
            ops=(gemm_op(m, n, k, dtype=dtype, weights=row.get("weight_precision") or dtype, name=stage),),
            measured_s=to_seconds(float(row["value"]), row["unit"]),
            info=(("M", m), ("N", n), ("K", k), ("tp", int(row["tp"] or 1)), ("model", row["model"])),
        ))
    return cases

#: raw vidur mlp.csv columns priced as elementwise ops -> op class
VIDUR_ELEMENTWISE_COLUMNS = {
    "input_layernorm": "norm",
    "post_attention_layernorm": "norm",
    "attn_rope": "rope",
    "mlp_act": "act",
    "add": "add",
}


def _vidur_elementwise_op(column: str, r: dict[str, str]) -> Op:
    T = int(r["num_tokens"])
    tp = int(r["num_tensor_parallel_workers"])
    h = int(r["n_embd"])
    heads, kv_heads = int(r["n_head"]), int(r["n_kv_head"])
    hd = h // heads
    if column in ("input_layernorm", "post_attention_layernorm"):
        return norm_op(T, h, norm="rmsnorm", name=column, tags=("token:norm",))
    if column == "attn_rope":  # in place on the shard's q and k (as build.py's "rope")
        q, kv = heads // tp * hd, max(1, kv_heads // tp) * hd
        return elementwise_op(column, OpKind.ELEMENTWISE, T * (q + kv), T * (q + kv), ROPE_FLOPS, tags=("token:rope",))
    if column == "mlp_act":
        inter = math.ceil(int(r["n_expanded_embd"]) / tp)
        mats = 2 if r.get("use_gated_mlp", "True").strip().lower() == "true" else 1
        return activation_op(T * mats * inter, T * inter, activation="silu", name=column, tags=("token:act",))
    if column == "add":  # residual add: two inputs, one output
        return elementwise_op(column, OpKind.ELEMENTWISE, 2 * T * h, T * h, 1)
    raise KeyError(column)


@register("vidur-elementwise", kind=PER_OP, files=("vidur/data/profiling/compute/*/*/*/mlp.csv",),
          description="vidur norms, RoPE, SiLU-and-mul and residual adds (raw mlp.csv medians)")
def load_vidur_elementwise(data_dir: Path) -> list[Case]:
    """vidur/data/profiling/compute/<gpu>/<model>/mlp.csv: norms, RoPE, SiLU-and-mul, residual add.

    Repeated (num_tokens, tp) configurations keep their first occurrence (as the GEMM extract does).
    """
    root = data_dir / "vidur" / "data" / "profiling" / "compute"
    cases: list[Case] = []
    for path in sorted(root.glob("*/*/*/mlp.csv")):
        sku = path.parts[-4]
        device = VIDUR_COMPUTE_DEVICES.get(sku)
        if device is None:
            continue
        model = f"{path.parts[-3]}/{path.parts[-2]}"
        seen: set[tuple[str, str]] = set()
        for r in read_dicts(path):
            key = (r["num_tokens"], r["num_tensor_parallel_workers"])
            if key in seen:
                continue
            seen.add(key)
            for column, op_class in VIDUR_ELEMENTWISE_COLUMNS.items():
                text = r.get(f"time_stats.{column}.median", "")
                try:
                    ms = float(text)
                except ValueError:
                    continue
                if not (math.isfinite(ms) and ms > 0):
                    continue
                cases.append(Case(
                    dataset="vidur-elementwise", op_class=op_class, device=device,
                    ops=(_vidur_elementwise_op(column, r),), measured_s=ms * units.MS,
                    info=(("column", column), ("tokens", int(key[0])), ("tp", int(key[1])), ("model", model)),
                ))
    return cases


@register("vidur-attention", kind=PER_OP, shipped=True, calibration=False,
          description="vidur FlashAttention decode (batch x context grid) and prefill, Llama-70B TP2 shard, A100")
def load_vidur_attention(data_dir: Path) -> list[Case]:
    """validate/published/vidur_attention_a100.csv: rows typed from vidur's ``data/profiling/a100/attention.csv``
    (microsoft/vidur; repository, path and commit on each row): the attention kernel of one layer of a
    Llama-2/3-70B-shaped model (n_embd 8192, 64 query / 8 KV heads, head dim 128) as its TP2 shard (32 query,
    4 KV heads per GPU), fp16, paged KV (block 16), vLLM/sarathi's FlashAttention backend, Kineto GPU kernel
    time (median of the profile's repeats; times are printed to 0.001 ms).

    Decode rows (op class ``decode``): ``batch_size`` sequences of ``kv_cache_size`` cached tokens each, one
    query each, sampled over a grid of batch 1..128 and context 32..4032 (the large-batch short- and
    long-context corners, and each side of the batch sizes where the tile count crosses a multiple of the
    108 SMs). Prefill rows (op class ``prefill``): one sequence, a causal chunk of ``prefill_chunk_size``
    tokens after ``kv_cache_size`` cached ones. ``data_dir`` is unused: the file ships with tapeout. Device:
    vidur's ``a100`` (:data:`VIDUR_COMPUTE_DEVICES`); a check set, not used by the roofline calibration.
    """
    device = VIDUR_COMPUTE_DEVICES["a100"]
    cases = []
    for r in read_dicts(PUBLISHED_DIR / "vidur_attention_a100.csv"):
        tp = int(r["num_tensor_parallel_workers"])
        q_heads, kv_heads = int(r["n_q_head"]), int(r["n_kv_head"])
        d = int(r["n_embd"]) // q_heads
        b, kv, chunk = int(r["batch_size"]), int(r["kv_cache_size"]), int(r["prefill_chunk_size"])
        prefill = r["is_prefill"].strip() == "True"
        op = attention_op(b, q_heads // tp, max(1, kv_heads // tp), d, sq=chunk if prefill else 1, prefix=kv,
                          dtype="fp16")
        cases.append(Case(
            dataset="vidur-attention", op_class="prefill" if prefill else "decode", device=device, ops=(op,),
            measured_s=float(r["median_ms"]) * units.MS,
            info=(("batch", b), ("context", kv), ("chunk", chunk), ("heads", q_heads // tp),
                  ("kv_heads", max(1, kv_heads // tp)), ("tp", tp), ("source", r["source"])),
        ))
    return cases


@register("vidur-allreduce", kind=PER_OP, files=("measured/vidur_allreduce_extract.csv",),
          description="vidur NCCL all-reduce vs message size, 2/4/8 GPUs (DGX and pairwise-NVLink nodes)")
def load_vidur_allreduce(data_dir: Path) -> list[Case]:
    """measured/vidur_allreduce_extract.csv: NCCL all-reduce, 2/4/8 GPUs, message bytes per rank."""
    cases = []
    for row in kept_rows(data_dir / "measured" / "vidur_allreduce_extract.csv"):
        device = VIDUR_NETWORK_DEVICES.get(row["hardware_class"].strip())
        if device is None:
            raise TapeoutError(f"cannot map all-reduce node {row['hardware_class']!r} to a catalog device",
                               field="hardware")
        nbytes = _size_from(row)
        group = int(row.get("num_gpus") or row.get("tp"))
        secs = to_seconds(float(row["value"]), row["unit"])
        cases += allreduce_cases("vidur-allreduce", device, iter([(nbytes, group, secs)]))
    return cases


def _size_from(row: dict[str, str]) -> float:
    for text in (row.get("source_detail", ""), row.get("notes", "")):
        for token in text.replace(",", " ").split():
            if token.startswith("size="):
                return float(token.split("=", 1)[1])
        words = text.split()
        for i, w in enumerate(words[:-1]):
            if w == "size" and words[i + 1].replace(".", "").isdigit():
                return float(words[i + 1])
    raise TapeoutError(f"no message size in all-reduce row {row.get('source_detail')!r}", field="size")
