"""Design spaces: which hardware parameters vary, over what values, for which workloads, under
which constraints and toward which objectives. Read from TOML/YAML/JSON; every mistake is a
one-line :class:`~tapeout.errors.TapeoutError` naming the field.

A parameter is a scalar (fixed), a list of values, or a range table:
``{min, max, step}`` (inclusive arithmetic grid) or ``{min, max, num, scale = "linear" | "log"}``.
Integer parameters round range points to integers (duplicates dropped). Memory is either the
``memory`` parameter (a list of memory-system tables ``{kind, interfaces?, bandwidth_gbps?,
capacity_gb?}``) or the separate ``memory_kind`` / ``memory_interfaces`` / ``memory_bandwidth_gbps``
/ ``memory_capacity_gb`` parameters.

Example (see docs/design-study.md for more)::

    name = "gpt3-decode"
    base = "a100-sxm-80gb"
    [parameters]
    cores = [64, 96, 128]
    matrix_unit_dim = [16, 32]
    l2_mb = {min = 16, max = 64, step = 16}
    memory = [{kind = "HBM2e", interfaces = 5}, {kind = "CXL-DDR5", bandwidth_gbps = 1024, capacity_gb = 512}]
    [[workloads]]
    model = "gpt-3-175b"
    batch = "max"
    input_len = 256
    output_len = 2048
    tp = 8
    [constraints]
    max_area_mm2 = 858
    [objectives]
    goals = ["throughput", "perf_per_dollar"]

Serving objectives (``goodput_rps``, ``usd_per_mtok_at_slo``) need a ``[serving]`` table with the traffic
and SLOs they are measured under (:class:`Serving`; docs/serving.md, "Serving objectives in explore").
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from tapeout import specio
from tapeout.errors import TapeoutError
from tapeout.serving.inputs import Count, PositiveNumber, SloTarget, engine_fields
from tapeout.workload.scenario import ScenarioInputs

#: parameter -> (python type, description)
PARAMETERS: dict[str, tuple[type, str]] = {
    "cores": (int, "cores (SMs / CUs) on the die"),
    "matrix_units_per_core": (int, "matrix units (tensor cores / systolic arrays) per core"),
    "matrix_unit_dim": (int, "edge of one square matrix unit: fp16 MACs/clock per unit = dim^2"),
    "macs_per_core": (int, "dense fp16 MACs per clock per core (instead of units x dim^2)"),
    "vector_lanes_per_core": (int, "FP32 vector lanes per core"),
    "registers_kb_per_core": (float, "register file per core, KB"),
    "shared_memory_kb_per_core": (float, "shared memory / local buffer per core, KB"),
    "l2_mb": (float, "L2 / global buffer, MB"),
    "clock_mhz": (float, "clock, MHz"),
    "memory": (dict, "memory system: {kind, interfaces?, bandwidth_gbps?, capacity_gb?}"),
    "memory_kind": (str, "memory technology (HBM2e, HBM3, HBM3e, GDDR6, DDR5, LPDDR5, CXL-DDR5)"),
    "memory_interfaces": (int, "HBM stacks / DRAM channels / GDDR devices / CXL lanes"),
    "memory_bandwidth_gbps": (float, "memory bandwidth, GB/s"),
    "memory_capacity_gb": (float, "memory capacity, GB"),
    "interconnect_gbps": (float, "scale-up link bandwidth per device per direction, GB/s"),
    "process_node": (str, "process node (N7, N6, N5, N4, N3E, N3)"),
    "fp64": (bool, "keep the base die's FP64 units"),
    "spare_cores": (int, "extra physical cores for yield harvesting (area counts them; yield tolerates that many bad cores)"),
}
_ZERO_OK = {"spare_cores"}
METRICS = {  # objective name -> (direction, description)
    "latency": ("min", "end-to-end request latency, s"),
    "ttft": ("min", "time to first token, s"),
    "tpot": ("min", "time per output token, s"),
    "throughput": ("max", "generated tokens/s per device"),
    "perf_per_dollar": ("max", "tokens/s per device per $1000 of device cost"),
    "perf_per_watt": ("max", "tokens per joule (per device)"),
    "usd_per_mtok": ("min", "dollars per million tokens (capex + energy)"),
    "area": ("min", "die area, mm2"),
    "cost": ("min", "device cost, $"),
    "power": ("min", "device power, W"),
    "goodput_rps": ("max", "serving goodput, requests/s within the [serving] SLOs at its traffic (tapeout simulate)"),
    "usd_per_mtok_at_slo": ("min", "serving $/Mtok at the [serving] rate, or the highest rate, meeting its SLOs"),
}
DEVICE_METRICS = ("area", "cost", "power")
#: objectives priced by the serving simulator under the space's [serving] table
SERVING_METRICS = ("goodput_rps", "usd_per_mtok_at_slo")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bools(cls, data: Any) -> Any:
        return specio.reject_bools(cls, data)  # tp = true is a typo, not tp 1


class Workload(_Frozen):
    name: str = ""
    model: str
    num_layers: int | None = Field(None, gt=0, description="run only this many layers (LLMCompass's setting)")
    batch: int | Literal["max"] = Field(
        1, description="sequences per batch, or 'max': the largest that fits in memory and meets max_ttft_s / "
        "max_tpot_s (binary search)")
    max_batch: int = Field(4096, gt=0, description="cap on batch = 'max'")
    input_len: int = Field(2048, gt=0)
    output_len: int = Field(128, gt=0)
    tp: int = Field(1, gt=0)
    weights: str = "fp16"
    activations: str = "fp16"
    kv_cache: str | None = None
    weight: float = Field(1.0, gt=0, description="weight in the geometric mean over workloads")
    max_ttft_s: float | None = Field(None, gt=0)
    max_tpot_s: float | None = Field(None, gt=0)

    @field_validator("batch", mode="before")
    @classmethod
    def _batch(cls, v: Any) -> Any:
        if isinstance(v, bool) or (isinstance(v, int) and v <= 0) or (isinstance(v, str) and v != "max") \
                or not isinstance(v, (int, str)):
            raise ValueError(f"batch must be a positive integer or 'max', got {v!r}")
        return v


class _ServingTarget(_Frozen, SloTarget):
    """The [serving] table's own fields: the SLOs (:class:`~tapeout.serving.inputs.SloTarget`), the rate and the
    replicas sharing it, the requests per replica; :class:`Serving` adds the simulation's."""

    rate: PositiveNumber = Field(None, description="requests/s offered to the replicas; unset: the highest rate "
                                 "meeting the SLOs (usd_per_mtok_at_slo only)")
    num_requests: Count = Field(200, description="requests simulated per replica")
    replicas: Count = Field(1, description="replicas of tp devices sharing the rate (least-tokens router)")

    @model_validator(mode="after")
    def _lengths(self) -> "_ServingTarget":
        if getattr(self, "workload", None) is not None and (getattr(self, "input_len", None) is not None
                                                           or getattr(self, "output_len", None) is not None):
            raise ValueError("give a length preset (workload) or input_len/output_len, not both")
        return self


