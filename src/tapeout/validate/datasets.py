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
"""

from __future__ import annotations

import csv
import functools
import math
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

    @property
    def op(self) -> Op:
        return self.ops[0]

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

VIDUR_COMPUTE_DEVICES = {"a100": "a100-sxm-80gb", "h100": "h100-sxm", "a40": "a40"}
VIDUR_NETWORK_DEVICES = {
    "A100-80GB-SXM": "a100-sxm-80gb",
    "H100-SXM": "h100-sxm",
    "A100-80GB-PCIe": "a100-pcie-80gb",
    "H100-NVL": "h100-pcie",
}
#: what the data do not say about a device mapping (copied into calibration sources)
DEVICE_CAVEATS = {
    "a100-sxm-80gb": "vidur's 'a100' compute profile does not say SXM or PCIe (mapped to SXM)",
    "h100-sxm": "vidur's 'h100' compute profile does not say SXM or NVL (mapped to SXM)",
    "h100-pcie": "all-reduce rows are 4x H100 NVL with pairwise NVLink (vidur h100_pairwise_nvlink), "
                 "the nearest catalog entry",
    "a100-pcie-80gb": "all-reduce rows are Azure NC96ads_A100_v4 (4x A100 80GB PCIe, pairwise NVLink)",
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
}


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
