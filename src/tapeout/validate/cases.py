"""What every validation source shares: the :class:`Case`, the CSV readers and the end-to-end case helpers.

A :class:`Case` is one measurement: a device from the catalog, the op(s) that ran (built with the
conventions of :mod:`tapeout.workload.build`, via :mod:`tapeout.workload.standalone`), and the
measured time in seconds. End-to-end cases (datasets ``e2e-*``) are scenarios, not ops: a :class:`Case`
with ``scenario`` (the keyword arguments of :func:`tapeout.predict`) and ``quantity`` (which prediction
it is compared with). Their ``measured_s`` is the reciprocal of the published rate, so it is a time
like every other case (seconds per generated token and GPU, per decode step, per prompt token); the
published rate is kept in ``info`` and the runner reports MAPE on the rate itself.

The sources themselves (one module per source, each registering its datasets) are in
:mod:`tapeout.validate.sources`; the registry that lists and loads them is :mod:`tapeout.validate.registry`.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tapeout import units
from tapeout.errors import TapeoutError
from tapeout.workload.ops import Op, OpKind

#: confidence grades left out of error statistics (README of the reference data)
SKIP_CONFIDENCE = ("suspicious", "missing")

#: measurement harnesses: "kernel" = device-side timers (CUDA events, NCCL), no host term;
#: "llmcompass" = host wall clock around one PyTorch op + synchronize (host overhead per op)
KERNEL = "kernel"
LLMCOMPASS = "llmcompass"

#: typed published figures shipped with tapeout (facts with their source in each row)
PUBLISHED_DIR = Path(__file__).with_name("published")


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


# ---- CSV readers -------------------------------------------------------------------------------

def read_dicts(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def kernel_rows(path: Path, kernels: Iterable[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """(kernel, row) of the CSV at ``path``, each row's ``kernel`` column one of ``kernels`` (else a one-line error
    naming the file and the allowed ones)."""
    allowed = tuple(kernels)
    for row in read_dicts(path):
        kernel = row["kernel"].strip()
        if kernel not in allowed:
            raise TapeoutError(f"{path.name} kernel {kernel!r}; allowed: {', '.join(allowed)}", field="kernel")
        yield kernel, row


def read_rows(path: Path) -> list[list[str]]:
    """Header-less CSV rows (LLMCompass files), stripped, blank lines dropped."""
    with path.open(newline="", encoding="utf-8") as fh:
        return [[c.strip() for c in row] for row in csv.reader(fh) if any(c.strip() for c in row)]


def graded_out(row: dict[str, str]) -> bool:
    """The row's confidence is one of :data:`SKIP_CONFIDENCE` (left out of error statistics)."""
    conf = (row.get("confidence") or "").strip().lower()
    return any(conf.startswith(s) for s in SKIP_CONFIDENCE)


def kept(row: dict[str, str]) -> bool:
    """A row of the common schema that counts: graded in and with a finite, positive value."""
    if graded_out(row):
        return False
    v = (row.get("value") or "").strip()
    try:
        return math.isfinite(float(v)) and float(v) > 0
    except ValueError:
        return False


def kept_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a common-schema CSV that count (:func:`kept`)."""
    return [row for row in read_dicts(path) if kept(row)]


def to_seconds(value: float, unit: str) -> float:
    u = unit.strip().lower()
    scale = {"s": 1.0, "ms": units.MS, "us": units.US, "µs": units.US, "ns": 1e-9}.get(u)
    if scale is None:
        raise TapeoutError(f"unknown time unit {unit!r}", field="unit")
    return value * scale


def num(text: str) -> float:
    """'0.1900ms' -> 0.19, '101.7Tflops' -> 101.7, '1e-3' -> 0.001."""
    t = text.strip().lower()
    for suffix in ("ms", "tflops", "us", "s"):
        if t.endswith(suffix):
            t = t[: -len(suffix)]
            break
    return float(t)


def positive(row: dict[str, str], field: str, source: str, kind: type = float) -> Any:
    """``row[field]`` as a finite ``kind`` > 0, else a one-line error naming the source's field."""
    try:
        v = kind(row[field])
    except (TypeError, ValueError):
        raise TapeoutError(f"{source} row {field} {row[field]!r}; allowed: a positive number", field=field) from None
    if not (math.isfinite(v) and v > 0):
        raise TapeoutError(f"{source} row {field} {v}; allowed: a positive number", field=field)
    return v


