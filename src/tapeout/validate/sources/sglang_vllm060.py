"""SGLang v0.3.0 vs vLLM v0.6.0 (typed, shipped: ``validate/published/sglang_vllm060.csv``): the SGLang team's
online (Poisson at 4 and 8 requests/s: median E2E latency, TTFT, TPOT, ITL) and offline (5,000 requests at once:
request and output-token throughput) ShareGPT runs of Llama-3.1-8B-Instruct on one A100 80G and Llama-3.1-70B-Instruct
on four H100 80G, from sgl-project/sglang ``benchmark/benchmark_vllm_060/README.md`` (commit 120affb9; the index's
other copy, 5d2c83e6, prints the same numbers), each load point simulated with :func:`tapeout.simulate`
(:mod:`tapeout.validate.serving`). A check, never a fit: no fit set of :mod:`tapeout.fit` names
``e2e-serving-sglang``, so ``tapeout validate --cv`` scores it held out with parameters fitted elsewhere.

Rows priced: ``use`` = ``yes``; the others are typed with their reason (``no: ...``): vLLM's median TTFT and ITL
(``--num-scheduler-steps 10`` streams tokens ten decode steps at a time and takes new prompts only between such
runs: tapeout's engine schedules and streams every step) and the offline request throughputs (the same runs as
their output-token throughputs).

How a row becomes a case, and what is assumed (each assumption also in docs/calibration.md):

- **Devices.** "A100 80G" -> ``a100-sxm-80gb`` (the form factor is not stated; the team's earlier blog runs name
  "A100 80GB" and TP8 70B runs on the same kind of box, which needs SXM's NVLink), "4 x H100 80G" -> ``h100-sxm``
  (TP4 over NVLink). BF16 weights, activations and KV cache (the checkpoints' dtype, ``--dtype auto``).
- **Workload.** ``bench_serving --dataset-name sharegpt``: the first turn and its answer of ShareGPT conversations,
  shuffled with the client's default seed, the answer's token count as the output length (the server is asked for
  exactly that many tokens), kept by the client filter the ``sharegpt`` preset applies (bench_serving was derived
  from vLLM's ``benchmark_serving.py``; the index holds no v0.3.0 copy of it, so that filter is assumed). The
  counts are Llama-3.1's, not the preset's Llama-2 ones: the mean output length is read from the runs
  (:func:`output_mean`: output tokens/s / requests/s of the offline runs, 194.3, the same seeded draw for both
  engines); the mean prompt length is not printed, so prompts and answers are taken as shortened by the same
  tokenizer factor (:func:`workload`: the one scale that gives the preset's filtered answers that mean, 0.82).
  Poisson arrivals at the rate (bench_serving draws exponential gaps), the printed number of prompts, seed 0;
  offline = every request at once (``rate=inf``), scored on output tokens / duration, drain included, as printed.
- **SGLang 0.3.0** (``ServerArgs`` of the v0.3 era): ``chunked_prefill_size`` 8192 tokens a prefill batch,
  ``mem_fraction_static`` 0.88 at TP1 and 0.85 at TP4 (the README's note; ``--mem-frac 0.88`` in the 70B offline
  run), ``max_running_requests`` the request pool (2,048 here: ``min(max(pool tokens / context 131072 x 512,
  2048), 4096)``), a token-granular KV pool (``block_size`` 1), retract-and-recompute when it runs out
  (``kv_policy="paged"``). Its scheduler runs a prefill-only batch when prompts wait and decode steps otherwise (one
  per loop while streaming); tapeout's ``continuous`` scheduler fuses an iteration's prompts with the decode step,
  the closest it expresses (``prefill_pass="separate"`` would emit each first token one decode step later than
  SGLang's prefill does). ``--enable-torch-compile`` (8B) and its admission by estimated new-token ratio are not
  modelled.
- **vLLM 0.6.0**: ``max_num_seqs`` 256, ``block_size`` 16, ``gpu_memory_utilization`` 0.9, chunked prefill off
  (``max_model_len`` 4096 <= 32K), so ``max_num_batched_tokens`` = max(4096, 2048) = 4096, preemption by recompute
  (``paged``); its prefill-only steps are fused with the decodes as for SGLang.
- The engines' memory fractions are taken as the KV fraction of the memory left after weights and activations
  (``kv_fraction``), as ``e2e-mlperf`` does with its ``gpu_memory_utilization``.
- op class ``<engine>/<metric>``; TTFT/TPOT/E2E medians are over requests, the ITL median over all gaps
  (:data:`tapeout.validate.serving.QUANTITIES`).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import numpy as np

from tapeout import units
from tapeout.errors import TapeoutError
from tapeout.validate.cases import PUBLISHED_DIR, Case, positive, read_dicts, scenario
from tapeout.validate.registry import END_TO_END, register

SGLANG_FILE = PUBLISHED_DIR / "sglang_vllm060.csv"
COLUMNS = ("repo", "path", "commit", "table", "engine", "version", "device", "tp", "model", "weights", "activations",
           "kv_cache", "dataset", "num_prompts", "request_rate", "metric", "value", "unit", "launch", "bench", "use",
           "notes")
#: printed metric -> (quantity of :data:`tapeout.validate.serving.QUANTITIES`, unit as printed)
METRICS = {"median_e2e_latency": ("serving_e2e_p50_s", "ms"), "median_ttft": ("serving_ttft_p50_s", "ms"),
           "median_tpot": ("serving_tpot_p50_s", "ms"), "median_itl": ("serving_itl_p50_s", "ms"),
           "output_token_throughput": ("serving_output_tok_s", "tokens/s"),
           "request_throughput": ("serving_request_rps", "req/s")}
#: SGLang 0.3's default mem_fraction_static by TP (ServerArgs.__post_init__; the README's note: 0.88 TP1, 0.85 TP4)
SGLANG_MEM_FRACTION = {1: 0.88, 2: 0.87, 4: 0.85}
#: engine -> simulate's engine keywords (module docstring)
ENGINES: dict[str, dict[str, Any]] = {
    "sglang": {"scheduler": "continuous", "max_num_tokens": 8192, "max_batch": 2048, "block_size": 1,
               "kv_policy": "paged", "framework": "python-scheduler"},
    "vllm": {"scheduler": "continuous", "max_num_tokens": 4096, "max_batch": 256, "block_size": 16,
             "kv_policy": "paged", "kv_fraction": 0.9, "framework": "python-scheduler"},
}


def used(row: dict[str, str]) -> bool:
    """The row is priced (``use`` = ``yes``); the others are typed with their reason (``no: ...``)."""
    return (row.get("use") or "").strip() == "yes"


def _check(row: dict[str, str]) -> None:
    missing = [c for c in COLUMNS if row.get(c) is None]
    if missing:
        raise TapeoutError(f"sglang row lacks {missing[0]!r}; allowed columns: {', '.join(COLUMNS)}",
                           field=missing[0])
    for field, allowed in (("engine", tuple(ENGINES)), ("metric", tuple(METRICS)), ("dataset", ("sharegpt",))):
        if row[field].strip() not in allowed:
            raise TapeoutError(f"sglang row {field} {row[field]!r}; allowed: {', '.join(allowed)}", field=field)
    unit = METRICS[row["metric"].strip()][1]
    if row["unit"].strip() != unit:
        raise TapeoutError(f"sglang row unit {row['unit']!r} for {row['metric']}; allowed: {unit}", field="unit")


def _rate(row: dict[str, str]) -> float:
    return math.inf if row["request_rate"].strip().lower() == "inf" else positive(row, "request_rate", "sglang")


@functools.cache
def output_mean() -> float:
    """Generated tokens per request of the ShareGPT draw the runs share: the median over the offline runs of output
    tokens/s / requests/s (every run asks the server for the same seeded sample's answer lengths)."""
    runs: dict[tuple[str, str, str], dict[str, float]] = {}
    for row in read_dicts(SGLANG_FILE):
        if _rate(row) == math.inf:
            runs.setdefault((row["engine"], row["model"], row["device"]), {})[row["metric"]] = float(row["value"])
    ratios = [v["output_token_throughput"] / v["request_throughput"] for v in runs.values()
              if {"output_token_throughput", "request_throughput"} <= set(v)]
    if not ratios:
        raise TapeoutError("sglang rows: no offline run prints both throughputs; allowed: output_token_throughput "
                           "and request_throughput of one run", field="metric")
    return float(np.median(ratios))


@functools.cache
def workload() -> str:
    """The ``sharegpt`` preset at the runs' mean output length with prompts shortened by the same factor (module
    docstring): bisection on the one scale of both counts whose filtered answers have :func:`output_mean`."""
    from tapeout.serving.workload import _filtered

    target, lo, hi = output_mean(), 0.3, 1.5
    for _ in range(50):
        s = (lo + hi) / 2
        lo, hi = (s, hi) if _filtered(s, s)[1].mean() < target else (lo, s)
    prompts, _ = _filtered(lo, lo)
    return f"sharegpt:input_mean={prompts.mean():.1f},output_mean={target:.1f}"


def engine(row: dict[str, str], tp: int) -> dict[str, Any]:
    """simulate's engine keywords for the row's engine (``--mem-frac`` in its launch command overrides SGLang's
    default by TP)."""
    kw = dict(ENGINES[row["engine"].strip()])
    if row["engine"].strip() == "sglang":
        launch = row["launch"].split()
        given = launch[launch.index("--mem-frac") + 1] if "--mem-frac" in launch else None
        kw["kv_fraction"] = float(given) if given else SGLANG_MEM_FRACTION[tp]
    return kw


def row_case(row: dict[str, str]) -> Case:
    """One typed row as a simulated load point (module docstring); a bad field is a one-line error naming it."""
    _check(row)
    quantity, unit = METRICS[row["metric"].strip()]
    value = positive(row, "value", "sglang")
    tp, n = positive(row, "tp", "sglang", int), positive(row, "num_prompts", "sglang", int)
    rate = _rate(row)
    eng = row["engine"].strip()
    sc = scenario(model=row["model"].strip(), tp=tp, weights=row["weights"].strip(),
                  activations=row["activations"].strip(), kv_cache=row["kv_cache"].strip(), rate=rate,
                  num_requests=n, seed=0, workload=workload(), **engine(row, tp))
    measured = value * units.MS if unit == "ms" else 1.0 / value
    info = {**dict(sc), "num_gpus": tp, "published": value, "unit": unit, "metric": row["metric"].strip(),
            "engine": eng, "version": row["version"].strip(),
            "source": f"{row['repo']} {row['path']} ({row['commit']})"}
    return Case(dataset="e2e-serving-sglang", op_class=f"{eng}/{row['metric'].strip()}", device=row["device"].strip(),
                ops=(), measured_s=measured, info=tuple(info.items()), scenario=sc, quantity=quantity)


@register("e2e-serving-sglang", kind=END_TO_END, shipped=True,
          description="SGLang 0.3.0 vs vLLM 0.6.0 ShareGPT serving (sglang benchmark_vllm_060): median E2E, TTFT, "
                      "TPOT, ITL at 4 and 8 req/s and offline output tok/s, Llama-3.1 8B on A100, 70B TP4 on H100 "
                      "(simulated)")
def load_e2e_serving_sglang(data_dir: Path) -> list[Case]:
    """validate/published/sglang_vllm060.csv: one case per row with ``use`` = ``yes``. ``data_dir`` is unused."""
    return [row_case(row) for row in read_dicts(SGLANG_FILE) if used(row)]


__all__ = ["ENGINES", "METRICS", "SGLANG_FILE", "engine", "load_e2e_serving_sglang", "output_mean", "row_case", "used",
           "workload"]
