"""Collectives with alpha-beta per link and the topology of the scale-up domain.

For ``p`` devices and ``S`` bytes per device (all-gather: each device's shard), each algorithm
sends ``steps`` messages in sequence (latency alpha each) and puts ``wire`` bytes through each
device's link (at eta of its bandwidth); a call also pays a fixed base (library setup and
protocol pipeline fill) and a kernel launch:

    t = launch + base + steps x alpha + wire / (eta x link bandwidth)

Two protocols, as in NCCL, when the device's micro-architecture table has fitted collective
values: a bandwidth protocol (alpha, eta and base = ``collective_step_us``, ``collective_eta``,
``collective_base_us``, fitted on messages >= 1 MiB) and a low-latency protocol (no base;
``collective_ll_step_us``, ``collective_ll_eta``, fitted on messages < 1 MiB); the faster wins. Without fitted values,
one ring with the EfficiencySpec values (the roofline tier's collective).

The algorithms' steps and wire bytes (ring, tree, direct, point-to-point; the one-shot all-reduce) are
the cost core's table, :func:`tapeout.perf.core.algorithms`, which the roofline tier prices too.

The cheapest algorithm wins (NCCL picks by message size too). Inside one scale-up domain a tree
degenerates to a chain (NCCL's intra-node trees are chains), so the log-depth tree is only
offered when the group spans ``nodes`` > 1 domains. Link bandwidth per device follows the
topology: NVSwitch-like ``switch`` gives every device its full per-direction bandwidth; a ``mesh``
of direct links (Infinity Fabric) gives a collective over ``p`` devices only the ``p - 1`` links
to its peers (``links`` in the spec); ``pairwise`` bridges serve two devices and PCIe beyond;
``pcie`` is the host bus. A kernel launch is paid once per collective.
"""

from __future__ import annotations

from tapeout.hardware.spec import HardwareSpec
from tapeout.perf.core import COLLECTIVES, algorithms, alltoall, collective_name, oneshot_allreduce  # noqa: F401
from tapeout.perf.cost import OpCost
from tapeout.perf.roofline import direct_exchange, link_bandwidth
from tapeout.perf.tiled.common import make_cost
from tapeout.workload.ops import Op



def protocols(hw: HardwareSpec) -> list[tuple[str, float, float, float]]:
    """(protocol, base s, alpha s per step, eta) candidates of collectives on ``hw``.

    With fitted micro-architecture values there are two, as in NCCL: a bandwidth protocol
    ("simple": base, alpha and eta fitted on messages >= 1 MiB) and a low-latency one ("ll": no
    base, its own alpha and eta fitted on messages < 1 MiB). Otherwise one ring with the
    EfficiencySpec values (the roofline tier's collective).
    """
    eff, ua = hw.efficiency, hw.microarch
    if ua is None or ua.collective_eta is None:
        return [("ring", 0.0, eff.collective_latency_us * 1e-6, eff.interconnect_eta)]
    step = ua.collective_step_us if ua.collective_step_us is not None else eff.collective_latency_us
    out = [("simple", ua.collective_base_us * 1e-6, step * 1e-6, ua.collective_eta)]
    if ua.collective_ll_step_us is not None and ua.collective_ll_eta is not None:
        out.append(("ll", 0.0, ua.collective_ll_step_us * 1e-6, ua.collective_ll_eta))
    return out


def collective_time(hw: HardwareSpec, kind: str, size: float, group: int, nodes: int = 1) -> tuple[float, float, dict]:
    """(bandwidth s, latency s incl. the fixed base, terms) of the best algorithm and protocol;
    ``size`` is bytes per device."""
    link, bw = link_bandwidth(hw, group)
    topology = hw.interconnect.topology if hw.interconnect is not None and link == hw.interconnect.kind else "pcie"
    best = None
    for proto, base, alpha, eta in protocols(hw):
        for name, steps, wire in algorithms(kind, group, size, nodes, direct_allreduce=direct_exchange(hw, group)):
            if name == "direct" and topology not in ("switch", "mesh"):
                continue
            beta_t = wire / (bw * eta)
            lat = steps * alpha + (base if group > 1 else 0.0)
            if best is None or beta_t + lat < best[0] + best[1]:
                best = (beta_t, lat, name, steps, wire, proto, base, alpha, eta)
    beta_t, lat, name, steps, wire, proto, base, alpha, eta = best  # type: ignore[misc]
    if kind == "allreduce":
        ua = hw.microarch
        fabric_eta = ua.collective_eta if ua is not None and ua.collective_eta else hw.efficiency.interconnect_eta
        one = oneshot_allreduce(hw, size, group, fabric_eta)
        if one is not None and one[0] + one[1] < beta_t + lat:
            o_beta, o_lat, o_terms = one
            return o_beta, o_lat, {"model": "tiled alpha-beta collective",
                                   "mapping": f"one-shot over {topology} x{group}", "topology": topology, **o_terms}
    terms = {"model": "tiled alpha-beta collective", "mapping": f"{name} ({proto}) over {topology} x{group}",
             "algorithm": name, "protocol": proto, "topology": topology,
             "link": link, "link_gbps_per_direction": bw / 1e9, "eta_interconnect": eta, "base_us": base * 1e6,
             "alpha_us_per_step": alpha * 1e6, "steps": steps, "wire_bytes": wire}
    return beta_t, lat, terms


def estimate(op: Op, hw: HardwareSpec) -> OpCost:
    kind = collective_name(op.kind)
    if kind == "all_to_all":  # the bandwidth protocol's base, step and efficiency (core.alltoall)
        _, base, alpha, eta = protocols(hw)[0]
        net, lat, terms = alltoall(hw, op.message_bytes, op.group, eta, alpha, op.routing)
        lat += base if op.group > 1 else 0.0
        terms = {"model": "tiled alpha-beta collective", "base_us": base * 1e6, **terms}
    else:
        net, lat, terms = collective_time(hw, kind, op.message_bytes, op.group)
    eff = hw.efficiency
    overhead = lat + (eff.launch_overhead_us + eff.host_overhead_us) * 1e-6
    terms.update(launch_us=eff.launch_overhead_us, host_us=eff.host_overhead_us)
    return make_cost(op, compute=0.0, memory=0.0, network=net, overhead=overhead, terms=terms)
