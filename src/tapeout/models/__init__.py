"""Model architectures: the ModelSpec, the built-in catalog and HF config.json import."""

from tapeout.models.catalog import list_models, load_model, model_names
from tapeout.models.hf import from_hf_config, load_hf_config
from tapeout.models.spec import ModelSpec, MoESpec

__all__ = [
    "ModelSpec",
    "MoESpec",
    "from_hf_config",
    "list_models",
    "load_hf_config",
    "load_model",
    "model_names",
]
