"""The store of fitted numbers: one TOML file per tier or kind, every value with its provenance.

Files (``src/tapeout/fitted/``), each written by ``tapeout fit`` (:mod:`tapeout.fit`) and never by hand:

- ``roofline.toml``: the roofline tier's :class:`~tapeout.hardware.spec.EfficiencySpec` fields per device,
  and ``[default]`` for devices without measurements;
- ``tiled.toml``: the tiled tier's fitted :class:`~tapeout.hardware.microarch.MicroArch` fields per device
  (kernel efficiencies, the FlashAttention-2 path fraction, collective terms), and ``[default]``;
- ``frameworks.toml``: the fitted fields of the serving-framework profiles (``system/frameworks.toml``
  holds the profiles themselves);
- ``kernels.toml``: the technique kernels' constants (:class:`KernelConstants`);
- ``harness.toml``: the host time per op of measurement harnesses (validation only, never a device's);
- ``cost.toml``: the area model's calibrated coefficients (``cost/data/area.toml`` holds their units).

A file's top-level tables are *subjects* (a device, ``default``, a profile, a kernel family, a harness
device, ``area``); each subject holds one table per fit: ``values`` (name -> number) and the fit's
provenance (``datasets``, ``rows``, ``residual`` with its ``metric``, ``method``, ``command``). A subject's
values are the union of its fits' values.

The runtime reads the store through the accessors below (the device catalog merges the fitted fields
into each device; a user's device file and ``predict(..., efficiency=...)`` still win). The store is
this package's folder unless ``$TAPEOUT_FITTED`` names another (``tapeout fit --store DIR``). Nothing here
imports fitting or validation code.
"""

from __future__ import annotations

import functools
import math
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tapeout.errors import TapeoutError

#: the environment variable naming another store directory
FITTED_ENV = "TAPEOUT_FITTED"
PACKAGE_DIR = Path(__file__).parent
#: the store's files, in the order ``tapeout fit`` writes them
KINDS = ("roofline", "harness", "tiled", "frameworks", "kernels", "cost")
#: the subject holding cross-device defaults
DEFAULT = "default"


class Fit(BaseModel):
    """One fit: the values it produced and where they come from."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    values: dict[str, float] = Field(description="fitted name -> value")
    datasets: tuple[str, ...] = Field((), description="the measured sets (registry names) or files it read")
    rows: int | None = Field(None, ge=0, description="rows the fit read")
    residual: float | None = Field(None, ge=0, description="the fit's loss at these values (see metric)")
    metric: str = Field("", description="what residual measures")
    method: str = Field(description="how the values were obtained")
    command: str = Field("tapeout fit", description="the command that writes this entry")

    @field_validator("values")
    @classmethod
    def _finite(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("a fit needs at least one value")
        bad = [k for k, x in v.items() if isinstance(x, bool) or not math.isfinite(x)]
        if bad:
            raise ValueError(f"non-finite or boolean values {bad}")
        return v

    def describe(self) -> str:
        """``names from datasets (method)``: one line for a spec's ``source`` field."""
        names = ", ".join(self.values)
        sets = f" from {' + '.join(self.datasets)}" if self.datasets else ""
        return f"{names}{sets} ({self.method})"


class StoreFile(BaseModel):
    """One file of the store: subject -> fit name -> :class:`Fit`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    subjects: dict[str, dict[str, Fit]]

    def fits(self, subject: str) -> dict[str, Fit]:
        return dict(self.subjects.get(subject, {}))

    def values(self, subject: str) -> dict[str, float]:
        """The union of ``subject``'s fitted values (empty when it has none)."""
        out: dict[str, float] = {}
        for f in self.subjects.get(subject, {}).values():
            out.update(f.values)
        return out

    def source(self, subject: str, prefix: str = "") -> str:
        """Provenance of ``subject``'s values in one line (a spec's ``source``)."""
        fits = self.subjects.get(subject, {})
        text = "; ".join(f.describe() for f in fits.values())
        return f"fitted (tapeout fit, fitted/{self.kind}.toml [{subject}]): {prefix}{text}"


