"""Training inputs that hold an unpunctuated sentence boundary: neighbours in a batch joined.

A tagger trained on one Doc per sentence has never read an input with a sentence boundary
inside it, but a document that arrives as bare tokens is cut at sentence-final punctuation, so
a dateline or a headline runs into the next sentence and a table into one long "sentence"
(docs/whole-documents.md). Joining some training examples with their neighbour in the batch
shows the model such inputs while it learns; the loss is the same mean over words.
"""

from typing import Callable, List, Sequence

from spacy.tokens import Doc
from spacy.training import Example


def join_neighbours(examples: Sequence[Example], rate: float, draw: Callable[[], float]) -> List[Example]:
    """``examples`` with each one, with probability ``rate``, joined to the next into one
    example (its text, tokens and annotations in order); every token is kept once. ``draw``
    gives uniform numbers in [0, 1), e.g. ``random.random``."""
    if rate <= 0.0:
        return list(examples)
    joined: List[Example] = []
    i = 0
    while i < len(examples):
        first = examples[i]
        if (
            i + 1 < len(examples)
            and len(first.predicted)
            and len(examples[i + 1].predicted)
            and draw() < rate
        ):
            second = examples[i + 1]
            joined.append(
                Example(
                    Doc.from_docs([first.predicted, second.predicted]),
                    Doc.from_docs([first.reference, second.reference]),
                )
            )
            i += 2
        else:
            joined.append(first)
            i += 1
    return joined
