"""The one cost core of both tiers: the rules the roofline and tiled tiers share, stated once.

- :func:`make_cost`: how an :class:`~tapeout.perf.cost.OpCost` is assembled from its terms and which term
  bounds it;
- :func:`fastest`: which of an op's alternative kernels is kept, and how the choice is reported;
- :func:`with_prologue`: an op with kernels launched before it (a dequantization pass): the times add;
- :func:`fp32_activations`: an op as a framework that keeps activations in fp32 runs it (ggml);
- :func:`peak_key`: which matrix-peak format a kernel computing in some format runs at on a device;
- :func:`algorithms` and :func:`oneshot_allreduce`: the collective algorithms (ring, tree, direct,
  point-to-point, one-shot) as steps and wire bytes, which each tier prices with its own link model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from tapeout import dtypes
from tapeout.errors import TapeoutError
from tapeout.hardware.spec import FP16_ACC16, HardwareSpec
from tapeout.perf.cost import OpCost
from tapeout.workload.ops import COLLECTIVE_KINDS, MATRIX_KINDS, Kernel, Op, OpKind
from tapeout.workload.routing import EPRouting, copies_per_token


def make_cost(op: Op, *, tier: str, compute: float, memory: float, network: float = 0.0, overhead: float,
              terms: dict[str, float | str]) -> OpCost:
    """OpCost with ``time = max(compute, memory, network) + overhead``; ``bound`` names the largest term:
    "overhead" when the fixed costs exceed the body, "network" when a collective's wire time leads, else
    "compute" or "memory" (ties: compute). ``terms`` gets ``overhead_us``."""
    body = max(compute, memory, network)
    terms["overhead_us"] = overhead * 1e6
    return OpCost(
        name=op.name, kind=op.kind.value, count=op.count, time_s=body + overhead,
        compute_s=compute, memory_s=memory, network_s=network, overhead_s=overhead,
        bound=bound_of(compute, memory, network, overhead), intensity=op.intensity, tier=tier, terms=terms,
    )


def bound_of(compute: float, memory: float, network: float, overhead: float) -> str:
    """The term that bounds a cost: "overhead" when the fixed costs exceed the body, "network" when a
    collective's wire time leads, else "compute" or "memory" (ties: compute)."""
    if overhead > max(compute, memory, network):
        return "overhead"
    if network > 0 and network >= max(compute, memory):
        return "network"
    return "compute" if compute >= memory else "memory"


def with_prologue(op: Op, price: Callable[[Op], OpCost]) -> OpCost:
    """``op`` priced with ``price``, plus the kernels of its ``prologue`` (launched before it, e.g. the pass that
    dequantizes the weights into a 16-bit copy the GEMM then reads): the times add. The sum keeps the cost's
    rule: compute and memory are the kernels' sums, overhead what the sum of times adds over their max
    (their fixed costs, and the bodies that cannot overlap across kernels); ``terms["prologue_s"]`` is the
    prologue's time, ``terms["prologue"]`` names its kernels."""
    cost = price(op)
    if not op.prologue:
        return cost
    pre = [price(p) for p in op.prologue]
    time = cost.time_s + sum(c.time_s for c in pre)
    compute = cost.compute_s + sum(c.compute_s for c in pre)
    memory = cost.memory_s + sum(c.memory_s for c in pre)
    network = cost.network_s + sum(c.network_s for c in pre)
    overhead = time - max(compute, memory, network)
    bound = bound_of(compute, memory, network, overhead)
    terms = {**cost.terms, "prologue_s": sum(c.time_s for c in pre),
             "prologue": "; ".join(f"{p.name} {c.time_s * 1e6:.1f} us ({c.bound})" for p, c in zip(op.prologue, pre)),
             "overhead_us": overhead * 1e6}
    return replace(cost, time_s=time, compute_s=compute, memory_s=memory, network_s=network, overhead_s=overhead,
                   bound=bound, terms=terms)


