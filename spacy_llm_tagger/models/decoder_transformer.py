"""The registered architecture ``spacy-llm-tagger.DecoderTransformerModel.v1``.

A drop-in ``model`` for spacy-transformers' ``transformer`` component: the
same unmasked, LoRA-tuned decoder as ``spacy-llm-tagger.DecoderTagger.v1``,
returning spacy-transformers' ``FullTransformerBatch`` so that the stock
``spacy-transformers.TransformerListener.v1`` feeds spaCy's ``ner``,
``tagger``, ``parser``, ``spancat`` or ``textcat`` from one decoder pass.

Layout handed to the listeners:

- ``spans``: one span per decoder window (long docs get overlapping windows),
- ``wordpieces``: the windows' real subwords, right-padded,
- ``model_output.last_hidden_state``: (windows, longest window, hidden) float32,
- ``align``: each token points at its subwords in the one window where it sits
  furthest from an edge (``pooling = "first"``: its first subword only, so any
  listener pooling reads the first subword; ``"mean"``: all of its subwords,
  reduced by the listener's pooling layer).

Gradients the listeners send back go into the decoder's LoRA adapters.
spacy-transformers is imported only when this architecture is used, so the
core package does not depend on it (``pip install spacy-llm-tagger[trf]``).
"""
import tempfile
from pathlib import Path
from typing import Any, Callable, List, Sequence, Tuple, Union

import numpy as np
import srsly
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, torch2xp, xp2torch
from thinc.types import Ragged

from .alignment import DocWindows
from .batching import pad_windows
from .decoder_encoder import encode_windows
from .decoder_tagger import (
    DecoderSettings,
    _limit_threads_after_fork,
    get_decoder,
    get_settings,
    init,
    module_device,
    set_adapters_merged,
)
from .persistence import bytes_to_folder, folder_to_bytes, load_decoder, save_decoder

INSTALL_HINT = (
    "spacy-llm-tagger.DecoderTransformerModel.v1 plugs into spacy-transformers' "
    "'transformer' component, which is not installed. Install it with: "
    "pip install 'spacy-llm-tagger[trf]'"
)


def require_spacy_transformers() -> Any:
    """Import spacy-transformers' data classes, or explain how to install them."""
    try:
        from spacy_transformers import data_classes
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return data_classes


def refuse_copy(*args: Any) -> Any:
    """nlp.replace_listeners would copy the decoder into every listening component."""
    raise NotImplementedError(
        "spacy-llm-tagger.DecoderTransformerModel.v1 cannot be copied (e.g. by "
        "nlp.replace_listeners): each copy would duplicate the whole decoder. Keep the "
        "components listening to the shared transformer, or use the llm_tagger "
        "component for a standalone tagger."
    )


class DecoderTransformer(Model):
    """The Thinc model; (de)serialises its decoder like the llm_tagger does."""

    def copy(self) -> "DecoderTransformer":  # type: ignore[override]
        refuse_copy()

    def to_bytes(self) -> bytes:  # type: ignore[override]
        if self.attrs.get("decoder") is None:
            return srsly.msgpack_dumps({})
        with tempfile.TemporaryDirectory() as tmp:
            save_decoder(self, tmp)
            return folder_to_bytes(tmp)

    def from_bytes(self, bytes_data: bytes) -> "DecoderTransformer":  # type: ignore[override]
        with tempfile.TemporaryDirectory() as tmp:
            bytes_to_folder(bytes_data, tmp)
            if any(Path(tmp).iterdir()):
                load_decoder(self, tmp)
        return self


