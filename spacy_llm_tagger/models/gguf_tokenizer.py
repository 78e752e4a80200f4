"""Gemma tokenizers from GGUF files, rebuilt as the BPE they are (transformers 4.x).

A GGUF file has no ``tokenizer.json``: transformers rebuilds the tokenizer from the
vocabulary the file lists. transformers 4.x rebuilds a Gemma vocabulary as a Unigram
model ranked by the file's scores, which do not rank Gemma's pieces: "rejects"
becomes ``▁r ej ec ts`` instead of ``▁rejects``, pieces the model never saw in
pre-training, and a tagger trained on them loses accuracy silently. Gemma's
vocabulary is BPE with byte fallback; transformers 5 rebuilds it that way, with the
merges implied by the vocabulary ranked by the order the tokens appear in the file.
This module does the same for transformers 4.x, so both give the same ids.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

GEMMA_ARCHITECTURES = ("gemma", "gemma2", "gemma3")
# llama.cpp's token types
CONTROL, USER_DEFINED = 3, 4
SPACE_MARK = "\u2581"


@dataclass
class GGUFVocabulary:
    """The tokenizer part of a GGUF file's metadata."""

    tokens: List[str]
    token_types: List[int]
    special_ids: Dict[str, Optional[int]]
    add_bos: bool
    add_eos: bool


def converts_wrongly(architecture: str, tokenizer_model: str) -> bool:
    """Whether transformers 4.x converts the tokenizer of such a file wrongly
    (tokenizer.ggml.model "llama" is sentencepiece)."""
    return architecture in GEMMA_ARCHITECTURES and tokenizer_model == "llama"


def field_strings(field: Any) -> List[str]:
    """The strings a GGUF metadata field holds."""
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


def read_vocabulary(fields: Dict[str, Any]) -> GGUFVocabulary:
    """The vocabulary, token types and special token ids in a GGUF file's fields."""

    def scalar(key: str, default: Any = None) -> Any:
        field = fields.get(key)
        return field.parts[field.data[0]][0].item() if field is not None else default

    token_types = fields.get("tokenizer.ggml.token_type")
    tokens = field_strings(fields["tokenizer.ggml.tokens"])
    return GGUFVocabulary(
        tokens=tokens,
        token_types=(
            [int(token_types.parts[i][0]) for i in token_types.data] if token_types else [1] * len(tokens)
        ),
        special_ids={
            name: scalar(f"tokenizer.ggml.{key}")
            for name, key in (
                ("bos_token", "bos_token_id"),
                ("eos_token", "eos_token_id"),
                ("unk_token", "unknown_token_id"),
                ("pad_token", "padding_token_id"),
            )
        },
        add_bos=bool(scalar("tokenizer.ggml.add_bos_token", True)),
        add_eos=bool(scalar("tokenizer.ggml.add_eos_token", False)),
    )


def respelled(tokens: List[str]) -> List[str]:
    """Gemma files store tokens of blanks as real spaces; the tokenizer looks them up with
    the space mark (its normalizer turns every space into one). As transformers 5 does."""
    return [SPACE_MARK * len(t) if " " in t and not t.strip() else t for t in tokens]


def merges_by_position(tokens: List[str]) -> List[Tuple[str, str]]:
    """The BPE merges a vocabulary implies: every split of a token into two tokens of the
    vocabulary, ranked by the token's position (Gemma files list tokens in merge order),
    then longer left part, then longer right part (as transformers 5 ranks them)."""
    index = {token: i for i, token in enumerate(tokens)}
    merges = [
        (position, token[:cut], token[cut:])
        for token, position in index.items()
        for cut in range(1, len(token))
        if token[:cut] in index and token[cut:] in index
    ]
    merges.sort(key=lambda merge: (merge[0], -len(merge[1]), -len(merge[2])))
    return [(left, right) for _, left, right in merges]


def gemma_tokenizer(vocabulary: GGUFVocabulary) -> Any:
    """A fast Gemma tokenizer (BPE, byte fallback, spaces as ``▁``, no prefix space)."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    tokens = respelled(vocabulary.tokens)
    specials = {
        name: tokens[i] if i is not None and 0 <= i < len(tokens) else None
        for name, i in vocabulary.special_ids.items()
    }
    backend = Tokenizer(
        BPE(
            vocab={token: i for i, token in enumerate(tokens)},
            merges=merges_by_position(tokens),
            unk_token=specials["unk_token"],
            fuse_unk=True,
            byte_fallback=True,
            dropout=None,
        )
    )
    backend.normalizer = normalizers.Replace(" ", SPACE_MARK)
    backend.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    backend.decoder = decoders.Sequence(
        [decoders.Replace(SPACE_MARK, " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    # As transformers 5: control tokens are special; user-defined ones are plain added tokens,
    # matched whole in the text, where the file spells them as the vocabulary does.
    typed = list(zip(vocabulary.tokens, vocabulary.token_types))
    vocab = set(tokens)
    backend.add_special_tokens(
        [AddedToken(t, normalized=False, special=True) for t, kind in typed if kind == CONTROL]
    )
    backend.add_tokens(
        [
            AddedToken(t, normalized=False, special=False)
            for t, kind in typed
            if kind == USER_DEFINED and t in vocab
        ]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        padding_side="left",
        **{name: token for name, token in specials.items() if token is not None},
    )
    set_frame(tokenizer, vocabulary.add_bos, vocabulary.add_eos)
    return tokenizer


def set_frame(tokenizer: Any, add_bos: bool, add_eos: bool) -> None:
    """Add BOS / EOS around every text, as the file asks."""
    from tokenizers import processors

    bos, eos = tokenizer.bos_token, tokenizer.eos_token
    single = " ".join(
        [f"{bos}:0"] * (add_bos and bos is not None) + ["$A:0"] + [f"{eos}:0"] * (add_eos and eos is not None)
    )
    pair = single + " " + single.replace("$A:0", "$B:1").replace(":0", ":1")
    special = [(t, tokenizer.convert_tokens_to_ids(t)) for t in (bos, eos) if t is not None]
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=special
    )


def rebuilt_tokenizer(path: Path) -> Optional[Any]:
    """The rebuilt tokenizer of the GGUF file at ``path`` if this transformers version
    converts it wrongly, else None (``AutoTokenizer`` reads it right; 5.x always does)."""
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        return None
    try:
        from gguf import GGUFReader

        fields = GGUFReader(str(path)).fields
        architecture = field_strings(fields["general.architecture"])[0]
        tokenizer_model = field_strings(fields["tokenizer.ggml.model"])[0]
    except Exception:  # not a GGUF file, no tokenizer in it, or no gguf package
        return None
    if not converts_wrongly(architecture, tokenizer_model):
        return None
    return gemma_tokenizer(read_vocabulary(fields))
