import pytest

from tapeout import dtypes
from tapeout.errors import TapeoutError


@pytest.mark.parametrize(
    "name, bits, canonical",
    [("FP16", 16, "fp16"), ("bfloat16", 16, "bf16"), ("fp8", 8, "fp8_e4m3"), ("fp6", 6, "fp6_e3m2"),
     ("fp6_e2m3", 6, "fp6_e2m3"), ("fp5", 5, "fp5_e2m2"), ("fp4", 4, "fp4_e2m1"), ("int3", 3, "int3"),
     ("nf4", 4, "nf4")],
)
def test_names_bits_and_aliases(name, bits, canonical):
    d = dtypes.parse(name)
    assert d.bits == bits and d.name == canonical


def test_group_scales_add_exact_storage():
    # one fp16 scale per 128 int4 weights: 4 + 16/128 = 4.125 bits
    assert dtypes.parse("int4_g128").bytes == pytest.approx(4.125 / 8)
    assert dtypes.parse("int4_g128z").bytes == pytest.approx(4.25 / 8)


@pytest.mark.parametrize("bad", ["fp7", "fp6_e3m3", "int9", "int1", "fp16_g128", "", "e2m1"])
def test_unknown_formats_are_rejected_with_the_allowed_list(bad):
    with pytest.raises(TapeoutError, match="allowed"):
        dtypes.parse(bad, field="weights")


def test_weight_only_quantization_computes_in_activation_format():
    f16, i4, i8, f8 = (dtypes.parse(x) for x in ("fp16", "int4", "int8", "fp8"))
    assert dtypes.matmul_compute_dtype(i4, f16) is f16
    assert dtypes.matmul_compute_dtype(i8, i8) is i8
    assert dtypes.matmul_compute_dtype(i4, f8) is f8


# ---- granularity, scale formats and exact storage --------------------------------------------

@pytest.mark.parametrize(
    "name, canonical, granularity",
    [("int4", "int4", "channel"), ("int4_c", "int4", "channel"), ("int8_t", "int8_t", "tensor"),
     ("int4_g128", "int4_g128", "group"), ("INT4_G128Z", "int4_g128z", "group"), ("int4_sl8", "int4_sl8", "sublayer"),
     ("fp8", "fp8_e4m3", "tensor"), ("fp8_c", "fp8_e4m3_c", "channel"), ("fp8_raw", "fp8_e4m3_raw", "none"),
     ("fp6", "fp6_e3m2", "channel"), ("nf4", "nf4", "group"), ("nf4_g64_fp32", "nf4", "group"),
     ("fp4_e2m1_g32_e8m0", "fp4_e2m1_g32_e8m0", "group"), ("fp4_g16_fp8", "fp4_e2m1_g16_fp8", "group"),
     ("int4_g128_bf16", "int4_g128_bf16", "group")],
)
def test_granularity_names_are_canonical(name, canonical, granularity):
    d = dtypes.parse(name)
    assert (d.name, d.granularity) == (canonical, granularity)
    assert dtypes.parse(d.name) == d  # the canonical name parses back to the same format


def test_exact_storage_of_scales_and_zeros():
    n, k = 4096, 11008
    # per channel: one fp16 scale per output row
    assert dtypes.parse("int4").matrix_bytes(n, k) == n * k / 2 + 2 * n
    # per group along K, the last group partial: ceil(11008 / 128) = 86 groups per row
    assert dtypes.parse("int4_g128").matrix_bytes(n, k) == n * k / 2 + 2 * n * 86
    assert dtypes.parse("int4_g128z").matrix_bytes(n, k) == n * k / 2 + 4 * n * 86
    # sub-layer (PTQ-SL): one scale per block of 8 output channels
    assert dtypes.parse("int4_sl8").matrix_bytes(n, k) == n * k / 2 + 2 * n / 8
    # per tensor: one fp32 scale; MX: one e8m0 byte per 32 elements
    assert dtypes.parse("fp8").matrix_bytes(n, k) == n * k + 4
    assert dtypes.parse("fp4_e2m1_g32_e8m0").bytes * 8 == pytest.approx(4.25)
    # bitsandbytes NF4: an fp32 absmax per 64 weights = 4.5 bits
    assert dtypes.parse("nf4").bytes * 8 == pytest.approx(4.5)


def test_value_grid_facts():
    assert dtypes.parse("fp8_e4m3").max_value == 448
    assert dtypes.parse("fp8_e5m2").max_value == 57344
    assert dtypes.parse("fp6_e3m2").max_value == 28
    assert dtypes.parse("fp6_e2m3").max_value == 7.5
    assert dtypes.parse("fp4").max_value == 6
    assert dtypes.parse("fp6_e3m2").min_subnormal == 0.0625
    assert dtypes.parse("int4").max_value == 7


@pytest.mark.parametrize("bad", ["fp6_g128z", "int4_g0", "int4_raw_fp16", "int4_fp64", "int4_g32z_e8m0", "int4_x"])
def test_bad_granularity_is_rejected(bad):
    with pytest.raises(TapeoutError, match="weights"):
        dtypes.parse(bad, field="weights")


@pytest.mark.parametrize("name, canonical", [("float8_e4m3fn", "fp8_e4m3"), ("FP8_E4M3FN", "fp8_e4m3"),
                                             ("float8_e5m2", "fp8_e5m2"), ("awq", "int4_g128z"), ("GPTQ", "int4_g128z")])
def test_framework_spellings(name, canonical):
    assert dtypes.parse(name).name == canonical
