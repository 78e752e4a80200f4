"""Tiny random decoders and a locally trained tokenizer: no hub access."""

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List

import torch

SENTENCES = [
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn lives in Brussels and works for the European Commission .",
    "Germany 's representative to the European Union 's veterinary committee Werner Zwingmann said on Wednesday consumers should buy sheepmeat from countries other than Britain .",
    "The quick brown fox jumps over the lazy dog near Paris .",
    "Apple Inc. opened a new store in San Francisco on Monday .",
    "Ünïcödé façade naïve café – 東京 は 日本 の 首都 です 。 🙂 👍🏽 مرحبا بالعالم",
    "https://example.com/a/very/long/path?with=query&and=more aGVsbG8gd29ybGQ= 12,345.67",
]
FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3"]


def train_tokenizer(extra: List[str] = ()) -> Any:
    """A byte-level BPE tokenizer (like GPT-2 / SmolLM2) with a BOS token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(list(SENTENCES) * 5 + list(extra), trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tokenizer.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def tiny_config(family: str, vocab_size: int, n_layers: int = 3) -> Any:
    import transformers

    common: Dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    if family == "llama":
        return transformers.LlamaConfig(**common)
    if family == "mistral":
        return transformers.MistralConfig(sliding_window=6, **common)
    if family == "qwen2":
        return transformers.Qwen2Config(**common)
    if family == "qwen3":
        return transformers.Qwen3Config(head_dim=8, **common)
    if family == "gemma2":
        return transformers.Gemma2Config(head_dim=8, sliding_window=6, query_pre_attn_scalar=8, **common)
    if family == "gemma3":
        # Gemma 3's mix: sliding-window layers with a global layer after every two
        return transformers.Gemma3TextConfig(
            head_dim=8,
            sliding_window=6,
            query_pre_attn_scalar=8,
            layer_types=[
                "full_attention" if (i + 1) % 3 == 0 else "sliding_attention" for i in range(n_layers)
            ],
            **common,
        )
    raise ValueError(family)


def make_tiny_model_dir(path: Path, family: str = "llama", n_layers: int = 3, seed: int = 0) -> Path:
    """Save a random tiny decoder + tokenizer as a Hugging Face model folder."""
    from transformers import AutoModel

    tokenizer = train_tokenizer()
    torch.manual_seed(seed)
    model = AutoModel.from_config(tiny_config(family, len(tokenizer), n_layers))
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def load_module(path: Path, name: str) -> ModuleType:
    """The Python file at ``path`` (a benchmark or project script) imported as ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def conll03_reader() -> ModuleType:
    """The conll03 project's CoNLL-2003 reader (projects/conll03/scripts/conll.py)."""
    return load_module(
        Path(__file__).parent.parent / "projects" / "conll03" / "scripts" / "conll.py", "conll03_reader"
    )
