"""Fit the area model's calibrated coefficients on the measured GA100 and Aldebaran areas (``tapeout fit``,
step ``cost``; written to ``fitted/cost.toml``).

Reads ``llmcompass/ae/figure6/real_hardware/die_area.csv`` and
``llmcompass/extracted_from_code/core_area_mm2.csv`` under the shared reference data and solves for
the coefficients the area model calls *calibrated* (``cost/data/area.toml`` holds their units and what
scales them; the HBM PHY / controller areas apply to every HBM kind of ``cost/data/memory.toml``).
Literature constants (node density gains, relative datapath areas) are inputs, never fitted.
``tapeout fit --only cost --report`` prints the per-component fit.
"""

from __future__ import annotations

import copy
import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tapeout.cost import area as am
from tapeout.cost.assumptions import Assumptions
from tapeout.errors import TapeoutError
from tapeout.fit import store
from tapeout.fitted import StoreFile
from tapeout.hardware.spec import HardwareSpec

#: row order of die_area.csv (shared/reference-data/llmcompass/README.md)
ROWS = ("cores", "on_chip_network", "l2", "memory_phy", "memory_controller", "link_phy", "link_controller",
        "other")
DIES = ("GA100", "Aldebaran")  # die_area.csv columns: A100 (GA100), MI210 (Aldebaran)


def shared_dir(explicit: str | Path | None = None) -> Path:
    """The reference-data directory: the argument, else the default of :mod:`tapeout.datadir`."""
    from tapeout.datadir import DATA_ENV, resolve_data_dir

    d = resolve_data_dir(explicit or None)
    if not (d / "llmcompass").is_dir():
        raise TapeoutError(f"no llmcompass/ folder under {str(d)!r}; pass --shared or set {DATA_ENV}", field="shared")
    return d


@dataclass(frozen=True)
class Measured:
    rows: dict[str, dict[str, float]]  # die -> row -> mm2
    core_mm2: dict[str, float]  # die -> mm2 of one core

    def total(self, die: str) -> float:
        return sum(self.rows[die].values())