#: ggml's matmuls go through cuBLAS beyond this many rows with quantized weights (MMQ_MAX_BATCH_SIZE; below it
#: its own MMQ/MMVQ kernels read the fp32 activations directly), beyond one row with 16-bit weights
GGML_MMQ_MAX_BATCH_SIZE = 32
FP32_BYTES = 4


def fp32_activations(op: Op) -> Op:
    """``op`` as a framework that keeps activations in fp32 between kernels runs it
    (``EfficiencySpec.fp32_activations``: ggml's CUDA backend, llama.cpp).

    - An elementwise, norm or softmax kernel moves 4-byte activations: its 16-bit activation bytes double
      (a write into another format, the fp16 KV cache, keeps its bytes).
    - A matmul cuBLAS runs (GEMM: more than one row with 16-bit weights, more than
      :data:`GGML_MMQ_MAX_BATCH_SIZE` with quantized ones; a batched activation matmul: more than one row)
      multiplies fp16 copies: a kernel converts its fp32 input to fp16 before it and another its fp16 output
      to fp32 after it. Both join its ``prologue`` (and each alternative's): the times add either way.

    Fused attention, embeddings, sampling and collectives are left as they are."""
    fmts = dict(op.formats)
    act = fmts.get("act")
    if act is None or op.kind in COLLECTIVE_KINDS or op.kind in (OpKind.ATTENTION, OpKind.EMBEDDING,
                                                                   OpKind.SAMPLING):
        return op
    a = dtypes.parse(act)
    if a.bits != 16:
        return op
    if op.kind in (OpKind.GEMM, OpKind.BMM):
        shape = dict(op.shape)
        m, n, k = shape.get("m", 0), shape.get("n", 0), shape.get("k", 0)
        w = fmts.get("weights")
        quantized = w is not None and dtypes.parse(w).bits < 16
        if m <= (GGML_MMQ_MAX_BATCH_SIZE if quantized else 1) or "experts" in shape:
            return op
        rows = shape.get("b", 1) * m

        def convert(name: str, elems: int, src: int, dst: int) -> Op:
            return Op(name=f"{op.name}.{name}", kind=OpKind.ELEMENTWISE, flops=0.0, bytes_read=elems * src,
                      bytes_written=elems * dst, count=op.count, shape=(("elements", elems),), compute_dtype="fp32",
                      formats=(("act", "fp32"), ("out", a.name)) if dst == a.bytes else (("act", a.name), ("out", "fp32")),
                      activation_bytes=elems * (src + dst))

        conv = (convert("to_fp16", rows * k, FP32_BYTES, a.bytes), convert("to_fp32", rows * n, a.bytes, FP32_BYTES))
        return replace(op, prologue=op.prologue + conv,
                       alternatives=tuple(replace(x, prologue=x.prologue + conv) for x in op.alternatives))
    scale = FP32_BYTES / a.bytes
    rd = op.bytes_read * scale
    wr = op.bytes_written * (scale if "out" not in fmts else 1.0)
    return replace(op, bytes_read=rd, bytes_written=wr, activation_bytes=rd + wr)


def fastest(op: Op, price: Callable[[Op], OpCost], hw: HardwareSpec | None = None) -> OpCost:
    """``op`` and each of its ``alternatives`` (other kernels computing the same result) priced with
    ``price`` (with their prologues, :func:`with_prologue`); the fastest is kept (ties: the earlier
    candidate, the op itself first). Its terms name the kernel (``kernel``) and list every candidate's time
    (``alternatives``). A framework that ships one kernel for a result (``hw.efficiency.large_m_weight_only``:
    ``"dequant_dense"``, dequantize then a dense GEMM, as llama.cpp's cuBLAS path does) leaves the fused
    weight-only kernel out where that alternative exists."""
    ops = (op, *op.alternatives)
    if hw is not None and hw.efficiency.large_m_weight_only == "dequant_dense" \
            and any(o.kernel is Kernel.DEQUANT_DENSE for o in ops):
        ops = tuple(o for o in ops if o.kernel is not Kernel.WEIGHT_ONLY)
    costs = [with_prologue(o, price) for o in ops]
    i = min(range(len(costs)), key=lambda j: costs[j].time_s)
    terms = {**costs[i].terms, "kernel": ops[i].kernel,
             "alternatives": "; ".join(f"{o.kernel} {c.time_s * 1e6:.1f} us" for o, c in zip(ops, costs))}
    return replace(costs[i], terms=terms)