def leading_int(text: str) -> int:
    """'64 (inferred)' -> 64, '512' -> 512."""
    m = re.match(r"\s*(\d+)", text or "")
    if m is None:
        raise ValueError(f"no number in {text!r}")
    return int(m.group(1))


def allreduce_cases(dataset: str, device: str, rows: Iterable[tuple[float, int, float]]) -> list[Case]:
    """All-reduce cases from (message bytes per rank, group size, seconds) rows."""
    from tapeout.workload.standalone import collective_op

    return [
        Case(dataset=dataset, op_class="allreduce", device=device,
             ops=(collective_op(OpKind.ALLREDUCE, nbytes, group),), measured_s=secs,
             info=(("bytes", int(nbytes)), ("group", group)))
        for nbytes, group, secs in rows
    ]


# ---- end-to-end cases --------------------------------------------------------------------------

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
    # latency of one whole generate call of a static batch (context phase + the decode steps): e2e_latency_s
    "e2e_s": "1/s",
    # one phase's rate per GPU (without pipeline stages: a tp group runs batch sequences, a data-parallel
    # attention device its own batch): decode tp x tpot_s / batch, prefill tp x ttft_s / (batch x input_len)
    "decode_gpu_s_per_token": "out tokens/GPU/s (decode)",
    "prefill_gpu_s_per_token": "prompt tokens/GPU/s (prefill)",
}

#: model names of the end-to-end sets -> catalog names
E2E_MODELS = {
    "opt-30b": "opt-30b", "opt-66b": "opt-66b", "opt-175b": "opt-175b",
    # FP6-LLM's "LLaMA-70B": taken as Llama-2-70B (the 70B LLaMA of its time, Jan 2024)
    "llama-70b": "llama-2-70b",
    "meta-llama-3-8b": "llama-3-8b", "meta-llama-3-70b": "llama-3-70b",
    "llama-2-7b": "llama-2-7b", "llama-2-70b": "llama-2-70b", "llama-3-8b": "llama-3-8b",
}


def scenario(**kw: Any) -> tuple[tuple[str, Any], ...]:
    """Keyword arguments of :func:`tapeout.predict` as the sorted pairs a :class:`Case` holds."""
    return tuple(sorted(kw.items()))


def e2e_case(dataset: str, op_class: str, device: str, sc: tuple[tuple[str, Any], ...], quantity: str,
             rate: float, num_gpus: int, row: dict[str, str], **info: Any) -> Case:
    facts = {**dict(sc), "num_gpus": num_gpus, "published": rate, "unit": E2E_QUANTITIES[quantity],
             "confidence": row.get("confidence", ""), **info}
    return Case(dataset=dataset, op_class=op_class, device=device, ops=(), measured_s=1.0 / rate,
                info=tuple(facts.items()), scenario=sc, quantity=quantity)


def e2e_model(name: str) -> str:
    key = name.strip().lower()
    if key not in E2E_MODELS:
        raise TapeoutError(f"cannot map model {name!r} to a catalog model", field="model")
    return E2E_MODELS[key]


def weight_format(text: str) -> str:
    """'fp6 e3m2' -> 'fp6_e3m2', 'fp16' -> 'fp16', 'fp16 + unstructured 80% sparsity (...)' -> 'fp16'."""
    return re.sub(r"\s+", "_", text.split("+")[0].split("(")[0].strip().lower())


__all__ = ["Case", "allreduce_cases", "E2E_MODELS", "E2E_QUANTITIES", "KERNEL", "LLMCOMPASS", "PUBLISHED_DIR", "SKIP_CONFIDENCE",
           "e2e_case", "e2e_model", "graded_out", "kept", "kept_rows", "leading_int", "num", "positive", "read_dicts", "read_rows",
           "scenario", "to_seconds", "weight_format"]