#: Traffic, SLOs and engine of the serving objectives (:data:`SERVING_METRICS`), applied to each workload's model,
#: ``tp`` and formats: the arguments of :func:`tapeout.simulate` and of ``tapeout capacity``'s SLO check. Its
#: simulation fields are :class:`~tapeout.serving.inputs.ServingInputs`' (:func:`~tapeout.serving.inputs.engine_fields`:
#: but those the check sets) and ``kv_fraction`` (the scenario's); the lengths unset: the workload's.
Serving = create_model(
    "Serving", __base__=_ServingTarget, __doc__="Traffic, SLOs and engine of the serving objectives.",
    **engine_fields(input_len=None, output_len=None),
    kv_fraction=(float, ScenarioInputs.model_fields["kv_fraction"]))
#: the [serving] fields of the table's first version: a later field is written into the space's JSON only when
#: set away from its default, so that the digest of a run stored before it stays the same
SERVING_FIRST = ("rate", "input_len", "output_len", "workload", "num_requests", "seed", "arrival", "burstiness",
                 "slo_ttft", "slo_tpot", "percentile", "replicas", "scheduler", "max_batch", "max_num_tokens",
                 "kv_fraction")


class Constraints(_Frozen):
    max_area_mm2: float | None = Field(None, gt=0)
    max_power_w: float | None = Field(None, gt=0)
    max_device_cost_usd: float | None = Field(None, gt=0)
    memory_fits: bool = True
    shoreline: bool = Field(True, description="memory and link PHYs must fit on the die edge")


class Objective(_Frozen):
    metric: str
    workload: str | None = Field(None, description="a workload name; None: geometric mean over workloads")
    goal: Literal["min", "max"] | None = None

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        if v not in METRICS:
            raise ValueError(f"unknown metric {v!r}; allowed: {', '.join(METRICS)}")
        return v

    @property
    def direction(self) -> str:
        return self.goal or METRICS[self.metric][0]

    @property
    def label(self) -> str:
        return self.metric + (f"@{self.workload}" if self.workload else "")


