"""A design point: the base device with some micro-architecture and memory parameters replaced.

Peaks always derive from the micro-architecture (cores x MACs/clock x 2 x clock), so
``peak_tflops`` stays consistent with :meth:`MicroArch.peak_tflops`. Formats other than fp16 keep
their base ratio to fp16 (A100: bf16 1x, tf32 1/2, int8 2x, int4 4x). The physical die is the
design itself (every unit enabled) with the base die's FP64 / INT32 units unless ``fp64 = false``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from tapeout.cost import area as am
from tapeout.cost.assumptions import Assumptions
from tapeout.hardware.microarch import MicroArch
from tapeout.hardware.spec import PEAK_KEYS, HardwareSpec


@dataclass(frozen=True)
class Design:
    hardware: HardwareSpec
    die: am.DieSpec
    violations: tuple[str, ...] = ()  # parameter combinations that cannot be built
    derived: dict[str, Any] = field(default_factory=dict)


def _fp16_macs(ua: MicroArch) -> float:
    m = ua.matrix.macs_per_clock
    return float(m.get("fp16") or m.get("bf16") or max(m.values()))


def memory_choice(params: dict[str, Any], base: HardwareSpec, a: Assumptions) -> tuple[dict[str, Any], list[str]]:
    """(kind key, interfaces, bandwidth_gbps, capacity_gb) of the design's memory, and violations."""
    problems: list[str] = []
    if "memory" in params:
        choice = dict(params["memory"])
    else:
        choice = {k[len("memory_"):]: v for k, v in params.items() if k.startswith("memory_")}
    if not choice:
        key = a.memory_key(base.memory.kind)
        return {"kind": key, "interfaces": am.memory_interfaces(base, a, key),
                "bandwidth_gbps": base.memory.bandwidth_gbps, "capacity_gb": base.memory.capacity_gb}, problems
    key = a.memory_key(str(choice.get("kind", base.memory.kind)))
    m = a.memory(key)
    per_bw, per_cap, max_cap = float(m["interface_gbps"]), float(m["interface_gb"]), float(m["interface_max_gb"])
    n = choice.get("interfaces")
    bw = choice.get("bandwidth_gbps")
    cap = choice.get("capacity_gb")
    if n is None:
        need = [1]
        if bw is not None:
            need.append(math.ceil(bw / per_bw - 1e-9))
        if cap is not None:
            need.append(math.ceil(cap / max_cap - 1e-9))
        if bw is None and cap is None:
            need.append(am.memory_interfaces(base, a, a.memory_key(base.memory.kind)))
        n = max(need)
    n = int(n)
    if bw is None:
        bw = n * per_bw
    if cap is None:
        cap = n * per_cap
    if bw > n * per_bw * (1 + 1e-9):
        problems.append(f"memory bandwidth {bw:g} GB/s exceeds {n} x {per_bw:g} GB/s of {key}")
    if cap > n * max_cap * (1 + 1e-9):
        problems.append(f"memory capacity {cap:g} GB exceeds {n} x {max_cap:g} GB of {key}")
    return {"kind": key, "interfaces": n, "bandwidth_gbps": float(bw), "capacity_gb": float(cap)}, problems


