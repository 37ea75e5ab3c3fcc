"""MLPerf Inference v4.0 and v4.1 Offline results (MLCommons; typed, shipped: ``validate/published/mlperf.csv``):
the large-batch, maximum-throughput regime on H100, H200, GH200 and MI300X (Llama-2-70B, and Mixtral-8x7B's MoE),
priced by :func:`tapeout.simulate`; v4.0 and v4.1 ran the same NVIDIA configs on older and newer TensorRT-LLM (two software points on one setup),
and in v4.1 several submitters ran one device's config (H200: NVIDIA, Lenovo, GigaComputing; GH200 and H100: NVIDIA,
HPE; MI300X: AMD's three systems, Dell): independent repeats.

Rows priced: ``use`` = ``yes``. The others are typed with their reason (``use`` = ``no: ...``) and loaded by
no case. Mixtral-8x7B rows take their dataset's own mean prompt (:data:`MIXTRAL_INPUT_MEAN`), the GH200 rows the
catalog's ``gh200-144gb`` (the runs' 144 GB HBM3e part; ``gh200`` is the 96 GB HBM3 one).

A check, but for one row: ``python-scheduler``'s per-sequence host time (:mod:`tapeout.fit.frameworks`) is fitted
on AMD's 8xMI300X_2xEPYC-9374F vLLM row with SGLang's offline runs; every other row (the TensorRT-LLM ones, AMD's
other MI300X systems and Dell's) is read by no fit, and ``tapeout validate --cv`` scores the set with that field
refitted without it.

How a row becomes a case. In the Offline scenario LoadGen issues every sample of the run in one query; each
submitter's harness splits them over its replicas (one engine per tensor-parallel group: ``accelerators / tp``
of them), each an in-flight-batching engine holding at most the config's batch (TensorRT-LLM's
``gpu_batch_size``, vLLM's ``max_num_seqs``) running sequences. The result is the output tokens/s of the whole
run (``Tokens per second``; ``Samples per second`` beside it). So one case is one replica at saturation:
:func:`tapeout.simulate` with ``rate=inf`` (all requests at once), ``max_batch`` = the row's batch, continuous
batching, the row's formats and ``tp``, compared on :func:`~tapeout.validate.serving.saturated_output_rate`
(output tokens/s until the last request starts: the runs are 650-2,800 s of 34,320-1,119,360 samples, so the
drain tail a short simulation has is not in them) against the published tokens/s divided by the replicas.
A priced row's ``benchmark`` must have a citable mean prompt length (:data:`INPUT_MEANS`).

Why simulate and not :func:`tapeout.predict` at the batch: a static batch of equal sequences prefills them all,
then decodes at a shrinking-free batch; the engines here refill each finished slot with a new prompt, so every
iteration mixes prefill tokens with the decodes and the KV held per slot follows the length distribution. The
saturated simulation is the closer model; docs/calibration.md ("MLPerf Inference (a check)") reports both.

The workload: the benchmark's dataset (Llama-2-70B: OpenOrca as preprocessed for it, 24,576 samples, prompts of at
most 1,024 tokens; Mixtral-8x7B: 15,000 samples of OpenOrca, GSM8K and MBXP), taken as the ``sharegpt`` preset's
length pairs scaled to the dataset's mean prompt length
(:data:`INPUT_MEANS`) and the row's own mean output length (``Tokens per second / Samples per second``: the
tokens this system generated per sample, greedy to EOS). :data:`NUM_REQUESTS` requests, seed 0. Engine
settings the configs do not state are assumptions written in each row's notes (NVIDIA's v4.x KV-cache format; AMD's
``max_num_seqs`` 2048 is the harness default as shipped in Dell's copy of it), with TensorRT-LLM's guaranteed-no-evict KV scheduling (``kv_policy="reserve"``)
for NVIDIA and vLLM's preemption (``"paged"``) for AMD, and the stated KV memory fraction (0.90 NVIDIA,
0.99 AMD's ``gpu_memory_utilization``, taken as the KV fraction of the memory left). NVIDIA's rows run tapeout's
default framework profile (TensorRT-LLM's C++ batch manager), AMD's and Dell's vLLM 0.4.3 rows ``python-scheduler``
(:data:`FRAMEWORKS`: the V0 engine's per-sequence host work between steps; AMD ran ``--enforce-eager``, whose
launches the CPU issues ahead of a 70B model's long decode steps). op class = ``<engine>/<weights>``; Mixtral-8x7B rows run one replica per
GPU (TP1, as NVIDIA's configs state), so every expert sits on the replica's one GPU: no expert parallelism and no
collective in the step.
"""

