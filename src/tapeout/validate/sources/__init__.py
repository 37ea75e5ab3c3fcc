"""The validation sources: one module per origin of measurements, each registering its dataset(s).

Importing this package registers every dataset (:func:`tapeout.validate.registry.register`); the order
of :data:`MODULES` is the report order within each kind (per-op, then end-to-end). To add a source,
write a module here whose loader(s) take the data directory and return :class:`~tapeout.validate.cases.Case`
lists, decorate each with ``@register(name, kind=..., description=..., files=...)`` and list the module
below.
"""

from importlib import import_module

MODULES = ("vidur", "llmcompass", "mamf", "hccl", "flashattention", "attention_kernels", "decode_attention_kernels",
           "fp6llm", "flashllm", "fastertransformer", "llamacpp", "torchao", "gptfast", "trtllm", "frontier", "prefill", "mi300x", "mi300x_kernels", "fp8_gemm_kernels", "rccl",
           "membw", "gaudi", "serving", "mlperf", "sglang_vllm060")

for _name in MODULES:
    import_module(f"{__name__}.{_name}")