def accumulate_key(key: str, hw: HardwareSpec, has: Callable[[str], bool]) -> str:
    """The peak key an fp16 matrix kernel runs at under the framework's accumulator
    (``EfficiencySpec.matmul_accumulate``): ``fp16_acc16`` where fp16 accumulation is asked for and the device
    lists that rate, else ``key``."""
    if key == "fp16" and hw.efficiency.matmul_accumulate == "fp16" and has(FP16_ACC16):
        return FP16_ACC16
    return key


def peak_key(compute_dtype: str, has: Callable[[str], bool], last_resort: bool = True) -> str | None:
    """The peak-table key a matrix kernel computing in ``compute_dtype`` runs at on a device whose table
    ``has`` some keys: the format's own key, else its wider fallbacks (:data:`tapeout.dtypes.FALLBACK`: fp8
    on a device without fp8 runs at the fp16 rate), else (``last_resort``) bf16 or fp16; None when none."""
    key = dtypes.parse(compute_dtype).peak_key
    for k in (key, *dtypes.FALLBACK.get(key, ())):
        if has(k):
            return k
    if last_resort:
        for k in ("bf16", "fp16"):
            if has(k):
                return k
    return None


#: collective names of the op kinds that move data between devices
COLLECTIVE_NAMES = {OpKind.ALLREDUCE: "allreduce", OpKind.ALLGATHER: "allgather", OpKind.SEND: "send",
                    OpKind.ALLTOALL: "all_to_all"}
COLLECTIVES = ("allreduce", "allgather", "reduce_scatter", "all_to_all", "send")


def collective_name(kind: OpKind) -> str:
    try:
        return COLLECTIVE_NAMES[kind]
    except KeyError:
        raise TapeoutError(f"unsupported collective {kind}", field="op") from None


def algorithms(kind: str, p: int, size: float, nodes: int = 1, *,
               direct_allreduce: bool = False) -> list[tuple[str, float, float]]:
    """(algorithm, steps, wire bytes per device) candidates of one collective over ``p`` devices, ``size``
    bytes per device (all-gather: each device's shard).

    | collective     | ring: steps, wire        | tree (across nodes): steps, wire | direct (switch/mesh): steps, wire |
    |----------------|--------------------------|----------------------------------|-----------------------------------|
    | all-reduce     | 2(p-1), 2(p-1)/p S       | 2 ceil(log2 p), 2 S              | 2, 2(p-1)/p S (``direct_allreduce``) |
    | all-gather     | p-1, (p-1) S             | --                               | 1, (p-1) S                        |
    | reduce-scatter | p-1, (p-1)/p S           | --                               | 1, (p-1)/p S                      |
    | all-to-all     | --                       | --                               | 1, (p-1)/p S (pairwise exchange)  |
    | send           | p2p: 1, S                |                                  |                                   |

    Inside one scale-up domain a tree degenerates to a chain (NCCL's intra-node trees are chains), so the
    log-depth tree only applies when the group spans ``nodes`` > 1 domains. The direct all-reduce (a direct
    reduce-scatter, then a direct all-gather) is offered only where the fabric's library runs it
    (``direct_allreduce``: an RDMA-port fabric with links to every peer, ``InterconnectSpec.fabric`` "nic").
    The roofline tier prices the ring (p2p for a send; direct on such a fabric); the tiled tier the cheapest
    its topology allows.
    """
    if p <= 1:
        return [("local", 0.0, 0.0)]
    if kind == "allreduce":
        tree_steps = 2.0 * math.ceil(math.log2(p)) if nodes > 1 else 2.0 * (p - 1)
        out = [("ring", 2.0 * (p - 1), 2.0 * (p - 1) / p * size), ("tree", tree_steps, 2.0 * size)]
        if direct_allreduce:
            out.append(("direct", 2.0, 2.0 * (p - 1) / p * size))
        return out
    if kind == "allgather":
        return [("ring", p - 1.0, (p - 1.0) * size), ("direct", 1.0, (p - 1.0) * size)]
    if kind == "reduce_scatter":
        return [("ring", p - 1.0, (p - 1.0) / p * size), ("direct", 1.0, (p - 1.0) / p * size)]
    if kind == "all_to_all":
        return [("direct", 1.0, (p - 1.0) / p * size)]
    if kind == "send":  # point to point, one message (pipeline stages)
        return [("p2p", 1.0, size)]
    raise TapeoutError(f"unknown collective {kind!r}; allowed: {', '.join(COLLECTIVES)}", field="op")


