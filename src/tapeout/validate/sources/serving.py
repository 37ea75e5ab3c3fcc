"""Serving measurements (``measured/serving/serving_measurements.csv``, its README): TensorRT-LLM 0.14's
online-serving table and LMDeploy's request-throughput runs, as load points priced by :func:`tapeout.simulate`
(:mod:`tapeout.validate.serving`). One fit reads them: TensorRT-LLM 0.14's mean first tokens at 2 and 4
requests/s fit the default profile's prefill host gap together with TensorRT-LLM v0.5's first tokens
(:mod:`tapeout.fit.frameworks`); every other row is a check, and ``tapeout validate --cv`` scores the source
with the value refitted on v0.5's rows alone.

Engine settings the sources do not state are assumptions, written here and in docs/serving.md, never
tuned values:

- **TensorRT-LLM 0.14 online serving** (``e2e-serving-trt014``): in-flight batching without chunked
  context (``continuous``; chunked context is off by default in 0.14), trtllm-build's defaults
  ``max_batch_size`` 2048 and ``max_num_tokens`` 8192, the executor's default KV fraction 0.9 with
  64-token blocks and the guaranteed-no-evict scheduler (``kv_policy="reserve"``), BF16 weights,
  activations and KV cache, fused attention sharing K/V over GQA groups (XQA), residual adds fused into
  the norms. The table prints one length pair per row: 467/256 and 467/16 (one prompt length, round output
  counts: synthetic) are taken as fixed lengths; 202/214 as the means of ShareGPT-shaped lengths
  (:data:`TRT014_SHAREGPT`, ``workload="sharegpt:input_mean=202,output_mean=214"``): ShareGPT's first turns
  under Llama-3's tokenizer average 217 / 194 tokens in SGLang's published draw (``e2e-serving-sglang``), and at
  saturation the rows behave as varying lengths do (docs/calibration.md, "TensorRT-LLM 0.14's 202/214 rows").
  Poisson arrivals at the QPS, 500 requests, seed 0. The engine settings are the defaults of an engine built and served without options,
  read from the sources at :data:`TRT014_ENGINE` (audited 2026-12; docs/calibration.md, "TensorRT-LLM 0.14
  serving defaults"). At these rows only ``scheduler`` and ``max_num_tokens`` act: the KV pool never binds
  (at most 82% used, Llama-3.1-8B TP1 on an H100 at QPS inf) and 500 requests stay under ``max_batch``. Request throughput is printed rounded to 1 req/s and is left out; the token
  throughputs carry the achieved rate.
- **LMDeploy TurboMind v0.1.0a1 / v0.2.0** (``e2e-serving-lmdeploy``): closed loop at the concurrency,
  3000 ShareGPT requests (``workload="sharegpt:input_mean=..,output_mean=.."``: pairs of the ShareGPT
  token-count table the ``sharegpt`` preset ships, scaled to the mean lengths read from the runs' own token
  and request throughputs per model family, ``_lmdeploy_workloads``; for Llama-2 they equal the table's
  within 0.2%), the stated KV
  pool (``cache_max_entry_count`` blocks of 128 tokens) and ``max_batch_size``; prefill tokens per
  iteration ``max_context_token_num`` x ``session_len`` with ``session_len`` 4096 (not stated; Llama-2's
  context) plus the decodes; v0.1's context passes apart from its decode step (``prefill_pass="separate"``,
  read from its ``LlamaBatch::InternalThreadEntry``: :mod:`tapeout.serving.engine`), v0.2's one forward; FP16; TurboMind's own block scheduling (``kv_policy="turbomind"``: blocks as
  sequences grow, priority by arrival, the newest swapped out keeping their prefix's KV; read from its
  ``SequenceManager::Materialize``, :meth:`tapeout.serving.engine.Replica._materialize`).
  ``first_token_latency_min`` / ``_max`` (extremes of 3000 draws of prompts tapeout does not have) are
  left out.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from tapeout import units
from tapeout.validate.cases import Case, read_dicts
from tapeout.validate.registry import END_TO_END, register
from tapeout.validate.serving import QUANTITIES

SERVING_FILE = Path("measured") / "serving" / "serving_measurements.csv"

TRT014_METRICS = {"output_token_throughput": ("serving_output_tok_s", "output_tok_s"),
                  "total_token_throughput": ("serving_total_tok_s", "total_tok_s"),
                  "mean_ttft": ("serving_mean_ttft_s", "ttft_mean"),
                  "mean_itl": ("serving_mean_itl_s", "itl_mean")}
LMDEPLOY_METRICS = {"request_throughput": ("serving_request_rps", "request_rps"),
                    "output_token_throughput": ("serving_output_tok_s", "output_tok_s"),
                    "total_token_throughput": ("serving_total_tok_s", "total_tok_s"),
                    "first_token_latency_avg": ("serving_mean_ttft_s", "ttft_mean"),
                    "token_latency_p50": ("serving_itl_p50_s", "itl_p50"),
                    "token_latency_p75": ("serving_itl_p75_s", "itl_p75"),
                    "token_latency_p95": ("serving_itl_p95_s", "itl_p95"),
                    "token_latency_p99": ("serving_itl_p99_s", "itl_p99")}
#: TurboMind's session_len (not stated by the sources; Llama-2's 4096-token context)
LMDEPLOY_SESSION_LEN = 4096
#: TensorRT-LLM 0.14 behind Triton's tensorrtllm_backend with every option left at its default; sources:
#: - max_batch 2048: NVIDIA/TensorRT-LLM docs/source/release-notes.md (001eaecea63dd6bdbfd02aed1bf8dc7fad567bd0),
#:   "Release 0.14.0 / API Changes: The default max_batch_size of the trtllm-build command is set to 2048";
#:   tensorrt_llm/commands/build.py takes ``--max_batch_size`` / ``--max_num_tokens`` defaults from BuildConfig
#:   (tensorrt_llm/builder.py, a later copy, 008b2b8d23af95e4e19fa6f354f9c5f6349b2bfc: 2048 / 8192, max_input_len
#:   1024 > the 467-token prompts).
#: - max_num_tokens 8192: the same release notes, "Release 0.11.0: max_num_tokens in trtllm-build command is
#:   switched to 8192 by default" (no later change through 0.14).
#: - scheduler "continuous" (no chunked context): triton-inference-server/tensorrtllm_backend
#:   inflight_batcher_llm/src/model_instance_state.cc (0677fdc689d29cca188e505d746b784f5f388b33, the executor
#:   backend of the 0.12-0.14 layout; the index holds no copy at the v0.14.0 tag): ``enable_chunked_context``
#:   unset -> false; chunked context became TensorRT-LLM's default only in 0.16.0 (release notes above).
#: - kv_policy "reserve": the same file, ``batch_scheduler_policy`` unset -> kGUARANTEED_NO_EVICT.
#: - kv_fraction 0.9: the same file, ``kv_cache_free_gpu_mem_fraction`` unset -> the executor's 0.9 (the
#:   config.pbtxt template, all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt, leaves it a placeholder);
#:   ``max_tokens_in_paged_kv_cache`` unset -> no cap; ``enable_kv_cache_reuse`` unset -> false.
#: - block_size 64: trtllm-build's ``--tokens_per_block`` is PluginConfig's default, 64 in the 0.11-era
#:   tensorrt_llm/plugin/plugin.py and 32 in later copies (those with the fp4 and pp_reduce_scatter options);
#:   the 0.12-0.14 copies are not in the index. Not acting here: the pool never fills, and 32 gives the same
#:   predictions to the last digit (tests/test_serving.py pins that).
TRT014_ENGINE = {"scheduler": "continuous", "max_batch": 2048, "max_num_tokens": 8192, "kv_fraction": 0.9,
                 "block_size": 64, "kv_policy": "reserve", "fuse_residual_norm": True}


def _seconds(value: float, unit: str) -> float:
    return value * {"ms": units.MS, "s": 1.0}[unit.strip()]


def _case(dataset: str, op_class: str, device: str, sc: tuple[tuple[str, Any], ...], quantity: str, value: float,
          unit: str, row: dict[str, str], **extra: Any) -> Case:
    kind = QUANTITIES[quantity][0]
    measured = 1.0 / value if kind == "rate" else _seconds(value, unit)
    info = {**dict(sc), "num_gpus": int(row.get("num_gpus") or 1), "published": value, "unit": unit,
            "row_id": row["row_id"], "metric": row["metric"], **extra}
    return Case(dataset=dataset, op_class=op_class, device=device, ops=(), measured_s=measured,
                info=tuple(info.items()), scenario=sc, quantity=quantity)


def _rows(data_dir: Path, prefix: str) -> list[dict[str, str]]:
    return [r for r in read_dicts(data_dir / SERVING_FILE) if r["row_id"].startswith(prefix)]


def _cases(data_dir: Path, dataset: str, prefix: str, metrics: dict[str, tuple[str, str]],
           scenario_of) -> list[Case]:  # noqa: ANN001 - scenario_of(row) -> (simulate keyword arguments, extra info)
    """One case per row of ``prefix`` whose metric is in ``metrics``: the row's load point as simulate's
    keyword arguments (model, tp and formats from the row, the rest from ``scenario_of``)."""
    cases = []
    for row in _rows(data_dir, prefix):
        m = metrics.get(row["metric"])
        if m is None:
            continue
        quantity, op_class = m
        kw, extra = scenario_of(row)
        sc = tuple(sorted({
            "model": row["model"].strip(), "tp": int(row["tp"]), "weights": row["weights"].strip() or "fp16",
            "activations": row["activations"].strip() or "fp16", "kv_cache": row["kv_cache"].strip() or "fp16",
            "num_requests": int(row["num_prompts"]), "seed": 0, **kw}.items()))
        cases.append(_case(dataset, op_class, row["device"].strip(), sc, quantity, float(row["value"]),
                           row["unit"], row, **extra))
    return cases


#: TensorRT-LLM 0.14's length pairs taken as the means of ShareGPT-shaped lengths, not fixed lengths (module docstring)
TRT014_SHAREGPT = {(202, 214)}


def _trt014(row: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    rate = row["request_rate"].strip().lower()
    i, o = int(row["input_len"]), int(row["output_len"])
    lengths = ({"workload": f"sharegpt:input_mean={i},output_mean={o}"} if (i, o) in TRT014_SHAREGPT
               else {"input_len": i, "output_len": o})
    return {**lengths, "rate": math.inf if rate == "inf" else float(rate), **TRT014_ENGINE}, {}


@register("e2e-serving-trt014", kind=END_TO_END, files=(str(SERVING_FILE),),
          description="TensorRT-LLM 0.14 online serving: TTFT, ITL, throughput vs request rate, Llama-3.1 8B/70B, "
                      "H100/H200 (simulated)")
def load_e2e_serving_trt014(data_dir: Path) -> list[Case]:
    """TensorRT-LLM 0.14's online-serving table: 72 load points (Llama-3.1 8B TP1 and 70B TP4 on H100 SXM and
    H200; three length pairs; QPS 2..32 and inf), scored on output and total token throughput, mean TTFT and
    mean ITL. Engine assumptions: see the module docstring. (The source prints BF16 for every format.)"""
    return _cases(data_dir, "e2e-serving-trt014", "trt014-", TRT014_METRICS, _trt014)


def _lmdeploy_engine(settings: str, max_batch: int, version: str) -> dict[str, Any]:
    """v0.1 runs each iteration's prefill as context passes of at most ``max_context_token_num`` x ``session_len``
    tokens apart from the decode step (``prefill_pass="separate"``); v0.2 one forward over both, its prefill
    bounded by the same product (the iteration's tokens: that plus the decodes)."""
    blocks = re.search(r"cache_max_entry_count=(\d+)", settings)
    ctx = re.search(r"max_context_token_num=(\d+)", settings)
    if blocks is None or ctx is None:
        raise ValueError(f"engine settings without cache_max_entry_count / max_context_token_num: {settings[:80]}")
    prefill = int(ctx.group(1)) * LMDEPLOY_SESSION_LEN
    separate = version == "v0.1"
    return {"kv_tokens": int(blocks.group(1)) * 128, "block_size": 128, "max_batch": max_batch,
            "max_num_tokens": prefill if separate else prefill + max_batch, "scheduler": "continuous",
            "kv_policy": "turbomind", "prefill_pass": "separate" if separate else "fused"}


def _lmdeploy_workloads(data_dir: Path) -> dict[str, str]:
    """Per model, the ShareGPT preset at the sample's mean lengths, read from the runs themselves: a run's
    generated tokens per request = output tok/s / request/s, its prompt tokens = (total - output) tok/s /
    request/s; the median over the runs of the model's family (the sizes of a family share its tokenizer and
    the client samples the same seeded prompts, so they see the same lengths)."""
    runs: dict[tuple[str, str, str], dict[str, float]] = {}
    for row in _rows(data_dir, "lmd"):
        key = (row["model"].strip(), row["row_id"][:6], row["concurrency"])
        runs.setdefault(key, {})[row["metric"]] = float(row["value"])
    per_family: dict[str, list[tuple[float, float]]] = {}
    for (model, _, _), v in runs.items():
        rps, out, tot = (v.get(k) for k in ("request_throughput", "output_token_throughput", "total_token_throughput"))
        if rps and out and tot:
            per_family.setdefault(_family(model), []).append(((tot - out) / rps, out / rps))
    means = {f: tuple(float(np.median([x[i] for x in xs])) for i in (0, 1)) for f, xs in per_family.items()}
    return {m: "sharegpt:input_mean={:.1f},output_mean={:.1f}".format(*means[_family(m)])
            for (m, _, _) in runs}


def _family(model: str) -> str:
    """llama-2-70b -> llama-2: the sizes of one family (one tokenizer)."""
    return re.sub(r"-\d+(\.\d+)?b$", "", model)


def _lmdeploy(workloads: dict[str, str], row: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    version = "v0.1" if row["row_id"].startswith("lmd010") else "v0.2"
    kw = {"workload": workloads[row["model"].strip()], "concurrency": int(row["concurrency"]),
          **_lmdeploy_engine(row["engine_settings"], int(row["max_batch"]), version)}
    return kw, {"version": version}


@register("e2e-serving-lmdeploy", kind=END_TO_END, files=(str(SERVING_FILE),),
          description="LMDeploy TurboMind v0.1/v0.2 closed-loop request throughput, first-token and token "
                      "latencies, A100 (simulated)")
def load_e2e_serving_lmdeploy(data_dir: Path) -> list[Case]:
    """LMDeploy TurboMind's request-throughput runs (v0.1.0a1 and v0.2.0 on A100 80GB; Llama-2 7B/13B/70B,
    InternLM-20B): closed loop at the concurrency, 3000 ShareGPT prompts; scored on request, output and total
    throughput, mean first-token latency and (v0.2.0) the pooled token-latency percentiles."""
    workloads = _lmdeploy_workloads(data_dir)
    return _cases(data_dir, "e2e-serving-lmdeploy", "lmd", LMDEPLOY_METRICS,
                  lambda row: _lmdeploy(workloads, row))


__all__ = ["load_e2e_serving_lmdeploy", "load_e2e_serving_trt014"]
