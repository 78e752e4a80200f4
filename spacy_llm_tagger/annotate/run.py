"""``annotate``: a trained pipeline over a corpus, resumable, with bad input reported.

Checks MODEL, INPUT and OUTPUT before any work, plans the shards, skips those a previous
run finished, annotates the rest with the chosen engine while writing each shard as it
arrives (in order), then writes ``errors.jsonl`` and ``summary.json``.
"""

import hashlib
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Union

from .. import __version__
from ..errors import ConfigError, DataError, ModelNotFoundError
from .annotator import FORMATS, ShardResult
from .engines import ENGINES, AnnotatorSettings, import_ray, run_local, run_ray
from .inputs import DEFAULT_MAX_CHARS, input_files, plan_shards
from .outputs import OutputFolder
from .review import write_review_queue

DEFAULT_SHARD_SIZE = 1000
LOG_EVERY_SECONDS = 30.0


def annotate(
    model: Union[str, Path],
    input_path: Union[str, Path],
    output: Union[str, Path],
    engine: str = "local",
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    batch_size: int = 32,
    output_format: str = "jsonl",
    address: Optional[str] = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    max_chars: int = DEFAULT_MAX_CHARS,
    progress: Optional[bool] = None,
    review: int = 0,
) -> Dict[str, int]:
    """Annotate every record of ``input_path`` into shards under ``output``; the counts.

    A rerun with the same arguments after an interruption finishes the missing shards only.
    ``progress``: a progress bar (None = when stderr is a terminal, else log lines).
    ``review``: also write ``OUTPUT/review.jsonl``, the ``review`` records with the least
    confident entities (JSONL output only).
    """
    if engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {ENGINES}, not {engine!r}.")
    if output_format not in FORMATS:
        raise ConfigError(f"--format must be one of {FORMATS}, not {output_format!r}.")
    if review and output_format != "jsonl":
        raise ConfigError("--review reads the JSONL shards: use it with --format jsonl.")
    if workers < 1 or batch_size < 1:
        raise ConfigError("--workers and --batch-size must be at least 1.")
    if engine == "local" and (workers != 1 or gpus_per_worker or address):
        raise ConfigError(
            "--workers, --gpus-per-worker and --address need --engine ray; the local engine runs one process."
        )
    if engine == "ray":
        import_ray()
    check_model(model)
    files = input_files(input_path)
    shards = plan_shards(files, shard_size)
    if not shards:
        raise DataError(
            f"INPUT {str(input_path)!r} holds no records: {', '.join(str(f) for f in files[:3])} "
            f"{'is' if len(files) == 1 else 'are'} empty. Point INPUT at a file with one record "
            f"per line (JSONL with a 'text' field, or plain text), a .spacy file, or a folder of them."
        )
    folder = OutputFolder(Path(output), output_format)
    identity = {
        "model": str(model),
        "model_fingerprint": model_fingerprint(model),
        "inputs": [str(f.resolve()) for f in files],
        "format": output_format,
        "shard_size": shard_size,
        "max_chars": max_chars,
    }
    pending = folder.start(identity, shards)
    total_records = sum(spec.count for spec in shards)
    done_records = total_records - sum(spec.count for spec in pending)
    settings = AnnotatorSettings(str(model), output_format, batch_size, max_chars)
    if engine == "local":
        results = run_local(pending, settings)
    else:
        results = run_ray(pending, settings, workers, gpus_per_worker, address)
    report = Progress(total_records, done_records, len(shards) - len(pending), progress)
    with report:
        for result in results:
            folder.write_shard(result.spec, result.payload, {**result.done, "package": __version__})
            report.update(result)
    totals = folder.finish(shards)
    if review:
        queue = write_review_queue(Path(output), review)
        print(f"annotate: review queue of the {review} least confident records in {queue}", file=sys.stderr)
    print(
        f"annotate: {totals['read']} records read, {totals['written']} written, "
        f"{totals['rejected']} rejected (see {Path(output) / 'errors.jsonl'}); "
        f"{totals['shards']} shards in {output}",
        file=sys.stderr,
    )
    return totals


def check_model(model: Union[str, Path]) -> None:
    """A clear error before any work when MODEL is neither a pipeline folder nor a package."""
    from spacy.util import is_package

    path = Path(model)
    if path.exists():
        if not (path / "config.cfg").exists():
            raise ModelNotFoundError(f"MODEL {str(model)!r} is not a spaCy pipeline folder (no config.cfg).")
        return
    if not is_package(str(model)):
        raise ModelNotFoundError(
            f"MODEL {str(model)!r} is neither a pipeline folder nor an installed pipeline "
            f"package. Pass the folder nlp.to_disk() wrote (e.g. training/model-best) or "
            f"install the package (pip install en_your_pipeline-...whl)."
        )


def model_fingerprint(model: Union[str, Path]) -> str:
    """What identifies the trained weights: the size and modification time of every file of a
    pipeline folder (a retrained model at the same path differs), or a package's version."""
    path = Path(model)
    if not path.exists():
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"package {model} {version(str(model))}"
        except PackageNotFoundError:
            return f"package {model}"
    digest = hashlib.sha1()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class Progress:
    """A tqdm bar (records, words/s, ETA) on a terminal, plain log lines elsewhere."""

    def __init__(self, total: int, done: int, shards_done: int, bar: Optional[bool]) -> None:
        self.total = total
        self.done = done
        self.words = 0
        self.start = time.perf_counter()
        self.last_log = self.start
        self.bar_enabled = sys.stderr.isatty() if bar is None else bar
        self.bar: Any = None
        if shards_done:
            print(f"annotate: resuming: {shards_done} shards ({done} records) already done", file=sys.stderr)

    def __enter__(self) -> "Progress":
        if self.bar_enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.done, unit="rec", desc="annotate", file=sys.stderr)
        return self

    def update(self, result: ShardResult) -> None:
        records = result.spec.count
        self.done += records
        self.words += result.words
        elapsed = time.perf_counter() - self.start
        if self.bar is not None:
            self.bar.update(records)
            self.bar.set_postfix(words_per_s=f"{self.words / max(elapsed, 1e-9):.0f}")
        elif time.perf_counter() - self.last_log >= LOG_EVERY_SECONDS or self.done == self.total:
            self.last_log = time.perf_counter()
            print(
                f"annotate: {self.done}/{self.total} records, {self.words / max(elapsed, 1e-9):.0f} words/s, "
                f"{elapsed:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()