def store_dir() -> Path:
    """``$TAPEOUT_FITTED``, else the package's own store."""
    env = os.environ.get(FITTED_ENV, "").strip()
    return Path(env).expanduser() if env else PACKAGE_DIR


def path(kind: str, directory: Path | None = None) -> Path:
    if kind not in KINDS:
        raise TapeoutError(f"unknown fitted kind {kind!r}; allowed: {', '.join(KINDS)}", field="fitted")
    return (directory or store_dir()) / f"{kind}.toml"


def parse(kind: str, text: str, origin: str = "") -> StoreFile:
    """A store file's text, validated (one-line :class:`TapeoutError` naming the entry when it is not)."""
    where = origin or f"fitted/{kind}.toml"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TapeoutError(f"{where}: {exc}", field="fitted") from None
    subjects: dict[str, dict[str, Fit]] = {}
    for subject, fits in data.items():
        if not isinstance(fits, dict) or not all(isinstance(f, dict) for f in fits.values()):
            raise TapeoutError(f"{where}: [{subject}] must hold one table per fit", field="fitted")
        subjects[subject] = {}
        for name, raw in fits.items():
            try:
                subjects[subject][name] = Fit.model_validate(raw)
            except ValidationError as exc:
                from tapeout.specio import validation_message

                raise TapeoutError(f"{where} [{subject}.{name}]: {validation_message(exc)}", field="fitted") from None
    return StoreFile(kind=kind, subjects=subjects)


@functools.cache
def _load(directory: Path, kind: str) -> StoreFile:
    p = path(kind, directory)
    if not p.is_file():
        if directory == PACKAGE_DIR:
            raise RuntimeError(f"the fitted store lacks {p.name} (packaging bug; regenerate with `tapeout fit`)")
        raise TapeoutError(f"{FITTED_ENV}={directory}: no {p.name} there", field="fitted")
    return parse(kind, p.read_text(encoding="utf-8"), str(p))


def load(kind: str) -> StoreFile:
    """The store file of ``kind`` (parsed and validated once per process and directory)."""
    return _load(store_dir(), kind)


def reload() -> None:
    """Forget the parsed files (after ``tapeout fit`` rewrote them)."""
    _load.cache_clear()
    kernel_constants.cache_clear()


# ---- typed views the runtime reads ------------------------------------------------------------------

def roofline_efficiency(device: str) -> dict[str, Any]:
    """EfficiencySpec fields of ``device``: ``[default]`` overlaid with the device's own fits, with a
    ``source`` naming them (``{}`` when the store has neither)."""
    f = load("roofline")
    base = f.values(DEFAULT)
    own = f.values(device) if device != DEFAULT else {}
    if not base and not own:
        return {}
    src = (f.source(device) + ("; the rest [default]" if set(base) - set(own) else "")) if own \
        else f.source(DEFAULT, "cross-device default: ")
    return {**base, **own, "source": src}


def tiled_default(name: str) -> float:
    """The cross-device default of a fitted MicroArch field (devices without their own fit)."""
    v = load("tiled").values(DEFAULT).get(name)
    if v is None:
        raise RuntimeError(f"fitted/tiled.toml has no [default] value of {name}")
    return v


#: MicroArch fields that live in the ``matrix`` sub-table
MATRIX_FIELDS = ("legacy_path_fraction", "fp8_path_fraction")


def tiled_microarch(device: str) -> dict[str, Any]:
    """The fitted MicroArch fields of ``device`` as a nested update (``matrix`` sub-table apart), with the
    provenance of each under ``sources`` (field -> text), as the catalog files name their facts'."""
    f = load("tiled")
    out: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for fit in f.fits(device).values():
        for k, v in fit.values.items():
            key = f"matrix.{k}" if k in MATRIX_FIELDS else k
            if k in MATRIX_FIELDS:
                out.setdefault("matrix", {})[k] = v
            else:
                out[k] = v
            sources[key] = f"fitted (tapeout fit, fitted/tiled.toml [{device}]): {fit.describe()}"
    if sources:
        out["sources"] = sources
    return out


def framework_values(name: str) -> tuple[dict[str, float], str]:
    """The fitted fields of framework profile ``name`` and their provenance (``({}, "")`` when none)."""
    f = load("frameworks")
    vals = f.values(name)
    return vals, (f.source(name) if vals else "")


