"""Saving and loading a trained decoder tagger without any download.

A saved model folder holds:

- ``decoder.json``: the architecture settings, the base model's reference
  (configured name) and its config,
- ``tokenizer/``: the tokenizer (``save_pretrained``),
- ``adapter/``: the LoRA adapters in peft format (``adapter_config.json`` +
  ``adapter_model.safetensors``),
- ``head.safetensors``: the linear head (not for the shared encoder, which has none),
- ``base/`` (only with ``store_base_weights = true``): the full base weights,
  so the folder (and a ``spacy package`` wheel) is self-contained.
"""
import json
from pathlib import Path
from typing import Any, Dict, Union

import torch
from safetensors.torch import load_file, save_file
from thinc.api import Model

from ..errors import ModelError, ModelNotFoundError
from .decoder_tagger import (
    LoadedDecoder,
    attach_decoder,
    get_decoder,
    get_settings,
    set_adapters_merged,
)
from .loading import (
    build_base_model,
    dequantized_gguf,
    load_base_model,
    load_tokenizer,
    prepare_tokenizer,
    resolve_name,
    torch_dtype,
)

SETTINGS_FILE = "decoder.json"
HEAD_FILE = "head.safetensors"
ADAPTER_DIR = "adapter"
TOKENIZER_DIR = "tokenizer"
BASE_DIR = "base"
BASE_WEIGHTS_FILE = "model.safetensors"


