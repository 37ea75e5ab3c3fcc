"""Die area per component at a process node, from a device's micro-architecture.

    die = cores x core + L2 + on-chip network + memory PHY + memory controller
          + link PHY + link controller + other
    core = overhead + matrix units + vector lanes + SRAM (register file + shared memory / L1)

Each coefficient (``cost/data/area.toml``) is an area at N7 and scales with the logic, SRAM or
analog density gain of the target node. The physical die (all cores, the whole L2, every memory
PHY and link lane, FP64 and INT32 units) comes from ``cost/data/dies.toml`` for known dies, or
from the device spec itself (a new design has no disabled units).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from tapeout.cost.assumptions import Assumptions
from tapeout.errors import TapeoutError
from tapeout.hardware.spec import HardwareSpec

#: matrix formats that run on the wide (FP32/FP64) datapath rather than the narrow array
WIDE_FORMATS = ("fp32_matrix", "fp32", "fp64")
COMPONENTS = ("cores", "on_chip_network", "l2", "memory_phy", "memory_controller", "link_phy",
              "link_controller", "other")


@dataclass(frozen=True)
class DieSpec:
    """The physical die the area model prices (counts include disabled units)."""

    name: str
    node: str  # node table key, e.g. "N7"
    cores: int
    l2_mb: float
    memory_kind: str  # memory table key
    memory_phys: int
    link_lanes: int
    fp64_matrix_macs_per_core: float = 0.0
    fp64_lanes_per_core: float = 0.0
    int32_lanes_per_core: float = 0.0
    enabled_cores: int | None = None  # cores the product enables (yield: spares = cores - enabled)
    measured_die_area_mm2: float | None = None
    source: str = ""
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def spare_cores(self) -> int:
        return max(0, self.cores - (self.enabled_cores or self.cores))


@dataclass(frozen=True)
class CoreContent:
    """What one core holds, in area-model units."""

    narrow_units: float  # fp16-equivalent MACs of the narrow matrix datapath
    wide_units: float  # FP64-class units: max(fp32_matrix, fp64 matrix) MACs + fp64 vector lanes
    fp32_lanes: float
    int32_lanes: float
    register_kb: float
    shared_l1_kb: float


@dataclass(frozen=True)
class AreaBreakdown:
    die: DieSpec
    core: CoreContent
    components: dict[str, float]  # mm2 per COMPONENTS key
    core_components: dict[str, float]  # mm2 of ONE core
    node: str

    @property
    def area_mm2(self) -> float:
        return sum(self.components.values())

    @property
    def core_mm2(self) -> float:
        return sum(self.core_components.values())

    def to_dict(self) -> dict[str, Any]:
        d = self.die
        return {
            "area_mm2": self.area_mm2,
            "components_mm2": dict(self.components),
            "core_mm2": self.core_mm2,
            "core_components_mm2": dict(self.core_components),
            "die": {
                "name": d.name, "node": d.node, "cores": d.cores, "enabled_cores": d.enabled_cores,
                "l2_mb": d.l2_mb, "memory_kind": d.memory_kind, "memory_phys": d.memory_phys,
                "link_lanes": d.link_lanes, "fp64_matrix_macs_per_core": d.fp64_matrix_macs_per_core,
                "fp64_lanes_per_core": d.fp64_lanes_per_core, "int32_lanes_per_core": d.int32_lanes_per_core,
                "measured_die_area_mm2": d.measured_die_area_mm2, "source": d.source,
            },
        }


# ---- the die a device is built on --------------------------------------------------------------
def memory_interfaces(hw: HardwareSpec, a: Assumptions, key: str | None = None) -> int:
    """HBM stacks / DRAM channels / GDDR devices / CXL lanes of the device's memory."""
    if hw.memory.interfaces is not None:
        return hw.memory.interfaces
    m = a.memory(key or a.memory_key(hw.memory.kind))
    by_bw = math.ceil(hw.memory.bandwidth_gbps / float(m["interface_gbps"]) - 1e-9)
    by_cap = math.ceil(hw.memory.capacity_gb / float(m["interface_gb"]) - 1e-9)
    return max(1, by_bw, by_cap)


