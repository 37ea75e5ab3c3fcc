"""Device cost: dies per wafer, yield, die cost, memory, packaging, board; power and operating cost;
performance per dollar and dollars per million tokens.

    die_cost    = wafer price / (gross dies per wafer x yield)
    packaged    = (die_cost + memory + interposer/substrate/assembly) / package yield
    device_cost = (packaged + board) / (1 - vendor gross margin)     (margin 0 by default)
    $/h         = device_cost / (lifetime x utilization) + power x PUE x energy price
    $/Mtok      = $/h / (tokens/s x 3600) x 1e6

Every number comes from :class:`~tapeout.cost.assumptions.Assumptions` and is listed, with its
source, in :meth:`CostReport.to_dict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tapeout.cost import area as am
from tapeout.cost.assumptions import Assumptions
from tapeout.errors import TapeoutError
from tapeout.hardware.spec import HardwareSpec

HOURS_PER_YEAR = 8766.0
YIELD_MODELS = ("murphy", "poisson", "seeds", "negative_binomial")


# ---- wafer geometry and yield -------------------------------------------------------------------
def dies_per_wafer(area_mm2: float, a: Assumptions) -> float:
    """Gross dies per wafer: pi (d/2)^2 / A - pi d / sqrt(2 A), d = usable diameter, A incl. scribe."""
    w = a.price("wafer")
    d = float(w["diameter_mm"]) - 2 * float(w["edge_exclusion_mm"])
    if d <= 0:
        raise TapeoutError(f"the edge exclusion ({w['edge_exclusion_mm']} mm) leaves no usable area on a "
                           f"{w['diameter_mm']} mm wafer", field="assumptions.price.wafer")
    if not area_mm2 > 0:
        raise TapeoutError(f"die area {area_mm2:g} mm2: the area model gives no positive area", field="area_mm2")
    side = math.sqrt(area_mm2) + float(w["scribe_mm"])
    A = side * side
    return max(0.0, math.pi * (d / 2) ** 2 / A - math.pi * d / math.sqrt(2 * A))


def yield_fraction(area_mm2: float, d0_per_cm2: float, model: str, alpha: float = 3.0) -> float:
    """Fraction of good dies of ``area_mm2`` at defect density ``d0_per_cm2`` under ``model``."""
    ad = area_mm2 / 100.0 * d0_per_cm2
    if ad <= 0:
        return 1.0
    if model == "murphy":  # expm1: 1 - exp(-ad) loses every digit for tiny ad (a yield above 1)
        return (-math.expm1(-ad) / ad) ** 2
    if model == "poisson":
        return math.exp(-ad)
    if model == "seeds":
        return 1 / (1 + ad)
    if model == "negative_binomial":
        return (1 + ad / alpha) ** (-alpha)
    raise TapeoutError(f"unknown yield model {model!r}; allowed: {', '.join(YIELD_MODELS)}",
                       field="assumptions.price.yield.model")


def harvested_yield(total_mm2: float, core_mm2: float, cores: int, spares: int, d0: float, model: str,
                    alpha: float) -> float:
    """Yield of a die that sells with up to ``spares`` defective cores.

    The non-core area must be defect-free (``model``); each core fails independently with the
    Poisson probability 1 - exp(-A_core D0), and at most ``spares`` may fail (binomial).
    """
    if spares <= 0:
        return yield_fraction(total_mm2, d0, model, alpha)
    rest = yield_fraction(max(total_mm2 - cores * core_mm2, 0.0), d0, model, alpha)
    p = 1 - math.exp(-core_mm2 / 100.0 * d0)
    ok = sum(math.comb(cores, k) * p**k * (1 - p) ** (cores - k) for k in range(min(spares, cores) + 1))
    return rest * ok


# ---- power ---------------------------------------------------------------------------------------
def _matrix16_flops(hw: HardwareSpec) -> float:
    return max(hw.peak_tflops.get("fp16", 0.0), hw.peak_tflops.get("bf16", 0.0)) * 1e12


def modelled_power_w(hw: HardwareSpec, area_mm2: float, node: str, a: Assumptions) -> dict[str, float]:
    """TDP-like power of a design at full activity, per term (W)."""
    p = a.price("power")
    node_e = float(p["node_energy"].get(node, 1.0))
    mem = a.memory(a.memory_key(hw.memory.kind))
    link_bits = 0.0
    if hw.interconnect is not None and hw.interconnect.topology != "pcie":
        link_bits = 2 * hw.interconnect.bandwidth_gbps_per_direction * 8e9
    terms = {
        "static": float(p["static_w_per_mm2"]) * area_mm2,
        "compute": float(p["compute_pj_per_flop_n7"]) * 1e-12 * node_e * _matrix16_flops(hw),
        "memory": float(mem["energy_pj_per_bit"]) * 1e-12 * hw.memory.bandwidth_gbps * 8e9,
        "links": float(p["link_pj_per_bit"]) * 1e-12 * link_bits,
    }
    terms["total"] = sum(terms.values())
    return terms


# ---- the report ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CostReport:
    hardware: str
    node: str
    area_mm2: float
    area_source: str
    estimate_note: str | None
    breakdown: am.AreaBreakdown | None
    dies_per_wafer: float
    yield_fraction: float
    die_cost_usd: float
    memory_cost_usd: float
    packaging_cost_usd: float
    board_cost_usd: float
    device_cost_usd: float
    power_w: float
    power_source: str
    power_terms_w: dict[str, float]
    capex_usd_per_hour: float
    opex_usd_per_hour: float
    assumptions: dict[str, Any] = field(repr=False)

    @property
    def usd_per_hour(self) -> float:
        return self.capex_usd_per_hour + self.opex_usd_per_hour

    def usd_per_mtok(self, tokens_per_s: float) -> float:
        """Dollars per million generated tokens at ``tokens_per_s`` per device."""
        return math.inf if tokens_per_s <= 0 else self.usd_per_hour / (tokens_per_s * 3600) * 1e6

    def perf_per_dollar(self, tokens_per_s: float) -> float:
        """Tokens/s per dollar of device cost."""
        return tokens_per_s / self.device_cost_usd

    def perf_per_watt(self, tokens_per_s: float) -> float:
        return tokens_per_s / self.power_w

    def to_dict(self) -> dict[str, Any]:
        b = self.breakdown
        return {
            "hardware": self.hardware,
            "node": self.node,
            "area_mm2": self.area_mm2,
            "area_source": self.area_source,
            "estimate_note": self.estimate_note,
            "components_mm2": dict(b.components) if b else {},
            "core_mm2": b.core_mm2 if b else None,
            "core_components_mm2": dict(b.core_components) if b else {},
            "die": b.to_dict()["die"] if b else None,
            "dies_per_wafer": self.dies_per_wafer,
            "yield": self.yield_fraction,
            "die_cost_usd": self.die_cost_usd,
            "memory_cost_usd": self.memory_cost_usd,
            "packaging_cost_usd": self.packaging_cost_usd,
            "board_cost_usd": self.board_cost_usd,
            "device_cost_usd": self.device_cost_usd,
            "power_w": self.power_w,
            "power_source": self.power_source,
            "power_model_w": dict(self.power_terms_w),
            "capex_usd_per_hour": self.capex_usd_per_hour,
            "opex_usd_per_hour": self.opex_usd_per_hour,
            "usd_per_hour": self.usd_per_hour,
            "assumptions": self.assumptions,
        }


def _strip(d: dict[str, Any], keys: tuple[str, ...] = ("match",)) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


def estimate(hw: HardwareSpec, assumptions: Assumptions | dict | str | None = None, *,
             die: am.DieSpec | None = None, breakdown: am.AreaBreakdown | None = None) -> CostReport:
    """Area, die cost, device cost, power and hourly cost of ``hw``.

    With a micro-architecture the area comes from the component model; without one, from the
    datasheet ``die_area_mm2`` (flagged: no component breakdown); with neither, an error.
    """
    a = assumptions if isinstance(assumptions, Assumptions) else Assumptions.load(assumptions)
    note = None
    if hw.microarch is not None:
        b = breakdown or am.breakdown(hw, a, die)
        area, node, src = b.area_mm2, b.node, "model"
        core_mm2, cores, spares = b.core_mm2, b.die.cores, b.die.spare_cores
    else:
        if hw.die_area_mm2 is None:
            raise TapeoutError(f"{hw.name} has neither a micro-architecture description nor a datasheet die area",
                               field="microarch")
        if not hw.process_node:
            raise TapeoutError(f"{hw.name} has no process_node", field="process_node")
        b, area, node, src = None, float(hw.die_area_mm2), a.node_key(hw.process_node), "datasheet"
        core_mm2, cores, spares = 0.0, 0, 0
        note = ("datasheet die area: no micro-architecture description, so no per-component breakdown; "
                "yield assumes the whole die must be defect-free")
    np_ = a.node_price(node)
    y = a.price("yield")
    model = str(y["model"])
    dpw = dies_per_wafer(area, a)
    if dpw < 1:
        raise TapeoutError(f"die of {area:.0f} mm2 does not fit a wafer", field="area_mm2")
    d0 = float(np_["d0_per_cm2"])
    yf = harvested_yield(area, core_mm2, cores, spares, d0, model, float(y["negative_binomial_alpha"]))
    if not yf > 1e-12:  # beyond this no die is ever good: the die cost has no meaning
        raise TapeoutError(f"defect density {d0:g} per cm2 leaves no good {area:.0f} mm2 die (yield {yf:.3g} "
                           f"under the {model} model); lower d0_per_cm2", field=f"assumptions.price.nodes.{node}")
    die_cost = float(np_["wafer_usd"]) / (dpw * yf)
    mkey = a.memory_key(hw.memory.kind)
    mem = a.memory(mkey)
    n_if = am.memory_interfaces(hw, a, mkey)  # stacks / channels in use (PHYs may be more)
    memory_cost = hw.memory.capacity_gb * float(mem["usd_per_gb"]) + n_if * float(mem.get("module_usd_per_interface", 0))
    pk = a.price("packaging")
    if mem.get("interposer"):
        interposer = float(pk["interposer_margin"]) * (area + n_if * float(pk["hbm_footprint_mm2"]))
        packaging = interposer * float(pk["interposer_usd_per_mm2"]) + float(pk["assembly_usd"]) + float(pk["substrate_usd"])
    else:
        packaging = float(pk["flipchip_usd"])
    packaged = (die_cost + memory_cost + packaging) / float(pk["package_yield"])
    terms = modelled_power_w(hw, area, node, a)
    if hw.tdp_w is not None:
        power, psrc = float(hw.tdp_w), "datasheet tdp_w"
    else:
        power, psrc = terms["total"], "power model (cost/data/price.toml [power])"
    bd = a.price("board")
    board = float(bd["base_usd"]) + float(bd["usd_per_w"]) * power
    margin = float(a.price("margin", "vendor_gross_margin"))
    device_cost = (packaged + board) / (1 - margin)
    ops = a.price("operations")
    life_h = float(ops["lifetime_years"]) * HOURS_PER_YEAR * float(ops["utilization"])
    capex_h = device_cost / life_h
    opex_h = power * float(ops["power_fraction"]) * float(ops["pue"]) / 1000 * float(ops["energy_usd_per_kwh"])
    used = {
        "node": {"key": node, **_strip(a.node_area(node)), "price": dict(np_)},
        "wafer": dict(a.price("wafer")),
        "yield": {**dict(y), "spare_cores": spares, "d0_per_cm2": float(np_["d0_per_cm2"])},
        "memory": {"kind": mkey, "interfaces": n_if, **_strip(mem)},
        "packaging": dict(pk),
        "board": dict(bd),
        "margin": dict(a.price("margin")),
        "power": {k: v for k, v in a.price("power").items()},
        "operations": dict(ops),
        "overridden": list(a.overridden),
    }
    if b is not None:
        used["area_die"] = {"source": b.die.source, "sources": dict(b.die.sources)}
        used["area_coefficients"] = {k: dict(v) for k, v in a.data["area"]["coefficients"].items()}
        used["area_gain_basis"] = a.data["area"].get("gain_basis", "published")
    return CostReport(
        hardware=hw.name, node=node, area_mm2=area, area_source=src, estimate_note=note, breakdown=b,
        dies_per_wafer=dpw, yield_fraction=yf, die_cost_usd=die_cost, memory_cost_usd=memory_cost,
        packaging_cost_usd=packaging, board_cost_usd=board, device_cost_usd=device_cost, power_w=power,
        power_source=psrc, power_terms_w=terms, capex_usd_per_hour=capex_h, opex_usd_per_hour=opex_h,
        assumptions=used,
    )


__all__ = ["CostReport", "YIELD_MODELS", "dies_per_wafer", "estimate", "harvested_yield", "modelled_power_w",
           "yield_fraction"]
