"""The scenario's technique vocabulary: sparsity patterns, per-layer rules (mixed precision, pruning), scenario files.

Value types only (no op graphs here), so that :mod:`tapeout.workload.scenario` can hold them.

Sparsity (of the weights of linear layers), written as on the command line:
- ``0.8`` / ``80%``: unstructured, 80% of the weights are zero;
- ``2:4``: two of every four consecutive weights along K are zero (NVIDIA sparse tensor cores);
- ``1x4:0.5``: 1xN block sparsity, blocks of N=4 consecutive output channels sharing one input
  position are zero or kept together; 50% of the blocks are zero.

Per-layer rules (a scenario file's ``[[layers]]`` tables, applied in order, later rules win):
``match`` names a layer class — ``attention`` (qkv_proj, out_proj), ``mlp`` (the dense MLP, routed
and shared experts), ``experts`` (routed experts only), ``qkv_proj``, ``out_proj``, ``up`` (gate/up),
``down``, ``lm_head``, or ``*`` (every transformer linear layer); ``layers`` selects layer indices
("0-3,10", a list, or all); then any of ``weights``, ``activations``, ``sparsity`` and, for the
classes mlp/attention, ``keep`` (channel pruning: the fraction of MLP intermediate channels, or of
attention heads, that remain; the layer is built with the smaller dimensions).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tapeout import dtypes
from tapeout.dtypes import DType
from tapeout.errors import TapeoutError
from tapeout.models.spec import LAYER_CLASSES, LINEAR_SLOTS

SPARSITY_EXAMPLES = "0.8, 80%, 2:4, 1x4:0.5"
SPARSE_KERNELS = ("auto", "tensor", "cuda", "dense")
#: layer indices a selector may name (a model's own layer count is checked when the scenario meets it)
MAX_LAYERS = 100_000


class Sparsity(BaseModel):
    """A weight sparsity pattern. ``density`` is the fraction of weights kept (stored)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    pattern: Literal["unstructured", "2:4", "1xn"]
    density: float = Field(gt=0, le=1)
    block: int = Field(1, ge=1, description="1xN: output channels per block")

    @property
    def sparsity(self) -> float:
        return 1.0 - self.density

    @property
    def name(self) -> str:
        if self.pattern == "2:4":
            return "2:4"
        frac = f"{self.sparsity:.4g}"
        return f"1x{self.block}:{frac}" if self.pattern == "1xn" else frac

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, value: Any, *, field: str | None = "sparsity") -> Sparsity | None:
        """Parse ``0.8``, ``"80%"``, ``"2:4"``, ``"1x4:0.5"``; 0 / None / "none" / "dense" mean no sparsity."""
        if value is None or isinstance(value, Sparsity):
            return value
        if isinstance(value, dict):
            try:
                return cls.model_validate(value)
            except Exception:
                raise TapeoutError(f"cannot read {value!r}; allowed: {SPARSITY_EXAMPLES}", field=field) from None
        if isinstance(value, bool):
            raise TapeoutError(f"expected a sparsity, got {value!r}; allowed: {SPARSITY_EXAMPLES}", field=field)
        if isinstance(value, int) and value > 1:
            raise TapeoutError(f"sparsity must be a fraction in [0, 1) or a pattern, got {value!r} (YAML reads an "
                               "unquoted 2:4 as the number 124: quote it)", field=field)
        text = str(value).strip().lower()
        if text in ("", "0", "0.0", "none", "dense"):
            return None
        if text == "2:4":
            return cls(pattern="2:4", density=0.5)
        if m := re.fullmatch(r"1x(\d+):(.+)", text):
            n, frac = int(m.group(1)), _fraction(m.group(2), field)
            if n < 1:
                raise TapeoutError(f"1xN needs N >= 1, got {text!r}", field=field)
            if frac == 0:
                return None
            return cls(pattern="1xn", density=1.0 - frac, block=n)
        if re.fullmatch(r"\d+:\d+", text):
            raise TapeoutError(f"only the 2:4 pattern has a structured kernel, got {text!r}; allowed: "
                               f"{SPARSITY_EXAMPLES}", field=field)
        frac = _fraction(text, field)
        return None if frac == 0 else cls(pattern="unstructured", density=1.0 - frac)


def _fraction(text: str, field: str | None) -> float:
    t = text.strip()
    try:
        v = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise TapeoutError(f"cannot read {text!r} as a sparsity; allowed: {SPARSITY_EXAMPLES}", field=field) from None
    if not 0 <= v < 1:
        raise TapeoutError(f"sparsity must be in [0, 1) (fraction of zero weights), got {text!r}", field=field)
    return v


