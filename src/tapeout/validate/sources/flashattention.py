"""FlashAttention-2/3 forward on H100 SXM (the FlashAttention-3 paper's figure,
``measured/flashattention_figures.csv``).
"""

from __future__ import annotations

import re
from pathlib import Path

from tapeout.validate.cases import SKIP_CONFIDENCE, Case, read_dicts, to_seconds
from tapeout.validate.registry import PER_OP, register
from tapeout.workload.ops import Op, OpKind


#: software column prefix -> op class (and op tag: FA2 runs the previous-generation MMA path)
FA_SOFTWARE = {"FlashAttention-2": "fa2", "FlashAttention-3": "fa3"}


def flash_attention_op(b: int, s: int, h: int, hd: int, causal: bool, kind: str) -> Op:
    """The fused forward attention of one FA-paper benchmark point (fp16, MHA, sq = skv = s).

    FLOPs 4 B H D pairs (pairs = S^2, or S(S+1)/2 causal); bytes: Q, K, V read, O written once.
    """
    pairs = s * (s + 1) / 2 if causal else s * s
    q = b * s * h * hd * 2.0
    return Op(name="flash_attention", kind=OpKind.ATTENTION, flops=4.0 * b * h * hd * pairs,
              bytes_read=3 * q, bytes_written=q,
              shape=(("b", b), ("heads", h), ("kv_heads", h), ("sq", s), ("skv", s), ("d", hd)),
              compute_dtype="fp16", formats=(("act", "fp16"),),
              tags=("flash",) + (("causal",) if causal else ()) + (("fa2",) if kind == "fa2" else ()))


@register("flashattention-h100", kind=PER_OP, files=("measured/flashattention_figures.csv",),
          calibration=False,
          description="FlashAttention-2/3 forward on H100 SXM (op classes fa2, fa3); a check, fitted only for attention_eta")
def load_flashattention_h100(data_dir: Path) -> list[Case]:
    """measured/flashattention_figures.csv: FlashAttention-2/3 forward on H100 SXM, op class "fa2" / "fa3".

    The time is the set's ``attention_latency_derived`` (FLOPs 4 B S^2 H D, halved when causal, over the
    printed TFLOP/s: device-side benchmark, no host term). Other software rows (standard attention,
    cuDNN, Triton) and other metrics are left out.
    """
    out = []
    for r in read_dicts(data_dir / "measured" / "flashattention_figures.csv"):
        if r["hardware_class"] != "H100-SXM" or r["metric"] != "attention_latency_derived":
            continue
        conf = r["confidence"].lower()
        if any(s in conf for s in SKIP_CONFIDENCE):
            continue
        kind = next((v for k, v in FA_SOFTWARE.items() if r["software"].startswith(k)), None)
        if kind is None:
            continue
        kv = dict(re.findall(r"(\w+)=(\w+)", r["notes"]))
        b, s, h, hd = int(kv["batch"]), int(kv["seqlen"]), int(kv["nheads"]), int(kv["headdim"])
        causal = kv["causal"] == "True"
        out.append(Case(dataset="flashattention-h100", op_class=kind, device="h100-sxm",
                        ops=(flash_attention_op(b, s, h, hd, causal, kind),),
                        measured_s=to_seconds(float(r["value"]), r["unit"]),
                        info=(("batch", b), ("seq", s), ("heads", h), ("d", hd), ("causal", causal))))
    return out
