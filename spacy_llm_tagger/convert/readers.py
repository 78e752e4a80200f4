"""Reading annotation exports into records: text with character spans, or tokens with tags.

Formats, told apart by extension (and, for JSON Lines, by each record's keys):

- span JSON Lines (``.jsonl``): Prodigy ``{"text", "spans": [{"start", "end", "label"}]}``
  (also this package's ``review.jsonl``), doccano ``{"text", "label": [[start, end, label]]}``
  (or ``"labels"``, or ``"entities": [{"start_offset", "end_offset", "label"}]``). Prodigy
  records whose ``answer`` is not ``accept`` are skipped and counted.
- Label Studio JSON export (``.json``): a list of tasks with ``data.text`` and
  ``annotations[].result[].value {start, end, labels}``.
- token-tag columns (``.conll``, ``.iob``, ``.bio``, ``.tsv``, ``.txt``): one token a line, its
  tag in a chosen column, a blank line between sentences, ``-DOCSTART-`` between documents.

Every record carries its source (``file:line``) so a problem can be reported where it is.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

from ..errors import DataError

SPAN_JSONL = (".jsonl",)
LABEL_STUDIO = (".json",)
COLUMNS = (".conll", ".conllu", ".iob", ".bio", ".tsv", ".txt")
DOCBIN = (".spacy",)
KNOWN_SUFFIXES = SPAN_JSONL + LABEL_STUDIO + COLUMNS + DOCBIN


@dataclass
class SpanRecord:
    """A text and its annotated character spans ``(start, end, label)``."""

    source: str
    text: str
    spans: List[Tuple[int, int, str]]


@dataclass
class TokenSentence:
    """A sentence of a column file: its first line and its ``(token, tag)`` rows."""

    line: int
    rows: List[Tuple[str, str]]


@dataclass
class TokenRecord:
    """A document of sentences read from a column file."""

    source: str
    sentences: List[TokenSentence] = field(default_factory=list)


@dataclass
class Problem:
    """A record that could not be used (``kind = "rejected"``) or was left out on purpose."""

    source: str
    reason: str
    kind: str = "rejected"


Record = Union[SpanRecord, TokenRecord, Problem]


def input_files(path: Path) -> List[Path]:
    """The files to read: ``path`` itself, or the known files in a folder (sorted)."""
    if not path.exists():
        raise DataError(f"INPUT {str(path)!r} does not exist.")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in KNOWN_SUFFIXES)
        if not files:
            raise DataError(
                f"INPUT folder {str(path)!r} holds no file this command reads ({', '.join(KNOWN_SUFFIXES)})."
            )
        return files
    if path.suffix.lower() not in KNOWN_SUFFIXES:
        raise DataError(
            f"Cannot tell the format of {str(path)!r} from its extension. Use .jsonl for span "
            f"JSON Lines (Prodigy, doccano), .json for a Label Studio export, .conll / .iob / "
            f".tsv for token-tag columns, or .spacy."
        )
    return [path]


def read_span_jsonl(path: Path) -> Iterator[Record]:
    """Span records from Prodigy / doccano / review.jsonl JSON Lines."""
    with path.open(encoding="utf8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            source = f"{path}:{number}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as err:
                yield Problem(source, f"not valid JSON ({err.msg} at column {err.colno})")
                continue
            yield span_record(data, source)


def read_label_studio(path: Path) -> Iterator[Record]:
    """Span records from a Label Studio JSON export (a list of tasks)."""
    try:
        tasks = json.loads(path.read_text(encoding="utf8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON ({err.msg}, line {err.lineno}).") from err
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise DataError(f"{path}: expected a Label Studio export (a JSON list of tasks).")
    for index, task in enumerate(tasks):
        source = f"{path}[{index}]"
        text = task.get("data", {}).get("text") if isinstance(task, dict) else None
        if not isinstance(text, str):
            yield Problem(source, "no data.text: not a Label Studio text task")
            continue
        annotations = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
        if not annotations:
            yield Problem(source, "no (uncancelled) annotation", kind="skipped")
            continue
        spans = [
            [item["value"].get("start"), item["value"].get("end"), label]
            for item in annotations[0].get("result", [])
            if isinstance(item.get("value"), dict) and "labels" in item["value"]
            for label in item["value"]["labels"]
        ]
        yield span_record({"text": text, "label": spans}, source)


def span_record(data: Any, source: str) -> Record:
    """One span record from a parsed JSON object, or the reason it cannot be one."""
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return Problem(source, 'no "text" field with a string: not a span annotation record')
    answer = data.get("answer", "accept")
    if answer != "accept":
        return Problem(source, f'Prodigy answer is "{answer}", not "accept"', kind="skipped")
    text = data["text"]
    raw = _raw_spans(data)
    if isinstance(raw, str):
        return Problem(source, raw)
    spans = []
    for item in raw:
        span = _span(item)
        if span is None:
            return Problem(source, f"a span is not [start, end, label] or {{start, end, label}}: {item!r}")
        start, end, label = span
        if not 0 <= start < end <= len(text):
            return Problem(
                source, f"span {start}-{end} ({label}) lies outside the text of {len(text)} characters"
            )
        spans.append(span)
    return SpanRecord(source, text, sorted(spans))


def _raw_spans(data: dict) -> Union[Sequence[Any], str]:
    for key in ("spans", "entities", "label", "labels"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            return f'"{key}" is not a list of spans'
        if value and all(isinstance(item, str) for item in value):
            return f'"{key}" holds document categories ({", ".join(value[:3])}), not spans'
        return value
    return []


def _span(item: Any) -> Optional[Tuple[int, int, str]]:
    if isinstance(item, dict):
        start = item.get("start", item.get("start_offset"))
        end = item.get("end", item.get("end_offset"))
        label = item.get("label")
    elif isinstance(item, (list, tuple)) and len(item) == 3:
        start, end, label = item
    else:
        return None
    if not (isinstance(start, int) and isinstance(end, int) and isinstance(label, str) and label):
        return None
    return start, end, label


def read_columns(path: Path, column: int, by_document: bool) -> Iterator[Record]:
    """Token-tag records from a column file; ``column`` picks the tag (negative from the end).

    ``by_document``: a record per ``-DOCSTART-`` document; otherwise one per sentence.
    """
    document = TokenRecord(f"{path}:1")
    rows: List[Tuple[str, str]] = []
    first_line = 1
    broken = False

    def close_sentence() -> Iterator[Record]:
        nonlocal rows, broken
        if rows and not broken:
            sentence = TokenSentence(first_line, rows)
            if by_document:
                document.sentences.append(sentence)
            else:
                yield TokenRecord(f"{path}:{first_line}", [sentence])
        rows, broken = [], False

    with path.open(encoding="utf8") as lines:
        for number, line in enumerate(lines, start=1):
            cells = line.split()
            if not cells or cells[0] == "-DOCSTART-":
                yield from close_sentence()
                if cells and document.sentences:
                    yield document
                    document = TokenRecord(f"{path}:{number}")
                continue
            if line.startswith("#") and not rows:
                continue  # CoNLL-U style comment
            if not rows:
                first_line = number
                if not document.sentences:
                    document.source = f"{path}:{number}"
            if len(cells) < 2 or not -len(cells) <= column < len(cells):
                if not broken:
                    yield Problem(
                        f"{path}:{number}",
                        f"{len(cells)} column(s), no tag in column {column}: expected 'TOKEN ... TAG' "
                        f"(choose the column with --column); the sentence is left out",
                    )
                broken = True
                continue
            rows.append((cells[0], cells[column]))
    yield from close_sentence()
    if document.sentences:
        yield document


def has_docstart(path: Path) -> bool:
    """Whether a column file marks its documents with ``-DOCSTART-`` lines."""
    with path.open(encoding="utf8") as lines:
        return any(line.startswith("-DOCSTART-") for line in lines)