def save_decoder(model: Model, path: Union[str, Path]) -> None:
    """Write the trained parts (and optionally the base weights) to ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    decoder = get_decoder(model)
    settings = get_settings(model)
    module = decoder.module
    meta: Dict[str, Any] = {
        "settings": settings.to_dict(),
        "nO": model.get_dim("nO"),
        "base_model": settings.name,
        "base_config": decoder.base_config.to_dict(),
        "base_weights_stored": bool(settings.store_base_weights),
        "unmasked_layers": decoder.unmasked_layers,
    }
    (path / SETTINGS_FILE).write_text(json.dumps(meta, indent=2, default=str), encoding="utf8")
    decoder.tokenizer.save_pretrained(str(path / TOKENIZER_DIR))
    if hasattr(module, "head"):
        save_file(_cpu_state(module.head.state_dict()), str(path / HEAD_FILE))
    if settings.lora_r > 0:
        module.decoder.save_pretrained(str(path / ADAPTER_DIR))
    if settings.store_base_weights:
        set_adapters_merged(decoder, settings, merged=False)
        base_dir = path / BASE_DIR
        base_dir.mkdir(exist_ok=True)
        decoder.base_config.save_pretrained(str(base_dir))
        save_file(_cpu_state(_base_state_dict(module.decoder)), str(base_dir / BASE_WEIGHTS_FILE))


def load_decoder(model: Model, path: Union[str, Path]) -> LoadedDecoder:
    """Rebuild the network from ``path`` and the base model, and load the weights."""
    path = Path(path)
    settings_path = path / SETTINGS_FILE
    if not settings_path.exists():
        raise ModelNotFoundError(
            f"{settings_path} is missing: {path} is not a saved llm_tagger model folder."
        )
    meta = json.loads(settings_path.read_text(encoding="utf8"))
    settings = get_settings(model)
    model.set_dim("nO", int(meta["nO"]), force=True)
    tokenizer = _load_saved_tokenizer(path / TOKENIZER_DIR, settings.name)
    base = _load_base(path, meta, settings)
    adapter_state = None
    if settings.lora_r > 0:
        adapter_state = _read_weights(path / ADAPTER_DIR / "adapter_model.safetensors")
    try:
        decoder = attach_decoder(model, tokenizer, base, adapter_state=adapter_state)
    except (RuntimeError, ValueError) as err:
        raise ModelError(
            f"The adapters in {path / ADAPTER_DIR} do not fit the base model "
            f"{settings.name!r}: {err}\nThey were trained on another base model; "
            f"point 'name' at the base they were trained with."
        ) from err
    if not hasattr(decoder.module, "head"):
        return decoder
    head_state = _read_weights(path / HEAD_FILE)
    try:
        decoder.module.head.load_state_dict(head_state)
    except RuntimeError as err:
        raise ModelError(
            f"{path / HEAD_FILE} does not fit this model (labels or hidden size "
            f"differ): {err}"
        ) from err
    return decoder


def _load_saved_tokenizer(path: Path, name: str) -> Any:
    from transformers import AutoTokenizer

    if not path.exists():
        raise ModelNotFoundError(f"The saved tokenizer folder {path} is missing.")
    try:
        return prepare_tokenizer(AutoTokenizer.from_pretrained(str(path)), name)
    except (OSError, ValueError) as err:
        raise ModelNotFoundError(f"Could not read the saved tokenizer in {path}: {err}") from err


def _load_base(path: Path, meta: Dict[str, Any], settings: Any) -> Any:
    from transformers import AutoConfig

    base_dir = path / BASE_DIR
    if (base_dir / BASE_WEIGHTS_FILE).exists():
        config = AutoConfig.from_pretrained(str(base_dir))
        base = build_base_model(config, settings.dtype, settings.attn_implementation)
        state = _read_weights(base_dir / BASE_WEIGHTS_FILE)
        missing, unexpected = base.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing if "rotary" not in k]:
            raise ModelError(
                f"{base_dir / BASE_WEIGHTS_FILE} does not match its config: missing "
                f"{missing[:5]}, unexpected {unexpected[:5]}."
            )
        return base.to(torch_dtype(settings.dtype))
    name = settings.name
    try:
        location = dequantized_gguf(resolve_name(name), name)
        base = load_base_model(location, name, settings.dtype, settings.attn_implementation)
    except ModelNotFoundError as err:
        raise ModelNotFoundError(
            f"This pipeline's base model {name!r} was not found: {err}\n"
            f"The pipeline folder {path.parent} stores only the adapters and head. Fix it "
            f"by (a) installing or downloading the base model so that {name!r} resolves, "
            f"(b) loading with spacy.load(path, config={{'components.<name>.model.name': "
            f"'/path/to/base'}}), or (c) saving the pipeline with "
            f"store_base_weights = true so it carries the base weights."
        ) from err
    saved = meta.get("base_config", {})
    for key in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size"):
        if key in saved and getattr(base.config, key, None) != saved[key]:
            raise ModelError(
                f"The base model {name!r} has {key}={getattr(base.config, key, None)}, but "
                f"this pipeline was trained on a base with {key}={saved[key]}. Point 'name' "
                f"at the base model it was trained with."
            )
    return base


def _read_weights(file: Path) -> Dict[str, torch.Tensor]:
    if not file.exists():
        raise ModelNotFoundError(
            f"{file} is missing: the saved pipeline is incomplete. Save it again with "
            f"nlp.to_disk(), or retrain."
        )
    try:
        return load_file(str(file))
    except Exception as err:  # safetensors raises its own error types
        raise ModelNotFoundError(f"{file} is unreadable (truncated or corrupted): {err}") from err


def _base_state_dict(decoder: Any) -> Dict[str, torch.Tensor]:
    base = decoder.get_base_model() if hasattr(decoder, "get_base_model") else decoder
    state = {}
    for key, value in base.state_dict().items():
        if "lora_" in key:
            continue
        state[key.replace(".base_layer.", ".")] = value
    return state


def _cpu_state(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def folder_to_bytes(path: Union[str, Path]) -> bytes:
    """All files under ``path`` as one msgpack message (relative path -> bytes)."""
    import srsly

    root = Path(path)
    files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    return srsly.msgpack_dumps(files)


def bytes_to_folder(data: bytes, path: Union[str, Path]) -> None:
    """Write the files of a :func:`folder_to_bytes` message under ``path``."""
    import srsly

    root = Path(path)
    for relative, content in srsly.msgpack_loads(data).items():
        target = root / relative
        if root.resolve() not in target.resolve().parents:
            raise ModelError(f"Refusing to write {relative!r} outside {root}.")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
