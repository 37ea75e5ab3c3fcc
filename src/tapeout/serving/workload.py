"""Request traffic: arrival times, prompt lengths and output lengths, seeded and deterministic.

Lengths come from a fixed value, a distribution (constant, uniform, normal, lognormal, or empirical from a
CSV column) or a JSONL trace (one ``{"arrival_s", "input_len", "output_len"}`` per line). Arrivals are
open-loop Poisson or gamma at ``rate`` requests/s (``rate=inf``: all at once, the offline benchmarks'
mode; gamma with ``burstiness`` = shape k, coefficient of variation 1/sqrt(k), k = 1 is Poisson, as vLLM's
``benchmark_serving.py --burstiness``), optionally capped at ``concurrency`` requests in flight, or closed
loop (``concurrency`` with ``rate=inf``: C clients, each sends its next request when its previous one
completes, as LMDeploy's ``profile_throughput.py`` and vLLM's ``--max-concurrency`` do). As in vLLM's
client, the first request leaves at t = 0 and request i + 1 leaves one inter-arrival time after request i; the
drawn gaps are scaled so the run offers exactly ``rate`` (n requests span (n - 1) / rate: :func:`arrivals`).

The ``sharegpt`` preset draws (prompt, completion) pairs of the ShareGPT data set as the benchmark clients
sample it (LMDeploy's ``profile_throughput.py``, vLLM's ``benchmark_serving.py``: the first turn of each
conversation of ``ShareGPT_V3_unfiltered_cleaned_split.json`` and its answer, the answer's token count as
the output length, kept when the prompt has 4..1024 tokens, the completion >= 4 and both <= 2048), with
replacement from :data:`SHAREGPT_FILE`: the Llama-2 token counts of 17,400 such pairs (see
``docs/serving.md``, *ShareGPT lengths*). Drawing pairs keeps their correlation (long prompts get shorter
answers) and the spread of the data set. ``sharegpt:input_mean=..,output_mean=..`` scales the prompt and
completion counts (another tokenizer's) so the filtered means match; the validation sources read those means
from their own runs.
"""

from __future__ import annotations

import csv
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tapeout.errors import TapeoutError

DISTRIBUTIONS = ("constant", "uniform", "normal", "lognormal", "empirical")
ARRIVALS = ("poisson", "gamma")
PRESETS = ("sharegpt",)
SAMPLE_TRACE = Path(__file__).with_name("data") / "sample_trace.jsonl"

#: Llama-2 token counts (BOS included, as the clients count them) of the first turn and its answer of the first
#: 17,400 two-turn conversations of ShareGPT_V3_unfiltered_cleaned_split.json, unfiltered (docs/serving.md)
SHAREGPT_FILE = Path(__file__).with_name("data") / "sharegpt_llama2_lengths.csv"
#: the clients' ShareGPT filter (LMDeploy's profile_throughput.py ``sample_requests``, vLLM's benchmark_serving.py)
SHAREGPT_FILTER = {"min_input": 4, "max_input": 1024, "min_output": 4, "max_total": 2048}


