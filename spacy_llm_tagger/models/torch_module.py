"""The PyTorch networks: a (LoRA-wrapped) decoder with chosen layers unmasked,
either with subword pooling and a linear head (the tagger) or returning its
hidden states (the shared encoder for spacy-transformers listeners)."""
from typing import Any, Optional

import torch
from torch import nn

from .unmasking import LayerUnmasker

POOLING_MODES = ("first", "mean")


class DecoderTaggerModule(nn.Module):
    """Decoder hidden states -> one vector per word -> label scores.

    ``forward`` takes a right-padded batch of windows and, for every word to
    score, the flat positions of its subwords (``piece_index``) and which word
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
    ) -> None:
        super().__init__()
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, not {pooling!r}")
        self.decoder = decoder
        self.unmasker = unmasker
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
        hidden = run_decoder(self.decoder, self.unmasker, input_ids, attention_mask, position_ids)
        flat = hidden.reshape(-1, hidden.shape[-1])
        pieces = flat.index_select(0, piece_index).float()
        if self.pooling == "first" or piece_word is None:
            pooled = pieces
        else:
            pooled = torch.zeros(
                (n_words, pieces.shape[-1]), dtype=pieces.dtype, device=pieces.device
            )
            pooled.index_add_(0, piece_word, pieces)
            counts = torch.bincount(piece_word, minlength=n_words).clamp(min=1)
            pooled = pooled / counts.unsqueeze(-1).to(pooled.dtype)
        return self.head(self.dropout(pooled))


class DecoderEncoderModule(nn.Module):
    """Decoder hidden states of a right-padded batch, as float32 (rows, seq, hidden)."""

    def __init__(self, decoder: nn.Module, unmasker: LayerUnmasker) -> None:
        super().__init__()
        self.decoder = decoder
        self.unmasker = unmasker

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
    ) -> torch.Tensor:
        hidden = run_decoder(self.decoder, self.unmasker, input_ids, attention_mask, position_ids)
        return hidden.float()


def run_decoder(
    decoder: nn.Module,
    unmasker: LayerUnmasker,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
) -> torch.Tensor:
    """The last hidden states, with this batch's padding given to the unmasked layers."""
    unmasker.state.set(attention_mask.bool())
    outputs: Any = decoder(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=False,
    )
    return outputs[0] if isinstance(outputs, tuple) else outputs.last_hidden_state
