"""Wide expert parallelism priced the way DeepEP moves tokens (perf/core.py ``ep_link_bytes``,
workload/routing.py), pinned to published facts: DeepEP's README (V1, deepseek-ai/DeepEP @0aaa6744) tables
measured on H800 with one 400 Gb/s CX7 per GPU, the DeepSeek-V3 report's links (section 3.2.2) and routing
config (HF config.json ``n_group`` 8, ``topk_group`` 4), and a literal simulation of the forwarding."""

from __future__ import annotations

import random

import pytest

import tapeout
from tapeout.errors import TapeoutError
from tapeout.perf import estimate
from tapeout.workload.ops import OpKind
from tapeout.workload.routing import EPRouting, copies_per_token, device_experts
from tapeout.workload.standalone import collective_op

HIDDEN, TOPK, EXPERTS = 7168, 8, 256
FP8 = HIDDEN * (1 + 4 / 128)  # DeepEP's FP8 dispatch: e4m3 values + one fp32 scale per 128 (its test's fp8_factor)
BF16 = 2 * HIDDEN


@pytest.fixture(scope="module")
def h800():
    return tapeout.load_hardware("h800-sxm")


def test_h800_links_are_the_deepseek_v3_reports():
    """DeepSeek-V3 report, 3.2.2: "NVLink offers a bandwidth of 160 GB/s, roughly 3.2 times that of IB
    (50 GB/s)"; 3.1: nodes of 8 GPUs on NVSwitch. The catalog keeps NVLink's 200 GB/s per direction (400
    bidirectional) as the line rate, so the report's 160 is what a collective reaches of it."""
    hw = tapeout.load_hardware("h800-sxm")
    assert hw.scale_out is not None and hw.scale_out.bandwidth_gbps_per_direction == 50
    assert hw.interconnect.max_devices == 8 and hw.interconnect.bandwidth_gbps_per_direction >= 160


