"""Fit the area model's calibrated coefficients on the measured GA100 and Aldebaran areas.

    python -m tapeout.cost.calibrate [--shared PATH]

reads ``llmcompass/ae/figure6/real_hardware/die_area.csv`` and
``llmcompass/extracted_from_code/core_area_mm2.csv`` under the shared reference data, solves for
the coefficients marked *calibrated* in ``cost/data/area.toml`` and ``cost/data/memory.toml``
(HBM2e PHY / controller) and prints them with the per-component fit. Literature constants (node
density gains, relative datapath areas) are inputs, never fitted. The committed coefficients are
the output of this script; tests/test_cost_area.py re-runs it and checks they agree.
"""

from __future__ import annotations

import copy
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tapeout.cost import area as am
from tapeout.cost.assumptions import Assumptions
from tapeout.errors import TapeoutError
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


def main(argv: list[str] | None = None) -> int:
    import argparse

    from tapeout.datadir import DATA_HELP

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", help=DATA_HELP)
    args = ap.parse_args(argv)
    a = Assumptions.load()
    coef = fit(a, shared=args.shared)
    print("calibrated coefficients (area at N7):")
    for k, v in coef.items():
        committed = (a.coefficient(k)[0] if not k.startswith("hbm_")
                     else float(a.memory("HBM2e")["phy_mm2" if k == "hbm_phy_mm2" else "ctrl_mm2"]))
        print(f"  {k:20s} {v:12.6g}   committed {committed:12.6g}")
    fitted = with_coefficients(a, coef)
    for d, r in report(fitted, shared=args.shared).items():
        t = r["total"]
        print(f"\n{d}: model {t['model']:.1f} mm2 vs annotated {t['annotated_sum']:.1f} "
              f"({t['error_vs_annotated']:+.2%}), measured {t['measured']} ({t['error_vs_measured']:+.2%})")
        print(f"  core: model {r['core']['model']:.3f} vs measured {r['core']['measured']:.3f} mm2")
        for k, v in r["components"].items():
            print(f"  {k:18s} model {v['model']:8.2f}  measured {v['measured']:8.2f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