class LengthDist(BaseModel):
    """A distribution of token counts (rounded to integers, clipped to [``min``, ``max``])."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dist: Literal["constant", "uniform", "normal", "lognormal", "empirical"] = "constant"
    value: int | None = Field(None, gt=0, description="constant: the length")
    low: int | None = Field(None, gt=0, description="uniform: smallest length")
    high: int | None = Field(None, gt=0, description="uniform: largest length")
    mean: float | None = Field(None, gt=0, description="normal, lognormal: mean length")
    std: float | None = Field(None, gt=0, description="normal: standard deviation")
    sigma: float | None = Field(None, gt=0, description="lognormal: sigma of the underlying normal")
    path: str | None = Field(None, description="empirical: CSV file of lengths")
    column: str | None = Field(None, description="empirical: the CSV column (default: the first)")
    min: int = Field(1, gt=0, description="smallest length kept (draws below are clipped)")
    max: int | None = Field(None, gt=0, description="largest length kept (draws above are clipped)")

    @model_validator(mode="after")
    def _needs(self) -> "LengthDist":
        need = {"constant": ("value",), "uniform": ("low", "high"), "normal": ("mean", "std"),
                "lognormal": ("mean", "sigma"), "empirical": ("path",)}[self.dist]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"{self.dist} needs {', '.join(missing)}")
        if self.dist == "uniform" and self.low > self.high:  # type: ignore[operator]
            raise ValueError("uniform needs low <= high")
        if self.max is not None and self.max < self.min:
            raise ValueError("max must be >= min")
        return self

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        d = self.dist
        if d == "constant":
            x = np.full(n, float(self.value))  # type: ignore[arg-type]
        elif d == "uniform":
            x = rng.integers(self.low, self.high + 1, size=n).astype(float)  # type: ignore[operator]
        elif d == "normal":
            x = rng.normal(self.mean, self.std, size=n)
        elif d == "lognormal":
            s = float(self.sigma)  # type: ignore[arg-type]
            x = rng.lognormal(math.log(float(self.mean)) - s * s / 2, s, size=n)  # type: ignore[arg-type]
        else:
            values = read_lengths(Path(self.path), self.column)  # type: ignore[arg-type]
            x = values[rng.integers(0, values.size, size=n)].astype(float)
        x = np.maximum(np.rint(x), self.min)
        if self.max is not None:
            x = np.minimum(x, self.max)
        return x.astype(np.int64)


def read_lengths(path: Path, column: str | None = None) -> np.ndarray:
    """Positive integer lengths from a CSV column (header row; default: the first column)."""
    if not path.is_file():
        raise TapeoutError(f"length file {str(path)!r} does not exist", field="path")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise TapeoutError(f"{path.name}: no rows", field="path")
    col = column or next(iter(rows[0]))
    if col not in rows[0]:
        raise TapeoutError(f"{path.name}: no column {col!r}; allowed: {', '.join(rows[0])}", field="column")
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            v = float(r[col])
        except (TypeError, ValueError):
            raise TapeoutError(f"{path.name} line {i}: {col}={r[col]!r} is not a number", field="column") from None
        if not math.isfinite(v) or v < 1:
            raise TapeoutError(f"{path.name} line {i}: {col}={v} must be a finite length >= 1", field="column")
        out.append(round(v))
    return np.array(out, dtype=np.int64)


def parse_length(value: Any, field: str) -> LengthDist:
    """A length spec: an int, a mapping of :class:`LengthDist` fields, a ``LengthDist``, or text: ``512``,
    ``lognormal:mean=250,sigma=1,max=1024``, ``uniform:low=100,high=400``, ``empirical:path=lens.csv``."""
    from tapeout import specio

    if isinstance(value, LengthDist):
        return value
    if isinstance(value, bool):
        raise TapeoutError(f"{value!r} is not a length", field=field)
    if isinstance(value, (int, np.integer)):
        if value < 1:
            raise TapeoutError(f"{value} must be >= 1", field=field)
        return LengthDist(dist="constant", value=int(value))
    if isinstance(value, float):
        if not (math.isfinite(value) and value >= 1 and value == int(value)):
            raise TapeoutError(f"{value!r}: allowed an integer >= 1 or a distribution", field=field)
        return LengthDist(dist="constant", value=int(value))
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return parse_length(int(text), field)
        kind, _, rest = text.partition(":")
        if kind not in DISTRIBUTIONS:
            raise TapeoutError(f"unknown length {text!r}; allowed: an integer or {', '.join(DISTRIBUTIONS)}"
                               ":key=value,...", field=field)
        mapping: dict[str, Any] = {"dist": kind}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            k, eq, v = part.partition("=")
            if not eq:
                raise TapeoutError(f"{part!r} in {text!r}: expected key=value", field=field)
            mapping[k.strip()] = v.strip()
        value = mapping
    if isinstance(value, dict):
        return specio.build(LengthDist, value, origin=field)
    raise TapeoutError(f"{value!r}: allowed an integer, a distribution mapping or text", field=field)


@dataclass(frozen=True)
class Requests:
    """Requests in the order the client sends them: scheduled send times (``inf`` rate: 0) and lengths."""

    arrival_s: np.ndarray
    input_len: np.ndarray
    output_len: np.ndarray
    #: at most this many in flight (closed loop when all are scheduled at 0); None: no cap
    concurrency: int | None = None

    def __len__(self) -> int:
        return int(self.input_len.size)


def read_trace(path: str | Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(arrival_s, input_len, output_len) of a JSONL trace, sorted by arrival (stable)."""
    p = Path(path)
    if not p.is_file():
        raise TapeoutError(f"trace {str(p)!r} does not exist", field="trace")
    arr, inp, out = [], [], []
    with p.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TapeoutError(f"{p.name} line {i}: not JSON ({exc.msg})", field="trace") from None
            if not isinstance(d, dict) or not {"arrival_s", "input_len", "output_len"} <= set(d):
                raise TapeoutError(f"{p.name} line {i}: needs arrival_s, input_len and output_len", field="trace")
            a, n, m = d["arrival_s"], d["input_len"], d["output_len"]
            if not (isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) and a >= 0):
                raise TapeoutError(f"{p.name} line {i}: arrival_s={a!r} must be a finite number >= 0", field="trace")
            for k, v in (("input_len", n), ("output_len", m)):
                if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                    raise TapeoutError(f"{p.name} line {i}: {k}={v!r} must be an integer >= 1", field="trace")
            arr.append(float(a))
            inp.append(n)
            out.append(m)
            if limit is not None and len(arr) >= limit:
                break
    if not arr:
        raise TapeoutError(f"{p.name}: no requests", field="trace")
    order = np.argsort(np.array(arr), kind="stable")
    return (np.array(arr)[order], np.array(inp, dtype=np.int64)[order], np.array(out, dtype=np.int64)[order])


