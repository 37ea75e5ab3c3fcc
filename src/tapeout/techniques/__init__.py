"""Compression techniques: formats in use, sparsity, per-layer rules and pruning, kernel work, the codec.

- :mod:`~tapeout.techniques.spec`: value types a scenario carries (``Sparsity``, ``LayerRule``) and
  scenario files;
- :mod:`~tapeout.techniques.layers`: per-layer resolution of the techniques, layer groups, weight and
  KV-cache bytes;
- :mod:`~tapeout.techniques.kernels`: the device-free work of each kernel (bytes, matrix FLOPs,
  vector instructions, shared-memory traffic) as :class:`~tapeout.workload.ops.Op` fields;
- :mod:`~tapeout.techniques.codec`: bit-exact numpy quantization, byte layouts, fidelity metrics;
- :mod:`~tapeout.techniques.tensorfile`, :mod:`~tapeout.techniques.qerror`: safetensors without torch,
  and ``tapeout quantize-error``;
- :mod:`~tapeout.techniques.judge`: comparisons with FP6-LLM and Flash-LLM measurements.

See docs/techniques.md. Nothing is imported here: the submodules load on first use.
"""
