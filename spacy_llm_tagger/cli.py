"""The ``spacy-llm-tagger`` command line (also ``python -m spacy_llm_tagger``)."""

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from wasabi import msg

from .errors import LLMTaggerError
from .init_config import LEARN_RATE
from .models.settings import DEFAULT_MODEL_NAME

app = typer.Typer(
    name="spacy-llm-tagger",
    help="spacy-llm-tagger: unmasked decoder LLM taggers for spaCy.",
    no_args_is_help=True,
    add_completion=False,
)


@contextmanager
def exit_on_error() -> Iterator[None]:
    """Turn the package's errors into one line on stderr and exit status 1."""
    try:
        yield
    except LLMTaggerError as err:
        typer.echo(f"Error: {err}", err=True)
        sys.exit(1)


@app.callback()
def main() -> None:
    """spacy-llm-tagger: unmasked decoder LLM taggers for spaCy."""


@app.command()
def annotate(
    model: str = typer.Argument(..., help="Pipeline folder or installed pipeline package"),
    input_path: Path = typer.Argument(
        ..., metavar="INPUT", help=".jsonl, .txt or .spacy file, or a folder of them"
    ),
    output: Path = typer.Argument(..., help="Folder for the annotated shards"),
    engine: str = typer.Option("local", help="local (one process) or ray (Ray Data)"),
    workers: int = typer.Option(1, help="Ray actors, each with the pipeline loaded once"),
    gpus_per_worker: float = typer.Option(0.0, help="GPUs per Ray actor (0 = CPU, one torch thread)"),
    batch_size: int = typer.Option(32, help="nlp.pipe batch size"),
    output_format: str = typer.Option("jsonl", "--format", help="jsonl or spacy (DocBin shards)"),
    address: Optional[str] = typer.Option(None, help="Join this Ray cluster instead of starting one"),
    shard_size: int = typer.Option(1000, help="Records per output shard (the unit of resuming)"),
    max_chars: int = typer.Option(1_000_000, help="Longer records are rejected"),
    review: int = typer.Option(
        0, help="Also write OUTPUT/review.jsonl: the N records with the least confident entities"
    ),
) -> None:
    """Annotate a corpus with a trained pipeline. Rerun the same command to resume."""
    from .annotate import annotate as run_annotate

    with exit_on_error():
        run_annotate(
            model,
            input_path,
            output,
            engine,
            workers,
            gpus_per_worker,
            batch_size,
            output_format,
            address,
            shard_size,
            max_chars,
            review=review,
        )


@app.command()
def convert(
    input_path: Path = typer.Argument(
        ...,
        metavar="INPUT",
        help="Annotations: .jsonl (Prodigy, doccano, review.jsonl), .json (Label Studio), .conll/.iob/.tsv columns, .spacy, or a folder of them",
    ),
    output: Path = typer.Argument(..., help="The .spacy file to write (training data)"),
    lang: str = typer.Option("en", help="Tokenize with spaCy's blank pipeline of this language"),
    base: Optional[str] = typer.Option(
        None, help="Tokenize with this installed pipeline or folder instead (e.g. en_core_web_sm)"
    ),
    target: str = typer.Option("ents", help="What the annotations become: ents, spans:KEY, tag or pos"),
    align: str = typer.Option(
        "split",
        help="A span edge inside a token: split the token, strict (reject the record), expand or contract",
    ),
    column: Optional[int] = typer.Option(
        None, help="Column files: the tag column (default: last; second for tag/pos)"
    ),
    sentences: bool = typer.Option(
        True, help="Set sentence boundaries (rule-based) where the input has none"
    ),
    dev_share: float = typer.Option(0.0, help="Also write this share of the documents to --dev-output"),
    dev_output: Optional[Path] = typer.Option(
        None, help="Where the dev share goes (default: dev.spacy beside OUTPUT)"
    ),
    seed: int = typer.Option(0, help="Seed of the train/dev shuffle"),
) -> None:
    """Convert annotation exports into a .spacy training file; every unusable record is listed."""
    from .convert import convert as run_convert
    from .convert.report import print_report

    with exit_on_error():
        report = run_convert(
            input_path,
            output,
            lang=lang,
            base=base,
            target=target,
            align=align,
            column=column,
            sentences=sentences,
            dev_share=dev_share,
            dev_output=dev_output,
            seed=seed,
        )
    print_report(report, target)


