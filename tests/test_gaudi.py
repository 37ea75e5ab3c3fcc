"""Intel Gaudi: the typed facts (scale-up ports, HCCL measurements, graph-compiled runtime) and that the
behaviour they imply applies to Gaudi and not to GPUs (docs/calibration.md, "Gaudi")."""

import csv
import math

import pytest

import tapeout
from tapeout.frozen import evolve
from tapeout.perf import core, estimate, prefill_host_us
from tapeout.prediction import op_rows
from tapeout.validate.cases import PUBLISHED_DIR
from tapeout.validate.registry import datasets, load_cases
from tapeout.workload.ops import OpKind
from tapeout.workload.standalone import collective_op, elementwise_op

MiB = 1 << 20


def _hw(name, **eff):
    hw = tapeout.load_hardware(name)
    return hw.with_efficiency(**eff) if eff else hw


# ---- typed facts --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, port_gbps, scale_out", [("gaudi3", 200, 75.0), ("gaudi2", 100, 37.5)])
def test_scale_up_is_21_ports_three_to_each_of_seven_peers(name, port_gbps, scale_out):
    hw = _hw(name)
    ic = hw.interconnect
    # Intel's network configuration page: 21 scale-up ports, 3 to each of the 7 other cards of the box
    assert ic.bandwidth_gbps_per_direction == 21 * port_gbps / 8 and ic.links == 7 and ic.max_devices == 8
    assert ic.topology == "mesh" and ic.fabric == "nic"
    assert hw.scale_out.bandwidth_gbps_per_direction == scale_out == 3 * port_gbps / 8
    assert hw.graph_compiled
    assert "Network_Configuration" in hw.sources["interconnect"] and hw.sources["graph_compiled"]


@pytest.mark.parametrize("name", ["h100-sxm", "mi300x", "a100-sxm-80gb", "b200"])
def test_gpus_keep_a_load_store_fabric_and_host_launched_prefill(name):
    hw = _hw(name)
    assert not hw.graph_compiled
    assert hw.interconnect is None or hw.interconnect.fabric == "load_store"


