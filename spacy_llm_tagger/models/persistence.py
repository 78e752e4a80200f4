"""A decoder model folder: its files written from, and read back into, the parts of the network.

Nothing is downloaded when a folder is read.

A saved model folder holds:

- ``decoder.json``: the architecture settings, the base model's reference
  (configured name) and its config, and the window lengths the model was trained on,
- ``tokenizer/``: the tokenizer (``save_pretrained``),
- ``adapter/``: the LoRA adapters in peft format (``adapter_config.json`` +
  ``adapter_model.safetensors``),
- ``head.safetensors``: the linear head (not for the shared encoder, which has none),
- ``base/`` (only with ``store_base_weights = true``): the full base weights,
  so the folder (and a ``spacy package`` wheel) is self-contained.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch
from safetensors.torch import load_file, save_file

from ..errors import ConfigError, ModelError, ModelNotFoundError
from .loading import (
    ModelLocation,
    build_base_model,
    dequantized_gguf,
    load_base_model,
    prepare_tokenizer,
    resolve_name,
    torch_dtype,
)
from .network import DecoderNetwork
from .settings import DecoderSettings

SETTINGS_FILE = "decoder.json"
HEAD_FILE = "head.safetensors"
ADAPTER_DIR = "adapter"
TOKENIZER_DIR = "tokenizer"
BASE_DIR = "base"
BASE_WEIGHTS_FILE = "model.safetensors"


@dataclass
class SavedDecoder:
    """What a saved folder holds, read back: enough to rebuild the network offline."""

    n_out: Optional[int]
    tokenizer: Any
    base: Any  # the base decoder with its pretrained weights
    adapter_state: Optional[Dict[str, torch.Tensor]]
    trained_lengths: Optional[Dict[str, int]]  # None in folders saved by release 0.1.0
    trained_sentences: Optional[Dict[str, int]]  # None in folders saved before 0.3.0
    # training texts by whether they ended in whitespace ("1") or not ("0"); None in folders
    # saved before that was recorded
    trained_final_space: Optional[Dict[str, int]] = None


def write_folder(
    path: Union[str, Path],
    settings: DecoderSettings,
    n_out: Optional[int],
    tokenizer: Any,
    base_config: Any,
    network: DecoderNetwork,
    trained_lengths: Dict[str, int],
    trained_sentences: Dict[str, int],
    trained_final_space: Dict[str, int],
) -> None:
    """Write the trained parts (and with ``store_base_weights`` the base weights) to ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    meta: Dict[str, Any] = {
        "settings": settings.to_dict(),
        "nO": n_out,
        "base_model": settings.name,
        "base_config": base_config.to_dict(),
        "base_weights_stored": bool(settings.store_base_weights),
        "unmasked_layers": network.unmasked_layers,
        "trained_window_lengths": trained_lengths,
        "trained_window_sentences": trained_sentences,
        "trained_final_space": trained_final_space,
    }
    (path / SETTINGS_FILE).write_text(json.dumps(meta, indent=2, default=str), encoding="utf8")
    tokenizer.save_pretrained(str(path / TOKENIZER_DIR))
    if network.head is not None:
        save_file(_cpu_state(network.head.state_dict()), str(path / HEAD_FILE))
    if settings.lora_r > 0:
        network.decoder.save_pretrained(str(path / ADAPTER_DIR))
    if settings.store_base_weights:
        base_dir = path / BASE_DIR
        base_dir.mkdir(exist_ok=True)
        base_config.save_pretrained(str(base_dir))
        save_file(_cpu_state(network.base_state_dict()), str(base_dir / BASE_WEIGHTS_FILE))


def read_folder(path: Union[str, Path], settings: DecoderSettings) -> SavedDecoder:
    """Read a folder written by :func:`write_folder` (the head: :func:`read_head`).

    The base model comes from ``base/`` or, when the folder does not carry it, from
    ``settings.name``.
    """
    path = Path(path)
    settings_path = path / SETTINGS_FILE
    if not settings_path.exists():
        raise ModelNotFoundError(
            f"{settings_path} is missing: {path} is not a saved llm_tagger model folder."
        )
    meta = json.loads(settings_path.read_text(encoding="utf8"))
    check_kept_layers(path, meta, settings)
    tokenizer = _load_saved_tokenizer(path / TOKENIZER_DIR, settings.name)
    base = _load_base(path, meta, settings)
    adapter_state = None
    if settings.lora_r > 0:
        adapter_state = _read_weights(path / ADAPTER_DIR / "adapter_model.safetensors")
    n_out = meta.get("nO")
    return SavedDecoder(
        None if n_out is None else int(n_out),
        tokenizer,
        base,
        adapter_state,
        meta.get("trained_window_lengths"),
        meta.get("trained_window_sentences"),
        meta.get("trained_final_space"),
    )


def check_kept_layers(path: Path, meta: Dict[str, Any], settings: DecoderSettings) -> None:
    """The adapters and head fit only the layers they were trained with: a clear error when
    a load asks for another ``keep_layers``."""
    saved = int(meta.get("settings", {}).get("keep_layers", 0) or 0)
    asked = settings.keep_layers
    trained_layers = meta.get("base_config", {}).get("num_hidden_layers")
    same = saved == asked or (0 in (saved, asked) and max(saved, asked) == trained_layers)
    if not same:
        raise ConfigError(
            f"The model in {path} was trained with keep_layers = {saved}, but is being loaded "
            f"with keep_layers = {settings.keep_layers}. Its adapters and head only fit the "
            f"layers it was trained with: load it with keep_layers = {saved} (or retrain)."
        )


def read_head(path: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """The head's weights in a folder written by :func:`write_folder`."""
    return _read_weights(Path(path) / HEAD_FILE)


def adapters_do_not_fit(path: Union[str, Path], name: str, err: Exception) -> ModelError:
    return ModelError(
        f"The adapters in {Path(path) / ADAPTER_DIR} do not fit the base model "
        f"{name!r}: {err}\nThey were trained on another base model; "
        f"point 'name' at the base they were trained with."
    )


def head_does_not_fit(path: Union[str, Path], err: Exception) -> ModelError:
    return ModelError(
        f"{Path(path) / HEAD_FILE} does not fit this model (labels or hidden size differ): {err}"
    )


def _load_saved_tokenizer(path: Path, name: str) -> Any:
    from transformers import AutoTokenizer

    if not path.exists():
        raise ModelNotFoundError(f"The saved tokenizer folder {path} is missing.")
    try:
        return prepare_tokenizer(AutoTokenizer.from_pretrained(str(path)), name)
    except (OSError, ValueError) as err:
        raise ModelNotFoundError(f"Could not read the saved tokenizer in {path}: {err}") from err


def load_configured_base(location: ModelLocation, settings: DecoderSettings) -> Any:
    """The pretrained base at ``location`` as ``settings`` load it (dtype, attention, kept
    layers, quantization): one call for a fresh model and for a saved one."""
    return load_base_model(
        location,
        settings.name,
        settings.dtype,
        settings.attn_implementation,
        settings.keep_layers,
        settings.quantize_base,
    )


def _load_base(path: Path, meta: Dict[str, Any], settings: DecoderSettings) -> Any:
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
        base = load_configured_base(location, settings)
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
