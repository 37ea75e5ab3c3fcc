"""Loaders: the measured sets in a reference-data directory, as cases to price.

A :class:`Case` is one measurement: a device from the catalog, the op(s) that ran (built with the
conventions of :mod:`tapeout.workload.build`, via :mod:`tapeout.workload.standalone`), and the
measured time in seconds. Files are read at run time from ``data_dir`` (by default the
``shared/reference-data`` folder beside the repository); nothing is copied into the package.

Device mapping (the data do not always name the exact SKU):

- vidur compute ``a100`` -> ``a100-sxm-80gb`` (vidur does not say SXM or PCIe; its docs list both
  DGX A100 80GB and Azure NC96ads A100 PCIe nodes), ``h100`` -> ``h100-sxm`` (SXM vs NVL not
  stated), ``a40`` -> ``a40``.
- vidur network ``a100_dgx`` -> ``a100-sxm-80gb`` (NVSwitch), ``h100_dgx`` -> ``h100-sxm``,
  ``a100_pairwise_nvlink`` -> ``a100-pcie-80gb`` (NVLink bridge per pair, PCIe beyond),
  ``h100_pairwise_nvlink`` (4x H100 NVL) -> ``h100-pcie`` (the catalog has no NVL entry; both have a
  pairwise NVLink bridge of 300 GB/s per direction; NVL's HBM differs but no compute runs here).
- LLMCompass ``A100`` -> ``a100-sxm-80gb`` (its README: 80 GB SXM), ``MI210`` -> ``mi210``.

End-to-end sets (``e2e-*``) are scenarios, not ops: a :class:`Case` with ``scenario`` (the keyword
arguments of :func:`tapeout.predict`) and ``quantity`` (which prediction it is compared with). Their
``measured_s`` is the reciprocal of the published rate, so it is a time like every other case
(seconds per generated token and GPU, per decode step, per prompt token); the published rate is kept
in ``info`` and the runner reports MAPE on the rate itself.
"""

from __future__ import annotations

import csv
import functools
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tapeout import units
from tapeout.errors import TapeoutError
from tapeout.workload.ops import Op, OpKind
from tapeout.workload.standalone import (
    activation_op,
    bmm_op,
    collective_op,
    elementwise_op,
    gemm_op,
    norm_op,
    softmax_op,
)
from tapeout.workload.build import ROPE_FLOPS

#: confidence grades left out of error statistics (README of the reference data)
SKIP_CONFIDENCE = ("suspicious", "missing")

#: measurement harnesses: "kernel" = device-side timers (CUDA events, NCCL), no host term;
#: "llmcompass" = host wall clock around one PyTorch op + synchronize (host overhead per op)
KERNEL = "kernel"
LLMCOMPASS = "llmcompass"


@dataclass(frozen=True, slots=True)
class Case:
    """One measurement to compare a prediction with.

    The prediction is the sum of ``estimate(op).total_s`` over ``ops`` (usually one op; a row that
    sums several kernels, like LLMCompass's QKV row, has ``count`` > 1 or several ops).
    """

    dataset: str
    op_class: str
    device: str
    ops: tuple[Op, ...]
    measured_s: float
    #: which harness timed it (selects the host-overhead term; see :data:`LLMCOMPASS`)
    harness: str = KERNEL
    #: extra facts for reports and plots (M/N/K, tp, bytes, model, source row, ...)
    info: tuple[tuple[str, Any], ...] = field(default=())
    #: end-to-end cases only (``ops`` is empty): keyword arguments of :func:`tapeout.predict`
    #: (model, batch, input_len, output_len, tp, weights, ...), as sorted (key, value) pairs
    scenario: tuple[tuple[str, Any], ...] = field(default=())
    #: end-to-end cases only: which prediction ``measured_s`` is compared with (:data:`E2E_QUANTITIES`)
    quantity: str = ""

    @property
    def op(self) -> Op:
        return self.ops[0]

    @property
    def is_e2e(self) -> bool:
        """A scenario priced through :func:`tapeout.predict` rather than a list of ops."""
        return bool(self.scenario)

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.info).get(key, default)


# ---- paths and small readers -------------------------------------------------------------------

def default_data_dir() -> Path:
    """``shared/reference-data`` beside the repository root (``<repo>/../shared/reference-data``)."""
    repo_root = Path(__file__).resolve().parents[3]
    return repo_root.parent / "shared" / "reference-data"


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    d = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if not d.is_dir():
        raise TapeoutError(f"reference-data directory {str(d)!r} does not exist", field="data")
    if not any((d / sub).is_dir() for sub in ("measured", "vidur", "llmcompass")):
        raise TapeoutError(
            f"{str(d)!r} holds no measured/, vidur/ or llmcompass/ folder; point --data at a reference-data directory",
            field="data",
        )
    return d