def test_hccl_rows_are_self_consistent_as_typed():
    """Each row's time, algorithm bandwidth and bus ("NW") bandwidth agree: a typo in any of them fails."""
    with (PUBLISHED_DIR / "hccl_gaudi.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["collective"] for r in rows} == {"all_reduce", "all_gather"}
    for r in rows:
        n, size = int(r["ranks"]), int(r["input_bytes_per_rank"])
        each = float(r["total_time_s"]) / int(r["iterations"])
        algo, nw = float(r["algo_bandwidth_gbps"]), float(r["nw_bandwidth_gbps"])
        assert size / each / 1e9 == pytest.approx(algo, rel=1e-5)
        factor = 2 * (n - 1) / n if r["collective"] == "all_reduce" else n - 1
        assert nw == pytest.approx(algo * factor, rel=1e-5)
        assert nw > 262.5  # above Gaudi 2's scale-up peak: the rows are Gaudi 3's
    cases = load_cases(None, ["hccl-gaudi"])
    assert {c.device for c in cases} == {"gaudi3"}
    assert sorted(round(c.measured_s * 1e6, 3) for c in cases) == [230.642, 915.792]


# ---- collectives ----------------------------------------------------------------------------------

def test_the_direct_all_reduce_is_offered_only_where_asked():
    plain = core.algorithms("allreduce", 8, 1.0)
    assert "direct" not in {a[0] for a in plain}
    direct = dict((a[0], a[1:]) for a in core.algorithms("allreduce", 8, 1.0, direct_allreduce=True))
    assert direct["direct"] == (2.0, pytest.approx(1.75))


def test_gaudi_all_reduce_is_two_direct_steps_over_the_peer_links():
    hw = _hw("gaudi3")
    c8 = estimate(collective_op(OpKind.ALLREDUCE, 64 * MiB, 8), hw)
    assert (c8.terms["algorithm"], c8.terms["steps"], c8.terms["link_gbps_per_direction"]) == ("direct", 2.0, 525.0)
    c2 = estimate(collective_op(OpKind.ALLREDUCE, 64 * MiB, 2), hw)
    assert c2.terms["link_gbps_per_direction"] == 75.0  # one peer: its 3 ports of 200 GbE
    assert c2.network_s > 3 * c8.network_s  # the same bytes per card over a seventh of the links
    send = estimate(collective_op(OpKind.SEND, 64 * MiB, 2), hw)
    assert send.terms["link_gbps_per_direction"] == 75.0
    # the measured 8-card all-reduce: 256 MiB of fp32 in 915.8 us (Intel's hccl_demo run)
    big = estimate(collective_op(OpKind.ALLREDUCE, 256 * MiB, 8, dtype="fp32"), hw)
    assert big.time_s == pytest.approx(915.792e-6, rel=0.03)


def test_no_one_shot_all_reduce_over_rdma_ports():
    """The default framework's one-shot all-reduce reads the peers' memory over NVLink: GPUs keep it for small
    messages, Gaudi's RoCE ports have no peer memory to read."""
    eff = dict(oneshot_allreduce_max_bytes=262144, oneshot_allreduce_latency_us=6.5)
    small = collective_op(OpKind.ALLREDUCE, 32 * 1024, 8)
    assert estimate(small, _hw("h100-sxm", **eff)).terms["algorithm"] == "one-shot"
    assert estimate(small, _hw("gaudi3", **eff)).terms["algorithm"] == "direct"


def test_other_mesh_devices_keep_the_ring():
    c = estimate(collective_op(OpKind.ALLREDUCE, 64 * MiB, 8), _hw("mi300x"))
    assert (c.terms["algorithm"], c.terms["steps"]) == ("ring", 14.0)


def test_decode_all_reduces_at_tp8_cost_two_latency_steps_not_fourteen():
    p = tapeout.predict("llama-3.1-70b", "gaudi3", tp=8, batch=64, input_len=128, output_len=128)
    row = next(r for r in op_rows(p) if r["phase"] == "decode" and r["name"] == "tp_allreduce")
    eff = p.hardware.efficiency
    assert (row["terms"]["algorithm"], row["terms"]["steps"]) == ("direct", 2.0)
    assert row["overhead_s"] == pytest.approx((eff.launch_overhead_us + 2 * eff.collective_latency_us) * 1e-6)
    ring = 14 * eff.collective_latency_us * 1e-6  # what a ring's latency alone would cost
    assert row["time_s"] < ring


# ---- graph-compiled runtime -------------------------------------------------------------------------

def test_prefill_kernels_are_host_launched_on_gpus_only():
    op = evolve(elementwise_op("attn_residual_add", OpKind.ELEMENTWISE, 2 << 20, 1 << 20, 1.0), eager=True)
    gpu, gaudi = _hw("h100-sxm", prefill_host_overhead_us=9.7), _hw("gaudi3", prefill_host_overhead_us=9.7)
    assert prefill_host_us(gpu) == 9.7 and prefill_host_us(gaudi) == 0.0
    g = estimate(op, gpu)
    assert g.terms["prefill_host_us"] == 9.7
    assert g.time_s == pytest.approx(estimate(evolve(op, eager=False), gpu).time_s + 9.7e-6)
    assert "prefill_host_us" not in estimate(op, gaudi).terms
    assert estimate(op, gaudi).time_s == estimate(evolve(op, eager=False), gaudi).time_s


def test_gaudi_prefill_has_no_host_term_end_to_end():
    a = tapeout.predict("llama-3.1-8b", "gaudi3", input_len=128, output_len=1)
    b = tapeout.predict("llama-3.1-8b", "gaudi3", input_len=128, output_len=1, efficiency={"prefill_host_overhead_us": 0})
    assert a.result.ttft_s == pytest.approx(b.result.ttft_s, rel=1e-12)
    h = tapeout.predict("llama-3.1-8b", "h100-sxm", input_len=128, output_len=1)
    h0 = tapeout.predict("llama-3.1-8b", "h100-sxm", input_len=128, output_len=1,
                         efficiency={"prefill_host_overhead_us": 0})
    assert h.result.ttft_s > h0.result.ttft_s


# ---- fitted values and checks ---------------------------------------------------------------------------

def test_interconnect_eta_comes_from_the_hccl_rows():
    from tapeout import fitted

    g3 = _hw("gaudi3").efficiency
    assert 0.9 < g3.interconnect_eta <= 1.0
    assert _hw("gaudi2").efficiency.interconnect_eta == g3.interconnect_eta  # the sibling on the same fabric
    fit = fitted.load("roofline").fits("gaudi3")["collective_bandwidth"]
    assert fit.datasets == ("hccl-gaudi",) and fit.rows == 2 and fit.values["interconnect_eta"] == g3.interconnect_eta
    assert "collective_bandwidth" not in fitted.load("roofline").fits("mi300x")  # a GPU mesh keeps its own


def test_gaudi_end_to_end_rows_are_a_check_only():
    ds = datasets()["e2e-gaudi-published"]
    assert ds.shipped and not ds.calibration and ds.source == "gaudi"
    cases = load_cases(None, ["e2e-gaudi-published"])
    assert {c.device for c in cases} == {"gaudi2"} and len(cases) == 4
    assert all(math.isfinite(c.measured_s) and c.quantity == "gpu_s_per_token" for c in cases)
    # each row's batch, lengths and world size are the ones its command names (the command is in `detail`)
    with (PUBLISHED_DIR / "gaudi_published.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        cmd = r["detail"]
        assert f"--max_new_tokens {r['output_len']} " in cmd
        assert f"--batch_size {r['batch']}" in cmd
        assert (f"--world_size {r['tp']} " in cmd) == (int(r["tp"]) > 1)
        if int(r["input_len"]) > 8:  # the 8-token rows use run_generation.py's default prompt
            assert f"--max_input_tokens {r['input_len']} " in cmd
        assert (r["weights"] == "fp8") == ("QUANT_CONFIG=./quantization_config/maxabs_quant.json" in cmd)
    # PR #918's Mistral-7B-Instruct-v0.2 fp8 runs on one card: gpu-seconds per token = 1 / the printed throughput
    mistral = sorted((c for c in cases if c.op_class in ("fp8/b896", "fp8/b120")), key=lambda c: c.op_class)
    assert [c.op_class for c in mistral] == ["fp8/b120", "fp8/b896"]
    assert [1 / c.measured_s for c in mistral] == pytest.approx([1362.8371789032228, 13250.825658116784], rel=1e-12)
    from tapeout.fit.cv import parameters

    assert all("gaudi" not in p.sources for p in parameters())
