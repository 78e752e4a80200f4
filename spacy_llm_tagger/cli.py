"""The ``spacy-llm-tagger`` command line (also ``python -m spacy_llm_tagger``)."""
import sys
from pathlib import Path
from typing import Optional

import typer

from .errors import LLMTaggerError

app = typer.Typer(
    name="spacy-llm-tagger",
    help="spacy-llm-tagger: unmasked decoder LLM taggers for spaCy.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """spacy-llm-tagger: unmasked decoder LLM taggers for spaCy."""


@app.command()
def annotate(
    model: str = typer.Argument(..., help="Pipeline folder or installed pipeline package"),
    input_path: Path = typer.Argument(..., metavar="INPUT", help=".jsonl, .txt or .spacy file, or a folder of them"),
    output: Path = typer.Argument(..., help="Folder for the annotated shards"),
    engine: str = typer.Option("local", help="local (one process) or ray (Ray Data)"),
    workers: int = typer.Option(1, help="Ray actors, each with the pipeline loaded once"),
    gpus_per_worker: float = typer.Option(0.0, help="GPUs per Ray actor (0 = CPU, one torch thread)"),
    batch_size: int = typer.Option(32, help="nlp.pipe batch size"),
    output_format: str = typer.Option("jsonl", "--format", help="jsonl or spacy (DocBin shards)"),
    address: Optional[str] = typer.Option(None, help="Join this Ray cluster instead of starting one"),
    shard_size: int = typer.Option(1000, help="Records per output shard (the unit of resuming)"),
    max_chars: int = typer.Option(1_000_000, help="Longer records are rejected"),
    review: int = typer.Option(0, help="Also write OUTPUT/review.jsonl: the N records with the least confident entities"),
) -> None:
    """Annotate a corpus with a trained pipeline. Rerun the same command to resume."""
    from .annotate import annotate as run_annotate

    try:
        run_annotate(model, input_path, output, engine, workers, gpus_per_worker, batch_size,
                     output_format, address, shard_size, max_chars, review=review)
    except LLMTaggerError as err:
        typer.echo(f"Error: {err}", err=True)
        sys.exit(1)


@app.command()
def calibrate(
    pipeline: Path = typer.Argument(..., help="Trained pipeline folder (its llm_tagger cfg gets the temperature)"),
    dev: Path = typer.Argument(..., help="Held-out .spacy data with gold annotations"),
    component: Optional[str] = typer.Option(None, help="Which llm_tagger, if the pipeline has several"),
    limit: int = typer.Option(0, help="First N docs of DEV only (0 = all)"),
) -> None:
    """Fit the temperature that calibrates the tagger's span (or tag) probabilities on DEV."""
    from .calibration import calibrate as run_calibrate

    try:
        report = run_calibrate(pipeline, dev, component, limit)
    except LLMTaggerError as err:
        typer.echo(f"Error: {err}", err=True)
        sys.exit(1)
    typer.echo(
        f"{report['component']}: temperature {report['temperature']:.3f} from {report['predictions']} "
        f"predictions; expected calibration error on DEV {report['ece_before']:.4f} -> "
        f"{report['ece_after']:.4f}. Saved in {pipeline / report['component'] / 'cfg'}."
    )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="spaCy training config (as for `spacy train`)"),
    output: Optional[Path] = typer.Argument(None, help="Folder for model-best and model-last"),
    workers: int = typer.Option(1, help="Data-parallel workers (> 1: Ray Train)"),
    gpus_per_worker: float = typer.Option(0.0, help="GPUs per worker (0 = CPU, gloo)"),
    cpus_per_worker: int = typer.Option(1, help="CPU cores (torch threads) per worker"),
    address: Optional[str] = typer.Option(None, help="Join this Ray cluster instead of starting one"),
) -> None:
    """Train a pipeline; --workers N trains data-parallel on Ray Train.

    Takes the same config and overrides as `spacy train` (e.g. --paths.train train.spacy).
    Every worker reads the whole training corpus (so its path must exist on every node) and
    trains on its share of each batch; gradients are averaged before every step.
    """
    from spacy.cli._util import parse_config_overrides

    from .distributed.training import train as run_train

    try:
        overrides = parse_config_overrides(ctx.args)
        run_train(config, output, overrides, workers, gpus_per_worker, cpus_per_worker, address)
    except LLMTaggerError as err:
        typer.echo(f"Error: {err}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    app()