@app.command("init-config")
def init_config(
    output: Path = typer.Argument(..., help="The config file to write (- for standard output)"),
    target: str = typer.Option("ents", help="ents, spans:KEY, tag or pos"),
    model: str = typer.Option(
        DEFAULT_MODEL_NAME, help="Base decoder: package:DIST/FILE, a folder, a .gguf file or a hub id"
    ),
    lang: str = typer.Option("en", help="Language of the blank pipeline (ignored with --base-pipeline)"),
    base_pipeline: Optional[str] = typer.Option(
        None, help="Trained pipeline whose components come first, frozen (e.g. en_core_web_sm)"
    ),
    gpu: bool = typer.Option(False, help="Settings for a GPU (bfloat16 base weights)"),
    name: str = typer.Option("llm_tagger", help="The component's name in the pipeline"),
    unmask: Optional[str] = typer.Option(
        None, help="Layers to unmask: all (the default), none, a group pattern such as 0011, or indices 0,1,5"
    ),
    learn_rate: float = typer.Option(LEARN_RATE, help="The optimizer's learning rate after the warm-up"),
) -> None:
    """Write a complete `spacy train` config for an llm_tagger, like `spacy init config`."""
    from .init_config import init_config as run_init_config

    command = " ".join(sys.argv[2:]) if sys.argv[1:2] == ["init-config"] else str(output)
    with exit_on_error():
        run_init_config(
            output,
            target=target,
            model=model,
            lang=lang,
            base_pipeline=base_pipeline,
            gpu=gpu,
            name=name,
            unmask=unmask,
            learn_rate=learn_rate,
            command=command,
        )
    if str(output) != "-":
        msg.good(f"Saved config to {output}")
        msg.text(
            f"Train: python -m spacy train {output} --output training --paths.train train.spacy --paths.dev dev.spacy"
        )


@app.command()
def calibrate(
    pipeline: Path = typer.Argument(
        ..., help="Trained pipeline folder (its llm_tagger cfg gets the temperature)"
    ),
    dev: Path = typer.Argument(..., help="Held-out .spacy data with gold annotations"),
    component: Optional[str] = typer.Option(None, help="Which llm_tagger, if the pipeline has several"),
    limit: int = typer.Option(0, help="First N docs of DEV only (0 = all)"),
) -> None:
    """Fit the temperature that calibrates the tagger's span (or tag) probabilities on DEV."""
    from .calibration import calibrate as run_calibrate

    with exit_on_error():
        report = run_calibrate(pipeline, dev, component, limit)
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
    restart: bool = typer.Option(False, "--restart", help="Train from the start, not from OUTPUT/checkpoint"),
    checkpoint_steps: int = typer.Option(0, help="Also checkpoint every N steps (0: at evaluations only)"),
) -> None:
    """Train a pipeline; rerun the same command after a kill to resume. --workers N trains
    data-parallel on Ray Train.

    Takes the same config and overrides as `spacy train` (e.g. --paths.train train.spacy) and,
    for the same seed, trains the same model. With one worker and an OUTPUT folder it keeps
    OUTPUT/checkpoint (weights, optimizer, random states, place in the data) after every
    evaluation; the same command run again goes on from there. With --workers N every worker
    reads the whole training corpus (so its path must exist on every node) and trains on its
    share of each batch; gradients are averaged before every step.
    """
    from .distributed.training import train as run_train
    from .spacy_adapter import parse_overrides

    with exit_on_error():
        overrides = parse_overrides(ctx.args)
        run_train(
            config,
            output,
            overrides,
            workers,
            gpus_per_worker,
            cpus_per_worker,
            address,
            restart=restart,
            checkpoint_steps=checkpoint_steps,
        )


if __name__ == "__main__":
    app()