def link_lanes(hw: HardwareSpec, a: Assumptions) -> int:
    """SerDes lanes per direction of the scale-up link plus a x16 host PCIe port."""
    lanes = 0
    ic = hw.interconnect
    if ic is not None and ic.topology != "pcie":
        if ic.lanes_per_direction is not None:
            lanes += ic.lanes_per_direction
        else:
            lanes += math.ceil(ic.bandwidth_gbps_per_direction * 8 / float(a.link(ic.kind)["lane_gbps"]) - 1e-9)
    if hw.pcie_gbps_per_direction or (ic is not None and ic.topology == "pcie"):
        lanes += 16
    return lanes


def die_for(hw: HardwareSpec, a: Assumptions) -> DieSpec:
    """The physical die of ``hw``: dies.toml for known dies, else the device spec itself."""
    if hw.microarch is None:
        raise TapeoutError(f"{hw.name} has no micro-architecture description; the area model needs one",
                           field="microarch")
    entry = a.die_entry(hw.name)
    if entry is not None and "multi_die" in entry[1]:
        raise TapeoutError(f"{hw.name} is several compute dies in one package ({entry[1]['multi_die']}); the area model "
                           "describes one die: give the package a datasheet die area, or price one die", field="microarch")
    if entry is not None:
        name, e = entry
        return DieSpec(
            name=name, node=a.node_key(str(e["process_node"])), cores=int(e["cores"]), l2_mb=float(e["l2_mb"]),
            memory_kind=a.memory_key(str(e.get("memory_kind", hw.memory.kind))), memory_phys=int(e["memory_phys"]),
            link_lanes=int(e["link_lanes"]), fp64_matrix_macs_per_core=float(e.get("fp64_matrix_macs_per_core", 0)),
            fp64_lanes_per_core=float(e.get("fp64_lanes_per_core", 0)),
            int32_lanes_per_core=float(e.get("int32_lanes_per_core", 0)), enabled_cores=hw.microarch.cores,
            measured_die_area_mm2=e.get("measured_die_area_mm2"), source=f"cost/data/dies.toml [{name}]",
            sources=dict(e.get("sources", {})),
        )
    if not hw.process_node:
        raise TapeoutError(f"{hw.name} has no process_node; the area model needs one", field="process_node")
    mkey = a.memory_key(hw.memory.kind)
    ua = hw.microarch
    return DieSpec(
        name=hw.name, node=a.node_key(hw.process_node), cores=ua.cores, l2_mb=ua.l2_mb, memory_kind=mkey,
        memory_phys=memory_interfaces(hw, a, mkey), link_lanes=link_lanes(hw, a), enabled_cores=ua.cores,
        source="derived from the device spec: every unit enabled; no FP64/INT32 units beyond the micro-architecture",
    )


def core_content(hw: HardwareSpec, die: DieSpec, a: Assumptions) -> CoreContent:
    ua = hw.microarch
    if ua is None:  # pragma: no cover - die_for guards
        raise TapeoutError(f"{hw.name} has no micro-architecture description", field="microarch")
    narrow = 0.0
    wide_matrix = die.fp64_matrix_macs_per_core
    for fmt, macs in ua.matrix.macs_per_clock.items():
        if fmt in WIDE_FORMATS:
            wide_matrix = max(wide_matrix, macs)
            continue
        w = a.relative_area(fmt)
        if w is None:
            raise TapeoutError(f"matrix format {fmt!r} has no relative area (area.relative_area)",
                               field="microarch.matrix.macs_per_clock")
        narrow = max(narrow, macs * w)
    smem = ua.shared_memory_kb_per_core
    l1 = ua.l1_kb_per_core or 0.0
    # NVIDIA states L1 and shared memory as one combined array (l1 >= shared); AMD as separate ones
    shared_l1 = l1 if l1 >= smem else smem + l1
    return CoreContent(narrow_units=narrow, wide_units=wide_matrix + die.fp64_lanes_per_core,
                       fp32_lanes=ua.vector.fp32_lanes_per_core, int32_lanes=die.int32_lanes_per_core,
                       register_kb=ua.registers_kb_per_core, shared_l1_kb=shared_l1)