def _read_dicts(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _read_rows(path: Path) -> list[list[str]]:
    """Header-less CSV rows (LLMCompass files), stripped, blank lines dropped."""
    with path.open(newline="", encoding="utf-8") as fh:
        return [[c.strip() for c in row] for row in csv.reader(fh) if any(c.strip() for c in row)]


def _kept(row: dict[str, str]) -> bool:
    conf = (row.get("confidence") or "").strip().lower()
    if any(conf.startswith(s) for s in SKIP_CONFIDENCE):
        return False
    v = (row.get("value") or "").strip()
    try:
        return math.isfinite(float(v)) and float(v) > 0
    except ValueError:
        return False


def _to_seconds(value: float, unit: str) -> float:
    u = unit.strip().lower()
    scale = {"s": 1.0, "ms": units.MS, "us": units.US, "µs": units.US, "ns": 1e-9}.get(u)
    if scale is None:
        raise TapeoutError(f"unknown time unit {unit!r}", field="unit")
    return value * scale


def _num(text: str) -> float:
    """'0.1900ms' -> 0.19, '101.7Tflops' -> 101.7, '1e-3' -> 0.001."""
    t = text.strip().lower()
    for suffix in ("ms", "tflops", "us", "s"):
        if t.endswith(suffix):
            t = t[: -len(suffix)]
            break
    return float(t)


# ---- vidur -------------------------------------------------------------------------------------

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


def load_vidur_gemm(data_dir: Path) -> list[Case]:
    """measured/vidur_gemm_extract.csv: fp16 GEMMs (per-GPU TP shards), CUDA-event timers."""
    cases = []
    for row in _read_dicts(data_dir / "measured" / "vidur_gemm_extract.csv"):
        if not _kept(row):
            continue
        stage = row["op_or_stage"].split(":")[0].strip()
        op_class = VIDUR_GEMM_CLASSES.get(stage)
        if op_class is None:
            continue
        m, n, k = int(row["M"]), int(row["N"]), int(row["K"])
        dtype = row.get("act_precision") or "fp16"
        cases.append(Case(
            dataset="vidur-gemm", op_class=op_class, device=_vidur_compute_device(row),
            ops=(gemm_op(m, n, k, dtype=dtype, weights=row.get("weight_precision") or dtype, name=stage),),
            measured_s=_to_seconds(float(row["value"]), row["unit"]),
            info=(("M", m), ("N", n), ("K", k), ("tp", int(row["tp"] or 1)), ("model", row["model"])),
        ))
    return cases


def _allreduce_cases(dataset: str, device: str, rows: Iterator[tuple[float, int, float]]) -> list[Case]:
    return [
        Case(dataset=dataset, op_class="allreduce", device=device,
             ops=(collective_op(OpKind.ALLREDUCE, nbytes, group),), measured_s=secs,
             info=(("bytes", int(nbytes)), ("group", group)))
        for nbytes, group, secs in rows
    ]


def load_vidur_allreduce(data_dir: Path) -> list[Case]:
    """measured/vidur_allreduce_extract.csv: NCCL all-reduce, 2/4/8 GPUs, message bytes per rank."""
    cases = []
    for row in _read_dicts(data_dir / "measured" / "vidur_allreduce_extract.csv"):
        if not _kept(row):
            continue
        device = VIDUR_NETWORK_DEVICES.get(row["hardware_class"].strip())
        if device is None:
            raise TapeoutError(f"cannot map all-reduce node {row['hardware_class']!r} to a catalog device",
                               field="hardware")
        nbytes = _size_from(row)
        group = int(row.get("num_gpus") or row.get("tp"))
        secs = _to_seconds(float(row["value"]), row["unit"])
        cases += _allreduce_cases("vidur-allreduce", device, iter([(nbytes, group, secs)]))
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
        return norm_op(T, h, norm="rmsnorm", name=column)
    if column == "attn_rope":  # in place on the shard's q and k (as build.py's "rope")
        q, kv = heads // tp * hd, max(1, kv_heads // tp) * hd
        return elementwise_op(column, OpKind.ELEMENTWISE, T * (q + kv), T * (q + kv), ROPE_FLOPS)
    if column == "mlp_act":
        inter = math.ceil(int(r["n_expanded_embd"]) / tp)
        mats = 2 if r.get("use_gated_mlp", "True").strip().lower() == "true" else 1
        return activation_op(T * mats * inter, T * inter, activation="silu", name=column)
    if column == "add":  # residual add: two inputs, one output
        return elementwise_op(column, OpKind.ELEMENTWISE, 2 * T * h, T * h, 1)
    raise KeyError(column)


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
        for r in _read_dicts(path):
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


# ---- LLMCompass --------------------------------------------------------------------------------

LLMCOMPASS_DEVICES = {"A100": "a100-sxm-80gb", "MI210": "mi210"}


def _fig5(data_dir: Path, sub: str, stem: str) -> Iterator[tuple[str, list[list[str]]]]:
    for tag, device in LLMCOMPASS_DEVICES.items():
        path = data_dir / "llmcompass" / "ae" / "figure5" / sub / "real_hardware" / f"{stem}_{tag}.csv"
        if path.is_file():
            yield device, _read_rows(path)


def load_llmcompass_matmul(data_dir: Path) -> list[Case]:
    """torch.matmul in bf16: M x K times K x N, latency column "0.1900ms"."""
    cases = []
    for device, rows in _fig5(data_dir, "ab", "matmul"):
        for r in rows:
            m, n, k = int(r[0]), int(r[1]), int(r[2])
            cases.append(Case(
                dataset="llmcompass-matmul", op_class="matmul", device=device,
                ops=(gemm_op(m, n, k, dtype="bf16", name="matmul"),), measured_s=_num(r[3]) * units.MS,
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


def load_llmcompass_softmax(data_dir: Path) -> list[Case]:
    def make(r: list[str]) -> tuple[Op, float]:
        m, n = int(r[0]), int(r[1])
        return softmax_op(m, n, dtype="fp16"), m * n
    return _rate_cases("llmcompass-softmax", "softmax", data_dir, "cf", "softmax", make)


def load_llmcompass_layernorm(data_dir: Path) -> list[Case]:
    def make(r: list[str]) -> tuple[Op, float]:
        m, n = int(r[0]), int(r[1])
        return norm_op(m, n, norm="layernorm", dtype="fp16", name="layernorm"), m * n
    return _rate_cases("llmcompass-layernorm", "layernorm", data_dir, "de", "layernorm", make)


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


def load_llmcompass_gpt3_layer(data_dir: Path) -> list[Case]:
    """Per-op rows of one GPT-3 175B layer on 4xA100 (TP4), plus the stated totals (op class "total")."""
    cases = []
    base = data_dir / "llmcompass" / "ae" / "figure5" / "ijkl" / "real_hardware"
    for phase, stem in (("prefill", "transformer_A100"), ("decode", "transformerAR_A100")):
        path = base / f"{stem}.csv"
        if not path.is_file():
            continue
        values = [float(r[0]) for r in _read_rows(path)]
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


def load_llmcompass_allreduce(data_dir: Path) -> list[Case]:
    """extracted_from_code/allreduce_A100x4_nvlink.csv: 4xA100 NVLink (NVSwitch), size_bytes, latency_us."""
    path = data_dir / "llmcompass" / "extracted_from_code" / "allreduce_A100x4_nvlink.csv"
    rows = ((float(r["size_bytes"]), 4, float(r["latency_us"]) * units.US) for r in _read_dicts(path))
    return _allreduce_cases("llmcompass-allreduce", "a100-sxm-80gb", rows)


# ---- mamf (stas00 maximum achievable matmul FLOPS) ---------------------------------------------

MAMF_DEVICES = {
    "NVIDIA A100 SXM": "a100-sxm-80gb",
    "NVIDIA A100 PCIe": "a100-pcie-80gb",
    "NVIDIA H100 SXM": "h100-sxm",
    "NVIDIA H200 SXM": "h200",
    "NVIDIA GH200 SXM": "gh200",
    "NVIDIA B200 SXM": "b200",
    "AMD MI300X": "mi300x",
    "Intel Gaudi 2": "gaudi2",
    "Intel Gaudi 3": "gaudi3",
}


def load_mamf(data_dir: Path) -> list[Case]:
    """measured/mamf_stas00.csv: the best matmul TFLOP/s a shape search found, as the time of that GEMM.

    Devices without a catalog entry (B300, GB200, MI325X, MI355X) are left out.
    """
    cases = []
    for row in _read_dicts(data_dir / "measured" / "mamf_stas00.csv"):
        if row["metric"] != "max_achievable_matmul_tflops" or not _kept(row):
            continue
        device = MAMF_DEVICES.get(row["hardware"].strip())
        if device is None:
            continue
        prec = row["act_precision"].strip()
        dtype = "fp8" if prec.startswith("fp8") else prec
        m, n, k = int(row["M"]), int(row["N"]), int(row["K"])
        tflops = float(row["value"])
        cases.append(Case(
            dataset="mamf", op_class=f"matmul_{dtype}", device=device,
            ops=(gemm_op(m, n, k, dtype=dtype, name="mamf"),), measured_s=2.0 * m * n * k / (tflops * 1e12),
            info=(("M", m), ("N", n), ("K", k), ("tflops", tflops), ("hardware", row["hardware"])),
        ))
    return cases


# ---- FlashAttention-2/3 forward on H100 (FA3 paper figure) -------------------------------------

#: software column prefix -> op class (and op tag: FA2 runs the previous-generation MMA path)
FA_SOFTWARE = {"FlashAttention-2": "fa2", "FlashAttention-3": "fa3"}


def flash_attention_op(b: int, s: int, h: int, hd: int, causal: bool, kind: str) -> Op:
    """The fused forward attention of one FA-paper benchmark point (fp16, MHA, sq = skv = s).

    FLOPs 4 B H D pairs (pairs = S^2, or S(S+1)/2 causal); bytes: Q, K, V read, O written once.
    """
    pairs = s * (s + 1) / 2 if causal else s * s
    q = b * s * h * hd * 2.0
    return Op(name="flash_attention", kind=OpKind.ATTENTION, flops=4.0 * b * h * hd * pairs,
              bytes_read=3 * q, bytes_written=q,
              shape=(("b", b), ("heads", h), ("kv_heads", h), ("sq", s), ("skv", s), ("d", hd)),
              compute_dtype="fp16", formats=(("act", "fp16"),),
              tags=("flash",) + (("causal",) if causal else ()) + (("fa2",) if kind == "fa2" else ()))


def load_flashattention_h100(data_dir: Path) -> list[Case]:
    """measured/flashattention_figures.csv: FlashAttention-2/3 forward on H100 SXM, op class "fa2" / "fa3".

    The time is the set's ``attention_latency_derived`` (FLOPs 4 B S^2 H D, halved when causal, over the
    printed TFLOP/s: device-side benchmark, no host term). Other software rows (standard attention,
    cuDNN, Triton) and other metrics are left out.
    """
    out = []
    for r in _read_dicts(data_dir / "measured" / "flashattention_figures.csv"):
        if r["hardware_class"] != "H100-SXM" or r["metric"] != "attention_latency_derived":
            continue
        conf = r["confidence"].lower()
        if any(s in conf for s in SKIP_CONFIDENCE):
            continue
        kind = next((v for k, v in FA_SOFTWARE.items() if r["software"].startswith(k)), None)
        if kind is None:
            continue
        kv = dict(re.findall(r"(\w+)=(\w+)", r["notes"]))
        b, s, h, hd = int(kv["batch"]), int(kv["seqlen"]), int(kv["nheads"]), int(kv["headdim"])
        causal = kv["causal"] == "True"
        out.append(Case(dataset="flashattention-h100", op_class=kind, device="h100-sxm",
                        ops=(flash_attention_op(b, s, h, hd, causal, kind),),
                        measured_s=_to_seconds(float(r["value"]), r["unit"]),
                        info=(("batch", b), ("seq", s), ("heads", h), ("d", hd), ("causal", causal))))
    return out


# ---- Flash-LLM kernel benchmark (A100): dense cuBLAS and sparse SpMM of OPT layer shapes -----------

#: Flash-LLM kernel_benchmark software column prefix -> op class (SparTA is not modelled: left out)
FLASHLLM_KERNELS = {"cublas_tc": "cublas", "flash-llm spmm": "flash-llm", "sputnik": "sputnik"}
#: (dataset, op class) pairs that check a technique's kernel model: never fitted on by the device
#: efficiency fits (the technique constants have their own whole-set fits, techniques/judge.py)
TECHNIQUE_CLASSES = frozenset({("flashllm-kernels", "flash-llm"), ("flashllm-kernels", "sputnik")})


def is_technique_case(case: Case) -> bool:
    return (case.dataset, case.op_class) in TECHNIQUE_CLASSES


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
    for r in _read_dicts(data_dir / "measured" / "flash_llm.csv"):
        if r["metric"] != "kernel_latency_derived" or not _kept(r):
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
                          measured_s=_to_seconds(float(r["value"]), r["unit"]),
                          info=(("M", tokens), ("N", n_out), ("K", k_in), ("sparsity", sparsity),
                                ("model", r["model"]))))
    return cases


# ---- end-to-end sets: scenarios priced through tapeout.predict ---------------------------------

#: what an end-to-end case's ``measured_s`` is (and which prediction it is compared with); each is the
#: reciprocal of a published rate
E2E_QUANTITIES = {
    # tokens per GPU-second of a whole generation (prefill + decode): num_gpus / throughput_tok_s
    "gpu_s_per_token": "tokens/GPU/s",
    # batch-1 text generation rate: one decode step, tpot_s
    "decode_step_s": "tokens/s",
    # prompt processing rate: ttft_s / input_len
    "prefill_s_per_token": "tokens/s",
    # first-token latency of one request: ttft_s (compared as its reciprocal, like every rate here)
    "ttft_s": "1/s",
}


@dataclass(frozen=True, slots=True)
class E2EPoint:
    """What the validation needs from one :func:`tapeout.predict` call."""

    ttft_s: float
    tpot_s: float
    throughput_tok_s: float
    fits: bool
    memory_total_gb: float
    memory_capacity_gb: float
    prefill_bound: str  # bound of the prefill's most expensive op
    decode_bound: str  # bound of the middle decode step's most expensive op

    def seconds(self, quantity: str, scenario: dict[str, Any], num_gpus: int) -> float:
        if quantity == "gpu_s_per_token":
            return num_gpus / self.throughput_tok_s
        if quantity == "decode_step_s":
            return self.tpot_s
        if quantity == "prefill_s_per_token":
            return self.ttft_s / int(scenario["input_len"])
        if quantity == "ttft_s":
            return self.ttft_s
        raise ValueError(f"unknown end-to-end quantity {quantity!r}; allowed: {', '.join(E2E_QUANTITIES)}")

    def bound(self, quantity: str) -> str:
        return self.prefill_bound if quantity == "prefill_s_per_token" else self.decode_bound


_E2E_CACHE: dict[tuple[str, str, tuple[tuple[str, Any], ...]], E2EPoint] = {}
_E2E_CACHE_MAX = 8192


def _dominant_bound(phase: Any) -> str:
    costs = phase.costs
    return max(costs, key=lambda c: c.total_s).bound if costs else ""


def e2e_predict(hw: Any, scenario: tuple[tuple[str, Any], ...], tier: str = "roofline") -> E2EPoint:
    """``tapeout.predict(**scenario)`` on device spec ``hw``, memoised on the spec's content.

    One prediction is 5-15 ms; the loaders (memory check) and every ``evaluate`` run with the same
    efficiency data share the results.
    """
    from tapeout.api import predict

    key = (hw.model_dump_json(), tier, scenario)
    point = _E2E_CACHE.get(key)
    if point is None:
        kw = dict(scenario)
        if "efficiency" in kw:  # (field, value) pairs that win over the framework profile's
            kw["efficiency"] = dict(kw["efficiency"])
        if "lm_head" in kw:  # the lm_head's weight format, as a per-layer rule
            kw["scenario"] = {"layers": [{"match": "lm_head", "weights": kw.pop("lm_head")}]}
        pr = predict(kw.pop("model"), hw, tier=tier, **kw)
        mem = pr.memory
        point = E2EPoint(
            ttft_s=pr.ttft_s, tpot_s=pr.tpot_s, throughput_tok_s=pr.throughput_tok_s, fits=bool(mem.fits),
            memory_total_gb=mem.total_bytes / 1e9, memory_capacity_gb=mem.capacity_bytes / 1e9,
            prefill_bound=_dominant_bound(pr.result.prefill),
            decode_bound=_dominant_bound(pr.result.decode_representative),
        )
        if len(_E2E_CACHE) >= _E2E_CACHE_MAX:
            _E2E_CACHE.clear()
        _E2E_CACHE[key] = point
    return point


def _scenario(**kw: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(kw.items()))


def _leading_int(text: str) -> int:
    """'64 (inferred)' -> 64, '512' -> 512."""
    m = re.match(r"\s*(\d+)", text or "")
    if m is None:
        raise ValueError(f"no number in {text!r}")
    return int(m.group(1))


def _e2e_case(dataset: str, op_class: str, device: str, scenario: tuple[tuple[str, Any], ...], quantity: str,
              rate: float, num_gpus: int, row: dict[str, str], **info: Any) -> Case:
    facts = {**dict(scenario), "num_gpus": num_gpus, "published": rate, "unit": E2E_QUANTITIES[quantity],
             "confidence": row.get("confidence", ""), **info}
    return Case(dataset=dataset, op_class=op_class, device=device, ops=(), measured_s=1.0 / rate,
                info=tuple(facts.items()), scenario=scenario, quantity=quantity)


#: model names of the end-to-end sets -> catalog names
E2E_MODELS = {
    "opt-30b": "opt-30b", "opt-66b": "opt-66b", "opt-175b": "opt-175b",
    # FP6-LLM's "LLaMA-70B": taken as Llama-2-70B (the 70B LLaMA of its time, Jan 2024)
    "llama-70b": "llama-2-70b",
    "meta-llama-3-8b": "llama-3-8b", "meta-llama-3-70b": "llama-3-70b",
    "llama-2-7b": "llama-2-7b", "llama-2-70b": "llama-2-70b", "llama-3-8b": "llama-3-8b",
}


def _e2e_model(name: str) -> str:
    key = name.strip().lower()
    if key not in E2E_MODELS:
        raise TapeoutError(f"cannot map model {name!r} to a catalog model", field="model")
    return E2E_MODELS[key]


def _weight_format(text: str) -> str:
    """'fp6 e3m2' -> 'fp6_e3m2', 'fp16' -> 'fp16', 'fp16 + unstructured 80% sparsity (...)' -> 'fp16'."""
    return re.sub(r"\s+", "_", text.split("+")[0].split("(")[0].strip().lower())


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
    for row in _read_dicts(data_dir / "measured" / "fp6_llm.csv"):
        if row["metric"] != "tokens_per_gpu_second" or not _kept(row):
            continue
        if row["hardware_class"].strip() != "A100-80GB-SXM":
            raise TapeoutError(f"fp6_llm.csv: unexpected device {row['hardware_class']!r}", field="hardware")
        fmt = _weight_format(row["weight_precision"])
        gpus = int(row["num_gpus"] or 1)
        sc = _scenario(model=_e2e_model(row["model"]), batch=int(row["batch"]), input_len=int(row["input_len"]),
                       output_len=int(row["output_len"]), tp=int(row["tp"] or 1), weights=fmt,
                       activations=row["act_precision"].strip() or "fp16",
                       kv_cache=row["kv_precision"].strip() or "fp16", framework="deepspeed", attention="mmha")
        cases.append(_e2e_case("e2e-fp6llm", "fp6" if fmt.startswith("fp6") else fmt, "a100-sxm-80gb", sc,
                               "gpu_s_per_token", float(row["value"]), gpus, row, software=row["software"]))
    return cases


#: Flash-LLM's software column -> op class
FLASHLLM_SOFTWARE = {"fastertransformer": "fastertransformer", "deepspeed": "deepspeed"}


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
    for row in _read_dicts(data_dir / "measured" / "flash_llm.csv"):
        if row["metric"] != "tokens_per_gpu_second" or not _kept(row):
            continue
        sparsity = float(row["sparsity"] or 0)
        sw = row["software"].lower()
        framework = next((v for k, v in FLASHLLM_SOFTWARE.items() if k in sw), None)
        if framework is None:
            raise TapeoutError(f"flash_llm.csv: unknown software {row['software']!r}", field="software")
        op_class = f"flash-llm sparse {sparsity:g}" if sparsity > 0 else framework
        gpus = int(row["num_gpus"] or 1)
        sc = _scenario(model=_e2e_model(row["model"]), batch=int(row["batch"]),
                       input_len=_leading_int(row["input_len"]), output_len=_leading_int(row["output_len"]),
                       tp=int(row["tp"] or gpus), weights=_weight_format(row["weight_precision"]),
                       activations=row["act_precision"].strip() or "fp16",
                       kv_cache=row["kv_precision"].strip() or "fp16", framework=framework,
                       **({"sparsity": sparsity} if sparsity > 0 else {}))
        cases.append(_e2e_case("e2e-flashllm", op_class, "a100-sxm-80gb", sc, "gpu_s_per_token",
                               float(row["value"]), gpus, row, software=row["software"]))
    return cases


#: typed published figures shipped with tapeout (facts with their source in each row)
PUBLISHED_DIR = Path(__file__).with_name("published")


def load_e2e_torchao(data_dir: Path) -> list[Case]:
    """validate/published/torchao_a100.csv: torchao's batch-1 decode benchmarks on A100 (typed from its READMEs).

    Llama-2-7B and Llama-3-8B through ``torchao/_models/llama/generate.py`` (torch.compile, CUDA graphs:
    no framework profile, device time), prompt "Hello, my name is" (6 tokens), 200 new tokens; tokens/s
    = 1 / decode step. Formats: bf16, int8 weight-only per channel (``int8_c``), int4 weight-only group 64
    with zero points (``int4_g64z``, tinygemm), and int4 group 128 on a 2:4-sparse weight (Sparse-Marlin,
    ``int4_g128`` + ``sparsity="2:4"``); the lm_head is quantized as well (the rows' model sizes say so:
    tapeout's weight bytes without the embedding table equal them within 2%). Rows with ``use = no``
    are left out, each with its reason (W8A8 dynamic at batch 1: an untuned path 11x slower than bf16;
    duplicates; per-layer autoquant). Device "A100" / "NVIDIA-A100-80GB": mapped to a100-sxm-80gb.
    ``data_dir`` is unused: the file ships with tapeout. op class = format (+ ``/2:4``).
    """
    cases = []
    for row in _read_dicts(PUBLISHED_DIR / "torchao_a100.csv"):
        if row["use"].strip() != "yes":
            continue
        w, sp, lm = row["weights"].strip(), row["sparsity"].strip(), row["lm_head"].strip()
        sc = _scenario(model=_e2e_model(row["model"]), batch=int(row["batch"]), input_len=int(row["input_len"]),
                       output_len=int(row["output_len"]), tp=1, weights=w, activations="bf16", kv_cache="bf16",
                       lm_head=lm, **({"sparsity": sp} if sp else {}))
        cases.append(_e2e_case("e2e-torchao", w + (f"/{sp}" if sp else ""), "a100-sxm-80gb", sc, "decode_step_s",
                               float(row["tokens_per_s"]), 1, row, technique=row["technique"],
                               model_size_gb=float(row["model_size_gb"]), source=row["source"]))
    return cases


def load_e2e_gptfast(data_dir: Path) -> list[Case]:
    """validate/published/gptfast.csv: gpt-fast's batch-1 decode rates (typed from its README).

    Llama-2-7B / -70B on A100 80GB (an 8-GPU NVLink box, power-limited to 330 W; mapped to a100-sxm-80gb)
    and one MI250X GCD; bf16, int8 weight-only (per channel) and int4 group 32 with zeros, every linear
    layer quantized (lm_head too); tensor parallelism 1-8 (PyTorch's intra-node all-reduce). 5-token
    prompt, 200 new tokens, torch.compile with CUDA graphs: the ``gptfast`` framework profile (device
    time, one-shot all-reduces up to 256 KiB, their fixed cost fitted on the TP rows).
    op class = format + ``/tp<N>``. ``data_dir`` is unused: the file ships with tapeout.
    """
    cases = []
    for row in _read_dicts(PUBLISHED_DIR / "gptfast.csv"):
        if row["use"].strip() != "yes":
            continue
        w, tp = row["weights"].strip(), int(row["tp"])
        sc = _scenario(model=_e2e_model(row["model"]), batch=int(row["batch"]), input_len=int(row["input_len"]),
                       output_len=int(row["output_len"]), tp=tp, weights=w, activations="bf16", kv_cache="bf16",
                       lm_head=row["lm_head"].strip(), framework="gptfast")
        cases.append(_e2e_case("e2e-gptfast", f"{w}/tp{tp}", row["device"].strip(), sc, "decode_step_s",
                               float(row["tokens_per_s"]), tp, row, technique=row["technique"],
                               hardware=row["hardware"], source=row["source"]))
    return cases


#: TensorRT-LLM's performance-table model names -> catalog (its methodology names Llama2-7b / -70b)
TRTLLM_MODELS = {"GPT-J 6B": "gpt-j-6b", "LLaMA 7B": "llama-2-7b", "LLaMA 70B": "llama-2-70b",
                 "Falcon 180B": "falcon-180b"}


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
    these rows run with ``kv_fraction`` = 1. op class = ``<precision>/<metric>``.
    ``data_dir`` is unused: the file ships with tapeout.
    """
    cases = []
    for row in _read_dicts(PUBLISHED_DIR / "trtllm_perf.csv"):
        prec, tp = row["precision"].strip(), int(row["tp"])
        fmt = {"weights": prec, "activations": prec, "kv_cache": prec}
        sc = _scenario(model=TRTLLM_MODELS[row["model"].strip()], batch=int(row["batch"]),
                       input_len=int(row["input_len"]), output_len=int(row["output_len"]), tp=tp,
                       attention="mmha", kv_fraction=1.0, **fmt)
        value = float(row["value"])
        if row["metric"] == "ttft":
            quantity, rate, gpus = "ttft_s", 1.0 / (value * units.MS), tp
        else:
            quantity, rate, gpus = "gpu_s_per_token", value, tp
        cases.append(_e2e_case("e2e-trtllm", f"{prec}/{row['metric']}", row["device"].strip(), sc, quantity, rate,
                               gpus, row, table=row["table"], version=row["version"], source=row["source"]))
    return cases


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
    for row in _read_dicts(data_dir / "measured" / "llamacpp_gpu_benchmarks.csv"):
        if row["metric"] not in ("prefill_tokens_per_s", "decode_tokens_per_s"):
            continue
        if not _kept(row):
            conf = (row.get("confidence") or "").strip().lower()
            skipped["graded" if any(conf.startswith(c) for c in SKIP_CONFIDENCE) else "no_value"] += 1
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
            sc = _scenario(model=_e2e_model(row["model"]), batch=int(row["batch"] or 1), input_len=n, output_len=1,
                           tp=1, weights=weights, activations="fp16", kv_cache=row["kv_precision"].strip() or "fp16",
                           framework="llamacpp")
        else:
            stage, quantity = "tg", "decode_step_s"
            n = int(row["output_len"])
            sc = _scenario(model=_e2e_model(row["model"]), batch=int(row["batch"] or 1), input_len=1, output_len=n,
                           tp=1, weights=weights, activations="fp16", kv_cache=row["kv_precision"].strip() or "fp16",
                           framework="llamacpp", **({"pp": gpus} if gpus > 1 else {}))
        point = e2e_predict(load_hardware(device), sc)
        if not point.fits:
            skipped["does_not_fit"] += 1
            continue
        op_class = f"{stage}/{label}" + (f"/pp{gpus}" if gpus > 1 else "")
        cases.append(_e2e_case("e2e-llamacpp", op_class, device, sc, quantity, float(row["value"]), 1, row,
                               bench=f"{stage}{n}", hardware=row["hardware"], gpus=gpus))
    return cases, skipped


def load_e2e_llamacpp(data_dir: Path) -> list[Case]:
    """measured/llamacpp_gpu_benchmarks.csv: single-GPU llama-bench rows (see :func:`llamacpp_selection`)."""
    return llamacpp_selection(data_dir)[0]


#: the end-to-end datasets (never fitted on: a check of the calibrated per-op model)
E2E_DATASETS = ("e2e-fp6llm", "e2e-flashllm", "e2e-llamacpp", "e2e-torchao", "e2e-gptfast", "e2e-trtllm")

#: dataset name -> loader, in report order
LOADERS: dict[str, Callable[[Path], list[Case]]] = {
    "vidur-gemm": load_vidur_gemm,
    "vidur-elementwise": load_vidur_elementwise,
    "vidur-allreduce": load_vidur_allreduce,
    "llmcompass-matmul": load_llmcompass_matmul,
    "llmcompass-softmax": load_llmcompass_softmax,
    "llmcompass-layernorm": load_llmcompass_layernorm,
    "llmcompass-gelu": load_llmcompass_gelu,
    "llmcompass-gpt3-layer": load_llmcompass_gpt3_layer,
    "llmcompass-allreduce": load_llmcompass_allreduce,
    "mamf": load_mamf,
    "flashattention-h100": load_flashattention_h100,
    "flashllm-kernels": load_flashllm_kernels,
    "e2e-fp6llm": load_e2e_fp6llm,
    "e2e-flashllm": load_e2e_flashllm,
    "e2e-llamacpp": load_e2e_llamacpp,
    "e2e-torchao": load_e2e_torchao,
    "e2e-gptfast": load_e2e_gptfast,
    "e2e-trtllm": load_e2e_trtllm,
}
#: per-op sets kept out of the joint per-device fit: the roofline calibration fits only attention_eta
#: on flashattention-h100's FA2 rows (validate/calibrate.py); FA3 rows remain a check; the tiled
#: tier's fit, benchmarks/fit_tiled.py, uses the FA2 rows for the legacy MMA path only.
#: flashllm-kernels' sparse rows (:data:`TECHNIQUE_CLASSES`) judge the technique kernels, whose
#: constants have their own fits (techniques/judge.py); its dense cuBLAS rows are fitted on
HELD_OUT_DATASETS = ("flashattention-h100",)
#: the per-op datasets (what calibration may fit on)
OP_DATASETS = tuple(n for n in LOADERS if n not in E2E_DATASETS and n not in HELD_OUT_DATASETS)


def load_cases(data_dir: str | Path | None = None, datasets: list[str] | tuple[str, ...] | None = None) -> list[Case]:
    """All cases of the named datasets (default: all) found under ``data_dir``.

    A dataset whose files are absent is skipped; an unknown dataset name is an error.
    """
    d = resolve_data_dir(data_dir).resolve()
    names = tuple(LOADERS) if datasets is None else tuple(datasets)
    unknown = [n for n in names if n not in LOADERS]
    if unknown:
        raise TapeoutError(f"unknown dataset(s) {unknown}; allowed: {', '.join(LOADERS)}", field="datasets")
    # cases are immutable: reuse them while no CSV under the directory changed
    stamp = tuple(sorted((str(p), p.stat().st_mtime_ns) for p in d.rglob("*.csv")))
    return list(_load(d, names, stamp))


@functools.lru_cache(maxsize=8)
def _load(d: Path, names: tuple[str, ...], stamp: tuple) -> tuple[Case, ...]:
    cases: list[Case] = []
    for name in names:
        try:
            cases += LOADERS[name](d)
        except FileNotFoundError:
            continue
    return tuple(cases)
