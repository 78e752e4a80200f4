"""Input files for ``annotate``: found, cut into shards, and read back record by record.

A shard is a run of consecutive records of one input file (a byte range of a ``.jsonl`` or
``.txt`` file, a range of docs of a ``.spacy`` DocBin). Shards are planned once, in the
driver, by scanning line starts; each engine then reads its shards itself, so no record
passes through the driver. Reading validates: a bad record becomes a :class:`Rejected`
with its line number and reason, never an exception.
"""

import copy
import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from ..errors import DataError

SUFFIXES = (".jsonl", ".txt", ".spacy")
DEFAULT_MAX_CHARS = 1_000_000


@dataclass(frozen=True)
class ShardSpec:
    """Records ``first..first+count-1`` of ``path``: lines from byte ``start`` to ``end``
    (text files), or docs ``start`` to ``end`` (DocBin)."""

    index: int
    path: str
    kind: str  # "jsonl", "txt" or "spacy"
    start: int
    end: int
    first: int  # 1-based line (or doc) number of the shard's first record
    count: int

    @property
    def name(self) -> str:
        return f"shard-{self.index:06d}"


@dataclass
class Record:
    """A valid input record: its id, its text (or Doc, from a DocBin) and its other fields."""

    id: Any
    text: str
    fields: Dict[str, Any] = field(default_factory=dict)
    doc_bytes: Optional[bytes] = None


@dataclass
class Rejected:
    """An input record that could not be read, and why."""

    path: str
    line: int
    reason: str

    def to_dict(self) -> Dict[str, Any]:
        return {"file": self.path, "line": self.line, "reason": self.reason}


def input_files(path: Union[str, Path]) -> List[Path]:
    """The input files ``path`` names: itself, or the .jsonl/.txt/.spacy files in the folder
    (sorted by name). A clear error if there are none or it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"INPUT {str(path)!r} does not exist.")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)
        if not files:
            raise DataError(f"INPUT folder {str(path)!r} holds no {', '.join(SUFFIXES)} files.")
    else:
        if path.suffix not in SUFFIXES:
            raise DataError(
                f"INPUT {str(path)!r}: unsupported file type {path.suffix!r}; use a "
                f"{', '.join(SUFFIXES)} file or a folder of them."
            )
        files = [path]
    for file in files:
        try:
            with file.open("rb") as handle:
                handle.read(1)
        except OSError as err:
            raise DataError(f"INPUT file {str(file)!r} cannot be read: {err}") from err
    return files


def plan_shards(files: List[Path], shard_size: int) -> List[ShardSpec]:
    """Cut every input file into shards of at most ``shard_size`` records, in input order."""
    if shard_size < 1:
        raise DataError("--shard-size must be at least 1.")
    shards: List[ShardSpec] = []
    for file in files:
        kind = file.suffix[1:]
        if kind == "spacy":
            n_docs = _docbin_length(file)
            for i in range(0, n_docs, shard_size):
                j = min(i + shard_size, n_docs)
                shards.append(ShardSpec(len(shards), str(file), kind, i, j, i + 1, j - i))
        else:
            starts = _line_starts(file)  # one more than the number of lines
            for i in range(0, len(starts) - 1, shard_size):
                j = min(i + shard_size, len(starts) - 1)
                shards.append(ShardSpec(len(shards), str(file), kind, starts[i], starts[j], i + 1, j - i))
    return shards


def _line_starts(file: Path) -> List[int]:
    """Byte offsets where each line starts, and the file size at the end."""
    starts = [0]
    offset = 0
    with file.open("rb") as handle:
        for line in handle:
            offset += len(line)
            starts.append(offset)
    if starts[-1] == 0:
        return [0]  # empty file: no lines
    return starts


def _docbin_length(file: Path) -> int:
    from spacy.tokens import DocBin

    try:
        return len(DocBin().from_disk(file))
    except Exception as err:  # msgpack and zlib raise many types
        raise DataError(f"INPUT file {str(file)!r} is not a readable .spacy DocBin: {err}") from err


def read_shard(spec: ShardSpec, max_chars: int = DEFAULT_MAX_CHARS) -> Tuple[List[Record], List[Rejected]]:
    """The valid records of a shard, in order, and the rejected ones."""
    if spec.kind == "spacy":
        return _read_docbin(spec), []
    records: List[Record] = []
    rejected: List[Rejected] = []
    for line_no, raw in _lines(spec):
        item = _parse_line(spec, line_no, raw, max_chars)
        if isinstance(item, Rejected):
            rejected.append(item)
        else:
            records.append(item)
    return records, rejected


def _lines(spec: ShardSpec) -> Iterator[Tuple[int, bytes]]:
    with open(spec.path, "rb") as handle:
        handle.seek(spec.start)
        data = handle.read(spec.end - spec.start)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    for offset, raw in enumerate(lines):
        yield spec.first + offset, raw.rstrip(b"\r")


def _parse_line(spec: ShardSpec, line_no: int, raw: bytes, max_chars: int) -> Union[Record, Rejected]:
    def reject(reason: str) -> Rejected:
        return Rejected(spec.path, line_no, reason)

    if len(raw) > 4 * max_chars:
        return reject(f"line of {len(raw)} bytes is over the limit ({max_chars} characters)")
    try:
        line = raw.decode("utf8")
    except UnicodeDecodeError as err:
        return reject(f"invalid UTF-8 at byte {err.start}")
    if len(line) > max_chars:
        return reject(f"line of {len(line)} characters is over the limit ({max_chars})")
    if spec.kind == "txt":
        return Record(line_no, line)
    if not line.strip():
        return reject("empty line: expected a JSON object with a 'text' field")
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        return reject(f"invalid JSON: {err.msg} at column {err.colno}")
    if not isinstance(obj, dict):
        return reject(f"expected a JSON object, got {type(obj).__name__}")
    if "text" not in obj:
        return reject("no 'text' field")
    text = obj.pop("text")
    if not isinstance(text, str):
        return reject(f"'text' is {type(text).__name__}, not a string")
    record_id = obj.pop("id", line_no)
    return Record(record_id, text, obj)


def _read_docbin(spec: ShardSpec) -> List[Record]:
    from spacy.vocab import Vocab

    records = []
    for index, doc in enumerate(_docbin_range(spec.path, spec.start, spec.end).get_docs(Vocab()), spec.start):
        user = doc.user_data or {}
        fields = dict(user.get("fields", {})) if isinstance(user.get("fields"), dict) else {}
        records.append(Record(user.get("id", index + 1), doc.text, fields, doc.to_bytes()))
    return records


def _docbin_range(path: str, start: int, end: int) -> Any:
    """Docs ``start`` to ``end`` of a DocBin file, as a DocBin of their own.

    A DocBin is one compressed message, so the whole file is read, but once per process and
    file (the last one read is kept), and only the shard's docs are built.
    """
    stat = os.stat(path)
    whole = _read_whole_docbin(path, stat.st_mtime_ns, stat.st_size)
    part = copy.copy(whole)
    for name in ("tokens", "spaces", "cats", "flags", "user_data", "span_groups"):
        setattr(part, name, getattr(whole, name)[start:end])
    return part


@functools.lru_cache(maxsize=1)
def _read_whole_docbin(path: str, _mtime_ns: int, _size: int) -> Any:
    from spacy.tokens import DocBin

    return DocBin(store_user_data=True).from_disk(path)