def _simulate(E, k, groups, per_token, ep, node, n, rng):
    """DeepEP's normal dispatch, token by token: pick groups, then experts among them; send once per remote
    target node (to the sender's local rank there), forward over NVLink to the node's other targets."""
    size = E // groups
    owner = [0] * E
    for d in range(ep):
        lo, hi = device_experts(E, ep, d)
        owner[lo:hi] = [d] * (hi - lo)
    up = out = 0
    for _ in range(n):
        chosen = rng.sample(range(groups), per_token)
        experts = rng.sample([e for g in chosen for e in range(g * size, (g + 1) * size)], k)
        src = rng.randrange(ep)
        targets = {owner[e] for e in experts}
        for j in {d // node for d in targets}:
            arrival = src if j == src // node else min(j * node + src % node, ep - 1)
            out += j != src // node
            up += sum(1 for d in targets if d // node == j and d != arrival)
    return up / n, out / n


@pytest.mark.parametrize("groups,per_token,ep", [(8, 4, 32), (8, 4, 64), (1, 1, 24), (2, 2, 16)])
def test_copies_per_token_match_a_simulation_of_the_forwarding(groups, per_token, ep):
    up, out = _simulate(EXPERTS, TOPK, groups, per_token, ep, 8, 6000, random.Random(ep + groups))
    _, _, m_up, m_out = copies_per_token(EPRouting(1, TOPK, EXPERTS, groups, per_token, "normal"), ep, 8)
    assert m_up == pytest.approx(up, rel=0.04) and m_out == pytest.approx(out, rel=0.04)


def test_node_limited_routing_reaches_at_most_four_nodes():
    """DeepSeek-V3 (one group of 32 experts per node on 8 nodes, 4 groups per token): "we limit each token to
    be dispatched to at most 4 nodes" (report 3.2.2); without the limit the same top-8 reaches more."""
    m = tapeout.load_model("deepseek-v3").moe
    assert (m.expert_groups, m.groups_per_token) == (8, 4)
    limited = copies_per_token(EPRouting(1, 8, 256, 8, 4, "normal"), 64, 8)
    free = copies_per_token(EPRouting(1, 8, 256, 1, 1, "normal"), 64, 8)
    assert 3 < limited[1] <= 4 < free[1] <= 8
    assert limited[3] < free[3]  # fewer InfiniBand copies


# DeepEP README (V1) "Normal kernels with NVLink and RDMA forwarding", H800 + CX7 400 Gb/s, 4096 tokens,
# hidden 7168, top-4 groups, top-8 experts, FP8 dispatch and BF16 combine: bottleneck bandwidth (RDMA), GB/s.
# Its tests count the RDMA bytes as each token once per node it reaches (the sender's own node included) and
# group the experts by node (tests/test_internode.py): groups = nodes, min(nodes, 4) per token.
NORMAL = {16: (43, 43), 32: (58, 57), 64: (51, 50)}


@pytest.mark.parametrize("ep", sorted(NORMAL))
@pytest.mark.parametrize("tier", ["roofline", "tiled"])
def test_normal_kernels_reach_deepeps_published_bandwidth(h800, ep, tier):
    nodes = ep // 8
    r = EPRouting(4096, TOPK, EXPERTS, nodes, min(nodes, 4), "normal")
    for per_token, published in zip((FP8, BF16), NORMAL[ep]):
        cost = estimate(collective_op(OpKind.ALLTOALL, 4096 * TOPK * per_token, ep, routing=r), h800, tier)
        logical = 4096 * cost.terms["target_nodes_per_token"] * per_token / cost.total_s / 1e9
        assert logical == pytest.approx(published, rel=0.25)
        # every off-node share over the sender's NIC (the pattern before DeepEP's) is 60 % short of it
        plain = estimate(collective_op(OpKind.ALLTOALL, 4096 * TOPK * per_token, ep), h800, tier)
        assert 4096 * cost.terms["target_nodes_per_token"] * per_token / plain.total_s / 1e9 < 0.5 * published


# DeepEP README (V1) "Low-latency kernels with pure RDMA", H800 + CX7: 128 tokens, hidden 7168, top-8, FP8
# dispatch and BF16 combine: latency in us per EP size (dispatch, combine)
LOW_LATENCY = {16: (118, 195), 32: (155, 273), 64: (173, 314), 128: (192, 369), 256: (194, 360)}


@pytest.mark.parametrize("ep", sorted(LOW_LATENCY))
def test_low_latency_kernels_take_deepeps_published_time(h800, ep):
    r = EPRouting(128, TOPK, EXPERTS, 1, 1, "low_latency")
    for per_token, published in zip((FP8, BF16), LOW_LATENCY[ep]):
        cost = estimate(collective_op(OpKind.ALLTOALL, 128 * TOPK * per_token, ep, routing=r), h800, "tiled")
        assert cost.total_s * 1e6 == pytest.approx(published, rel=0.25)


def test_engines_dispatch_prefill_with_normal_and_decode_with_low_latency_kernels():
    p = tapeout.predict("deepseek-v3", "h100-sxm", ep=32, batch=2, input_len=1024, output_len=2, tier="roofline")
    pre = next(o for o in p.result.prefill.ops if o.name == "ep_dispatch")
    dec = next(o for o in p.result.decode_steps[0].ops if o.name == "ep_dispatch")
    assert pre.routing.kernel == "normal" and dec.routing.kernel == "low_latency"
    assert (pre.routing.groups, pre.routing.groups_per_token) == (8, 4)
    cost = estimate(pre, tapeout.load_hardware("h100-sxm"), "roofline")
    assert cost.terms["bound_by"] == "scale-out" and cost.terms["target_nodes_per_token"] <= 4


def test_group_limited_routing_is_validated(tmp_path):
    """A model file whose groups do not divide the experts, or that picks more groups than exist, is a one-line
    error naming the field."""
    from pathlib import Path

    text = (Path(tapeout.__file__).parent / "models/catalog/deepseek-v3.toml").read_text()
    for line, field in (("expert_groups = 7", "expert_groups"), ("groups_per_token = 9", "groups_per_token")):
        f = tmp_path / "m.toml"
        key = line.split(" =")[0]
        f.write_text("\n".join(line if ln.startswith(key + " =") else ln for ln in text.splitlines()))
        with pytest.raises(TapeoutError, match=field) as e:
            tapeout.load_model(f)
        assert "\n" not in str(e.value)


def test_group_limits_import_from_the_hf_configs(shared_file):
    """n_group / topk_group as the shipped configs state them: DeepSeek-V3 and R1 8 / 4, Kimi-K2 1 / 1."""
    import json

    from tapeout.models.hf import from_hf_config

    for name, groups in (("deepseek-ai--DeepSeek-V3.json", (8, 4)), ("deepseek-ai--DeepSeek-R1.json", (8, 4)),
                         ("moonshotai--Kimi-K2-Instruct.json", (1, 1))):
        moe = from_hf_config(json.loads(shared_file(f"hf-configs/{name}").read_text())).moe
        assert (moe.expert_groups, moe.groups_per_token) == groups
