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

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, List, NoReturn, Sequence, Tuple, Union, cast

import numpy as np
import torch
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch
from thinc.types import Ints1d, Ragged
from torch import nn

from ..errors import MissingDependencyError, NotSupportedError
from .alignment import DocWindows
from .batching import WindowPass, pad_windows
from .decoder import DecoderModel, NetworkBuilder
from .network import DecoderNetwork, network_inputs
from .passes import run_passes
from .settings import DecoderSettings, takes_settings
from .unmasking import LayerUnmasker

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
        raise MissingDependencyError(INSTALL_HINT) from err
    return data_classes


def refuse_copy(*args: Any) -> NoReturn:
    """nlp.replace_listeners would copy the decoder into every listening component."""
    raise NotSupportedError(
        "spacy-llm-tagger.DecoderTransformerModel.v1 cannot be copied (e.g. by "
        "nlp.replace_listeners): each copy would duplicate the whole decoder. Keep the "
        "components listening to the shared transformer, or use the llm_tagger "
        "component for a standalone tagger."
    )


class DecoderEncoderModule(DecoderNetwork):
    """Decoder hidden states of a right-padded batch, as float32 (rows, seq, hidden)."""

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor
    ) -> torch.Tensor:
        return self.hidden_states(input_ids, attention_mask, position_ids).float()


def build_encoder_module(
    model: DecoderModel, decoder: nn.Module, unmasker: LayerUnmasker, base_config: Any
) -> DecoderEncoderModule:
    model.set_dim("nO", int(base_config.hidden_size), force=True)
    return DecoderEncoderModule(decoder, unmasker, model.settings.merges_adapters)


def convert_encoder_inputs(model: Model, batch: WindowPass, is_train: bool):
    kwargs = network_inputs(model, batch.input_ids, batch.attention_mask)
    return ArgsKwargs(args=(), kwargs=kwargs), lambda d_inputs: []


ENCODER_NETWORK = NetworkBuilder(build_encoder_module, convert_encoder_inputs)


class DecoderTransformer(DecoderModel):
    """The decoder core, saved as one file (spacy-transformers' component reads its
    ``model`` entry as one file of bytes), and never copied."""

    def to_disk(self, path: Union[str, Path]) -> None:
        Path(path).write_bytes(self.to_bytes())

    def copy(self) -> "DecoderTransformer":
        refuse_copy()


@registry.architectures("spacy-llm-tagger.DecoderTransformerModel.v1")
@takes_settings(exclude=("head_dropout",))
def DecoderTransformerModel(**settings: Any) -> Model[List[Doc], Any]:
    """An unmasked, LoRA-tuned decoder as the shared encoder of a ``transformer`` component.

    Takes the settings of ``spacy-llm-tagger.DecoderTagger.v1`` (less the head's) and
    returns spacy-transformers' ``FullTransformerBatch``.
    """
    require_spacy_transformers()
    return DecoderTransformer(
        "llm_decoder_transformer",
        forward,
        replace(DecoderSettings.from_arguments(settings, exclude=("head_dropout",)), head_dropout=0.0),
        ENCODER_NETWORK,
        dims={"nO": None},
        # called by nlp.replace_listeners before it edits the config: fail cleanly
        attrs={"replace_listener_cfg": refuse_copy},
    )


def forward(model: DecoderModel, docs: List[Doc], is_train: bool) -> Tuple[Any, Callable]:
    data_classes = require_spacy_transformers()
    from transformers.modeling_outputs import BaseModelOutput

    loaded = model.prepare(is_train)
    settings = model.settings
    xp = model.ops.xp
    encoded, plan = model.plan(docs, is_train)
    if not plan.windows:
        return data_classes.FullTransformerBatch.empty(len(docs)), lambda d_output: docs
    input_ids, attention_mask = pad_windows(plan.windows, loaded.aligner.filler_id)
    hidden = xp.zeros((*input_ids.shape, int(loaded.base_config.hidden_size)), dtype="float32")
    results = run_passes(loaded, plan.passes, is_train, "transformer")
    for result in results:
        rows, seq = xp.asarray(result.batch.windows), result.output.shape[1]
        real = xp.asarray(result.batch.attention_mask[:, :seq, None], dtype="float32")
        hidden[rows, :seq] = result.output * real  # padding stays 0
    wordpieces = data_classes.WordpieceBatch(
        strings=[loaded.tokenizer.convert_ids_to_tokens(w.tolist()) for w in plan.windows],
        input_ids=input_ids,
        attention_mask=attention_mask.astype("float32"),
        lengths=[len(w) for w in plan.windows],
        token_type_ids=None,
    )
    output = data_classes.FullTransformerBatch(
        spans=window_spans(docs, encoded),
        wordpieces=wordpieces,
        model_output=BaseModelOutput(last_hidden_state=cast(torch.FloatTensor, xp2torch(hidden))),
        align=token_alignment(encoded, hidden.shape[1], settings.pooling),
    )

    def backprop(d_output: Any) -> List[Doc]:
        d_hidden: Any = torch2xp(next(iter(d_output.model_output.values()))).reshape(hidden.shape)
        for result in results:
            rows, seq = xp.asarray(result.batch.windows), result.batch.input_ids.shape[1]
            result.backprop(xp.ascontiguousarray(d_hidden[rows, :seq]))
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
    return Ragged(data.astype("int32"), cast(Ints1d, count.astype("int32")))