def ep_link_bytes(size: float, group: int, node: int, routing: EPRouting | None = None) -> tuple[float, float, dict]:
    """(scale-up bytes, scale-out bytes, terms) one device puts on its links in an all-to-all over ``group``
    devices in nodes of ``node``, ``size`` logical bytes per device (``routing``: an expert-parallel
    dispatch's facts, :mod:`tapeout.workload.routing`).

    - plain, and DeepEP's low-latency kernels (one message per token-expert pair, straight to the expert's
      device): equal shares to every device, its own share stays; (local - 1)/group of the bytes to the
      other devices of its node, (group - local)/group to other nodes;
    - DeepEP's normal kernels: a token crosses the scale-out link once per remote node it reaches and is
      forwarded over the scale-up link to that node's target devices
      (:func:`tapeout.workload.routing.copies_per_token`: node-limited routing cuts the scale-out copies).
    """
    local = min(group, node)
    if routing is None or routing.kernel == "low_latency":
        terms: dict = {"kernel": "plain" if routing is None else "low_latency (one message per token-expert pair)"}
        return size * (local - 1) / group, size * (group - local) / group, terms
    per_token = size / (routing.tokens * routing.top_k)
    devices, nodes, up, out = copies_per_token(routing, group, node)
    terms = {"kernel": "normal (once per target node over scale-out, forwarded over scale-up)",
             "target_devices_per_token": devices, "target_nodes_per_token": nodes,
             "scale_up_copies_per_token": up, "scale_out_copies_per_token": out}
    return routing.tokens * per_token * up, routing.tokens * per_token * out, terms


