"""``spacy-llm-tagger convert``: annotation exports to spaCy's ``.spacy`` training files.

Reads span JSON Lines (Prodigy, doccano, this package's ``review.jsonl``), Label Studio JSON,
token-tag column files (CoNLL / IOB) and ``.spacy``; tokenizes with a blank pipeline of a
language or an existing pipeline's tokenizer; writes a DocBin for the target (``ents``,
``spans:KEY``, ``tag`` or ``pos``). Nothing is dropped silently: every record that cannot be
used is listed with its file, line and reason (also in ``OUTPUT.rejected.jsonl``), and the
report counts records, spans and labels in and out.
"""

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Union

import spacy
from spacy.language import Language
from spacy.pipeline import Sentencizer
from spacy.tokens import Doc, DocBin

from ..errors import ConfigError, DataError
from .docs import ALIGN_MODES, Built, from_span_record, from_token_record, labels_of
from .readers import (
    COLUMNS,
    DOCBIN,
    LABEL_STUDIO,
    Problem,
    Record,
    SpanRecord,
    has_docstart,
    input_files,
    read_columns,
    read_label_studio,
    read_span_jsonl,
)

__all__ = ["ConvertReport", "convert", "ALIGN_MODES"]
BIO_LABEL = re.compile(r"^[BILUES]-(.+)$")


@dataclass
class ConvertReport:
    """What went in and what came out."""

    records: int = 0
    docs: int = 0
    dev_docs: int = 0
    spans_in: int = 0
    labels: Dict[str, int] = field(default_factory=dict)
    split_tokens: int = 0
    rejected: List[Problem] = field(default_factory=list)
    skipped: List[Problem] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    outputs: List[Path] = field(default_factory=list)


def convert(
    input_path: Union[str, Path],
    output: Union[str, Path],
    *,
    lang: str = "en",
    base: Optional[str] = None,
    target: str = "ents",
    align: str = "split",
    column: Optional[int] = None,
    sentences: bool = True,
    dev_share: float = 0.0,
    dev_output: Optional[Union[str, Path]] = None,
    seed: int = 0,
) -> ConvertReport:
    """Convert INPUT (a file or a folder of files) into OUTPUT (``.spacy``); the report.

    base: an installed pipeline or folder whose tokenizer to use (instead of ``lang``).
    column: the tag column of column files (default: the last for span targets, the
        second for ``tag`` / ``pos``).
    sentences: set sentence boundaries with spaCy's rule-based sentencizer where the input
        has none (column files bring their own).
    dev_share: put this share of the documents (shuffled with ``seed``) into ``dev_output``
        (default: ``dev.spacy`` beside OUTPUT).
    """
    _check_options(target, align, dev_share, Path(output))
    nlp = _tokenizer_pipeline(lang, base)
    sentencizer = Sentencizer() if sentences else None
    report = ConvertReport()
    docs: List[Doc] = []
    for record in _records(Path(input_path), target, column):
        report.records += 1
        if isinstance(record, Problem):
            (report.skipped if record.kind == "skipped" else report.rejected).append(record)
            continue
        if isinstance(record, SpanRecord):
            report.spans_in += len(record.spans)
            built = from_span_record(record, nlp, target, align)
        elif isinstance(record, Doc):
            built = Built(record)
        else:
            report.spans_in += sum(
                tag[:2] in ("B-", "U-", "S-") for s in record.sentences for _, tag in s.rows
            )
            built = from_token_record(record, nlp, target)
        if isinstance(built, Problem):
            report.rejected.append(built)
            continue
        if sentencizer is not None and not built.doc.has_annotation("SENT_START"):
            sentencizer(built.doc)
        report.split_tokens += built.split_tokens
        docs.append(built.doc)
    if not docs:
        raise DataError(_nothing_usable(Path(input_path), report))
    if dev_share and len(docs) < 2:
        raise DataError(f"--dev-share needs at least 2 documents; INPUT gave {len(docs)}.")
    for doc in docs:
        for label, count in labels_of(doc, target).items():
            report.labels[label] = report.labels.get(label, 0) + count
    report.warnings.extend(_warnings(report, target, docs))
    train, dev = _split(docs, dev_share, seed)
    output = Path(output)
    _write(train, output)
    report.docs, report.outputs = len(train), [output]
    if dev_share:
        dev_path = Path(dev_output) if dev_output else output.with_name("dev.spacy")
        _write(dev, dev_path)
        report.dev_docs = len(dev)
        report.outputs.append(dev_path)
    _write_problems(report, output)
    return report


