"""Operators: what one kernel does, in shapes, FLOPs and bytes. No timing here."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from operator import attrgetter

import numpy as np

from tapeout.frozen import evolve
from tapeout.workload.routing import EPRouting


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
    SEND = "send"                # point-to-point transfer to the next pipeline stage
    ALLTOALL = "alltoall"        # expert-parallel dispatch / combine: each device sends a share to every other


class Kernel(StrEnum):
    """The kernel family an op runs (docs/techniques.md); the builder (:mod:`tapeout.workload.kernels`) chooses
    it, a performance tier prices it."""

    DENSE = "dense"                  # the plain 16-bit (or fp32) kernel
    WEIGHT_ONLY = "weight_only"      # low-bit weights dequantized on the vector units, MMA at activation precision
    DEQUANT_DENSE = "dequant_dense"  # dequantize to 16-bit in a kernel of its own, then a dense GEMM
    LOWP = "lowp"                    # W8A8 / FP8 / W4A4: the MMA in the low-precision format, a scale epilogue
    SPARSE_TC = "sparse_tc"          # Flash-LLM: load as sparse (Tiled-CSL), compute as dense
    SPARSE_CUDA = "sparse_cuda"      # Sputnik-like CSR SpMM on the CUDA cores
    SPARSE_24 = "sparse_24"          # 2:4 sparse tensor cores
    BLOCK_1XN = "block_1xn"          # 1xN block sparsity
    KV_DEQUANT = "kv_dequant"        # decode attention over a quantized KV cache

    @property
    def sparse(self) -> bool:
        """It stores and reads only the kept weights of a sparse matrix (and their indices)."""
        return self in _SPARSE

    @property
    def extracts(self) -> bool:
        """Its vector work is a sparse extraction (reported as ``extract_s``), not a dequantization."""
        return self in _EXTRACTING

    @property
    def transforms_weights(self) -> bool:
        """It dequantizes or extracts the weights on the cores before the MMA consumes them (LOWP's scale
        epilogue and KV_DEQUANT's work inside attention are small and priced with the dense models)."""
        return self in _TRANSFORMING


_SPARSE = frozenset({Kernel.SPARSE_TC, Kernel.SPARSE_CUDA, Kernel.SPARSE_24, Kernel.BLOCK_1XN})
_EXTRACTING = _SPARSE - {Kernel.SPARSE_24}
_TRANSFORMING = _SPARSE | {Kernel.WEIGHT_ONLY, Kernel.DEQUANT_DENSE}


#: a serving engine's per-token kernels (one thread block per token): an op tagged ``token:<kind>`` is one of
#: them, and :func:`tapeout.perf.token_capped` caps its streaming at the kind's bytes per core per clock
TOKEN_KERNELS = ("norm", "rope", "act")


def token_kernel(op: "Op") -> str | None:
    """The per-token kernel kind ``op`` runs (:data:`TOKEN_KERNELS`), or None."""
    for t in op.tags:
        if t.startswith("token:"):
            return t[6:]
    return None


#: which hardware unit an op's arithmetic runs on
MATRIX_KINDS = frozenset({OpKind.GEMM, OpKind.BMM, OpKind.ATTENTION})
COLLECTIVE_KINDS = frozenset({OpKind.ALLREDUCE, OpKind.ALLGATHER, OpKind.SEND, OpKind.ALLTOALL})


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
    #: expert-parallel dispatch/combine: the routing facts and DeepEP kernel that set its bytes per link
    #: (:func:`tapeout.perf.core.ep_link_bytes`); None: a plain all-to-all
    routing: EPRouting | None = None
    #: kernel facts a tier reads: attention ("causal", "flash", "decode", "fa2", ...), per-token kernels
    #: ("token:norm", "token:rope", "token:act": :func:`token_kernel`)
    tags: tuple[str, ...] = field(default=())
    #: launched from the host one kernel at a time, not replayed from a CUDA graph (the prefill of a
    #: serving engine): the framework's ``prefill_host_overhead_us`` applies (``perf.estimate``)
    eager: bool = False

    # ---- compression techniques (docs/techniques.md); the defaults describe a plain dense kernel ----
    #: kernel family (a tier prices its work and looks up its efficiencies, e.g. Flash-LLM's Tiled-CSL
    #: stream fraction, from the device's parameters: efficiencies are never carried by an op)
    kernel: Kernel = Kernel.DENSE
    #: matrix-unit FLOPs the kernel executes when they differ from ``flops`` (compute-as-dense over
    #: zeros, MMA waste of 1xN blocks, 0 for CUDA-core SpMM); None: ``flops``
    matrix_flops: float | None = None
    #: activation rows one weight tile meets (skinny kernels map them onto the MMA's n extent, which a
    #: tier pads to the instruction granule); 0: no padding
    skinny_rows: float = 0.0
    #: vector-unit (CUDA-core ALU) lane-instructions: dequantization, sparse extraction, scale application
    vector_ops: float = 0.0
    #: vector-unit work added only when the device lacks the native matrix path and falls back
    #: (fp8 on A100: convert operands to fp16; 2:4 without sparse tensor cores: expand the values)
    fallback_vector_ops: float = 0.0
    #: shared-memory traffic of on-chip staging (sparse-to-dense tiles, zero fill, gathers), bytes
    onchip_bytes: float = 0.0
    #: FLOPs done on the vector units instead of the matrix units (CUDA-core SpMM)
    cuda_core_flops: float = 0.0
    #: True: the matrix work runs on the 2:4 sparse tensor-core path (``sparse_peak_tflops``)
    sparse_peak: bool = False
    #: how the on-core terms combine: "max" (overlapped) or "serial" (vector work, then the MMA
    #: that consumes it, in the same warps); either way they overlap with the DRAM stream
    overlap: str = "max"
    #: other kernels that compute the same result; a tier prices each and keeps the fastest
    alternatives: tuple["Op", ...] = ()
    #: kernels launched before this one to prepare its operands (a dequantization pass writing a 16-bit copy of
    #: the weights): their times add to this kernel's (:func:`tapeout.perf.core.with_prologue`)
    prologue: tuple["Op", ...] = ()

    def renamed(self, name: str) -> "Op":
        """This op under another name (a shallow copy, :func:`tapeout.frozen.evolve`; faster than
        ``dataclasses.replace``, which re-runs ``__init__``)."""
        return evolve(self, name=name)

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


#: the fields of an op that may differ across the contexts of an :class:`OpSweep` (besides shape sizes)
SWEPT_FIELDS = ("flops", "bytes_read", "bytes_written", "activation_bytes", "vector_ops")
#: every other field but the name, which must be the same at every context
_FIXED = attrgetter(*(f.name for f in fields(Op) if f.name not in SWEPT_FIELDS + ("shape", "name")))


class OpSweep:
    """One op at several decode contexts (one kernel whose work grows with the keys it attends to): ``op`` at
    the first context, and per context the values of the fields that differ (``fields``: some of
    :data:`SWEPT_FIELDS`; ``dims``: shape sizes such as ``skv``) as arrays; every other field is ``op``'s. A
    decode template builds it from its attention formulas at all contexts at once
    (:meth:`tapeout.workload.build.StepTemplate.sweeps`); :meth:`of` reads it off a list of per-context ops,
    which may differ in more than those (``uniform`` false: the ops are then priced one by one)."""

    __slots__ = ("op", "n", "fields", "dims", "_ops")

    def __init__(self, op: Op, n: int, fields: dict[str, np.ndarray] | None, dims: dict[str, np.ndarray] | None,
                 ops: tuple[Op, ...] | None = None) -> None:
        self.op = op
        self.n = n
        self.fields = fields
        self.dims = dims
        self._ops = ops

    def __len__(self) -> int:
        return self.n

    @property
    def uniform(self) -> bool:
        """The ops differ only in ``fields`` and ``dims`` (what a vectorised model may assume)."""
        return self.fields is not None

    @property
    def count(self) -> int:
        return self.op.count

    def field(self, name: str) -> np.ndarray:
        """``name``'s value at each context (a uniform sweep)."""
        assert self.fields is not None
        v = self.fields.get(name)
        return v if v is not None else np.full(self.n, float(getattr(self.op, name)))

    def dim(self, name: str) -> np.ndarray:
        """The shape size ``name`` at each context (a uniform sweep)."""
        assert self.dims is not None
        v = self.dims.get(name)
        return v if v is not None else np.full(self.n, dict(self.op.shape)[name])

    def ops(self) -> tuple[Op, ...]:
        """The op at each context (built on first use when the sweep was not read off ops)."""
        if self._ops is None:
            self._ops = tuple(self.op_at(i) for i in range(self.n))
        return self._ops

    def op_at(self, i: int) -> Op:
        if self._ops is not None:
            return self._ops[i]
        assert self.fields is not None and self.dims is not None
        dims = self.dims
        shape = tuple((k, dims[k][i].item() if k in dims else v) for k, v in self.op.shape)
        return replace(self.op, shape=shape, **{k: v[i].item() for k, v in self.fields.items()})

    @classmethod
    def of(cls, ops: list[Op] | tuple[Op, ...]) -> OpSweep:
        """The sweep of ``ops`` -- one op at several contexts --, uniform when they differ only in
        :data:`SWEPT_FIELDS` and shape sizes (not in kind, formats, kernel, alternatives, shape names...)."""
        ops = tuple(ops)
        first = ops[0]
        fixed, names = _FIXED(first), tuple(k for k, _ in first.shape)
        for o in ops:
            if o is not first and (_FIXED(o) != fixed or tuple(k for k, _ in o.shape) != names):
                return cls(first, len(ops), None, None, ops)
        swept = {}
        for name in SWEPT_FIELDS:
            v = np.array([getattr(o, name) for o in ops], dtype=float)
            if (v != v[0]).any():
                swept[name] = v
        dims = {}
        for j, name in enumerate(names):
            v = np.array([o.shape[j][1] for o in ops])
            if (v != v[0]).any():
                dims[name] = v
        return cls(first, len(ops), swept, dims, ops)