from __future__ import annotations

import math
from pathlib import Path

from tapeout.errors import TapeoutError
from tapeout.validate.cases import PUBLISHED_DIR, Case, positive, read_dicts, scenario
from tapeout.validate.registry import END_TO_END, register

MLPERF_FILE = PUBLISHED_DIR / "mlperf.csv"

#: mean prompt length of the benchmark's 24,576 OpenOrca samples: the sum of ``tok_input_length`` over the
#: official pickle (open_orca_gpt4_tokenized_llama.sampled_24576.pkl.gz, sha256 ec34d70f...754c), 5,463,976
#: tokens (min 48, max 1021), as recorded by FlashLab-MBZUAI/HBFSim
#: validation/calibration/h100-llama2-70b-calibration-protocol.json (commit
#: 96cf1b37cd60e8fabb77967a591cf60edb8d1f23), ``workload_evidence.lengths_csv.input_tokens.sum``
INPUT_TOKENS_SUM = 5_463_976
NUM_SAMPLES = 24_576
INPUT_MEAN = INPUT_TOKENS_SUM / NUM_SAMPLES
#: mean prompt length of the Mixtral-8x7B benchmark's 15,000 samples (5,000 each of OpenOrca, GSM8K and MBXP; the
#: listing runs in three blocks of 5,000 with means 665.6, 415.4 and 201.2 tokens, which it does not name): the sum of the ``input_length`` column of the per-sample
#: length listing openshift-psap/performance-dashboard ``mlperf-data/summaries/mixtral-8x7b.csv`` (commit
#: 67033baeaac181a3a35641dd2b86a7cb22d856dd, 113,402 characters, 15,000 rows, min 35, max 1,948; read whole and
#: summed: docs/calibration.md). Its ``output_length`` column sums to 2,172,643 tokens, a mean of 144.84: the
#: reference ``tokens_per_sample`` 144.84 of mlcommons/inference ``language/mixtral-8x7b/README.md``, which is
#: what identifies the listing as that dataset
MIXTRAL_INPUT_TOKENS_SUM = 6_410_905
MIXTRAL_OUTPUT_TOKENS_SUM = 2_172_643
MIXTRAL_NUM_SAMPLES = 15_000
MIXTRAL_INPUT_MEAN = MIXTRAL_INPUT_TOKENS_SUM / MIXTRAL_NUM_SAMPLES
#: requests per simulated replica: enough for the saturated rate to settle (1% from 16,384 on the three rows)
NUM_REQUESTS = 4096
#: engine -> (simulate's kv_policy, KV fraction of the memory left): see the module docstring
ENGINES = {"tensorrt-llm": ("reserve", 0.90), "vllm": ("paged", 0.99)}
#: engine -> framework profile, where not the default: vLLM 0.4's V0 engine runs its Python scheduler between
#: decode steps (``python-scheduler``: the per-sequence host time; TensorRT-LLM's C++ batch manager does not)
FRAMEWORKS = {"vllm": "python-scheduler"}
#: benchmark -> its dataset's mean prompt length (tokens): only benchmarks with a citable one are priced
INPUT_MEANS = {"llama2-70b-99": INPUT_MEAN, "llama2-70b-99.9": INPUT_MEAN, "mixtral-8x7b": MIXTRAL_INPUT_MEAN}
COLUMNS = ("repo", "path", "commit", "printed", "system", "device", "accelerators", "engine", "settings", "model",
           "benchmark", "scenario", "weights", "activations", "kv_cache", "tp", "pp", "batch", "metric", "value",
           "unit", "samples_per_s", "use", "notes")
METRICS = ("output_tok_s",)
SCENARIOS = ("Offline",)