# ---- the model ---------------------------------------------------------------------------------
def scale(a: Assumptions, node: str, kind: str) -> float:
    """Area multiplier from N7 to ``node`` for logic / sram / analog area."""
    entry = a.node_area(node)
    if kind == "logic" and a.data["area"].get("gain_basis") == "products" and "logic_gain_products" in entry:
        return 1.0 / float(entry["logic_gain_products"])
    return 1.0 / float(entry[f"{kind}_gain"])


def _c(a: Assumptions, name: str, node: str) -> float:
    v, kind = a.coefficient(name)
    return v * scale(a, node, kind)


def core_area(c: CoreContent, node: str, a: Assumptions) -> dict[str, float]:
    mac = _c(a, "matrix_mac", node)
    sram = _c(a, "core_sram_per_mib", node)
    w64 = a.relative_area("fp64") or 0.0
    w32 = a.relative_area("fp32_lane") or 0.0
    wi = a.relative_area("int32_lane") or 0.0
    return {
        "matrix_units": mac * c.narrow_units,
        "fp64_units": mac * w64 * c.wide_units,
        "vector_lanes": mac * (w32 * c.fp32_lanes + wi * c.int32_lanes),
        "register_file": sram * c.register_kb / 1024,
        "shared_memory_l1": sram * c.shared_l1_kb / 1024,
        "overhead": _c(a, "core_overhead", node),
    }


def breakdown(hw: HardwareSpec, a: Assumptions | None = None, die: DieSpec | None = None) -> AreaBreakdown:
    """Per-component area of ``hw``'s die (``die`` overrides the physical die)."""
    a = a or Assumptions.load()
    die = die or die_for(hw, a)
    c = core_content(hw, die, a)
    n = die.node
    core = core_area(c, n, a)
    mem = a.memory(die.memory_kind)
    comps = {
        "cores": die.cores * sum(core.values()),
        "on_chip_network": die.cores * _c(a, "noc_per_core", n) + die.l2_mb * _c(a, "noc_per_l2_mib", n),
        "l2": _c(a, "l2_fixed", n) + die.l2_mb * _c(a, "l2_per_mib", n),
        "memory_phy": die.memory_phys * float(mem["phy_mm2"]) * scale(a, n, "analog"),
        "memory_controller": die.memory_phys * float(mem["ctrl_mm2"]) * scale(a, n, "logic"),
        "link_phy": die.link_lanes * _c(a, "link_lane_phy", n),
        "link_controller": die.link_lanes * _c(a, "link_lane_ctrl", n),
        "other": _c(a, "uncore_fixed", n),
    }
    return AreaBreakdown(die=die, core=c, components=comps, core_components=core, node=n)


def shoreline_mm(die: DieSpec, area_mm2: float, a: Assumptions) -> tuple[float, float]:
    """(edge the memory and link PHYs need, usable edge of a square die of ``area_mm2``), mm."""
    sh = a.data["area"]["shoreline"]
    need = die.memory_phys * float(a.memory(die.memory_kind).get("edge_mm", 0.0))
    need += die.link_lanes * float(sh["link_lane_edge_mm"])
    return need, float(sh["usable_fraction"]) * 4 * math.sqrt(area_mm2)


def with_physical(die: DieSpec, **changes: Any) -> DieSpec:
    return replace(die, **changes)


__all__ = ["AreaBreakdown", "COMPONENTS", "CoreContent", "DieSpec", "breakdown", "core_area", "core_content",
           "die_for", "link_lanes", "memory_interfaces", "scale", "shoreline_mm"]
