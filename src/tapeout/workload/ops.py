"""Operators: what one kernel does, in shapes, FLOPs and bytes. No timing here."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class OpKind(StrEnum):
    GEMM = "gemm"                # dense matrix multiply with a weight matrix
    BMM = "bmm"                  # batched activation x activation matmul (naive attention)
    ATTENTION = "attention"      # fused attention (FlashAttention prefill, paged decode)
    SOFTMAX = "softmax"
    NORM = "norm"
    ELEMENTWISE = "elementwise"  # activations, residual adds, RoPE, KV-cache writes
    EMBEDDING = "embedding"      # table gather
    SAMPLING = "sampling"
    ALLREDUCE = "allreduce"
    ALLGATHER = "allgather"


#: which hardware unit an op's arithmetic runs on
MATRIX_KINDS = frozenset({OpKind.GEMM, OpKind.BMM, OpKind.ATTENTION})
COLLECTIVE_KINDS = frozenset({OpKind.ALLREDUCE, OpKind.ALLGATHER})


@dataclass(frozen=True, slots=True)
class Op:
    """One kernel of one forward pass, per device.

    ``count`` is how often it runs per pass (identical layers are one op x num_layers).
    FLOPs and bytes are for a single run. ``shape`` holds named dimensions (for GEMMs
    ``m`` tokens, ``n`` output features, ``k`` input features, ``b`` batched matrices).
    """

    name: str
    kind: OpKind
    flops: float
    bytes_read: float
    bytes_written: float
    count: int = 1
    shape: tuple[tuple[str, int], ...] = ()
    #: format the arithmetic runs in (peak-table key comes from it)
    compute_dtype: str = "fp16"
    #: formats of the operands, for reports: e.g. (("weights", "int4"), ("act", "fp16"))
    formats: tuple[tuple[str, str], ...] = ()
    #: bytes of the weights among bytes_read (for memory planning and reports)
    weight_bytes: float = 0.0
    #: live activation bytes while the op runs (inputs + outputs), for peak-memory planning
    activation_bytes: float = 0.0
    #: collectives: participating devices and message bytes per device
    group: int = 1
    message_bytes: float = 0.0
    #: attention: the KV length it attends over (for reports)
    tags: tuple[str, ...] = field(default=())

    @property
    def bytes_total(self) -> float:
        return self.bytes_read + self.bytes_written

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP per byte of DRAM traffic."""
        return self.flops / self.bytes_total if self.bytes_total else float("inf")

    def dims(self) -> dict[str, int]:
        return dict(self.shape)


@dataclass(frozen=True, slots=True)
class OpGraph:
    """The ops of one phase (a prefill, or one decode step) on one device."""

    phase: str  # "prefill" | "decode"
    ops: tuple[Op, ...]
    tokens: int  # new tokens processed by the whole batch in this pass
    context: int  # keys attended to (prefill: input_len; decode: KV length)

    @property
    def flops(self) -> float:
        return sum(o.flops * o.count for o in self.ops)

    @property
    def bytes_total(self) -> float:
        return sum(o.bytes_total * o.count for o in self.ops)