class Objectives(_Frozen):
    goals: tuple[Objective, ...] = (Objective(metric="throughput"), Objective(metric="perf_per_dollar"))

    @field_validator("goals", mode="before")
    @classmethod
    def _goals(cls, v: Any) -> Any:
        if isinstance(v, (str, dict)):
            v = [v]
        if not v:
            raise ValueError("at least one objective")
        out = []
        for g in v:
            if isinstance(g, str):
                metric, _, wl = g.partition("@")
                out.append({"metric": metric, "workload": wl or None})
            else:
                out.append(g)
        return tuple(out)

    @property
    def items(self) -> tuple[Objective, ...]:
        return self.goals


class Search(_Frozen):
    method: Literal["auto", "grid", "nsga2", "random"] = "auto"
    trials: int = Field(2000, gt=0, description="points to evaluate (nsga2 / random)")
    population: int = Field(48, gt=1, description="NSGA-II population size")
    seed: int = 0
    max_grid: int = Field(20000, gt=0, description="'auto' grids spaces up to this many points")


class Space(_Frozen):
    name: str = "space"
    base: str = Field(description="catalog device (with a micro-architecture) the designs derive from")
    tier: str = "roofline"
    parameters: dict[str, Any] = Field(default_factory=dict)
    workloads: tuple[Workload, ...]
    constraints: Constraints = Constraints()
    objectives: Objectives = Objectives()
    search: Search = Search()
    assumptions: dict[str, Any] = Field(default_factory=dict, description="cost-model overrides")
    serving: Serving | None = Field(None, description="traffic and SLOs of the serving objectives")

    @field_validator("parameters")
    @classmethod
    def _params(cls, v: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, spec in v.items():
            if name not in PARAMETERS:
                raise ValueError(f"unknown parameter {name!r}; allowed: {', '.join(PARAMETERS)}")
            out[name] = _values(name, spec)
        if "memory" in out and any(k.startswith("memory_") for k in out):
            raise ValueError("give either 'memory' or the memory_* parameters, not both")
        if "macs_per_core" in out and ({"matrix_unit_dim"} & set(out)):
            raise ValueError("give either 'macs_per_core' or 'matrix_unit_dim', not both")
        return out

    @field_validator("workloads", mode="before")
    @classmethod
    def _wl(cls, v: Any) -> Any:
        if isinstance(v, dict):
            v = [v]
        if not v:
            raise ValueError("at least one workload")
        out = []
        for i, w in enumerate(v):
            if isinstance(w, dict) and not w.get("name"):
                w = {**w, "name": f"w{i}"}
            out.append(w)
        return out

    @model_validator(mode="after")
    def _check(self) -> "Space":
        names = [w.name for w in self.workloads]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"workloads: duplicate names {dup}")
        for o in self.objectives.items:
            if o.workload is not None and o.workload not in names:
                raise ValueError(f"objectives: unknown workload {o.workload!r}; known: {', '.join(names)}")
            if o.metric in SERVING_METRICS and self.serving is None:
                raise ValueError(f"objectives: {o.metric} needs a [serving] table (rate, slo_ttft and/or slo_tpot)")
            if o.metric == "goodput_rps" and self.serving is not None and self.serving.rate is None:
                raise ValueError("objectives: goodput_rps needs serving.rate (the traffic it is measured under)")
        return self

    def needs(self, workload: str, metric: str) -> bool:
        """Does an objective use ``metric`` of ``workload``?"""
        return any(o.metric == metric and o.workload in (None, workload) for o in self.objectives.items)

    def serves(self, workload: str) -> bool:
        """Does an objective need the serving simulation of ``workload``?"""
        return any(self.needs(workload, m) for m in SERVING_METRICS)

    # ---- enumeration ------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.parameters))

    def grid_size(self) -> int:
        return math.prod(len(self.parameters[n]) for n in self.names) if self.parameters else 1

    def point(self, index: int) -> dict[str, Any]:
        """The ``index``-th grid point (mixed radix over the sorted parameter names)."""
        out = {}
        for n in reversed(self.names):
            vals = self.parameters[n]
            index, r = divmod(index, len(vals))
            out[n] = vals[r]
        return dict(sorted(out.items()))

    def grid(self):  # noqa: ANN201 - iterator of dicts
        names = self.names
        for combo in itertools.product(*(self.parameters[n] for n in names)):
            yield dict(zip(names, combo))

    def to_json(self) -> str:
        d = self.model_dump(mode="json")
        if d["serving"] is None:  # a space without serving keeps the JSON (and digest) it had before the table
            del d["serving"]
        else:
            for k in set(Serving.model_fields) - set(SERVING_FIRST):
                if d["serving"][k] == Serving.model_fields[k].default:
                    del d["serving"][k]
        return json.dumps(d, sort_keys=True)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


