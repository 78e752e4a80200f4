"""The registered architecture ``spacy-llm-tagger.DecoderTagger.v1``: the ``llm_tagger``'s model.

A Thinc ``Model[List[Doc], List[Floats2d]]``: one row of label scores per token, from the
decoder core (decoder.py) with a pooling + linear head on top. The network is built and the
weights loaded in ``initialize`` (or when a saved pipeline is loaded), never at construction.
"""

import inspect
from typing import Any, Callable, List, Optional, Tuple

import numpy as np
import torch
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model
from thinc.types import Floats2d
from torch import nn

from .batching import WindowPass
from .decoder import DecoderModel, NetworkBuilder
from .network import DecoderNetwork, network_inputs, wrapper_device
from .passes import run_passes
from .settings import DecoderSettings, takes_settings
from .unmasking import LayerUnmasker

InT = List[Doc]
OutT = List[Floats2d]


class DecoderTaggerModule(DecoderNetwork):
    """Decoder hidden states -> one vector per token -> label scores.

    ``forward`` takes a right-padded batch of windows and, for every token to
    score, the flat positions of its subwords (``piece_index``) and which token
    each of those belongs to (``piece_word``). It returns float32 logits of
    shape (n_words, n_labels).
    """

    def __init__(
        self,
        decoder: nn.Module,
        unmasker: LayerUnmasker,
        hidden_size: int,
        n_labels: int,
        pooling: str = "first",
        head_dropout: float = 0.1,
        merges_adapters: bool = False,
    ) -> None:
        super().__init__(decoder, unmasker, merges_adapters)
        self.pooling = pooling
        self.dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(hidden_size, n_labels)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        piece_index: torch.Tensor,
        piece_word: Optional[torch.Tensor] = None,
        n_words: int = 0,
    ) -> torch.Tensor:
        hidden = self.hidden_states(input_ids, attention_mask, position_ids)
        flat = hidden.reshape(-1, hidden.shape[-1])
        pieces = flat.index_select(0, piece_index).float()
        if self.pooling == "first" or piece_word is None:
            pooled = pieces
        else:
            pooled = torch.zeros((n_words, pieces.shape[-1]), dtype=pieces.dtype, device=pieces.device)
            pooled.index_add_(0, piece_word, pieces)
            counts = torch.bincount(piece_word, minlength=n_words).clamp(min=1)
            pooled = pooled / counts.unsqueeze(-1).to(pooled.dtype)
        return self.head(self.dropout(pooled))  # type: ignore[misc]  # set in __init__; Optional in the base class


def build_tagger_module(
    model: DecoderModel, decoder: Any, unmasker: LayerUnmasker, base_config: Any
) -> DecoderTaggerModule:
    settings = model.settings
    return DecoderTaggerModule(
        decoder,
        unmasker,
        hidden_size=base_config.hidden_size,
        n_labels=model.get_dim("nO"),
        pooling=settings.pooling,
        head_dropout=settings.head_dropout,
        merges_adapters=settings.merges_adapters,
    )


def convert_tagger_inputs(model: Model, batch: WindowPass, is_train: bool):
    device = wrapper_device(model)
    kwargs = {
        **network_inputs(model, batch.input_ids, batch.attention_mask),
        "piece_index": torch.from_numpy(batch.piece_index).to(device),
        "piece_word": torch.from_numpy(batch.piece_token).to(device),
        "n_words": batch.n_tokens,
    }
    return ArgsKwargs(args=(), kwargs=kwargs), lambda d_inputs: []


TAGGER_NETWORK = NetworkBuilder(build_tagger_module, convert_tagger_inputs, needs_n_out=True)


@registry.architectures("spacy-llm-tagger.DecoderTagger.v1")
@takes_settings(
    extra=[inspect.Parameter("nO", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Optional[int])]
)
def DecoderTagger(nO: Optional[int] = None, **settings: Any) -> Model[InT, OutT]:
    """A decoder LLM with LoRA adapters, chosen layers unmasked, and a linear head.

    Takes every setting of :class:`~.settings.DecoderSettings` (``name`` is required), and
    ``nO``, the number of labels (set by the component in ``initialize``).
    """
    return DecoderModel(
        "llm_decoder_tagger",
        forward,
        DecoderSettings.from_arguments(settings),
        TAGGER_NETWORK,
        dims={"nO": nO},
    )


def forward(model: DecoderModel, docs: InT, is_train: bool) -> Tuple[OutT, Callable]:
    loaded = model.prepare(is_train)
    n_labels = model.get_dim("nO")
    xp = model.ops.xp
    _, plan = model.plan(docs, is_train)
    results = run_passes(loaded, plan.passes, is_train, "llm_tagger")
    flat = xp.zeros((plan.n_tokens, n_labels), dtype="float32")
    for result in results:
        flat[xp.asarray(result.batch.tokens)] = result.output
    boundaries = np.cumsum(plan.doc_lengths)[:-1].tolist()
    outputs = xp.split(flat, boundaries) if docs else []

    def backprop(d_outputs: OutT) -> InT:
        if not results:
            return []
        d_flat = xp.concatenate(d_outputs)
        for result in results:
            result.backprop(xp.ascontiguousarray(d_flat[xp.asarray(result.batch.tokens)]))
        return []

    return list(outputs), backprop
