"""The serving keywords, each declared once (type, default, allowed values, help, validation).

- :class:`ServingInputs`: :func:`tapeout.simulate`'s own keywords (engine, cluster, traffic, SLOs), in the order
  ``SimResult.to_dict()["inputs"]`` reports them. :func:`tapeout.simulate`'s signature (with
  :class:`~tapeout.workload.scenario.PredictInputs`' scenario keywords), the ``tapeout simulate`` options
  (:func:`tapeout.clicommand.options_from`), the web API's request body (:func:`tapeout.web.schema.request_model`
  reads the signature) and the JSON ``inputs`` (:meth:`ServingInputs.ran`) come from its fields.
- :class:`CapacityInputs`: ``tapeout capacity``'s: the SLO target and the search (:class:`SloTarget`, the
  devices, the tp degrees and max batch sizes tried), then :class:`ServingInputs`' fields but those the search
  sets itself (:data:`SEARCHED`) and ``max_batch`` (it tries ``max_batches``).
- :func:`engine_fields`: :class:`ServingInputs`' fields for another model, as the ``[serving]`` table of an
  explore space (:class:`tapeout.explore.space.Serving`) takes them. Each field's checks travel in its type
  (``Annotated`` validators), so a copied field validates as the original.

A bad value is a one-line :class:`~tapeout.errors.TapeoutError` naming the field, the value and what is allowed
(:func:`serving_inputs`, :func:`capacity_inputs`).
"""

from __future__ import annotations

import copy
import math
import numbers
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_serializer, model_validator
from pydantic.fields import FieldInfo

from tapeout import specio
from tapeout.serving.workload import ARRIVALS, PRESETS, LengthDist, parse_length, parse_preset
from tapeout.workload.scenario import PredictInputs

Scheduler = Literal["static", "continuous", "chunked"]
KvPolicy = Literal["paged", "reserve", "turbomind"]
PrefillPass = Literal["fused", "separate", "alone"]
Router = Literal["round_robin", "least_tokens"]
Arrival = Literal["poisson", "gamma"]
#: the names each choice allows (engine.SCHEDULERS, engine.KV_POLICIES, engine.PREFILL_PASSES and workload.ARRIVALS
#: are the engine's and the request generator's own copies: a test keeps them equal)
SCHEDULERS: tuple[str, ...] = typing.get_args(Scheduler)
KV_POLICIES: tuple[str, ...] = typing.get_args(KvPolicy)
PREFILL_PASSES: tuple[str, ...] = typing.get_args(PrefillPass)
ROUTERS: tuple[str, ...] = typing.get_args(Router)


# ---- the checks, as types (they travel with a copied field) -------------------------------------------------
def _one_of(allowed: tuple[str, ...]) -> BeforeValidator:
    def check(v: Any) -> Any:
        if v not in allowed or not isinstance(v, str):
            raise ValueError(f"unknown {v!r}; allowed: {', '.join(allowed)}")
        return v
    return BeforeValidator(check)


def _count(lo: int, none: bool = False) -> BeforeValidator:
    """An integer >= ``lo`` given as an integer (Python or numpy; never a bool, a float or text), or None."""
    def check(v: Any) -> Any:
        if v is None and none:
            return v
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
            raise ValueError(f"got {v!r}; allowed: an integer >= {lo}")
        return int(v)
    return BeforeValidator(check)


def _bool(v: Any) -> Any:
    if not isinstance(v, bool):  # exact="no" or 1 is a mistake, not a truth value
        raise ValueError(f"got {v!r}; allowed: true or false")
    return v


def _positive(what: str = "number") -> BeforeValidator:
    """A finite number > 0 (never a bool or text), or None."""
    def check(v: Any) -> Any:
        if v is None:
            return v
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (math.isfinite(v) and v > 0):
            raise ValueError(f"got {v!r}; allowed: a finite {what} > 0")
        return float(v)
    return BeforeValidator(check)


def _percentile(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 < v <= 100:
        raise ValueError(f"got {v!r}; allowed: a number in (0, 100]")
    return float(v)


def _rate(v: Any) -> Any:
    """Requests/s: a number > 0, or inf (also as text: ``"inf"``, as the command line and JSON give it)."""
    if v is None:
        return v
    x = v
    if isinstance(v, str):
        t = v.strip().lower()
        try:
            x = math.inf if t in ("inf", "infinity") else float(t)
        except ValueError:
            raise ValueError(f"{v!r} is not a number; allowed: a number > 0 or inf") from None
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or math.isnan(x) or x <= 0:
        raise ValueError(f"got {v!r}; allowed: a number > 0 or inf")
    return float(x)


def _length(v: Any, field: str) -> Any:
    """A length spec (:func:`tapeout.serving.workload.parse_length`), checked and kept as given (digits as an int)."""
    if v is None:
        return v
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v.strip())
    elif isinstance(v, float) and v.is_integer():
        v = int(v)
    parse_length(v, field)  # raises a one-line error naming the field
    return v


