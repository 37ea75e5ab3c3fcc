"""Single ops outside a model: a GEMM, a batched matmul, a norm, an elementwise op, a collective.

Used by the accuracy harness (``tapeout.validate``) to price measured microbenchmarks with the
same FLOP/byte conventions as :mod:`tapeout.workload.build`:

- GEMM M = tokens (activation rows), N = output features, K = input features; FLOPs = 2*M*N*K;
  bytes = weights (K*N) + input activations (M*K) read, output (M*N) written.
- Elementwise ops read ``elems_in`` and write ``elems_out`` elements; FLOPs = flops_per * max(in, out);
  arithmetic runs on the vector unit (``compute_dtype="fp32"``).
- Collectives carry ``message_bytes`` per device and the ``group`` size; reads = writes = message.
- Fused attention (``attention_op``): decode reads the K/V cache once per KV head plus the queries and writes
  the outputs; FLOPs = 4 x heads x head dim x query-key pairs (QK^T and PV); a prefill chunk of ``sq`` new
  tokens after ``prefix`` cached ones attends causally (pairs = sq x prefix + sq (sq + 1) / 2).
"""

from __future__ import annotations

from typing import Any

from tapeout import dtypes
from tapeout.dtypes import DType
from tapeout.workload.ops import COLLECTIVE_KINDS, Op, OpKind
from tapeout.workload.routing import EPRouting

#: elementwise arithmetic per element (order of magnitude; these ops are bandwidth-bound); shared with
#: the model builder (workload/build.py), which prices its elementwise ops and collectives through here
NORM_FLOPS = {"rmsnorm": 4, "layernorm": 7}
ACT_FLOPS = {"silu": 4, "gelu": 8, "gelu_tanh": 8, "relu": 1, "swiglu_oai": 5}
SOFTMAX_FLOPS = 5
ROPE_FLOPS = 3
SAMPLING_FLOPS = 5
#: cap * tanh(x / cap): a multiply, a tanh, a multiply (Gemma 2 logit soft-capping)
SOFTCAP_FLOPS = 3
#: min(max(x, -c), c): DBRX's clip_qkv clamp
CLAMP_FLOPS = 2
#: x * s: Cohere's logit_scale
SCALE_FLOPS = 1
#: score + slope * (j - i): ALiBi's per-head linear position bias on each attention score (a multiply, an add)
ALIBI_FLOPS = 2


def gemm_op(m: int, n: int, k: int, *, dtype: str | DType = "fp16", weights: str | DType | None = None,
            name: str = "gemm", count: int = 1, bias: bool = False, sparsity: object = None,
            sparse_kernel: str = "auto", constants: Any = None) -> Op:
    """A GEMM of ``m`` activation rows with a (k x n) weight matrix (as ``_Builder.gemm``).

    ``weights`` narrower than ``dtype`` is weight-only quantization (dequantized on the vector units);
    ``sparsity`` (0.8, "2:4", "1x4:0.5") picks the sparse kernels (``sparse_kernel``: auto, tensor,
    cuda, dense), as :func:`tapeout.workload.kernels.linear` describes; ``constants``: its
    :class:`~tapeout.fitted.KernelConstants` (None: the stored ones).
    """
    from tapeout.workload.kernels import linear
    from tapeout.workload.techniques import Sparsity

    a = dtypes.parse(dtype)
    w = dtypes.parse(weights) if weights is not None else a
    return linear(name, m=m, n=n, k=k, count=count, w=w, a=a, sparsity=Sparsity.parse(sparsity),
                  sparse_kernel=sparse_kernel, bias=bias, constants=constants)


def bmm_op(b: int, m: int, n: int, k: int, *, dtype: str | DType = "fp16", name: str = "bmm",
           count: int = 1, flops: float | None = None) -> Op:
    """``b`` independent (m x k) @ (k x n) activation products; every operand comes from DRAM.

    ``flops`` defaults to the full product 2*b*m*n*k (a plain matmul computes masked entries too).
    """
    a = dtypes.parse(dtype)
    rd = b * (m * k + k * n) * a.bytes
    wr = b * m * n * a.bytes
    return Op(
        name=name, kind=OpKind.BMM, flops=2.0 * b * m * n * k if flops is None else flops,
        bytes_read=rd, bytes_written=wr, count=count,
        shape=(("b", int(b)), ("m", int(m)), ("n", int(n)), ("k", int(k))),
        compute_dtype=a.name, formats=(("act", a.name),), activation_bytes=rd + wr,
    )


