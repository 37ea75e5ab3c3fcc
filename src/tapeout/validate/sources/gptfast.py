"""gpt-fast's batch-1 decode rates (typed from its README, shipped: ``validate/published/gptfast.csv``)."""

from __future__ import annotations

from pathlib import Path

from tapeout.validate.cases import PUBLISHED_DIR, Case, e2e_case, e2e_model, read_dicts, scenario
from tapeout.validate.registry import END_TO_END, register


@register("e2e-gptfast", kind=END_TO_END, shipped=True,
          description="gpt-fast batch-1 decode tokens/s, Llama-2-7B/70B, bf16/int8/int4, TP 1-8, A100")
def load_e2e_gptfast(data_dir: Path) -> list[Case]:
    """validate/published/gptfast.csv: gpt-fast's batch-1 decode rates (typed from its README).

    Llama-2-7B / -70B on A100 80GB (an 8-GPU NVLink box, power-limited to 330 W; mapped to a100-sxm-80gb)
    and one MI250X GCD; bf16, int8 weight-only (per channel) and int4 group 32 with zeros, every linear
    layer quantized (lm_head too); tensor parallelism 1-8 (PyTorch's intra-node all-reduce). 5-token
    prompt, 200 new tokens, torch.compile with CUDA graphs: the ``gptfast`` framework profile (device
    time, one-shot all-reduces up to 256 KiB, their fixed cost fitted on the TP rows).
    op class = format + ``/tp<N>``. ``data_dir`` is unused: the file ships with tapeout.
    """
    cases = []
    for row in read_dicts(PUBLISHED_DIR / "gptfast.csv"):
        if row["use"].strip() != "yes":
            continue
        w, tp = row["weights"].strip(), int(row["tp"])
        sc = scenario(model=e2e_model(row["model"]), batch=int(row["batch"]), input_len=int(row["input_len"]),
                      output_len=int(row["output_len"]), tp=tp, weights=w, activations="bf16", kv_cache="bf16",
                      lm_head=row["lm_head"].strip(), framework="gptfast")
        cases.append(e2e_case("e2e-gptfast", f"{w}/tp{tp}", row["device"].strip(), sc, "decode_step_s",
                              float(row["tokens_per_s"]), tp, row, technique=row["technique"],
                              hardware=row["hardware"], source=row["source"]))
    return cases