def _preset(v: Any) -> Any:
    if v is not None:
        parse_preset(v)
    return v


#: an integer >= 1; a finite number > 0 or None (checked as the fields below)
Count = Annotated[int, _count(1)]
PositiveNumber = Annotated[float | None, _positive()]
Length = Annotated[int | str | dict[str, Any] | LengthDist, BeforeValidator(lambda v, info: _length(v, info.field_name))]
Seconds = Annotated[float | None, _positive("number of seconds")]


class _Inputs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class ServingInputs(_Inputs):
    """:func:`tapeout.simulate`'s own keywords: the engine, the cluster, the traffic and the SLOs."""

    # ---- the engine ---------------------------------------------------------------------------------------
    scheduler: Annotated[Scheduler, _one_of(SCHEDULERS)] = Field("continuous", description=(
        "static (whole batches) | continuous (iteration-level batching) | chunked (chunked prefill)"))
    max_batch: Annotated[int, _count(1)] = Field(256, description="running requests at most")
    max_num_tokens: Annotated[int | None, _count(1, none=True)] = Field(None, description=(
        "tokens per iteration (default 8192 continuous, 2048 chunked)"))
    kv_tokens: Annotated[int | None, _count(1, none=True)] = Field(None, description=(
        "KV pool in tokens (instead of kv-fraction)"))
    block_size: Annotated[int, _count(1)] = Field(16, description="tokens per KV block")
    kv_policy: Annotated[KvPolicy, _one_of(KV_POLICIES)] = Field("reserve", description=(
        "reserve (a request's final context at admission, never preempted) | paged (blocks as tokens come, "
        "preemption by recompute) | turbomind (LMDeploy TurboMind's: priority by arrival, the newest swapped out "
        "keeping their prefix's KV)"))
    prefill_pass: Annotated[PrefillPass, _one_of(PREFILL_PASSES)] = Field("fused", description=(
        "fused (prefill chunks and the decode step in one forward pass) | separate (LMDeploy TurboMind v0.1's: "
        "context passes of at most max-num-tokens tokens, then a decode step that also emits their first tokens) | "
        "alone (vLLM V0's and SGLang's: an iteration admitting prompts runs their prefill only, the running requests "
        "wait for the next step)"))
    # ---- the cluster --------------------------------------------------------------------------------------
    replicas: Annotated[int, _count(1)] = Field(1, description="engine replicas behind the router")
    router: Annotated[Router, _one_of(ROUTERS)] = Field("round_robin", description=(
        "round_robin | least_tokens (fewest outstanding prompt + output tokens)"))
    prefill_replicas: Annotated[int, _count(0)] = Field(0, description="P/D disaggregation: prefill pool")
    decode_replicas: Annotated[int, _count(0)] = Field(0, description="P/D disaggregation: decode pool")
    # ---- the traffic --------------------------------------------------------------------------------------
    num_requests: Annotated[int | None, _count(1, none=True)] = Field(None, description="requests (default 1000)")
    #: float("inf") (or "inf"): every request at once, the offline benchmarks' mode
    rate: Annotated[float | Literal["inf"], BeforeValidator(_rate)] = Field(math.inf, description=(
        "requests/s, or inf (all at once)"))
    arrival: Annotated[Arrival, _one_of(ARRIVALS)] = Field("poisson", description="poisson | gamma")
    burstiness: Annotated[float, _positive()] = Field(1.0, description="gamma shape (1: Poisson)")
    concurrency: Annotated[int | None, _count(1, none=True)] = Field(None, description=(
        "requests in flight at most (closed loop with rate inf)"))
    trace: str | Path | None = Field(None, description=(
        "JSONL request trace: {arrival_s, input_len, output_len} per line ('sample': the shipped one)"))
    workload: Annotated[str | None, BeforeValidator(_preset)] = Field(None, description=(
        f"length preset: {' | '.join(PRESETS)} (optionally sharegpt:input_mean=..,output_mean=..)"))
    input_len: Length = Field(1024, description=(
        "prompt tokens: 512, or lognormal:mean=250,sigma=1 | uniform:low=..,high=.. | normal:mean=..,std=.. | "
        "empirical:path=lens.csv,column=.."))
    output_len: Length = Field(128, description="output tokens (same forms)")
    seed: Annotated[int, _count(0)] = Field(0, description="random seed")
    # ---- the SLOs (goodput) and the pricing ---------------------------------------------------------------
    slo_ttft: Seconds = Field(None, serialization_alias="slo_ttft_s", description="TTFT SLO, seconds (goodput)")
    slo_tpot: Seconds = Field(None, serialization_alias="slo_tpot_s", description="TPOT SLO, seconds (goodput)")
    exact: Annotated[bool, BeforeValidator(_bool)] = Field(False, description="price every iteration exactly (no shape buckets)")

    @model_validator(mode="after")
    def _together(self) -> "ServingInputs":
        disagg = self.prefill_replicas > 0 or self.decode_replicas > 0
        if disagg and (self.prefill_replicas < 1 or self.decode_replicas < 1):
            which = "prefill_replicas" if self.prefill_replicas < 1 else "decode_replicas"
            raise ValueError(f"{which}: disaggregation needs both pools; allowed: prefill_replicas >= 1 and "
                             "decode_replicas >= 1")
        if self.prefill_pass == "separate" and self.scheduler == "chunked":
            raise ValueError("prefill_pass: separate context passes run whole prompts; allowed with scheduler "
                             "chunked: fused")
        if self.prefill_pass == "alone" and (self.scheduler != "continuous" or self.kv_policy == "turbomind"):
            raise ValueError("prefill_pass: alone is a continuous scheduler's prefill-only iteration; allowed with "
                             f"scheduler {self.scheduler} and kv_policy {self.kv_policy}: fused"
                             + (", separate" if self.scheduler != "chunked" else ""))
        if disagg and self.scheduler == "static":
            raise ValueError("scheduler: static batches cannot be disaggregated; allowed: continuous, chunked")
        if self.trace is not None and self.workload is not None:
            raise ValueError("workload: a trace gives the lengths; leave workload unset")
        if self.trace is not None and not math.isinf(self.rate):
            raise ValueError("rate: a trace gives the arrival times; leave rate unset")
        return self

    @property
    def disaggregated(self) -> bool:
        return self.prefill_replicas > 0

    @field_serializer("rate")
    def _rate_text(self, v: float) -> float | str:
        return "inf" if math.isinf(v) else v

    @field_serializer("trace")
    def _trace_text(self, v: str | Path | None) -> str | None:
        return None if v is None else str(v)

    @field_serializer("input_len", "output_len")
    def _length_text(self, v: Any) -> Any:
        return v.model_dump(exclude_none=True) if isinstance(v, LengthDist) else v

    def ran(self, **resolved: Any) -> dict[str, Any]:
        """The serving part of ``SimResult.to_dict()["inputs"]``: every field in its declared order, by its JSON
        name (``slo_ttft_s``), the lengths None where a trace or a preset gave them; ``resolved``: the values the
        run settled (``max_num_tokens``'s default, the requests drawn, the replicas)."""
        d = self.model_dump(mode="json", by_alias=True)
        if self.trace is not None or self.workload is not None:
            d["input_len"] = d["output_len"] = None
        unknown = resolved.keys() - d.keys()
        assert not unknown, unknown
        return d | resolved