def sharegpt_lengths(rng: np.random.Generator, n: int, input_mean: float | None = None,
                     output_mean: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` ShareGPT (prompt, completion) pairs drawn with replacement from the clients' filtered sample.
    Given means (another tokenizer's counts) scale the prompt and completion counts so the filtered means
    match (:func:`_scales`)."""
    if (input_mean is None) != (output_mean is None):
        raise TapeoutError("sharegpt: give both input_mean and output_mean", field="workload")
    scales = (1.0, 1.0) if input_mean is None else _scales(float(input_mean), float(output_mean))  # type: ignore[arg-type]
    a, b = _filtered(*scales)
    pick = rng.integers(0, a.size, size=n)
    return a[pick], b[pick]


@functools.lru_cache(maxsize=1)
def _sharegpt_table() -> tuple[np.ndarray, np.ndarray]:
    t = np.loadtxt(SHAREGPT_FILE, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    return t[:, 0], t[:, 1]


def _filtered(input_scale: float, output_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The table's pairs scaled (rounded), kept by the clients' filter."""
    c = SHAREGPT_FILTER
    p, o = _sharegpt_table()
    a = np.rint(p * input_scale).astype(np.int64)
    b = np.rint(o * output_scale).astype(np.int64)
    keep = (a >= c["min_input"]) & (a <= c["max_input"]) & (b >= c["min_output"]) & (a + b <= c["max_total"])
    return a[keep], b[keep]


@functools.lru_cache(maxsize=16)
def _scales(input_mean: float, output_mean: float) -> tuple[float, float]:
    """Scales of the prompt and completion counts whose filtered pairs have these means (fixed-point
    iteration: deterministic); a TapeoutError when the filter cannot reach them (within 2%)."""
    si = so = 1.0
    for _ in range(30):
        a, b = _filtered(si, so)
        if a.size == 0:
            break
        si *= input_mean / a.mean()
        so *= output_mean / b.mean()
    a, b = _filtered(si, so)
    if a.size == 0 or abs(a.mean() / input_mean - 1) > 0.02 or abs(b.mean() / output_mean - 1) > 0.02:
        raise TapeoutError(f"sharegpt: input_mean={input_mean:g}, output_mean={output_mean:g} cannot be met under "
                           "the clients' filter (prompt <= 1024, prompt + completion <= 2048 tokens)",
                           field="workload")
    return si, so


def parse_preset(text: str) -> dict[str, float]:
    """``sharegpt`` or ``sharegpt:input_mean=300,output_mean=150`` -> the keyword arguments of
    :func:`sharegpt_lengths`."""
    name, _, rest = str(text).partition(":")
    if name not in PRESETS:
        raise TapeoutError(f"unknown workload {text!r}; allowed: {', '.join(PRESETS)} (optionally "
                           "sharegpt:input_mean=..,output_mean=..)", field="workload")
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        k, eq, v = part.partition("=")
        k = k.strip()
        try:
            x = float(v)
        except ValueError:
            x = float("nan")
        if not eq or k not in ("input_mean", "output_mean") or not (math.isfinite(x) and 4 <= x <= 1024):
            raise TapeoutError(f"{part!r} in {text!r}; allowed: input_mean=.., output_mean=.. (4 to 1024 tokens)",
                               field="workload")
        out[k] = x
    return out


def arrivals(rng: np.random.Generator, n: int, rate: float, arrival: str, burstiness: float) -> np.ndarray:
    """Send times of ``n`` requests at ``rate``/s: 0 for all when the rate is infinite; else the first at 0
    and exponential (Poisson) or gamma (shape ``burstiness``) gaps, scaled so their mean is exactly 1/rate: the
    run offers the rate asked for. An unscaled draw's span wanders by 1/sqrt(n - 1) (4.5 % at 500 requests;
    seed 0's 500 exponential gaps run 9.6 % long), which moves every light-load throughput by as much; the
    gaps' spread (the burstiness a queue sees) is the draw's."""
    if math.isinf(rate):
        return np.zeros(n)
    if arrival == "poisson":
        gaps = rng.exponential(1.0 / rate, size=n)
    else:
        gaps = rng.gamma(burstiness, 1.0 / (rate * burstiness), size=n)
    gaps[0] = 0.0
    if n > 1:
        gaps[1:] *= (n - 1) / (rate * gaps[1:].sum())
    return np.cumsum(gaps)


def make_requests(*, input_len: Any = 1024, output_len: Any = 128, num_requests: int | None = None,
                  rate: float = math.inf, arrival: str = "poisson", burstiness: float = 1.0,
                  concurrency: int | None = None, trace: str | Path | None = None, workload: str | None = None,
                  seed: int = 0) -> Requests:
    """The requests of a run (see the module docstring); every draw comes from ``numpy.random`` seeded
    with ``seed``."""
    from tapeout.serving.inputs import serving_inputs

    # checked as simulate's keywords (ServingInputs: one-line errors naming the field)
    t = serving_inputs({"input_len": input_len, "output_len": output_len, "num_requests": num_requests, "rate": rate,
                        "arrival": arrival, "burstiness": burstiness, "concurrency": concurrency, "trace": trace,
                        "workload": workload, "seed": seed})
    rng = np.random.default_rng(t.seed)
    if t.trace is not None:
        trace = t.trace
        if str(trace) == "sample" and not Path(trace).exists():
            trace = SAMPLE_TRACE
        a, i, o = read_trace(trace, t.num_requests)
        return Requests(a, i, o, t.concurrency)
    n = 1000 if t.num_requests is None else t.num_requests
    if t.workload is not None:
        i, o = sharegpt_lengths(rng, n, **parse_preset(t.workload))
    else:
        i = parse_length(t.input_len, "input_len").sample(rng, n)
        o = parse_length(t.output_len, "output_len").sample(rng, n)
    return Requests(arrivals(rng, n, t.rate, t.arrival, t.burstiness), i, o, t.concurrency)


__all__ = ["ARRIVALS", "DISTRIBUTIONS", "LengthDist", "PRESETS", "Requests", "SAMPLE_TRACE", "SHAREGPT_FILE", "arrivals",
           "make_requests", "parse_length", "read_trace", "sharegpt_lengths"]
