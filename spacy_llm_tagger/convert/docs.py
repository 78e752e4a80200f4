"""Turning records into annotated Docs: tokenize, align spans to tokens, write the target.

Alignment policies for a span whose edges fall inside a token (``--align``):

- ``split`` (default): split the token at the span's edge, so every span is kept exactly as
  annotated ("Xbox Series X." -> ``Xbox Series X`` + ``.``); the text is unchanged.
- ``strict``: reject the record (spaCy's ``alignment_mode="strict"``).
- ``expand``: grow the span to whole tokens; ``contract``: shrink it to whole tokens
  (a span inside one token is then rejected).

Whitespace at a span's edges is trimmed first in every mode.
"""

import re
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import biluo_tags_to_spans, iob_to_biluo

from .readers import Problem, SpanRecord, TokenRecord

TAG_PATTERN = re.compile(r"^(O|[BILUES]-.+)$")
TOKEN_ATTRS = {"tag": "tags", "pos": "pos"}
ALIGN_MODES = ("split", "strict", "expand", "contract")
SPAN_TARGETS_HELP = "use --target spans:KEY, which allows overlapping spans"


class Built:
    """A converted Doc and what was changed on the way."""

    def __init__(self, doc: Doc, split_tokens: int = 0) -> None:
        self.doc = doc
        self.split_tokens = split_tokens


def from_span_record(record: SpanRecord, nlp: Language, target: str, align: str) -> Union[Built, Problem]:
    """The record's text as a Doc with its spans as ``doc.ents`` or ``doc.spans[KEY]``."""
    if target in ("tag", "pos"):
        return Problem(
            record.source,
            f"a span record has no token {target}s: --target {target} needs a column file or .spacy",
        )
    spans = [trimmed for span in record.spans if (trimmed := _trim(record.text, span)) is not None]
    doc = nlp.make_doc(record.text)
    split = 0
    if align == "split":
        doc, split = _split_at(doc, {edge for start, end, _ in spans for edge in (start, end)})
    mode = "strict" if align == "split" else align
    made: List[Span] = []
    for start, end, label in spans:
        span = doc.char_span(start, end, label=label, alignment_mode=mode)
        if span is None:
            return Problem(record.source, _misaligned(doc, start, end, label, align))
        made.append(span)
    problem = _write_spans(doc, made, target)
    if problem:
        return Problem(record.source, problem)
    return Built(doc, split)


def from_token_record(record: TokenRecord, nlp: Language, target: str) -> Union[Built, Problem]:
    """The record's tokens as a Doc with sentence starts and the tags as the target."""
    words = [token for sentence in record.sentences for token, _ in sentence.rows]
    tags = [tag for sentence in record.sentences for _, tag in sentence.rows]
    sent_starts: List[Union[bool, int, None]] = [
        i == 0 for sentence in record.sentences for i in range(len(sentence.rows))
    ]
    spaces = [True] * len(words)
    spaces[-1] = False
    if target in ("tag", "pos"):
        try:
            attrs: Dict[str, Any] = {TOKEN_ATTRS[target]: tags}
            doc = Doc(nlp.vocab, words=words, spaces=spaces, sent_starts=sent_starts, **attrs)
        except ValueError as err:
            return Problem(record.source, f"invalid {target} value ({err}); pos needs Universal POS tags")
        return Built(doc)
    doc = Doc(nlp.vocab, words=words, spaces=spaces, sent_starts=sent_starts)
    spans: List[Span] = []
    offset = 0
    for sentence in record.sentences:
        tags = [tag for _, tag in sentence.rows]
        bad = next((i for i, tag in enumerate(tags) if not TAG_PATTERN.match(tag)), None)
        if bad is not None:
            return Problem(
                f"{record.source.rsplit(':', 1)[0]}:{sentence.line + bad}",
                f"tag {tags[bad]!r} is not O or B-/I-/L-/U-/E-/S-LABEL (is --column the tag column?)",
            )
        try:
            found = biluo_tags_to_spans(Doc(nlp.vocab, words=["x"] * len(tags)), _to_biluo(tags))
        except (ValueError, KeyError, IndexError) as err:
            return Problem(
                f"{record.source.rsplit(':', 1)[0]}:{sentence.line}",
                f"tags are not valid IOB / BILUO ({err})",
            )
        spans.extend(Span(doc, offset + s.start, offset + s.end, label=s.label_) for s in found)
        offset += len(tags)
    problem = _write_spans(doc, spans, target)
    if problem:
        return Problem(record.source, problem)
    return Built(doc)


def _to_biluo(tags: List[str]) -> List[str]:
    """IOB1 / IOB2 / BILUO / IOBES tags as BILUO."""
    if any(tag[:2] in ("L-", "U-", "E-", "S-") for tag in tags):
        return [
            {"E-": "L-", "S-": "U-"}.get(tag[:2], tag[:2]) + tag[2:] if tag != "O" else tag for tag in tags
        ]
    return iob_to_biluo(tags)


def _trim(text: str, span: Tuple[int, int, str]) -> Optional[Tuple[int, int, str]]:
    start, end, label = span
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end, label) if start < end else None


def _split_at(doc: Doc, edges: Set[int]) -> Tuple[Doc, int]:
    """``doc`` with its tokens split wherever an edge falls inside one; how many were split."""
    words: List[str] = []
    spaces: List[bool] = []
    split = 0
    for token in doc:
        cuts = sorted(e - token.idx for e in edges if token.idx < e < token.idx + len(token))
        if cuts:
            split += 1
        bounds = [0, *cuts, len(token)]
        for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
            words.append(token.text[a:b])
            spaces.append(bool(token.whitespace_) and i == len(bounds) - 2)
    if not split:
        return doc, 0
    return Doc(doc.vocab, words=words, spaces=spaces), split


def _misaligned(doc: Doc, start: int, end: int, label: str, align: str) -> str:
    text = doc.text[start:end]
    around = [t.text for t in doc if t.idx < end and t.idx + len(t) > start]
    fix = "use --align split (keeps the span exactly), expand or contract"
    if align == "contract":
        fix = "the span lies inside one token; use --align split or expand"
    return f"span {start}-{end} {text!r} ({label}) does not match token boundaries (tokens {around}); {fix}"


def _write_spans(doc: Doc, spans: Sequence[Span], target: str) -> Optional[str]:
    """Put the spans on the doc; the reason they cannot go there, if any."""
    if target.startswith("spans:"):
        doc.spans[target.split(":", 1)[1]] = list(spans)
        return None
    ordered = sorted(set((s.start, s.end, s.label_) for s in spans))
    for (a_start, a_end, a_label), (b_start, b_end, b_label) in zip(ordered, ordered[1:]):
        if b_start < a_end:
            return (
                f"spans overlap: {doc[a_start:a_end].text!r} ({a_label}) and "
                f"{doc[b_start:b_end].text!r} ({b_label}); doc.ents cannot hold overlapping "
                f"spans - fix the annotation, or {SPAN_TARGETS_HELP}"
            )
    doc.ents = [Span(doc, start, end, label=label) for start, end, label in ordered]
    return None


def labels_of(doc: Doc, target: str) -> Dict[str, int]:
    """How many spans (or tokens) of each label the doc holds for the target."""
    counts: Dict[str, int] = {}
    if target == "ents":
        items = [ent.label_ for ent in doc.ents]
    elif target.startswith("spans:"):
        items = [span.label_ for span in doc.spans.get(target.split(":", 1)[1], [])]
    else:
        items = [getattr(token, f"{target}_") for token in doc]
    for label in items:
        if label:
            counts[label] = counts.get(label, 0) + 1
    return counts