class KernelConstants(BaseModel):
    """The technique kernels' fitted constants (docs/techniques.md); ``predict(..., kernel_constants=...)``
    overrides them per call. ``onchip_eta`` and ``tiled_csl_stream_eta`` are efficiencies, read where an op is
    priced (:func:`tapeout.perf.quant.onchip_eta`, :func:`tapeout.perf.quant.stream_fraction`; per device or
    call: ``efficiency={"onchip_eta": ...}``), the others where the op graph is built
    (:func:`tapeout.workload.kernels.linear`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    onchip_eta: float = Field(gt=0, le=1, description="fraction of shared-memory bandwidth Flash-LLM's "
                              "sparse-to-dense staging sustains")
    tiled_csl_stream_eta: float = Field(gt=0, le=1, description="Flash-LLM's Tiled-CSL loads: fraction of a "
                                        "dense GEMM's DRAM streaming efficiency")
    sputnik_ops_per_nnz: float = Field(ge=0, description="Sputnik CSR SpMM: lane-instructions per nonzero")
    sputnik_ops_per_nnz_col: float = Field(ge=0, description="per nonzero and activation column")
    sputnik_ops_per_row: float = Field(ge=0, description="per weight row")
    int_group_scale_ops: float = Field(ge=0, description="intN weight-only kernels: lane-instructions per "
                                       "weight applying group-wise scales in the main loop")
    int_kernel_overhead_ops: float = Field(ge=0, description="per-weight work of deployed intN kernels beyond "
                                           "the conversion count")

    token_norm_bytes_per_core_clock: float | None = Field(
        None, gt=0, description="a serving engine's per-token norm kernel (one block per token, element-wide "
        "loads): most DRAM bytes it moves per core per clock; None: no cap")
    token_rope_bytes_per_core_clock: float | None = Field(
        None, gt=0, description="the same for its rotary-embedding kernel")
    token_act_bytes_per_core_clock: float | None = Field(
        None, gt=0, description="the same for its gated-activation (SiLU-and-mul) kernel")

    def with_overrides(self, overrides: dict[str, float] | None) -> "KernelConstants":
        """A copy with some constants replaced (validated: one-line error naming the field)."""
        if not overrides:
            return self
        from tapeout import specio

        unknown = sorted(set(overrides) - set(type(self).model_fields))
        if unknown:
            raise TapeoutError(f"unknown fields {unknown}; allowed: {', '.join(type(self).model_fields)}",
                               field="kernel_constants")
        return specio.build(KernelConstants, {**self.model_dump(), **overrides}, origin="kernel_constants")


@functools.cache
def kernel_constants() -> KernelConstants:
    """The stored technique kernel constants."""
    f = load("kernels")
    vals: dict[str, float] = {}
    for subject in f.subjects:
        vals.update(f.values(subject))
    try:
        return KernelConstants(**vals)
    except ValidationError as exc:
        from tapeout.specio import validation_message

        raise TapeoutError(f"fitted/kernels.toml: {validation_message(exc)}", field="fitted") from None


def harness_overheads() -> dict[str, dict[str, dict[str, float]]]:
    """harness -> device -> op family -> host time per op, µs (subjects are harnesses, fits devices)."""
    f = load("harness")
    return {harness: {device: dict(fit.values) for device, fit in fits.items()}
            for harness, fits in f.subjects.items()}


def cost_coefficients() -> dict[str, tuple[float, str]]:
    """Area-model coefficient -> (value at N7, provenance)."""
    f = load("cost")
    out: dict[str, tuple[float, str]] = {}
    for subject, fits in f.subjects.items():
        for fit in fits.values():
            for k, v in fit.values.items():
                out[k] = (v, f"{fit.method} (tapeout fit, fitted/cost.toml [{subject}])")
    return out


__all__ = ["DEFAULT", "FITTED_ENV", "KINDS", "Fit", "KernelConstants", "StoreFile", "cost_coefficients",
           "framework_values", "harness_overheads", "kernel_constants", "load", "parse", "path", "reload",
           "roofline_efficiency", "store_dir", "tiled_default", "tiled_microarch"]
