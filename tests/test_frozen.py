"""frozen.evolve: a frozen slotted dataclass with some fields changed equals dataclasses.replace's copy."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

import tapeout
from tapeout.frozen import evolve
from tapeout.perf.cost import OpCost
from tapeout.workload.ops import Op


def test_evolve_equals_replace_on_every_field_of_ops_and_costs():
    p = tapeout.predict("llama-2-7b", "a100-sxm-80gb", batch=2, input_len=64, output_len=8, tier="tiled")
    op, cost = p.result.prefill.ops[2], p.result.prefill.costs[2]
    assert {f.name for f in fields(Op)} == set(Op.__slots__)  # type: ignore[attr-defined]
    for obj, changes in ((op, {"eager": not op.eager, "name": "x"}), (op, {}),
                         (cost, {"time_s": 1.0, "bound": "overhead", "terms": {}})):
        before = replace(obj)
        new = evolve(obj, **changes)
        assert new == replace(obj, **changes) and type(new) is type(obj)
        assert new is not obj and obj == before  # the original is unchanged
    assert isinstance(evolve(cost), OpCost)


def test_evolve_rejects_unknown_fields():
    op = Op(name="x", kind="gemm", flops=1.0, bytes_read=1.0, bytes_written=1.0)
    with pytest.raises(TypeError, match="no field 'flop'"):
        evolve(op, flop=2.0)
