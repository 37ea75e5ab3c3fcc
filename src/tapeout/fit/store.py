"""Writing and comparing the store's files (:mod:`tapeout.fitted`): the fit side, never the runtime's."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tapeout import fitted
from tapeout.fitted import Fit, StoreFile

#: one line per file: what it holds (the header of the written file)
HEADERS = {
    "roofline": "the roofline tier's efficiency per device (EfficiencySpec fields); [default]: devices without "
                "measurements",
    "harness": "host time per op of measurement harnesses, microseconds (validation only, never a device's)",
    "tiled": "the tiled tier's fitted micro-architecture fields per device; [default]: the MicroArch defaults",
    "frameworks": "the fitted fields of the serving-framework profiles (system/frameworks.toml defines them)",
    "kernels": "the technique kernels' constants (KernelConstants)",
    "cost": "the area model's calibrated coefficients at N7 (cost/data/area.toml: units and what scales them)",
}


def _str(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _num(v: float) -> str:
    if not math.isfinite(v):
        raise ValueError(f"non-finite fitted value {v!r}")
    return repr(float(v))


def _key(k: str) -> str:
    return k if k.replace("-", "").replace("_", "").isalnum() else _str(k)


def dump(f: StoreFile) -> str:
    """The TOML text of a store file (deterministic: subjects and fits in the order given)."""
    lines = [f"# Fitted numbers: {HEADERS.get(f.kind, f.kind)}.",
             "# Written by `tapeout fit` (src/tapeout/fit/); do not edit by hand. `tapeout fit --check` compares",
             "# these values with a re-fit. Each [subject.fit] table: its values and their provenance.",
             ""]
    for subject, fits in f.subjects.items():
        for name, fit in fits.items():
            lines.append(f"[{_key(subject)}.{_key(name)}]")
            vals = ", ".join(f"{_key(k)} = {_num(v)}" for k, v in fit.values.items())
            lines.append(f"values = {{ {vals} }}")
            if fit.datasets:
                lines.append("datasets = [" + ", ".join(_str(d) for d in fit.datasets) + "]")
            if fit.rows is not None:
                lines.append(f"rows = {int(fit.rows)}")
            if fit.residual is not None:
                lines.append(f"residual = {_num(round(fit.residual, 6))}")
                lines.append(f"metric = {_str(fit.metric)}")
            lines.append(f"method = {_str(fit.method)}")
            lines.append(f"command = {_str(fit.command)}")
            lines.append("")
    return "\n".join(lines)


def write(f: StoreFile, directory: Path | None = None) -> Path:
    p = fitted.path(f.kind, directory)
    text = dump(f)
    fitted.parse(f.kind, text, str(p))  # what is written must load
    p.write_text(text, encoding="utf-8")
    return p


def build(kind: str, subjects: dict[str, dict[str, Fit]]) -> StoreFile:
    return StoreFile(kind=kind, subjects=subjects)


def fit(values: dict[str, float], method: str, *, datasets: Any = (), rows: int | None = None,
        residual: float | None = None, metric: str = "", command: str = "tapeout fit") -> Fit:
    return Fit(values={k: float(v) for k, v in values.items()}, datasets=tuple(datasets), rows=rows,
               residual=None if residual is None else float(residual), metric=metric, method=method, command=command)


@dataclass(frozen=True)
class Difference:
    kind: str
    subject: str
    name: str
    stored: float | None
    refit: float | None

    def describe(self) -> str:
        s = "absent" if self.stored is None else f"{self.stored:g}"
        r = "absent" if self.refit is None else f"{self.refit:g}"
        return f"{self.kind}.toml [{self.subject}] {self.name}: stored {s}, re-fit {r}"


def differences(stored: StoreFile, refit: StoreFile, *, rel: float = 1e-6, abs_: float = 1e-9) -> list[Difference]:
    """Every value that is absent on one side or differs by more than the tolerance (provenance is not
    compared: it is text, and the values are what predictions read)."""
    out: list[Difference] = []
    subjects = list(dict.fromkeys([*stored.subjects, *refit.subjects]))
    for s in subjects:
        a, b = stored.values(s), refit.values(s)
        for k in dict.fromkeys([*a, *b]):
            x, y = a.get(k), b.get(k)
            if x is None or y is None or not math.isclose(x, y, rel_tol=rel, abs_tol=abs_):
                out.append(Difference(stored.kind, s, k, x, y))
    return out