def point_key(params: dict[str, Any]) -> str:
    """Stable identity of a design point (its canonical JSON)."""
    return hashlib.sha1(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:20]


def _scalar(name: str, v: Any) -> Any:
    typ = PARAMETERS[name][0]
    if typ is dict:
        if not isinstance(v, dict):
            raise ValueError(f"{name}: each value must be a table {{kind, interfaces?, bandwidth_gbps?, capacity_gb?}}")
        allowed = {"kind", "interfaces", "bandwidth_gbps", "capacity_gb"}
        bad = sorted(set(v) - allowed)
        if bad or "kind" not in v:
            raise ValueError(f"{name}: a memory table needs 'kind' and only {sorted(allowed)} (got {sorted(v)})")
        out = {"kind": str(v["kind"])}
        for k in ("interfaces",):
            if k in v:
                if isinstance(v[k], bool) or not isinstance(v[k], int) or v[k] <= 0:
                    raise ValueError(f"{name}.{k} must be a positive integer")
                out[k] = v[k]
        for k in ("bandwidth_gbps", "capacity_gb"):
            if k in v:
                if isinstance(v[k], bool) or not isinstance(v[k], (int, float)) or v[k] <= 0:
                    raise ValueError(f"{name}.{k} must be a positive number")
                out[k] = float(v[k])
        return out
    if typ is bool:
        if not isinstance(v, bool):
            raise ValueError(f"{name}: expected true/false, got {v!r}")
        return v
    if typ is str:
        if not isinstance(v, str) or not v:
            raise ValueError(f"{name}: expected a name, got {v!r}")
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{name}: expected a number, got {v!r}")
    if v < 0 or (v == 0 and name not in _ZERO_OK):
        raise ValueError(f"{name}: values must be > 0, got {v!r}")
    if typ is int:
        if float(v) != int(v):
            raise ValueError(f"{name}: expected an integer, got {v!r}")
        return int(v)
    return float(v)


def _values(name: str, spec: Any) -> list[Any]:
    typ = PARAMETERS[name][0]
    if isinstance(spec, dict) and not (typ is dict and "kind" in spec):
        if "values" in spec and len(spec) == 1:
            spec = spec["values"]
        else:
            spec = _range(name, spec)
    if not isinstance(spec, list):
        spec = [spec]
    if not spec:
        raise ValueError(f"{name}: no values")
    vals: list[Any] = []
    for v in spec:
        s = _scalar(name, v)
        if s not in vals:
            vals.append(s)
    return vals


def _range(name: str, r: dict[str, Any]) -> list[Any]:
    typ = PARAMETERS[name][0]
    if typ not in (int, float):
        raise ValueError(f"{name}: ranges need a numeric parameter")
    bad = sorted(set(r) - {"min", "max", "step", "num", "scale"})
    if bad or "min" not in r or "max" not in r:
        raise ValueError(f"{name}: a range is {{min, max, step}} or {{min, max, num, scale}}; got {sorted(r)}")
    lo, hi = r["min"], r["max"]
    for k, x in (("min", lo), ("max", hi)):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0 or (x == 0 and name not in _ZERO_OK):
            raise ValueError(f"{name}.{k} must be a positive number")
    if hi < lo:
        raise ValueError(f"{name}: max ({hi}) < min ({lo})")
    if ("step" in r) == ("num" in r):
        raise ValueError(f"{name}: give exactly one of step or num")
    if "step" in r:
        step = r["step"]
        if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0:
            raise ValueError(f"{name}.step must be > 0")
        n = int(math.floor((hi - lo) / step + 1e-9)) + 1
        if n > 100000:
            raise ValueError(f"{name}: range has {n} values (max 100000)")
        vals = [lo + i * step for i in range(n)]
    else:
        num = r["num"]
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise ValueError(f"{name}.num must be a positive integer")
        scale = r.get("scale", "linear")
        if scale not in ("linear", "log"):
            raise ValueError(f"{name}.scale must be 'linear' or 'log'")
        if num == 1:
            vals = [lo]
        elif scale == "linear":
            vals = [lo + (hi - lo) * i / (num - 1) for i in range(num)]
        else:
            if lo <= 0:
                raise ValueError(f"{name}: a log range needs min > 0")
            vals = [lo * (hi / lo) ** (i / (num - 1)) for i in range(num)]
    if typ is int:
        return [int(round(v)) for v in vals]
    return [round(float(v), 9) for v in vals]