def measured(shared: str | Path | None = None) -> Measured:
    base = shared_dir(shared) / "llmcompass"
    rows: dict[str, dict[str, float]] = {d: {} for d in DIES}
    with open(base / "ae/figure6/real_hardware/die_area.csv", encoding="utf-8") as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
    if len(lines) != len(ROWS):
        raise TapeoutError(f"die_area.csv has {len(lines)} rows, expected {len(ROWS)}", field="die_area.csv")
    for name, line in zip(ROWS, lines):
        a, b = (float(x) for x in line.replace("\t", "").split(","))
        rows["GA100"][name], rows["Aldebaran"][name] = a, b
    core: dict[str, float] = {}
    with open(base / "extracted_from_code/core_area_mm2.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            core["GA100" if r["die"].startswith("GA100") else "Aldebaran"] = float(r["measured_core_area_mm2"])
    return Measured(rows, core)


def reference_specs(a: Assumptions, specs: dict[str, HardwareSpec] | None = None) -> dict[str, HardwareSpec]:
    """The device each calibration die is described by (its catalog micro-architecture)."""
    from tapeout.hardware.catalog import load_hardware

    out = dict(specs or {})
    for die in DIES:
        if die not in out:
            out[die] = load_hardware(a.data["dies"][die]["reference_device"])
        if out[die].microarch is None:
            raise TapeoutError(f"{out[die].name} has no micro-architecture; cannot calibrate on {die}",
                               field="microarch")
    return out


def _solve(a_rows: list[list[float]], b: list[float]) -> np.ndarray:
    return np.linalg.lstsq(np.array(a_rows, float), np.array(b, float), rcond=None)[0]


def fit(a: Assumptions | None = None, specs: dict[str, HardwareSpec] | None = None,
        shared: str | Path | None = None) -> dict[str, float]:
    """The calibrated coefficients (names of area.toml, plus ``hbm_phy_mm2`` / ``hbm_ctrl_mm2``)."""
    a = a or Assumptions.load()
    m = measured(shared)
    specs = reference_specs(a, specs)
    dies = {d: am.die_for(specs[d], a) for d in DIES}
    cont = {d: am.core_content(specs[d], dies[d], a) for d in DIES}
    L = {d: am.scale(a, dies[d].node, "logic") for d in DIES}
    S = {d: am.scale(a, dies[d].node, "sram") for d in DIES}
    A = {d: am.scale(a, dies[d].node, "analog") for d in DIES}
    R = m.rows
    # 1. L2 = L*fixed + S*MiB*per_mib (exact, 2 dies)
    f, c = _solve([[L[d], S[d] * dies[d].l2_mb] for d in DIES], [R[d]["l2"] for d in DIES])
    # 2. one core = L*(overhead + mac*units) + S*c*SRAM MiB (exact), units weighted by relative area
    w64, w32, wi = (a.relative_area(k) or 0.0 for k in ("fp64", "fp32_lane", "int32_lane"))

    def units(x: am.CoreContent) -> float:
        return x.narrow_units + w64 * x.wide_units + w32 * x.fp32_lanes + wi * x.int32_lanes

    ovh, mac = _solve([[L[d], L[d] * units(cont[d])] for d in DIES],
                      [m.core_mm2[d] - S[d] * c * (cont[d].register_kb + cont[d].shared_l1_kb) / 1024 for d in DIES])
    # 3. on-chip network = L*(per_core*cores + per_l2_mib*MiB) (exact)
    x, y = _solve([[L[d] * dies[d].cores, L[d] * dies[d].l2_mb] for d in DIES], [R[d]["on_chip_network"] for d in DIES])
    # 4. memory PHY (analog) and controller (logic) per PHY unit (least squares)
    (p,) = _solve([[A[d] * dies[d].memory_phys] for d in DIES], [R[d]["memory_phy"] for d in DIES])
    (q,) = _solve([[L[d] * dies[d].memory_phys] for d in DIES], [R[d]["memory_controller"] for d in DIES])
    # 5. link PHY per lane (least squares)
    (r,) = _solve([[A[d] * dies[d].link_lanes] for d in DIES], [R[d]["link_phy"] for d in DIES])
    # 6. link controller + other = L*(per_lane*lanes + fixed) (exact; fitted together, see area.toml)
    s, o = _solve([[L[d] * dies[d].link_lanes, L[d]] for d in DIES],
                  [R[d]["link_controller"] + R[d]["other"] for d in DIES])
    return {"l2_fixed": f, "l2_per_mib": c, "core_sram_per_mib": c, "core_overhead": ovh, "matrix_mac": mac,
            "noc_per_core": x, "noc_per_l2_mib": y, "hbm_phy_mm2": p, "hbm_ctrl_mm2": q, "link_lane_phy": r,
            "link_lane_ctrl": s, "uncore_fixed": o}


def with_coefficients(a: Assumptions, coef: dict[str, float]) -> Assumptions:
    """``a`` with the fitted coefficients in place (HBM PHY/controller for every HBM kind)."""
    data = copy.deepcopy(a.data)
    for k, v in coef.items():
        if not k.startswith("hbm_"):
            data["area"]["coefficients"][k]["value"] = float(v)
    for key, mem in data["memory"].items():
        if key.upper().startswith("HBM"):
            mem["phy_mm2"], mem["ctrl_mm2"] = float(coef["hbm_phy_mm2"]), float(coef["hbm_ctrl_mm2"])
    return Assumptions(data, a.overridden)


def report(a: Assumptions | None = None, specs: dict[str, HardwareSpec] | None = None,
           shared: str | Path | None = None) -> dict[str, dict]:
    """Per die: modelled vs measured per component and in total (with the committed coefficients)."""
    a = a or Assumptions.load()
    m = measured(shared)
    specs = reference_specs(a, specs)
    out: dict[str, dict] = {}
    for d in DIES:
        b = am.breakdown(specs[d], a)
        meas_total = b.die.measured_die_area_mm2
        out[d] = {
            "components": {k: {"model": b.components[k], "measured": m.rows[d][k]} for k in ROWS},
            "core": {"model": b.core_mm2, "measured": m.core_mm2[d]},
            "total": {"model": b.area_mm2, "annotated_sum": m.total(d), "measured": meas_total,
                      "error_vs_annotated": b.area_mm2 / m.total(d) - 1,
                      "error_vs_measured": (b.area_mm2 / meas_total - 1) if meas_total else None},
        }
    return out


COMMAND = "tapeout fit --only cost"
#: the store's entries: name -> (coefficients, method)
ENTRIES = {
    "core": (("matrix_mac", "core_overhead"),
             "calibrated: the GA100 SM (3.75 mm2) and Aldebaran CU (4.02 mm2) areas of core_area_mm2.csv, solved "
             "exactly together after subtracting core SRAM (core_sram_per_mib)"),
    "core_sram": (("core_sram_per_mib",),
                  "set equal to l2_per_mib (GPU SRAM macros incl. banking, ECC and periphery): assumption; no "
                  "per-macro measurement is in the shared data"),
    "l2": (("l2_per_mib", "l2_fixed"),
           "calibrated: the global-buffer rows of die_area.csv (GA100 48 MiB physical: 119.31 mm2; Aldebaran 8 MiB: "
           "25.2 mm2), solved exactly"),
    "noc": (("noc_per_core", "noc_per_l2_mib"),
            "calibrated: the on-chip-interconnect rows of die_area.csv (GA100 76.44 mm2 for 128 SMs / 48 MiB L2; "
            "Aldebaran 33.0 mm2 for 112 CUs / 8 MiB), solved exactly"),
    "memory_phy": (("hbm_phy_mm2", "hbm_ctrl_mm2"),
                   "calibrated (least squares) on the memory PHY/controller rows of die_area.csv over GA100's 6 and "
                   "Aldebaran's 8 HBM2e PHY units; every HBM kind takes them"),
    "link_phy": (("link_lane_phy",),
                 "calibrated (least squares): off-chip-interconnect PHY rows of die_area.csv, GA100 20.95 mm2 for 64 "
                 "lanes (12 NVLink3 links x 4 + PCIe4 x16), Aldebaran 45.52 mm2 for 128 lanes (8 Infinity Fabric links "
                 "x 16)"),
    "link_ctrl": (("link_lane_ctrl", "uncore_fixed"),
                  "calibrated: off-chip-interconnect controller + other rows of die_area.csv together (GA100 0 + 40 "
                  "mm2; Aldebaran 42 + 4 mm2), solved exactly; together because the GA100 annotation books no NVLink "
                  "controller area of its own (it sits in 'other')"),
}


def _sig(x: float) -> float:
    return float(f"{x:.5g}")


#: the measured components each entry reproduces (its residual): entry -> die_area.csv rows ("core": one core)
COMPONENTS = {"core": ("core",), "l2": ("l2",), "noc": ("on_chip_network",),
              "memory_phy": ("memory_phy", "memory_controller"), "link_phy": ("link_phy",),
              "link_ctrl": ("link_controller+other",)}
METRIC = "mean |ln(model/measured)| of the components it sets, over GA100 and Aldebaran"


def residuals(rep: dict[str, dict]) -> dict[str, float]:
    """Per store entry: :data:`METRIC` from :func:`report`'s per-die rows."""
    out: dict[str, float] = {}
    for name, comps in COMPONENTS.items():
        errs = []
        for r in rep.values():
            for c in comps:
                if c == "core":
                    model, meas = r["core"]["model"], r["core"]["measured"]
                elif "+" in c:
                    model = sum(r["components"][x]["model"] for x in c.split("+"))
                    meas = sum(r["components"][x]["measured"] for x in c.split("+"))
                else:
                    model, meas = r["components"][c]["model"], r["components"][c]["measured"]
                errs.append(abs(math.log(model / meas)))
        out[name] = sum(errs) / len(errs)
    return out


def store_file(coef: dict[str, float], resid: dict[str, float] | None = None) -> StoreFile:
    """``fitted/cost.toml``: the coefficients (5 significant digits), one entry per solve."""
    missing = set(coef) - {k for keys, _ in ENTRIES.values() for k in keys}
    if missing:
        raise ValueError(f"coefficients without a store entry: {sorted(missing)}")
    sets = ("llmcompass/ae/figure6/real_hardware/die_area.csv", "llmcompass/extracted_from_code/core_area_mm2.csv")
    resid = resid or {}
    return store.build("cost", {"area": {
        name: store.fit({k: _sig(coef[k]) for k in keys}, method, datasets=sets, rows=2, residual=resid.get(name),
                        metric=METRIC if name in resid else "", command=COMMAND)
        for name, (keys, method) in ENTRIES.items()}})
