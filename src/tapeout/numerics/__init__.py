"""Number formats as values, apart from any op graph or device (docs/techniques.md §2):

- :mod:`~tapeout.numerics.codec`: bit-exact numpy quantization per format, byte layouts, fidelity metrics;
- :mod:`~tapeout.numerics.tensorfile`: safetensors reading and writing without torch;
- :mod:`~tapeout.numerics.qerror`: ``tapeout quantize-error`` (every weight tensor of a file, quantized).

Nothing is imported here: the submodules load on first use (numpy).
"""