#: the scenario keywords of :func:`tapeout.predict` (:class:`PredictInputs`) that a simulation does not take: its
#: batches, lengths and token budget come from the scheduler (``max_num_tokens``) and the traffic
SCENARIO_EXCLUDE = ("batch", "input_len", "output_len", "max_prefill_tokens", "sparsity", "sparse_kernel",
                    "compare_to", "kernel_constants")
#: the scenario keywords ``simulate`` takes: :class:`PredictInputs`' fields but :data:`SCENARIO_EXCLUDE`
SCENARIO_KEYS = tuple(k for k in PredictInputs.model_fields if k not in SCENARIO_EXCLUDE)


# ---- tapeout capacity ---------------------------------------------------------------------------------------
#: the :func:`tapeout.simulate` keywords the capacity search sets itself (:func:`tapeout.serving.capacity.check`:
#: the rate, the replicas behind a least-tokens router, the requests per point, the SLOs), or that a search over
#: replica counts and rates cannot take (disaggregated pools, a trace's own arrival times)
SEARCHED = ("rate", "replicas", "router", "num_requests", "slo_ttft", "slo_tpot", "prefill_replicas",
            "decode_replicas", "trace")


def _counts(v: Any) -> Any:
    """Integers >= 1: a sequence, or text ``1,2,4`` (the command line's)."""
    if v is None:
        return v
    items = v.split(",") if isinstance(v, str) else v
    if isinstance(items, (str, bytes, dict)) or not isinstance(items, typing.Iterable):
        raise ValueError(f"got {v!r}; allowed: integers >= 1, e.g. 1,2,4")
    out = []
    for x in items:
        if isinstance(x, str) and x.strip().isdigit():
            x = int(x)
        if isinstance(x, str) and not x.strip():
            continue
        if isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < 1:
            raise ValueError(f"got {v!r}; allowed: integers >= 1, e.g. 1,2,4")
        out.append(int(x))
    if not out:
        raise ValueError(f"got {v!r}; allowed: integers >= 1, e.g. 1,2,4")
    return tuple(out)