def load_space(source: str | Path | dict[str, Any], *, resolve: bool = True) -> Space:
    """Validate a space from a file path or a mapping (one-line errors naming the field).

    With ``resolve`` the names in it are checked too: base device (with a micro-architecture),
    tier, models, number formats, memory kinds and process nodes.
    """
    if isinstance(source, dict):
        data, origin = source, "design space"
    else:
        p = Path(source)
        data, origin = specio.read_mapping(p), f"design space {p.name}"
    if "objectives" in data and isinstance(data["objectives"], (list, str)):
        data = {**data, "objectives": {"goals": data["objectives"]}}
    space = specio.build(Space, data, origin=origin)
    if resolve:
        check_names(space)
    return space


def _named(field: str, fn, *args):  # noqa: ANN001, ANN202
    try:
        return fn(*args)
    except TapeoutError as exc:
        msg = str(exc).split(": ", 1)[1] if exc.field else str(exc)
        raise TapeoutError(msg, field=field) from None


def _check_workload(model: Any, w: Workload) -> None:
    """Build a workload's operator graphs once, on no device: a mistake every design point would repeat
    (tp = 7 on 96 heads) is reported before the run instead of as a space of infeasible points."""
    from tapeout.workload.build import build_graph
    from tapeout.workload.scenario import Scenario

    sc = specio.build(Scenario, {"batch": 1 if w.batch == "max" else w.batch, "input_len": w.input_len,
                                 "output_len": w.output_len, "tp": w.tp, "weights": w.weights,
                                 "activations": w.activations, "kv_cache": w.kv_cache or w.activations},
                      origin="workload")
    build_graph(model, sc, "prefill")
    build_graph(model, sc, "decode", sc.input_len + 1)


def _check_traffic(space: Space, w: Workload) -> None:
    """Draw a serving workload's requests once: a bad length distribution is an error before the run."""
    from tapeout.serving.workload import make_requests

    s = space.serving
    assert s is not None
    lens = {"workload": s.workload} if s.workload is not None else {
        "input_len": w.input_len if s.input_len is None else s.input_len,
        "output_len": w.output_len if s.output_len is None else s.output_len}
    try:
        make_requests(**lens, num_requests=s.num_requests, rate=s.rate or math.inf, arrival=s.arrival,
                      burstiness=s.burstiness, seed=s.seed)
    except TapeoutError as exc:
        msg = str(exc).split(": ", 1)[1] if exc.field else str(exc)
        raise TapeoutError(msg, field=f"serving.{exc.field}" if exc.field else "serving") from None


def check_names(space: Space) -> None:
    """Resolve every name in ``space``; a failure names the space field."""
    from tapeout import dtypes
    from tapeout.cost.assumptions import Assumptions
    from tapeout.hardware.catalog import load_hardware
    from tapeout.models.catalog import load_model
    from tapeout.perf import TIERS

    hw = _named("base", load_hardware, space.base)
    if hw.microarch is None:
        raise TapeoutError(f"device {hw.name!r} has no micro-architecture description to derive designs from",
                           field="base")
    if space.tier not in TIERS:
        raise TapeoutError(f"unknown tier {space.tier!r}; allowed: {', '.join(sorted(TIERS))}", field="tier")
    a = _named("assumptions", Assumptions.load, space.assumptions or None)
    die = a.die_entry(hw.name)
    if die is not None and "multi_die" in die[1]:
        raise TapeoutError(f"device {hw.name!r} is several compute dies in one package ({die[1]['multi_die']}); "
                           "designs derive from one die", field="base")
    if "process_node" not in space.parameters:
        _named("base", a.node_key, str(die[1]["process_node"]) if die else (hw.process_node or ""))
    for i, w in enumerate(space.workloads):
        m = _named(f"workloads.{i}.model", load_model, w.model)
        for f in ("weights", "activations", "kv_cache"):
            v = getattr(w, f)
            if v is not None:
                _named(f"workloads.{i}.{f}", dtypes.parse, v)
        if w.num_layers is not None and w.num_layers != m.num_layers:
            m = m.model_copy(update={"num_layers": w.num_layers})
        _named(f"workloads.{i}", _check_workload, m, w)
        if space.serves(w.name):
            _check_traffic(space, w)
    for m in space.parameters.get("memory", []):
        _named("parameters.memory.kind", a.memory_key, m["kind"])
    for k in space.parameters.get("memory_kind", []):
        _named("parameters.memory_kind", a.memory_key, k)
    for n in space.parameters.get("process_node", []):
        key = _named("parameters.process_node", a.node_key, n)
        _named("parameters.process_node", a.node_price, key)


__all__ = ["METRICS", "PARAMETERS", "SERVING_METRICS", "Serving", "Space", "Workload", "load_space", "point_key"]