@registry.architectures("spacy-llm-tagger.DecoderTransformerModel.v1")
def DecoderTransformerModel(
    name: str,
    unmask: Union[str, int, List[int]] = "all",
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.0,
    lora_target_modules: Union[str, List[str]] = "all-linear",
    pooling: str = "first",
    dtype: str = "float32",
    gradient_checkpointing: bool = False,
    max_length: int = 512,
    window_overlap: int = 64,
    max_batch_tokens: int = 0,
    attn_implementation: str = "sdpa",
    store_base_weights: bool = False,
) -> Model[List[Doc], Any]:
    """An unmasked, LoRA-tuned decoder as the shared encoder of a ``transformer`` component.

    Takes the options of ``spacy-llm-tagger.DecoderTagger.v1`` (less the
    head's) and returns spacy-transformers' ``FullTransformerBatch``.
    """
    require_spacy_transformers()
    settings = DecoderSettings(
        name=name,
        unmask=unmask,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        lora_target_modules=lora_target_modules,
        pooling=pooling,
        dtype=dtype,
        gradient_checkpointing=gradient_checkpointing,
        max_length=max_length,
        window_overlap=window_overlap,
        max_batch_tokens=max_batch_tokens,
        head_dropout=0.0,
        attn_implementation=attn_implementation,
        store_base_weights=store_base_weights,
    )
    return DecoderTransformer(
        "llm_decoder_transformer",
        forward,
        init=init,
        dims={"nO": None},
        attrs={
            "settings": settings,
            "decoder": None,
            "encoder_only": True,
            # called by nlp.replace_listeners before it edits the config: fail cleanly
            "replace_listener_cfg": refuse_copy,
        },
    )


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[Any, Callable]:
    data_classes = require_spacy_transformers()
    from transformers.modeling_outputs import BaseModelOutput

    decoder = get_decoder(model)
    settings = get_settings(model)
    _limit_threads_after_fork(decoder)
    set_adapters_merged(decoder, settings, merged=not is_train)
    encoded = decoder.aligner(docs)
    windows = [window for doc_windows in encoded for window in doc_windows.windows]
    if not windows:
        return data_classes.FullTransformerBatch.empty(len(docs)), lambda d_output: docs
    input_ids, attention_mask = pad_windows(windows, decoder.aligner.filler_id)
    hidden, backprop_hidden = encode_windows(
        decoder,
        input_ids,
        attention_mask,
        settings.batch_tokens(module_device(decoder).type),
        is_train,
        model.ops.xp,
    )
    wordpieces = data_classes.WordpieceBatch(
        strings=[decoder.tokenizer.convert_ids_to_tokens(w.tolist()) for w in windows],
        input_ids=input_ids,
        attention_mask=attention_mask.astype("float32"),
        lengths=[len(w) for w in windows],
        token_type_ids=None,
    )
    output = data_classes.FullTransformerBatch(
        spans=window_spans(docs, encoded),
        wordpieces=wordpieces,
        model_output=BaseModelOutput(last_hidden_state=xp2torch(hidden)),
        align=token_alignment(encoded, hidden.shape[1], settings.pooling),
    )

    def backprop(d_output: Any) -> List[Doc]:
        d_hidden = next(iter(d_output.model_output.values()))
        backprop_hidden(torch2xp(d_hidden).reshape(hidden.shape))
        return docs

    return output, backprop


def window_spans(docs: Sequence[Doc], encoded: Sequence[DocWindows]) -> List[List[Any]]:
    """The tokens each window covers, as spans (overlapping for long docs)."""
    return [
        [doc[int(begin) : int(end)] for begin, end in doc_windows.window_tokens]
        for doc, doc_windows in zip(docs, encoded)
    ]


def token_alignment(encoded: Sequence[DocWindows], seq: int, pooling: str) -> Ragged:
    """Each token's subwords as flat indices into the (windows * seq) layout."""
    first_rows = np.cumsum([0] + [len(e.windows) for e in encoded])[:-1]
    starts, counts = [], []
    for doc_windows, first_row in zip(encoded, first_rows):
        rows = doc_windows.token_window + first_row
        starts.append(rows * seq + doc_windows.token_start)
        counts.append(doc_windows.token_end - doc_windows.token_start)
    start = np.concatenate(starts) if starts else np.zeros((0,), dtype=np.int64)
    count = np.concatenate(counts) if counts else np.zeros((0,), dtype=np.int64)
    if pooling == "first":
        count = np.ones_like(start)
    run_start = np.repeat(np.cumsum(count) - count, count)
    data = np.repeat(start, count) + (np.arange(int(count.sum())) - run_start)
    return Ragged(data.astype("int32"), count.astype("int32"))
