"""What a compressed linear layer costs in bytes and work: the builder side of the kernel models.

:func:`linear` turns (shape, weight format, activation format, sparsity) into an :class:`Op` whose
fields say which kernel runs and how much extra work it does; a performance tier (``perf/quant.py``
for the roofline tier) divides that work by the device's rates. Nothing here knows a device.

Work counts are *lane-instructions* of the vector units (one thread executing one instruction),
counted from the kernels' inner loops (docs/techniques.md has the derivations):

- FPx -> fp16 (TC-FPx, FP6-LLM ``utils_parallel_dequant.cuh``): per 4 weights, each bit plane
  (4/2/1-bit) present costs an AND, an OR into the packed word (free for the first plane), a shift
  when the plane is not aligned and the plane register's own shift (every 8/p - 1 of 8/p loops);
  the 4-way cast costs 7 (AND, AND+SHIFT+OR per pair, one 8-bit shift); bias and scale are two
  HMUL2 per output pair (4). fp6: (1.75 + 3.5 + 7 + 4) / 4 = 4.06 per weight.
- intN -> fp16 (magic-number conversion of FasterTransformer/Marlin): LOP3 + HFMA2 per pair with
  the zero point folded in, 1.125 per weight for nibble/byte-aligned widths; other widths add the
  bit-plane gathering of FPx. Group-wise scales (and zeros) are applied per element in the main
  loop (``int_group_scale_ops``); per-channel or per-tensor scales go to the epilogue (free
  here). Deployed intN weight-only kernels (TensorRT-LLM's CUTLASS W4A16, torchao's tinygemm,
  llama.cpp) add ``int_kernel_overhead_ops`` per weight on top of that instruction count.
- NF4 (bitsandbytes): nibble extract (~0.6), one warp-shuffle table lookup (1), scale (0.5)... 2.5.
- 8-bit floats -> fp16 on a device without fp8 conversion: the 4-way cast and scale, 2.75.
- Flash-LLM extraction (``SpMM_DecompressFromRegisterToShared``): per nonzero a value/index split,
  an address and a 16-bit shared store: 4; the dense tile is zero-filled by cp.async (2 B/element
  of shared-memory writes) and read by ldmatrix (2 B/element); each scattered 16-bit store takes a
  4-byte bank slot.

Kernel parameters (not device data):
- :data:`M_TILE` = 64 activation rows per pass of a skinny weight-only or sparse kernel (Marlin
  and TC-FPx hold at most 64 rows of activations per thread block; more rows repeat the
  dequantization per 64-row pass).
- :data:`CSL_TILE` = (128, 64): Flash-LLM's Tiled-CSL tile (TILE_M x TILE_K, ``TilingConfig.h``),
  one 4-byte offset per tile, each nonzero a 4-byte (fp16 value, int16 in-tile index) pair.
- Sputnik's CSR: fp16 values, 16-bit column indices, two 4-byte entries per row (offset, swizzle).
- 1xN: one 16-bit K index per nonzero block and a 4-byte pointer per block row; the MMA's 16-row
  extent is filled by ceil(16/N) blocks that do not share K positions, so a block of N < 16 rows
  wastes 1 - N/16 of each MMA.

Fitted constants (:class:`~tapeout.fitted.KernelConstants`, stored in ``fitted/kernels.toml`` by
``tapeout fit``; docs/techniques.md): the intN weight-only kernels' ``int_group_scale_ops`` and
``int_kernel_overhead_ops`` (fitted together, on both tiers, on FP6-LLM's measured kernel comparisons with
TensorRT-LLM's W4A16 kernels on A100: 6 figures; derived, Marlin-ideal values would be 0.5 and 0);
Sputnik's ``sputnik_ops_per_nnz``, ``_per_nnz_col`` and ``_per_row`` (effective lane-instructions of the CSR
SpMM on CUDA cores, bound by the latency of its activation-row gathers; least squares on the Flash-LLM set's
Sputnik rows). Every function here takes them as ``constants`` (None: the stored ones); a prediction
passes its scenario's (``predict(..., kernel_constants=...)``). These are work counts; the kernels'
efficiencies (Flash-LLM's ``onchip_eta`` and ``tiled_csl_stream_eta``) are the device's, read by a tier where
it prices the op (:mod:`tapeout.perf.quant`): an op names its :class:`~tapeout.workload.ops.Kernel`, never an
efficiency.
"""

from __future__ import annotations

