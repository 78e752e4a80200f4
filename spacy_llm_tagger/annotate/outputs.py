"""The OUTPUT folder of ``annotate``: shards written atomically, a manifest, errors, a summary.

Layout::

    OUTPUT/manifest.json           what this run is (model, inputs, format, shards)
    OUTPUT/shard-000000.jsonl      the annotated records of shard 0 (or .spacy)
    OUTPUT/shard-000000.done.json  written last: the shard is finished (counts, rejected)
    OUTPUT/errors.jsonl            every rejected record, in input order (rebuilt at the end)
    OUTPUT/summary.json            records read, written and rejected

Every file is written to a temporary name and renamed, so a run killed at any moment leaves
only whole files; a shard counts as finished once its ``.done.json`` exists, and a rerun
redoes the others.
"""

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Sequence

from ..errors import DataError
from .inputs import ShardSpec

MANIFEST = "manifest.json"
# How a difference between this run and the OUTPUT folder's manifest is told to the user.
DIFFERENCES = {
    "model": "another MODEL",
    "model_fingerprint": "the MODEL's files changed since, e.g. it was retrained",
    "inputs": "other INPUT files",
    "shards": "the INPUT files changed since",
}
ERRORS = "errors.jsonl"
SUMMARY = "summary.json"


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


class OutputFolder:
    """The shards, manifest and error report of one annotate run."""

    def __init__(self, path: Path, output_format: str) -> None:
        self.path = Path(path)
        self.format = output_format

    def shard_file(self, spec: ShardSpec) -> Path:
        return self.path / f"{spec.name}.{self.format}"

    def done_file(self, spec: ShardSpec) -> Path:
        return self.path / f"{spec.name}.done.json"

    def start(self, identity: Dict[str, Any], shards: Sequence[ShardSpec]) -> List[ShardSpec]:
        """Write the manifest (or check it matches a previous run's); the shards still to do."""
        self.path.mkdir(parents=True, exist_ok=True)
        manifest = {**identity, "shards": [asdict(spec) for spec in shards]}
        manifest_file = self.path / MANIFEST
        if manifest_file.exists():
            previous = json.loads(manifest_file.read_text(encoding="utf8"))
            # A key a manifest of an older release lacks is not compared.
            differs = [key for key in manifest if key in previous and previous[key] != manifest[key]]
            if differs:
                what = ", ".join(DIFFERENCES.get(key, key) for key in differs)
                raise DataError(
                    f"OUTPUT {str(self.path)!r} holds the results of another run ({what}). "
                    f"Use a new OUTPUT folder, or delete this one to start again."
                )
        else:
            write_atomically(manifest_file, json.dumps(manifest, indent=1).encode("utf8"))
        for stale in self.path.glob(".*.partial-*"):
            stale.unlink(missing_ok=True)  # left by a killed run
        return [spec for spec in shards if not self.done_file(spec).exists()]

    def write_shard(self, spec: ShardSpec, payload: bytes, done: Dict[str, Any]) -> None:
        """The shard's annotations, then its done marker: both whole, in this order."""
        write_atomically(self.shard_file(spec), payload)
        write_atomically(self.done_file(spec), json.dumps(done).encode("utf8"))

    def finish(self, shards: Sequence[ShardSpec]) -> Dict[str, int]:
        """Gather every shard's counts and rejected records: errors.jsonl and summary.json."""
        totals = {"shards": len(shards), "read": 0, "written": 0, "rejected": 0}
        lines: List[str] = []
        for spec in shards:
            done = json.loads(self.done_file(spec).read_text(encoding="utf8"))
            for key in ("read", "written", "rejected"):
                totals[key] += len(done[key]) if key == "rejected" else done[key]
            lines.extend(json.dumps(error, ensure_ascii=False) for error in done["rejected"])
        write_atomically(self.path / ERRORS, "".join(line + "\n" for line in lines).encode("utf8"))
        write_atomically(self.path / SUMMARY, json.dumps(totals, indent=1).encode("utf8"))
        return totals