class SloTarget(_Inputs):
    """The SLOs a serving configuration must meet, at a percentile of the requests (``tapeout capacity``, explore's
    serving objectives)."""

    slo_ttft: Seconds = Field(None, serialization_alias="slo_ttft_s", description="TTFT SLO, seconds")
    slo_tpot: Seconds = Field(None, serialization_alias="slo_tpot_s", description="TPOT SLO, seconds")
    percentile: Annotated[float, BeforeValidator(_percentile)] = Field(99, description="percentile the SLOs apply to")

    @model_validator(mode="after")
    def _an_slo(self) -> "SloTarget":
        if self.slo_ttft is None and self.slo_tpot is None:
            raise ValueError("give at least one SLO; allowed: slo_ttft, slo_tpot (seconds)")
        return self


class CapacitySearch(SloTarget):
    """What ``tapeout capacity`` searches: for a rate the cheapest configuration, else the highest rate on a
    device budget, over tp degrees and max batch sizes."""

    rate: PositiveNumber = Field(None, description=(
        "requests/s to serve: find the cheapest configuration (default: the highest rate on --gpus)"))
    gpus: Annotated[int, _count(1)] = Field(8, description="devices available (highest-rate mode)")
    tps: Annotated[tuple[int, ...] | None, BeforeValidator(_counts)] = Field(None, description=(
        "tensor-parallel degrees to try, e.g. 1,2,4,8 (default: powers of two up to the devices)"))
    max_batches: Annotated[tuple[int, ...], BeforeValidator(_counts)] = Field((64, 128, 256), description=(
        "max batch sizes to try, e.g. 64,128,256"))
    num_requests: Annotated[int, _count(1)] = Field(300, description="requests per replica and point")


def engine_fields(exclude: tuple[str, ...] = (), **defaults: Any) -> dict[str, tuple[Any, FieldInfo]]:
    """:class:`ServingInputs`' fields but :data:`SEARCHED` and ``exclude``, as ``pydantic.create_model`` takes
    them (type, checks and help as declared; ``defaults`` replace a default, None making the field optional)."""
    out: dict[str, tuple[Any, FieldInfo]] = {}
    for k, f in ServingInputs.model_fields.items():
        if k in SEARCHED or k in exclude:
            continue
        ann: Any = f.annotation
        if k in defaults:
            f = copy.copy(f)
            f.default = defaults[k]
            if defaults[k] is None:
                ann = ann | None
        out[k] = (ann, f)
    return out


def _capacity_model() -> type[CapacitySearch]:
    from pydantic import create_model

    return create_model("CapacityInputs", __base__=CapacitySearch, __doc__=(
        "``tapeout capacity``'s keywords: the SLO target and the search, then the simulation's engine and traffic "
        "keywords (ServingInputs' but those the search sets)"), **engine_fields(exclude=("max_batch",)))


CapacityInputs = _capacity_model()


def serving_inputs(kwargs: dict[str, Any]) -> ServingInputs:
    """``kwargs`` validated as :class:`ServingInputs` (a one-line :class:`TapeoutError` naming the field)."""
    return specio.build(ServingInputs, kwargs, origin="serving input")


def capacity_inputs(kwargs: dict[str, Any]) -> CapacitySearch:
    """``kwargs`` validated as :data:`CapacityInputs`, and its simulation keywords as :class:`ServingInputs`."""
    args = specio.build(CapacityInputs, kwargs, origin="capacity input")
    serving_inputs({k: getattr(args, k) for k in args.model_fields_set if k in ServingInputs.model_fields
                    and k != "num_requests"})
    return args


def split(kwargs: dict[str, Any], fn: str, *models: type[BaseModel]) -> list[dict[str, Any]]:
    """``kwargs`` split by the models whose fields they are (in order; a name goes to the first that has it);
    one that none has is a TypeError, as Python's for an unexpected keyword."""
    parts: list[dict[str, Any]] = [{} for _ in models]
    for k, v in kwargs.items():
        i = next((i for i, m in enumerate(models) if k in m.model_fields), None)
        if i is None:
            raise TypeError(f"{fn}() got an unexpected keyword argument {k!r}")
        parts[i][k] = v
    return parts


__all__ = ["CapacityInputs", "Count", "PositiveNumber", "CapacitySearch", "KV_POLICIES", "PREFILL_PASSES", "ROUTERS", "SCENARIO_EXCLUDE", "SCENARIO_KEYS",
           "SCHEDULERS", "SEARCHED", "ServingInputs",
           "SloTarget", "capacity_inputs", "engine_fields", "serving_inputs", "split"]