import math
from dataclasses import replace

from tapeout import dtypes, fitted
from tapeout.dtypes import DType
from tapeout.fitted import KernelConstants
from tapeout.workload.techniques import Sparsity
from tapeout.workload.ops import Kernel, Op, OpKind

M_TILE = 64
CSL_TILE = (128, 64)
CSL_BYTES_PER_NNZ_INDEX = 2
CSR_INDEX_BYTES = 2
CSR_ROW_BYTES = 8
BLOCK_INDEX_BYTES = 2
BLOCK_ROW_BYTES = 4
MMA_M = 16
#: shared-memory bytes per dense element of a compute-as-dense tile: cp.async zero fill + ldmatrix read
DENSE_TILE_SMEM_BYTES = 2 + 2
#: shared-memory bank slot a scattered 16-bit store occupies
SCATTER_SMEM_BYTES = 4
#: lane-instructions per nonzero of Flash-LLM's extraction (value/index split, address, store)
EXTRACT_OPS_PER_NNZ = 4.0
#: lane-instructions per dense element of the zero fill and ldmatrix (one 16-byte op per 8 fp16)
DENSE_TILE_OPS = 0.25
#: 2:4 metadata: a 2-bit position per kept value
META_BITS_24 = 2
#: W8A8/FP8 epilogue: per-token x per-channel scale on each output (2 multiplies)
EPILOGUE_OPS = 2.0
#: dynamic per-token activation quantization fused into the producer: absmax, scale, convert
ACT_QUANT_OPS = 3.0



def _constants(constants: KernelConstants | None) -> KernelConstants:
    return fitted.kernel_constants() if constants is None else constants


def _planes_ops(bits: int) -> float:
    """TC-FPx bit-plane gathering, lane-instructions per 4 weights."""
    ops, first = 0.0, True
    for p in (1, 2, 4):
        if not bits & p:
            continue
        shift = bits & (p - 1)
        ops += 1 + (0 if first else 1) + (1 if shift else 0) + (1 - p / 8)
        first = False
    return ops


def dequant_ops(fmt: DType, target: DType | None = None, constants: KernelConstants | None = None) -> float:
    """Lane-instructions to turn one stored element of ``fmt`` into the compute format ``target``."""
    if fmt.bits >= 16:
        return 0.0
    to_int = target is not None and target.kind == "int"
    if fmt.kind == "nf":
        return 2.5
    if fmt.kind == "int":
        aligned = fmt.bits in (2, 4, 8)
        planes = 0.0 if aligned else _planes_ops(fmt.bits) / 4
        if to_int:  # int4 -> int8 (W4A8): sign-extending nibble unpack, no scale in the main loop
            return 0.5 + planes
        k = _constants(constants)
        scale = k.int_group_scale_ops if fmt.granularity == "group" else 0.0
        return 1.125 + scale + planes + k.int_kernel_overhead_ops
    # small floats: bit planes, 4-way cast, bias and scale HMUL2; one shared-memory load per plane per 32
    if fmt.bits == 8:
        return (7 + 4) / 4 + 1 / 32
    planes = bin(fmt.bits & 7).count("1")
    return (_planes_ops(fmt.bits) + 7 + 4) / 4 + planes / 32


def passes(rows: float) -> int:
    """Passes of a skinny kernel over the weights for ``rows`` activation rows."""
    return max(1, math.ceil(rows / M_TILE))


def value_bytes(w: DType, n: float, k: float, density: float) -> float:
    """Bytes of the kept weight values of an (n x k) matrix with their scales (scales stay per the dense shape)."""
    scales = w.matrix_bytes(n, k) - n * k * w.bits / 8
    return density * n * k * w.bits / 8 + scales


def sparse_weight_bytes(w: DType, n: float, k: float, sp: Sparsity | None, layout: str = "tiled-csl") -> float:
    """Stored bytes of an (n x k) weight matrix (per expert) in ``layout``.

    layouts: "dense" (zeros stored), "tiled-csl" (Flash-LLM), "csr" (Sputnik), "2:4", "1xn".
    """
    if sp is None or layout == "dense":
        return w.matrix_bytes(n, k)
    nnz = sp.density * n * k
    vals = value_bytes(w, n, k, sp.density)
    if layout == "tiled-csl":
        tiles = math.ceil(n / CSL_TILE[0]) * math.ceil(k / CSL_TILE[1])
        return vals + nnz * CSL_BYTES_PER_NNZ_INDEX + tiles * 4
    if layout == "csr":
        return vals + nnz * CSR_INDEX_BYTES + n * CSR_ROW_BYTES
    if layout == "2:4":
        return vals + nnz * META_BITS_24 / 8
    if layout == "1xn":
        blocks = nnz / sp.block
        return vals + blocks * BLOCK_INDEX_BYTES + math.ceil(n / sp.block) * BLOCK_ROW_BYTES
    raise ValueError(f"unknown sparse layout {layout!r}")