def _engine(text: str) -> str:
    key = text.split("(")[0].split()[0].strip().lower()
    if key not in ENGINES:
        raise TapeoutError(f"mlperf row engine {text!r}; allowed: {', '.join(ENGINES)}", field="engine")
    return key


def row_case(row: dict[str, str]) -> Case:
    """One typed row as a saturated-replica case (module docstring); a bad field is a one-line error naming it."""
    missing = [c for c in COLUMNS if row.get(c) is None]
    if missing:
        raise TapeoutError(f"mlperf row lacks {missing[0]!r}; allowed columns: {', '.join(COLUMNS)}", field=missing[0])
    for field, allowed in (("metric", METRICS), ("scenario", SCENARIOS), ("benchmark", tuple(INPUT_MEANS))):
        if row[field].strip() not in allowed:
            raise TapeoutError(f"mlperf row {field} {row[field]!r}; allowed: {', '.join(allowed)}", field=field)
    engine = _engine(row["engine"])
    tokens_s, samples_s = positive(row, "value", "mlperf"), positive(row, "samples_per_s", "mlperf")
    accel, tp, pp, batch = (positive(row, f, "mlperf", int) for f in ("accelerators", "tp", "pp", "batch"))
    if accel % (tp * pp):
        raise TapeoutError(f"mlperf row accelerators {accel} not a multiple of tp x pp = {tp * pp}",
                           field="accelerators")
    replicas = accel // (tp * pp)
    policy, kv_fraction = ENGINES[engine]
    output_mean = tokens_s / samples_s
    input_mean = INPUT_MEANS[row["benchmark"].strip()]
    w = row["weights"].strip()
    sc = scenario(model=row["model"].strip(), tp=tp, pp=pp, weights=w, activations=row["activations"].strip(),
                  kv_cache=row["kv_cache"].strip(), max_batch=batch, scheduler="continuous", kv_policy=policy,
                  kv_fraction=kv_fraction, rate=math.inf, num_requests=NUM_REQUESTS, seed=0,
                  workload=f"sharegpt:input_mean={input_mean:.1f},output_mean={output_mean:.1f}",
                  **({"framework": FRAMEWORKS[engine]} if engine in FRAMEWORKS else {}))
    per_replica = tokens_s / replicas
    info = {**dict(sc), "num_gpus": tp * pp, "published": per_replica, "unit": "output tokens/s per replica",
            "system": row["system"], "accelerators": accel, "replicas": replicas, "engine": row["engine"],
            "benchmark": row["benchmark"], "round": row["repo"].strip().rsplit("_", 1)[-1],
            "system_tok_s": tokens_s, "output_mean": output_mean,
            "source": f"{row['repo']} {row['path']} ({row['commit']})"}
    return Case(dataset="e2e-mlperf", op_class=f"{engine}/{w}", device=row["device"].strip(), ops=(),
                measured_s=1.0 / per_replica, info=tuple(info.items()), scenario=sc,
                quantity="serving_saturated_output_tok_s")


def used(row: dict[str, str]) -> bool:
    """The row is priced (``use`` = ``yes``); the others are typed with their reason (``no: ...``)."""
    return (row.get("use") or "").strip() == "yes"


@register("e2e-mlperf", kind=END_TO_END, shipped=True,
          description="MLPerf Inference v4.0 / v4.1 Offline, Llama-2-70B and Mixtral-8x7B: saturated in-flight "
                      "batching at batch 806-3,072 per replica, H100 / H200 / GH200 (TensorRT-LLM fp8) and MI300X "
                      "(vLLM fp8) (simulated)")
def load_e2e_mlperf(data_dir: Path) -> list[Case]:
    """validate/published/mlperf.csv: one case per row with ``use`` = ``yes`` (module docstring). ``data_dir``
    is unused."""
    return [row_case(row) for row in read_dicts(MLPERF_FILE) if used(row)]


__all__ = ["INPUT_MEAN", "INPUT_MEANS", "MIXTRAL_INPUT_MEAN", "MLPERF_FILE", "NUM_REQUESTS", "load_e2e_mlperf", "row_case", "used"]
