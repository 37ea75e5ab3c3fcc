"""A serving engine's per-token kernels (norm, RoPE, gated activation): tagged by the op builder, and in the tiled
tier streamed at most at their kind's bytes per core per clock (fitted on vidur's H100 / A100 PCIe kernels;
docs/calibration.md, "Per-token kernels")."""

from __future__ import annotations

import math

import pytest

import tapeout
from tapeout import fitted, load_hardware
from tapeout.errors import TapeoutError
from tapeout.perf import estimate
from tapeout.perf.tiled.elementwise import token_cap
from tapeout.workload.ops import TOKEN_KERNELS, token_kernel
from tapeout.workload.standalone import norm_op


def _prefill_ops(model: str = "llama-2-7b", **kw) -> dict[str, dict]:
    p = tapeout.predict(model, "h100-sxm", batch=1, input_len=4096, output_len=2, **kw)
    return {r["name"]: r for r in p.ops() if r["phase"] == "prefill"}


def test_builder_tags_the_engine_per_token_kernels_only():
    ops = _prefill_ops()
    for name, kind in (("attn_norm", "norm"), ("mlp_norm", "norm"), ("rope", "rope"), ("mlp_act", "act")):
        assert ops[name]["terms"].get("token_kernel") == kind, name
    # torch's vectorised residual add and the KV-cache write are not per-token kernels of this kind
    assert "token_kernel" not in ops["attn_residual_add"]["terms"]
    assert "token_kernel" not in ops["kv_cache_write"]["terms"]


def test_stored_caps_are_all_kinds_and_plausible():
    k = fitted.kernel_constants()
    for kind in TOKEN_KERNELS:
        v = getattr(k, f"token_{kind}_bytes_per_core_clock")
        # a one-block-per-token kernel with element-wide loads moves a few bytes per core per clock:
        # far below a vectorised copy (H100: 3.35 TB/s over 132 SMs x 1.755 GHz = 14.5 B/core/clock)
        assert v is not None and 1.0 < v < 14.5


def test_cap_slows_large_norms_only():
    hw = load_hardware("h100-sxm")
    big, plain = norm_op(4096, 4096, tags=("token:norm",)), norm_op(4096, 4096)
    small, small_plain = norm_op(8, 4096, tags=("token:norm",)), norm_op(8, 4096)
    assert token_kernel(big) == "norm" and token_kernel(plain) is None
    # a norm not run by an engine's per-token kernel (LLMCompass's torch.compile'd one) streams as before
    assert estimate(big, hw, "tiled").time_s > 1.5 * estimate(plain, hw, "tiled").time_s
    assert estimate(small, hw, "tiled").time_s == pytest.approx(estimate(small_plain, hw, "tiled").time_s)
    assert estimate(big, hw, "roofline").time_s == estimate(plain, hw, "roofline").time_s  # the tiled tier's model


def test_vidur_h100_norm_plateau_is_priced_within_15_percent():
    # vidur's H100 profile (Llama-2-7B, TP1, 4096 tokens): input_layernorm 62-66.5 us (CUDA-event medians)
    t = estimate(norm_op(4096, 4096, tags=("token:norm",)), load_hardware("h100-sxm"), "tiled").time_s
    assert abs(math.log(t / 64e-6)) < 0.15


def test_per_call_override_and_validation():
    base = tapeout.predict("llama-2-7b", "h100-sxm", batch=1, input_len=4096, output_len=2)
    fast = tapeout.predict("llama-2-7b", "h100-sxm", batch=1, input_len=4096, output_len=2,
                           efficiency={"token_kernel_bytes_per_core_clock": dict.fromkeys(TOKEN_KERNELS, 1000.0)})
    assert fast.ttft_s < base.ttft_s
    with pytest.raises(TapeoutError, match="token_kernel_bytes_per_core_clock"):
        tapeout.predict("llama-2-7b", "h100-sxm", efficiency={"token_kernel_bytes_per_core_clock": {"norm": 0.0}})
    with pytest.raises(TapeoutError, match="norm"):
        tapeout.predict("llama-2-7b", "h100-sxm", efficiency={"token_kernel_bytes_per_core_clock": {"gelu": 5.0}})
    for bad in ({"act": True}, {"rope": float("nan")}, {"norm": 1e9}, 5.0):
        with pytest.raises(TapeoutError, match="token_kernel_bytes_per_core_clock"):
            tapeout.predict("llama-2-7b", "h100-sxm", efficiency={"token_kernel_bytes_per_core_clock": bad})


def test_token_cap_reads_the_call_before_the_store():
    hw = load_hardware("h100-sxm")
    own = hw.model_copy(update={"efficiency": hw.efficiency.model_copy(
        update={"token_kernel_bytes_per_core_clock": {"act": 3.0}})})
    assert token_cap("act", own) == 3.0
    assert token_cap("norm", own) == fitted.kernel_constants().token_norm_bytes_per_core_clock
    assert token_cap(None, own) is None
