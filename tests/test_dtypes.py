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