def _check_options(target: str, align: str, dev_share: float, output: Path) -> None:
    if target not in ("ents", "tag", "pos") and not (target.startswith("spans:") and target[6:]):
        raise ConfigError(f"--target must be ents, tag, pos or spans:KEY, not {target!r}.")
    if align not in ALIGN_MODES:
        raise ConfigError(f"--align must be one of {', '.join(ALIGN_MODES)}, not {align!r}.")
    if not 0.0 <= dev_share < 1.0:
        raise ConfigError(f"--dev-share must be in [0, 1), not {dev_share}.")
    if output.suffix != ".spacy":
        raise ConfigError(f"OUTPUT must be a .spacy file (spaCy's DocBin), not {str(output)!r}.")


def _tokenizer_pipeline(lang: str, base: Optional[str]) -> Language:
    if base is None:
        try:
            return spacy.blank(lang)
        except ImportError as err:
            raise ConfigError(
                f"spaCy has no language {lang!r} ({err}); use a code such as en, de, nl."
            ) from err
    try:
        return spacy.load(base)
    except OSError as err:
        raise ConfigError(
            f"Cannot load the pipeline {base!r} for its tokenizer: install its package "
            f"(e.g. pip install ...) or give its folder. ({err})"
        ) from err


def _records(path: Path, target: str, column: Optional[int]) -> Iterator[Union[Record, Doc]]:
    tag_column = column if column is not None else (1 if target in ("tag", "pos") else -1)
    for file in input_files(path):
        suffix = file.suffix.lower()
        if suffix in DOCBIN:
            yield from _read_docbin(file, target)
        elif suffix in LABEL_STUDIO:
            yield from read_label_studio(file)
        elif suffix in COLUMNS:
            yield from read_columns(file, tag_column, by_document=has_docstart(file))
        else:
            yield from read_span_jsonl(file)


def _read_docbin(file: Path, target: str) -> Iterator[Union[Doc, Problem]]:
    vocab = spacy.blank("xx").vocab
    for index, doc in enumerate(DocBin().from_disk(file).get_docs(vocab)):
        annotated = {
            "ents": doc.has_annotation("ENT_IOB"),
            "tag": doc.has_annotation("TAG"),
            "pos": doc.has_annotation("POS"),
        }.get(target, target[6:] in doc.spans)
        if annotated:
            yield doc
        else:
            yield Problem(f"{file}[{index}]", f"the doc carries no {target} annotation")


def _warnings(report: ConvertReport, target: str, docs: List[Doc]) -> List[str]:
    found = []
    bio = sorted(label for label in report.labels if BIO_LABEL.match(label))
    if bio and target not in ("tag", "pos"):
        bare = sorted({BIO_LABEL.sub(r"\1", label) for label in bio})
        found.append(
            f"Labels {', '.join(bio[:4])} look like BIO tags. Span annotations take the bare "
            f"label ({', '.join(bare[:4])}); the tagger adds B-/I- itself. Rename them in the "
            f"export (or convert a token-tag file, whose B-/I- tags are read as such)."
        )
    if docs and not report.labels:
        found.append(
            f"No {target} annotation in any document: a tagger trained on this learns to "
            f"predict nothing. Is --target right?"
        )
    if report.rejected:
        found.append(f"{len(report.rejected)} record(s) could not be used; see the list above.")
    return found


def _split(docs: List[Doc], dev_share: float, seed: int) -> "tuple[List[Doc], List[Doc]]":
    if not dev_share:
        return docs, []
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    n_dev = max(1, round(dev_share * len(docs))) if len(docs) > 1 else 0
    dev_index = set(order[:n_dev])
    return (
        [d for i, d in enumerate(docs) if i not in dev_index],
        [d for i, d in enumerate(docs) if i in dev_index],
    )


def _nothing_usable(input_path: Path, report: ConvertReport) -> str:
    problems = report.rejected + report.skipped
    if not problems:
        return f"INPUT {str(input_path)!r} holds no records: nothing to convert."
    shown = "\n".join(f"  {p.source}: {p.reason}" for p in problems[:5])
    more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
    return f"No usable record in {str(input_path)!r}; {len(problems)} left out:\n{shown}{more}"


def _write(docs: List[Doc], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs, store_user_data=False).to_disk(path)


def _write_problems(report: ConvertReport, output: Path) -> None:
    problems = report.rejected + report.skipped
    path = output.with_suffix(".rejected.jsonl")
    if not problems:
        path.unlink(missing_ok=True)
        return
    path.write_text(
        "".join(
            json.dumps({"source": p.source, "kind": p.kind, "reason": p.reason}) + "\n" for p in problems
        ),
        encoding="utf8",
    )
    report.outputs.append(path)