def storage_layout(sp: Sparsity | None, sparse_kernel: str) -> str:
    """The layout the weights are stored in for memory planning (the kernel's own format)."""
    if sp is None or sparse_kernel == "dense":
        return "dense"
    if sp.pattern == "2:4":
        return "2:4"
    if sp.pattern == "1xn" and sparse_kernel == "auto":
        return "1xn"
    return "csr" if sparse_kernel == "cuda" else "tiled-csl"


def linear(name: str, *, m: float, n: int, k: int, count: int, w: DType, a: DType, sparsity: Sparsity | None = None,
           sparse_kernel: str = "auto", experts: float = 1.0, tokens_routed: float | None = None,
           bias: bool = False, constants: KernelConstants | None = None) -> Op:
    """A GEMM with a (k x n) weight matrix per expert and ``m`` activation rows per expert.

    Without techniques (16-bit weights and activations, no sparsity) the op is exactly the dense
    GEMM of :mod:`tapeout.workload.build`. ``constants``: the fitted kernel constants (None: the stored).
    """
    kc = _constants(constants)
    rows = m * experts if tokens_routed is None else tokens_routed
    compute = dtypes.matmul_compute_dtype(w, a)
    bias_b = experts * n * a.bytes if bias else 0.0
    act_in = rows * k * a.bytes
    act_out = rows * n * a.bytes
    shape = (("m", round(m)), ("n", n), ("k", k)) + ((("experts", round(experts)),) if experts != 1 else ())
    fmts: tuple[tuple[str, str], ...] = (("weights", w.name), ("act", a.name))
    if sparsity is not None:
        fmts += (("sparsity", sparsity.name),)
    flops = 2.0 * rows * n * k

    def make(kernel: Kernel, wbytes: float, **extra: object) -> Op:
        wb = wbytes * experts + bias_b
        return Op(
            name=name, kind=OpKind.GEMM, flops=flops, bytes_read=wb + act_in, bytes_written=act_out, count=count,
            shape=shape, compute_dtype=compute.name, formats=fmts, weight_bytes=wb,
            activation_bytes=act_in + act_out, kernel=kernel, **extra,  # type: ignore[arg-type]
        )

    dq = dequant_ops(w, compute, kc) if w.bits < compute.bits or (w.bits < 16 and w.kind != compute.kind) else 0.0
    lowp = compute.bits <= 8  # W8A8 / FP8 / W4A4: the MMA itself runs in the low-precision format
    epilogue = (rows * n * EPILOGUE_OPS + rows * k * ACT_QUANT_OPS) if lowp else 0.0
    fallback = (experts * n * k * dequant_ops(w, None, kc) + rows * k * dequant_ops(a, None, kc)) if lowp else 0.0

    def dense_kernel() -> Op:
        """The weights stored densely (zeros included when sparse)."""
        wbytes = w.matrix_bytes(n, k)
        if not w.quantized and not a.quantized:
            return make(Kernel.DENSE, wbytes)
        if lowp:
            # the scale epilogue (and, without a native path, the operand conversion) precede/follow the MMAs
            return make(Kernel.LOWP, wbytes, vector_ops=epilogue, fallback_vector_ops=fallback, overlap="serial")
        # weight-only quantization: dequantize in registers, MMA at the activation precision
        return make(Kernel.WEIGHT_ONLY, wbytes, vector_ops=experts * n * k * dq * passes(m), skinny_rows=m,
                    overlap="serial")

    def dequant_dense() -> Op:
        """Large M: a dequantization kernel writes a 16-bit copy of the weights, then a dense GEMM reads it.

        Two kernels, one after the other: the GEMM (16-bit weights, ``Kernel.DEQUANT_DENSE``) with the
        dequantization as its ``prologue``, an elementwise pass that reads the stored weights and writes the
        copy; its ALU work (``dq`` lane-instructions per weight) is counted as vector FLOPs."""
        copy = experts * n * k * compute.bytes
        dequant = Op(
            name=f"{name}.dequant", kind=OpKind.ELEMENTWISE, flops=experts * n * k * dq,
            bytes_read=w.matrix_bytes(n, k) * experts, bytes_written=copy, count=count,
            shape=(("elements", experts * n * k),), compute_dtype=compute.name, formats=(("weights", w.name),),
            activation_bytes=copy,
        )
        return replace(make(Kernel.DEQUANT_DENSE, n * k * compute.bytes), prologue=(dequant,))

    if sparsity is None:
        op = dense_kernel()
        if op.kernel is Kernel.WEIGHT_ONLY and m > M_TILE:
            return _with_alternatives(op, (dequant_dense(),))
        return op

    nnz = sparsity.density * n * k  # per expert
    dq_nnz = experts * nnz * dq * passes(m)
    candidates: list[Op] = []
    if sparsity.pattern == "2:4":
        wbytes = sparse_weight_bytes(w, n, k, sparsity, "2:4")
        candidates.append(make(
            Kernel.SPARSE_24, wbytes, sparse_peak=True, skinny_rows=m if dq else 0.0,
            vector_ops=dq_nnz + (epilogue if lowp else 0.0),
            fallback_vector_ops=experts * nnz * 1.0 + (fallback if lowp else 0.0),
            overlap="serial" if dq else "max"))
    if sparsity.pattern == "1xn":
        nb = sparsity.block
        wbytes = sparse_weight_bytes(w, n, k, sparsity, "1xn")
        waste = math.ceil(nb / MMA_M) * MMA_M / nb if nb < MMA_M else 1.0
        blocks = experts * nnz / nb
        candidates.append(make(
            Kernel.BLOCK_1XN, wbytes, matrix_flops=2.0 * rows * nnz * experts * waste, skinny_rows=m,
            vector_ops=dq_nnz + blocks * 2 * passes(m), onchip_bytes=blocks * m * a.bytes, overlap="max"))
    if sparsity.pattern in ("unstructured", "1xn") and sparse_kernel in ("auto", "tensor"):
        wbytes = sparse_weight_bytes(w, n, k, sparsity, "tiled-csl")
        p = passes(m)
        candidates.append(make(
            Kernel.SPARSE_TC, wbytes, matrix_flops=flops, skinny_rows=m,
            vector_ops=(experts * (nnz * EXTRACT_OPS_PER_NNZ + n * k * DENSE_TILE_OPS) * p + dq_nnz),
            onchip_bytes=experts * (n * k * DENSE_TILE_SMEM_BYTES + nnz * SCATTER_SMEM_BYTES) * p,
            overlap="max"))
    if sparsity.pattern in ("unstructured", "1xn") and sparse_kernel in ("auto", "cuda"):
        wbytes = sparse_weight_bytes(w, n, k, sparsity, "csr")
        candidates.append(make(
            Kernel.SPARSE_CUDA, wbytes, matrix_flops=0.0, cuda_core_flops=2.0 * rows * nnz,
            vector_ops=experts * (nnz * (kc.sputnik_ops_per_nnz + kc.sputnik_ops_per_nnz_col * m)
                                  + n * kc.sputnik_ops_per_row) + dq_nnz, overlap="max"))
    if sparse_kernel in ("auto", "dense") or not candidates:
        candidates.append(dense_kernel())
        if candidates[-1].kernel is Kernel.WEIGHT_ONLY and m > M_TILE:
            candidates.append(dequant_dense())
    if sparse_kernel == "dense":
        candidates = [c for c in candidates if not c.kernel.sparse]
    primary, *rest = candidates
    return _with_alternatives(primary, tuple(rest))


def _with_alternatives(op: Op, alts: tuple[Op, ...]) -> Op:
    return replace(op, alternatives=alts) if alts else op


def kv_attention_work(elements: float, kv: DType, a: DType, constants: KernelConstants | None = None) -> float:
    """Lane-instructions to dequantize ``elements`` KV-cache values to the attention's compute format."""
    if kv.bits >= 16 or kv == a:
        return 0.0
    return elements * dequant_ops(kv, a if a.bits >= 16 else dtypes.parse("fp16"), constants)


__all__ = ["CSL_TILE", "M_TILE", "dequant_ops", "kv_attention_work", "linear", "passes", "sparse_weight_bytes",
           "storage_layout", "value_bytes"]