def build(base: HardwareSpec, base_die: am.DieSpec, params: dict[str, Any], a: Assumptions,
          name: str = "design") -> Design:
    """The design ``params`` describe, derived from ``base`` (which must have a micro-architecture)."""
    ua = base.microarch
    assert ua is not None
    ud = ua.model_dump()
    cores = int(params.get("cores", ua.cores))
    clock = float(params.get("clock_mhz", ua.clock_mhz))
    base16 = _fp16_macs(ua)
    units = int(params.get("matrix_units_per_core", ua.matrix.units_per_core))
    if "macs_per_core" in params:
        new16 = float(params["macs_per_core"])
    elif "matrix_unit_dim" in params:
        new16 = float(units * params["matrix_unit_dim"] ** 2)
    elif "matrix_units_per_core" in params:
        new16 = base16 * units / ua.matrix.units_per_core
    else:
        new16 = base16
    ratio = new16 / base16
    ud["cores"] = cores
    ud["clock_mhz"] = clock
    if ua.vector_clock_mhz:
        ud["vector_clock_mhz"] = ua.vector_clock_mhz * clock / ua.clock_mhz
    ud["matrix"]["units_per_core"] = units
    ud["matrix"]["macs_per_clock"] = {f: v * ratio for f, v in ua.matrix.macs_per_clock.items()}
    if "vector_lanes_per_core" in params:
        ud["vector"]["fp32_lanes_per_core"] = int(params["vector_lanes_per_core"])
    if "registers_kb_per_core" in params:
        ud["registers_kb_per_core"] = float(params["registers_kb_per_core"])
    if "shared_memory_kb_per_core" in params:
        smem = float(params["shared_memory_kb_per_core"])
        ud["shared_memory_kb_per_core"] = smem
        if ua.l1_kb_per_core is not None:  # keep the L1-only part (NVIDIA: combined minus shared; AMD: separate)
            l1_only = ua.l1_kb_per_core - ua.shared_memory_kb_per_core if ua.l1_kb_per_core >= ua.shared_memory_kb_per_core \
                else None
            ud["l1_kb_per_core"] = smem + l1_only if l1_only is not None else ua.l1_kb_per_core
    if "l2_mb" in params:
        ud["l2_mb"] = float(params["l2_mb"])
    if ua.l2_bandwidth_gbps is not None:
        ud["l2_bandwidth_gbps"] = ua.l2_bandwidth_gbps * (cores * clock) / (ua.cores * ua.clock_mhz)
    new_ua = MicroArch.model_validate(ud)

    peaks = {f: new_ua.peak_tflops(f) for f in new_ua.matrix.macs_per_clock if f in PEAK_KEYS}
    peaks["fp32"] = new_ua.vector_tflops()
    peaks = {k: float(v) for k, v in peaks.items() if v}
    sparse = {k: v * peaks[k] / base.peak_tflops[k] for k, v in base.sparse_peak_tflops.items()
              if k in peaks and k in base.peak_tflops}

    mem, problems = memory_choice(params, base, a)
    hd = base.model_dump(exclude={"microarch"})
    hd["memory"] = {"kind": mem["kind"], "capacity_gb": mem["capacity_gb"], "bandwidth_gbps": mem["bandwidth_gbps"],
                    "interfaces": mem["interfaces"]}
    if "interconnect_gbps" in params and hd.get("interconnect") is not None:
        hd["interconnect"] = {**hd["interconnect"], "bandwidth_gbps_per_direction": float(params["interconnect_gbps"]),
                              "links": None, "lanes_per_direction": None}
    node = a.node_key(str(params["process_node"])) if "process_node" in params else base_die.node
    fp64 = bool(params.get("fp64", True))
    hd.update(
        name=name, display_name=f"design from {base.name}", aliases=(), process_node=node, sm_count=cores,
        boost_clock_mhz=new_ua.vector_clock_mhz or clock, l2_cache_mb=new_ua.l2_mb, peak_tflops=peaks,
        sparse_peak_tflops=sparse, price_usd=None, tdp_w=None, die_area_mm2=None,
        sources={"design": f"tapeout explore: {base.name} with {params}"}, notes="",
    )
    hw = HardwareSpec.model_validate({**hd, "microarch": new_ua})
    die = am.DieSpec(
        name=name, node=node, cores=cores + int(params.get("spare_cores", 0)), l2_mb=new_ua.l2_mb, memory_kind=mem["kind"], memory_phys=mem["interfaces"],
        link_lanes=am.link_lanes(hw, a),
        fp64_matrix_macs_per_core=base_die.fp64_matrix_macs_per_core if fp64 else 0.0,
        fp64_lanes_per_core=base_die.fp64_lanes_per_core if fp64 else 0.0,
        int32_lanes_per_core=base_die.int32_lanes_per_core, enabled_cores=cores,
        source=f"design derived from {base.name} ({base_die.name}); every unit enabled",
    )
    return Design(hardware=hw, die=die, violations=tuple(problems), derived={"memory": mem, "node": node})


def with_area_and_power(d: Design, area_mm2: float, power_w: float) -> Design:
    hw = d.hardware.model_copy(update={"die_area_mm2": area_mm2, "tdp_w": power_w})
    return replace(d, hardware=hw)


__all__ = ["Design", "build", "memory_choice", "with_area_and_power"]
