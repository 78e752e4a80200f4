"""Corpus readers: one training Example per sentence, or documents cut into mixed lengths."""

import math
import random
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Corpus, Example
from spacy.util import registry

from .errors import ConfigError, DataError


@registry.readers("spacy-llm-tagger.SentenceCorpus.v1")
def create_sentence_corpus(
    path: Optional[Union[str, Path]],
    limit: int = 0,
    shuffle: bool = False,
    gold_tokens: bool = True,
) -> Callable[[Language], Iterator[Example]]:
    """Read a .spacy DocBin and split every doc into its sentences.

    limit: keep the first N sentences (0 = all), e.g. for CPU-sized runs.
    gold_tokens: predict on the corpus' own tokens (as CoNLL evaluations do);
        False re-tokenizes the text with the pipeline's tokenizer.
    Docs without sentence boundaries are yielded whole.
    """
    if path is None:
        raise ConfigError(
            "SentenceCorpus needs a path to a .spacy file or folder: set `path` in its "
            "[corpora] block (e.g. path = ${paths.train}) or pass --paths.train."
        )
    corpus = Corpus(check_docbin_path(path), shuffle=shuffle)

    def read(nlp: Language) -> Iterator[Example]:
        count = 0
        for example in corpus(nlp):
            reference = example.reference
            parts = list(reference.sents) if reference.has_annotation("SENT_START") else [reference[:]]
            for part in parts:
                if limit and count >= limit:
                    return
                sentence = part.as_doc()
                if len(sentence) == 0:
                    continue
                count += 1
                yield example_for(sentence, nlp, gold_tokens)

    return read


@registry.readers("spacy-llm-tagger.DocumentCorpus.v1")
def create_document_corpus(
    path: Optional[Union[str, Path]],
    max_words: int = 256,
    single_sentences: bool = False,
    limit: int = 0,
    shuffle: bool = False,
    gold_tokens: bool = True,
) -> Callable[[Language], Iterator[Example]]:
    """Read a .spacy DocBin of documents and yield training Docs of mixed lengths.

    Each document's sentences are cut into runs of consecutive sentences, each run up to a
    length drawn log-uniformly between 1 and ``max_words`` tokens (about half the runs are
    one or two sentences, the rest up to whole articles), so training sees short and long
    contexts the way ``nlp(document)`` reads them. Every sentence is in exactly one run, so
    an epoch holds the same words as with one Doc per sentence. A sentence longer than
    ``max_words`` is a run of its own. Keep ``max_words`` below the model's ``max_length``
    in subwords (English words take about 1.4 subwords). ``max_words = 0`` yields one Doc
    per sentence, like ``SentenceCorpus.v1``. The runs are drawn with Python's ``random``,
    which ``spacy train`` seeds from ``[system] seed``.

    limit: use the first N sentences (0 = all), counted as in SentenceCorpus.v1, so both
        readers train on the same text.
    gold_tokens: predict on the corpus' own tokens; False re-tokenizes the text.
    single_sentences: also yield every sentence of a multi-sentence document alone.
    Docs without sentence boundaries count as one sentence.
    """
    if path is None:
        raise ConfigError(
            "DocumentCorpus needs a path to a .spacy file or folder: set `path` in its "
            "[corpora] block (e.g. path = ${paths.train}) or pass --paths.train."
        )
    if max_words < 0:
        raise ConfigError(
            f"DocumentCorpus: max_words must be >= 0 (0 = one Doc per sentence), not {max_words}."
        )
    if max_words == 0:
        return create_sentence_corpus(path, limit=limit, shuffle=shuffle, gold_tokens=gold_tokens)
    corpus = Corpus(check_docbin_path(path), shuffle=shuffle)

    def read(nlp: Language) -> Iterator[Example]:
        remaining = limit or -1
        for example in corpus(nlp):
            if remaining == 0:
                return
            reference = example.reference
            sentences = list(reference.sents) if reference.has_annotation("SENT_START") else [reference[:]]
            sentences = [s for s in sentences if len(s)]
            if remaining > 0:
                sentences = sentences[:remaining]
                remaining -= len(sentences)
            runs = runs_of_sentences(sentences, max_words)
            if single_sentences:
                runs += [[sentence] for sentence in sentences if len(sentences) > 1]
            for run in runs:
                yield example_for(reference[run[0].start : run[-1].end].as_doc(), nlp, gold_tokens)

    return read


def check_docbin_path(path: Union[str, Path]) -> Union[str, Path]:
    """``path`` if spaCy's Corpus can read it; a DataError naming the fix if it cannot."""
    location = Path(path)
    if location.is_file() and location.suffix != ".spacy":
        raise DataError(
            f"Corpus path {str(path)!r} is not a .spacy file: spaCy's corpus readers read only "
            f"DocBin files. Convert it first: `spacy-llm-tagger convert {location.name} "
            f"{location.stem}.spacy`."
        )
    return path


def runs_of_sentences(sentences: List[Span], max_words: int, rng: Any = random) -> List[List[Span]]:
    """Consecutive sentences grouped into runs of at most a log-uniform 1..max_words tokens."""
    runs: List[List[Span]] = []
    i = 0
    while i < len(sentences):
        budget = math.exp(rng.uniform(0.0, math.log(max_words))) if max_words > 1 else 1
        run = [sentences[i]]
        words = len(sentences[i])
        i += 1
        while i < len(sentences) and words + len(sentences[i]) <= budget:
            run.append(sentences[i])
            words += len(sentences[i])
            i += 1
        runs.append(run)
    return runs


def example_for(reference: Doc, nlp: Language, gold_tokens: bool) -> Example:
    """A training Example: ``reference`` against its own tokens (``gold_tokens``) or the
    pipeline's tokenization of its text."""
    predicted = tokens_only(reference, nlp.vocab) if gold_tokens else nlp.make_doc(reference.text)
    return Example(predicted, reference)


def tokens_only(doc: Doc, vocab=None) -> Doc:
    """A copy of ``doc`` with the same tokens and spaces and no annotation."""
    words = [token.text for token in doc]
    spaces = [bool(token.whitespace_) for token in doc]
    return Doc(vocab if vocab is not None else doc.vocab, words=words, spaces=spaces)
