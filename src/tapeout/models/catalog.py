"""The built-in model catalog (``models/catalog/*.toml``) and name/file resolution."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from tapeout.errors import TapeoutError, UnknownNameError
from tapeout.models.spec import ModelSpec
from tapeout.specio import build, load_catalog, read_mapping

CATALOG_DIR = Path(__file__).with_name("catalog")

#: extra ids (case-insensitive) for catalog entries: pre-rename HF repo ids (Llama-3.1 was
#: "Meta-Llama-3.1-*") and the shared reference-data ids of the two paper-only models
_ALIASES: dict[str, str] = {
    "meta-llama/Meta-Llama-3.1-8B": "llama-3.1-8b",
    "meta-llama/Meta-Llama-3.1-70B": "llama-3.1-70b",
    "meta-llama/Meta-Llama-3.1-405B": "llama-3.1-405b",
    "facebook/opt-175b": "opt-175b",
    "openai/gpt-3-175b": "gpt-3-175b",
}

_SPEC_FILE_SUFFIXES = (".toml", ".yaml", ".yml")


@functools.cache
def _catalog() -> dict[str, ModelSpec]:
    return load_catalog(CATALOG_DIR, ModelSpec, "model")


@functools.cache
def _index() -> dict[str, str]:
    """lower-cased name, HF id, repo name or alias -> catalog name."""
    index: dict[str, str] = {}

    def add(key: str, target: str) -> None:
        for k in (key, key.rsplit("/", 1)[-1]):
            index.setdefault(k.lower(), target)

    for name, spec in _catalog().items():
        index[name.lower()] = name
    for name, spec in _catalog().items():
        if spec.hf_id:
            add(spec.hf_id, name)
    for alias, name in _ALIASES.items():
        add(alias, name)
    return index


#: suffixes of fine-tuned releases that keep the base model's architecture (same config sizes):
#: chat/instruct tunes and the HF "-hf" conversion tag
_TUNE_SUFFIX = re.compile(r"(-(hf|chat|instruct|it|base))+$")
#: Mistral/Mixtral point releases (v0.1, v0.2): same layer sizes
_VERSION_SUFFIX = re.compile(r"-v\d+(\.\d+)?$")


def base_model_key(name: str) -> str:
    """Index key of a fine-tuned variant's base model: "meta-llama/Llama-2-70b-chat-hf" -> "llama-2-70b".

    Fine-tunes (chat, instruct, it) share their base model's architecture, so they resolve to it.
    """
    key = name.strip().lower().rsplit("/", 1)[-1].replace("_", "-")
    key = _VERSION_SUFFIX.sub("", key)
    key = _TUNE_SUFFIX.sub("", key)
    key = _VERSION_SUFFIX.sub("", key)
    key = re.sub(r"^meta-(?=llama)", "", key)
    return re.sub(r"^llama(\d)", r"llama-\1", key)


def model_names() -> list[str]:
    """Catalog model names, sorted."""
    return list(_catalog())


def list_models() -> list[ModelSpec]:
    """Every catalog model, sorted by name."""
    return list(_catalog().values())


def find_model(name: str) -> ModelSpec | None:
    """The catalog model ``name`` names (case-insensitive: its name, HF id or repo name, an alias, or a
    fine-tune of it, :func:`base_model_key`), else None. Files are not read (:func:`load_model` reads them)."""
    key = name.strip()
    found = _index().get(key.lower()) or _index().get(base_model_key(key))
    return None if found is None else _catalog()[found]


def _load_file(path: Path) -> ModelSpec:
    from tapeout.models.hf import load_hf_config

    if path.is_dir() or path.suffix.lower() == ".json":
        return load_hf_config(path)
    if path.suffix.lower() in _SPEC_FILE_SUFFIXES:
        return build(ModelSpec, read_mapping(path), origin=f"model file {path.name}")
    raise TapeoutError(
        f"unsupported model file type {path.suffix!r}; allowed: .json (HF config), .toml, .yaml, .yml", field="model"
    )


def load_model(spec: str | Path | ModelSpec) -> ModelSpec:
    """A catalog name or HF id (case-insensitive), an HF config.json / model dir, or a ModelSpec file."""
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, Path):
        return _load_file(spec)
    if not isinstance(spec, str):
        raise TapeoutError(f"expected a model name, path or ModelSpec, got {type(spec).__name__}", field="model")
    key = spec.strip()
    if not key:
        raise TapeoutError("empty model name; give a catalog name (see tapeout models), a Hugging Face repo id or "
                           "the path of a config.json or model file", field="model")
    found = find_model(key)
    if found is not None:
        return found
    path = Path(key).expanduser()
    if path.exists() or path.suffix.lower() in (".json", *_SPEC_FILE_SUFFIXES):
        return _load_file(path)
    raise UnknownNameError("model", key, model_names(), field="model")