def attention_op(b: int, heads: int, kv_heads: int, d: int, *, sq: int = 1, prefix: int = 0,
                 dtype: str | DType = "fp16", kv: str | DType | None = None, name: str = "attention",
                 causal: bool = True, tags: tuple[str, ...] = ()) -> Op:
    """One fused attention kernel over ``b`` sequences (as ``_Builder._attention`` with ``attention="flash"``):
    a decode step (``sq == 1``) against ``prefix`` cached keys, or a prefill chunk of ``sq`` new tokens after
    ``prefix`` cached ones (``skv = prefix + sq``), causal unless ``causal`` is False (every query sees every
    key: pairs = sq x skv; kernel benchmarks). ``kv``: the KV-cache format (default: ``dtype``); ``tags``: more
    op tags (``"fa2"``: the previous-generation matrix path)."""
    if min(b, heads, kv_heads, d, sq) < 1 or prefix < 0 or heads % kv_heads:
        raise ValueError(f"attention_op: bad shape b={b} heads={heads} kv_heads={kv_heads} d={d} sq={sq} "
                         f"prefix={prefix} (positive sizes, heads a multiple of kv_heads, prefix >= 0)")
    a = dtypes.parse(dtype)
    c = dtypes.parse(kv) if kv is not None else a
    q_bytes = b * sq * heads * d * a.bytes
    if sq == 1:
        keys = prefix
        pairs = b * keys
        kv_bytes = 2.0 * b * keys * kv_heads * d * c.bytes
        tags = ("decode",) + tuple(tags)
    else:
        keys = prefix + sq
        pairs = b * (sq * prefix + sq * (sq + 1) / 2) if causal else b * sq * keys
        kv_bytes = 2.0 * b * keys * kv_heads * d * c.bytes
        tags = (("causal", "flash") if causal else ("flash",)) + tuple(tags)
    return Op(
        name=name, kind=OpKind.ATTENTION, flops=4.0 * heads * d * pairs, bytes_read=q_bytes + kv_bytes,
        bytes_written=q_bytes,
        shape=(("b", int(b)), ("heads", int(heads)), ("kv_heads", int(kv_heads)), ("sq", int(sq)),
               ("skv", int(keys)), ("d", int(d))),
        compute_dtype=a.name, formats=(("act", a.name), ("kv", c.name)), tags=tags,
        activation_bytes=2 * q_bytes + kv_bytes,
    )


def elementwise_op(name: str, kind: OpKind, elems_in: float, elems_out: float, flops_per: float, *,
                   dtype: str | DType = "fp16", out_dtype: str | DType | None = None, count: int = 1,
                   tags: tuple[str, ...] = ()) -> Op:
    """A bandwidth-bound op over ``elems_in`` input and ``elems_out`` output elements (``tags``: e.g.
    ``("token:norm",)``, a serving engine's per-token kernel, :func:`tapeout.workload.ops.token_kernel`)."""
    a = dtypes.parse(dtype)
    out = dtypes.parse(out_dtype) if out_dtype is not None else a
    rd, wr = elems_in * a.bytes, elems_out * out.bytes
    return Op(
        name=name, kind=kind, flops=flops_per * max(elems_in, elems_out), bytes_read=rd, bytes_written=wr,
        count=count, shape=(("elements", round(elems_out)),), compute_dtype="fp32",
        formats=(("act", a.name),) + ((("out", out.name),) if out is not a else ()),
        activation_bytes=rd + wr, tags=tuple(tags),
    )


def norm_op(rows: int, cols: int, *, norm: str = "rmsnorm", dtype: str | DType = "fp16", name: str = "norm",
            tags: tuple[str, ...] = ()) -> Op:
    """RMSNorm/LayerNorm over ``rows`` vectors of ``cols`` elements (weights are negligible)."""
    return elementwise_op(name, OpKind.NORM, rows * cols, rows * cols, NORM_FLOPS[norm], dtype=dtype, tags=tags)


def softmax_op(rows: int, cols: int, *, dtype: str | DType = "fp16", name: str = "softmax") -> Op:
    """Row softmax of a (rows x cols) matrix read and written once."""
    a = dtypes.parse(dtype)
    nbytes = rows * cols * a.bytes
    return Op(
        name=name, kind=OpKind.SOFTMAX, flops=SOFTMAX_FLOPS * rows * cols, bytes_read=nbytes, bytes_written=nbytes,
        shape=(("rows", int(rows)), ("cols", int(cols))), compute_dtype="fp32", formats=(("act", a.name),),
        activation_bytes=2 * nbytes,
    )


def activation_op(elems_in: float, elems_out: float, *, activation: str = "silu", dtype: str | DType = "fp16",
                  name: str = "act", tags: tuple[str, ...] = ()) -> Op:
    """An MLP activation: gated (in = 2 x out, e.g. SiLU-and-mul) or plain (in = out)."""
    return elementwise_op(name, OpKind.ELEMENTWISE, elems_in, elems_out, ACT_FLOPS[activation], dtype=dtype,
                          tags=tags)


def collective_op(kind: OpKind | str, message_bytes: float, group: int, *, dtype: str | DType = "fp16",
                  name: str | None = None, count: int = 1, routing: EPRouting | None = None) -> Op:
    """An all-reduce (``message_bytes`` per device) or all-gather (each device's shard) over ``group`` devices,
    or a point-to-point send of ``message_bytes`` (``group`` = 2: this device and the next stage's), or an
    all-to-all (``routing``: an expert-parallel dispatch's facts, :class:`tapeout.workload.routing.EPRouting`)."""
    kind = OpKind(kind)
    if kind not in COLLECTIVE_KINDS:
        raise ValueError(f"{kind} is not a collective")
    a = dtypes.parse(dtype)
    return Op(
        name=name or kind.value, kind=kind, flops=0.0, bytes_read=message_bytes, bytes_written=message_bytes,
        count=count, shape=(("bytes", round(message_bytes)),), compute_dtype="fp32",
        formats=(("act", a.name),), group=group, message_bytes=message_bytes,
        activation_bytes=2 * message_bytes, routing=routing,
    )


__all__ = ["activation_op", "bmm_op", "collective_op", "elementwise_op", "gemm_op", "norm_op", "softmax_op"]
