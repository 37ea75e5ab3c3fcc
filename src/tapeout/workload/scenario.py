"""What is being run: batch, lengths, number formats and parallelism."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tapeout import dtypes
from tapeout.dtypes import DType


class Scenario(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    batch: int = Field(1, gt=0, description="concurrent sequences")
    input_len: int = Field(2048, gt=0, description="prompt tokens per sequence")
    output_len: int = Field(128, gt=0, description="generated tokens per sequence (the first comes from prefill)")
    tp: int = Field(1, gt=0, description="tensor-parallel degree")
    weights: DType = Field(dtypes.parse("fp16"), description="weight format")
    activations: DType = Field(dtypes.parse("fp16"), description="activation format")
    kv_cache: DType = Field(dtypes.parse("fp16"), description="KV-cache format")
    attention: Literal["flash", "naive"] = Field(
        "flash", description="flash: fused FlashAttention-style kernel; naive: materialized scores"
    )

    @field_validator("weights", "activations", "kv_cache", mode="before")
    @classmethod
    def _dtype(cls, v: object, info) -> DType:  # type: ignore[no-untyped-def]
        return dtypes.parse(v, field=info.field_name)  # type: ignore[arg-type]

    @property
    def final_context(self) -> int:
        return self.input_len + self.output_len - 1