def alltoall(hw: HardwareSpec, size: float, group: int, eta: float, alpha: float,
             routing: EPRouting | None = None) -> tuple[float, float, dict]:
    """(bandwidth s, latency s, terms) of an all-to-all over ``group`` devices, ``size`` logical bytes per
    device. Devices fill scale-up domains of ``interconnect.max_devices`` (a node); the bytes on each link
    (:func:`ep_link_bytes`: plain shares, or DeepEP's traffic for ``routing``) cross the scale-up link and
    the device's scale-out NICs at once: the slower side sets the time. One message step (latency
    ``alpha``) per link that carries traffic."""
    from tapeout.perf.roofline import link_for

    if group <= 1:
        return 0.0, 0.0, {"algorithm": "local", "wire_bytes": 0.0}
    ic = hw.interconnect
    node = ic.max_devices if ic is not None and ic.topology in ("switch", "mesh") else 1
    local = min(group, node)
    intra, inter, kernel = ep_link_bytes(size, group, node, routing)
    # every byte a link carries is read from the sender's HBM and written into the receiver's; the group's
    # traffic is symmetric, so a device receives as much as it sends: its HBM moves twice its wire bytes
    terms: dict = {"algorithm": "direct (all-to-all)", "devices_per_node": node, "nodes": math.ceil(group / node),
                   "eta_interconnect": eta, "wire_bytes": intra + inter, "hbm_bytes": 2.0 * (intra + inter),
                   **kernel}
    t_intra = t_inter = 0.0
    steps = 0
    if intra > 0:
        link, bw = link_for(hw, local)
        t_intra = intra / (bw * eta)
        steps += 1
        terms.update(link=link, link_gbps_per_direction=bw / 1e9, intra_node_bytes=intra,
                     intra_node_us=t_intra * 1e6)
    if inter > 0:
        so = hw.scale_out
        if so is None:
            raise TapeoutError(f"an all-to-all over {group} devices spans {math.ceil(group / node)} nodes of {node} "
                               f"{hw.name}, which has no scale_out link; allowed: ep <= {node}, or a device file "
                               "with [scale_out] kind and bandwidth_gbps_per_direction", field="ep")
        t_inter = inter / (so.bandwidth * eta)
        steps += 1
        terms.update(scale_out=so.kind, scale_out_gbps_per_direction=so.bandwidth_gbps_per_direction,
                     inter_node_bytes=inter, inter_node_us=t_inter * 1e6)
    terms.update(steps=steps, alpha_us_per_step=alpha * 1e6,
                 bound_by="scale-out" if t_inter > t_intra else "scale-up")
    return max(t_intra, t_inter), steps * alpha, terms


def oneshot_allreduce(hw: HardwareSpec, message_bytes: float, group: int, eta: float) -> tuple[float, float, dict] | None:
    """(bandwidth s, latency s, terms) of a one-shot all-reduce, when the framework runs one for this message
    (``EfficiencySpec.oneshot_allreduce_max_bytes``) and the devices share a switched or fully meshed NVLink
    fabric: every device reads the other ``group - 1`` buffers through its links at ``eta`` and reduces
    them itself; None otherwise (and on an RDMA-port fabric, ``InterconnectSpec.fabric`` "nic", which has no
    peer memory to read)."""
    eff, ic = hw.efficiency, hw.interconnect
    limit = eff.oneshot_allreduce_max_bytes
    if limit is None or message_bytes > limit or group < 2 or ic is None or ic.topology not in ("switch", "mesh") \
            or group > ic.max_devices or ic.fabric == "nic":  # RDMA ports: no peer memory to read
        return None
    wire = (group - 1) * message_bytes
    terms = {"algorithm": "one-shot", "link": ic.kind, "link_gbps_per_direction": ic.bandwidth / 1e9,
             "eta_interconnect": eta, "oneshot_latency_us": eff.oneshot_allreduce_latency_us, "wire_bytes": wire,
             "steps": 1}
    return wire / (ic.bandwidth * eta), eff.oneshot_allreduce_latency_us * 1e-6, terms


def computes_in(op: Op, cost: OpCost, hw: HardwareSpec) -> str | None:
    """The format an op's arithmetic runs in: for matrix ops the peak the kernel used (fp8 on a device
    without fp8 computes at the fp16 rate), for vector ops (norms, softmax, RoPE, adds) their compute
    format, None for collectives, sends and the embedding gather (data movement)."""
    if op.kind in COLLECTIVE_KINDS or op.kind.value in ("send", "embedding"):  # data movement (a gather)
        return None
    if op.kind in MATRIX_KINDS or op.kind.value == "attention":
        peak = cost.terms.get("peak")
        if isinstance(peak, str) and peak:
            return peak
        from tapeout.perf.roofline import matrix_peak

        return matrix_peak(hw, op.compute_dtype)[0]
    return op.compute_dtype


__all__ = ["COLLECTIVES", "algorithms", "alltoall", "ep_link_bytes", "bound_of", "collective_name", "computes_in",
           "fastest", "make_cost", "with_prologue", "oneshot_allreduce", "peak_key", "fp32_activations",
           "GGML_MMQ_MAX_BATCH_SIZE", "accumulate_key"]