def parse_layers(value: Any, *, field: str = "layers") -> tuple[int, ...] | None:
    """``"0-3,10"`` / ``[0, 1, 2]`` / ``5`` -> sorted layer indices; None: every layer."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TapeoutError(f"expected layer indices, got {value!r}", field=field)
    if isinstance(value, int):
        items: list[Any] = [value]
    elif isinstance(value, str):
        items = [p.strip() for p in value.split(",") if p.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise TapeoutError(f"expected '0-3,10' or a list of integers, got {value!r}", field=field)
    out: set[int] = set()
    for it in items:
        if isinstance(it, int) and not isinstance(it, bool):
            lo = hi = it
        elif isinstance(it, str) and (m := re.fullmatch(r"(\d+)\s*(?:-\s*(\d+))?", it)):
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) else lo
        else:
            raise TapeoutError(f"cannot read layer selector {it!r}; write '0-3,10' or [0, 1, 2]", field=field)
        if lo < 0 or hi < lo:
            raise TapeoutError(f"bad layer range {it!r}", field=field)
        if hi >= MAX_LAYERS:
            raise TapeoutError(f"layer index {hi} in {it!r} is beyond any model (indices 0 to {MAX_LAYERS - 1})",
                               field=field)
        out.update(range(lo, hi + 1))
    if not out:
        raise TapeoutError("empty layer selection", field=field)
    return tuple(sorted(out))


class LayerRule(BaseModel):
    """One rule of a scenario file: which layers, and the techniques they get."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)

    match: str = Field("*", description=f"layer class: {', '.join(LAYER_CLASSES)}")
    layers: tuple[int, ...] | None = Field(None, description="layer indices (None: all)")
    weights: DType | None = None
    activations: DType | None = None
    sparsity: Sparsity | None = None
    #: set when the rule explicitly makes the layers dense (sparsity = 0 / "dense")
    dense: bool = False
    keep: float | None = Field(None, gt=0, le=1, description="channel pruning: fraction of channels kept")

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        d = dict(data)
        if "sparsity" in d and not isinstance(d["sparsity"], Sparsity):
            raw = d["sparsity"]
            d["sparsity"] = Sparsity.parse(raw, field="sparsity")
            if d["sparsity"] is None and raw is not None:
                d["dense"] = True
        if "layers" in d:
            d["layers"] = parse_layers(d["layers"])
        return d

    @field_validator("match")
    @classmethod
    def _match(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in LAYER_CLASSES:
            raise ValueError(f"unknown layer class {v!r}; allowed: {', '.join(LAYER_CLASSES)}")
        return v

    @field_validator("weights", "activations", mode="before")
    @classmethod
    def _dtype(cls, v: object, info) -> DType | None:  # type: ignore[no-untyped-def]
        return None if v is None else dtypes.parse(v, field=info.field_name)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _keep_needs_class(self) -> LayerRule:
        if self.keep is not None and self.match not in ("mlp", "attention", "*"):
            raise ValueError(f"keep (channel pruning) applies to the classes mlp, attention or *, not {self.match!r}")
        return self

    def applies(self, slot: str, layer: int | None) -> bool:
        if slot not in LAYER_CLASSES[self.match]:
            return False
        return self.layers is None or layer is None or layer in self.layers


#: the keys a scenario file may set
FILE_KEYS = ("weights", "activations", "kv_cache", "sparsity", "sparse_kernel", "layers")


def read_scenario_file(path: str | Path) -> dict[str, Any]:
    """A scenario file (TOML/YAML/JSON) as scenario keyword arguments, validated."""
    from tapeout import specio

    data = specio.read_mapping(path)
    return scenario_mapping(data, origin=Path(path).name)


def scenario_mapping(data: dict[str, Any], *, origin: str = "scenario") -> dict[str, Any]:
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise TapeoutError(f"unknown keys {unknown} in {origin}; allowed: {', '.join(FILE_KEYS)}", field="scenario")
    out = dict(data)
    if "layers" in out:
        rules = out["layers"]
        if isinstance(rules, dict):
            rules = [rules]
        if not isinstance(rules, (list, tuple)):
            raise TapeoutError("layers must be a list of tables ([[layers]] in TOML)", field="layers")
        built = []
        for i, r in enumerate(rules):
            if isinstance(r, LayerRule):
                built.append(r)
                continue
            if not isinstance(r, dict):
                raise TapeoutError(f"layers[{i}] must be a table", field="layers")
            try:
                built.append(LayerRule.model_validate(r))
            except TapeoutError as exc:
                raise TapeoutError(f"layers[{i}].{exc}") from None
            except Exception as exc:  # pydantic
                from pydantic import ValidationError

                from tapeout.specio import validation_message

                msg = validation_message(exc) if isinstance(exc, ValidationError) else str(exc)
                raise TapeoutError(f"layers[{i}].{msg}") from None
        out["layers"] = tuple(built)
    return out


__all__ = ["LAYER_CLASSES", "LINEAR_SLOTS", "LayerRule", "SPARSE_KERNELS", "Sparsity", "parse_layers",
           "read_scenario_file", "scenario_mapping"]
