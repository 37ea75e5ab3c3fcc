"""Write a small .safetensors file of random weights for `tapeout quantize-error`.

    python examples/make_safetensors.py [PATH]     (default: examples/model.safetensors)

The tensors are seeded Gaussian weights shaped like one small transformer layer (a 2-D projection
pair in fp16, an fp32 one, and a 1-D norm that quantize-error skips unless --all); numpy and tapeout
only, no torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tapeout.numerics.tensorfile import write


def main(path: str | Path = Path(__file__).with_name("model.safetensors")) -> Path:
    rng = np.random.default_rng(0)
    hidden, inter = 256, 688
    tensors = {
        "layers.0.attn.qkv_proj.weight": (rng.standard_normal((3 * hidden, hidden)) * 0.02).astype(np.float16),
        "layers.0.mlp.up_proj.weight": (rng.standard_normal((inter, hidden)) * 0.02).astype(np.float16),
        "layers.0.mlp.down_proj.weight": (rng.standard_normal((hidden, inter)) * 0.02).astype(np.float32),
        "layers.0.norm.weight": np.ones(hidden, dtype=np.float32),
    }
    out = Path(path)
    write(out, tensors, {"format": "pt", "note": "random weights written by examples/make_safetensors.py"})
    print(f"wrote {out} ({out.stat().st_size:,} bytes, {len(tensors)} tensors)")
    return out


if __name__ == "__main__":
    main(*sys.argv[1:2])
