"""Resumable training: spaCy's training loop, with checkpoints a killed run goes on from.

:func:`train_resumable` trains a config as ``spacy train`` does - for the same seed the same
batches, updates and evaluations, and the same ``model-best`` and ``model-last`` - and after
every evaluation (or every ``checkpoint_steps``) writes ``OUTPUT/checkpoint`` (see
:mod:`.checkpoints`). Called again after a kill, it loads the checkpoint and goes on from the
step after it; the run it finishes is the run an uninterrupted call makes. Once a run has
finished, calling it again only says so (``restart=True`` trains from the start).

The logger's JSONL file is written anew on every start, the evaluations before the checkpoint
first, so it always holds the whole run.
"""

import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Tuple, cast

import spacy
from spacy.errors import Errors
from spacy.language import Language
from spacy.schemas import ConfigSchemaTraining
from spacy.training import Example
from spacy.training.initialize import init_nlp
from spacy.util import fix_random_seed, load_config, registry, resolve_dot_names
from thinc.api import Optimizer, constant, require_gpu, set_gpu_allocator
from wasabi import Printer

from .checkpoints import (
    Checkpoint,
    TrainingProgress,
    finish_checkpoint,
    plain,
    read_checkpoint,
    remove_checkpoint,
    restore_checkpoint,
    restore_random_states,
    save_checkpoint,
)
from .errors import CheckpointError, ConfigError
from .spacy_adapter import loop_helpers

CHECKPOINT_FOLDER = "checkpoint"


@dataclass
class DataPosition:
    """Where the batches are: the epoch, batches of it drawn, and the random state each epoch's
    shuffle started from (kept up to date by :func:`training_batches`, saved in checkpoints)."""

    epoch: int = 0
    batches_in_epoch: int = 0
    shuffle_states: List[Any] = field(default_factory=list)


def training_batches(
    nlp: Language,
    corpus: Callable[[Language], Any],
    batcher: Callable[[Any], Any],
    max_epochs: int,
    position: DataPosition,
    resume: Optional[Checkpoint] = None,
) -> Iterator[Tuple[int, List[Example]]]:
    """spaCy's ``create_train_batches`` (shuffle, batch, repeat for ``max_epochs``), which can
    start inside an epoch: ``resume`` replays the shuffles up to its epoch and skips the
    batches used, then puts the random generators back as they were at the checkpoint."""
    if max_epochs >= 0:
        examples: Any = list(corpus(nlp))
        if not examples:
            raise ValueError(Errors.E986)
    epoch = resume.progress.epoch if resume else 0
    skip = resume.progress.batches_in_epoch if resume else 0
    if resume is not None:
        saved_states = resume.shuffle_states
        position.shuffle_states = saved_states[:epoch]
        if max_epochs >= 0:
            for state in position.shuffle_states:  # the in-place shuffles of the epochs before
                random.setstate(state)
                random.shuffle(examples)
        random.setstate(saved_states[epoch])
    while max_epochs < 1 or epoch != max_epochs:
        position.epoch, position.batches_in_epoch = epoch, 0
        position.shuffle_states.append(random.getstate())
        if max_epochs >= 0:
            random.shuffle(examples)
        else:
            examples = corpus(nlp)
        for i, batch in enumerate(batcher(examples)):
            position.batches_in_epoch = i + 1
            if i < skip:
                continue
            if resume is not None:
                restore_random_states(resume.state["random"])
                resume = None
            yield epoch, batch
        if resume is not None:  # the checkpoint was written at the end of this epoch
            restore_random_states(resume.state["random"])
            resume = None
        skip = 0
        epoch += 1


def trainable_pipes(nlp: Language, frozen: List[str]) -> List[Tuple[str, Any]]:
    """The components spaCy's loop calls ``finish_update`` on."""
    return [
        (name, pipe)
        for name, pipe in nlp.pipeline
        if name not in frozen
        and getattr(pipe, "is_trainable", False)
        and getattr(pipe, "model", None) not in (True, False, None)
    ]


def train_resumable(
    config_path: Path,
    output: Path,
    overrides: Optional[Dict[str, Any]] = None,
    *,
    use_gpu: int = -1,
    restart: bool = False,
    restart_stale: bool = False,
    checkpoint_steps: int = 0,
    stdout: Optional[IO] = None,
    stderr: Optional[IO] = None,
) -> TrainingProgress:
    """Train ``config_path`` into ``output`` (model-best, model-last), going on from
    ``output/checkpoint`` when an earlier call left one.

    ``restart``: train from the start whatever the checkpoint. ``restart_stale``: train from the
    start when the checkpoint is of a finished run or of another config (otherwise the first
    says so and returns, the second raises :class:`CheckpointError`): what a project command
    wants, which reruns only when its inputs changed or it was stopped. ``checkpoint_steps`` > 0
    writes a checkpoint every that many steps as well as at every evaluation."""
    if checkpoint_steps < 0:
        raise ConfigError(
            f"checkpoint_steps must be 0 (at evaluations only) or more, not {checkpoint_steps}."
        )
    msg = Printer(no_print=True)
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr

    def write(text: str) -> None:
        print(text, file=stdout, flush=True)

    config = load_config(config_path, overrides=overrides or {}, interpolate=False)
    config_text = config.to_str()
    folder = output / CHECKPOINT_FOLDER
    if restart:
        remove_checkpoint(folder)
    try:
        checkpoint = read_checkpoint(folder, config_text)
    except CheckpointError:
        if not restart_stale:
            raise
        checkpoint = None
    if checkpoint is not None and checkpoint.progress.finished and restart_stale:
        checkpoint = None
    if checkpoint is not None and checkpoint.progress.finished:
        write(
            msg.good(
                f"{output} holds a finished run of this config ({checkpoint.progress.step + 1} steps); "
                f"nothing to do. Pass --restart to train it again."
            )
        )
        return checkpoint.progress
    output.mkdir(parents=True, exist_ok=True)
    if use_gpu >= 0:
        require_gpu(use_gpu)
    if checkpoint is None:
        nlp = init_nlp(config, use_gpu=use_gpu)
        progress = TrainingProgress()
    else:
        write(
            msg.info(
                f"Resuming from {checkpoint.folder}: step {checkpoint.progress.step} done "
                f"(epoch {checkpoint.progress.epoch}), best dev score so far "
                f"{max(checkpoint.progress.results)[0] if checkpoint.progress.results else 'none'}"
            )
        )
        nlp = spacy.load(checkpoint.model_path)
        progress = checkpoint.progress
    return run_loop(nlp, output, progress, checkpoint, config_text, use_gpu, checkpoint_steps, stdout, stderr)


def run_loop(
    nlp: Language,
    output: Path,
    progress: TrainingProgress,
    checkpoint: Optional[Checkpoint],
    config_text: str,
    use_gpu: int,
    checkpoint_steps: int,
    stdout: IO,
    stderr: IO,
) -> TrainingProgress:
    """spaCy's ``train`` and ``train_while_improving`` from ``progress`` on, with checkpoints."""
    helpers = loop_helpers()
    msg = Printer(no_print=True)
    config = nlp.config.interpolate()
    if config["training"]["seed"] is not None:
        fix_random_seed(config["training"]["seed"])
    if use_gpu >= 0 and config["training"]["gpu_allocator"]:
        set_gpu_allocator(config["training"]["gpu_allocator"])
    log_file = config["training"]["logger"].get("output_file")
    if log_file and Path(log_file).exists():
        Path(log_file).unlink()  # written anew, with the evaluations before the checkpoint
    T = registry.resolve(config["training"], schema=ConfigSchemaTraining)
    train_corpus, dev_corpus = resolve_dot_names(config, [T["train_corpus"], T["dev_corpus"]])
    optimizer: Optimizer = T["optimizer"]
    before_to_disk = helpers.create_before_to_disk_callback(T["before_to_disk"])
    evaluate = helpers.create_evaluation_callback(nlp, dev_corpus, T["score_weights"])
    frozen, annotating = T["frozen_components"], T["annotating_components"]
    dropouts = cast(
        Iterator[float], constant(T["dropout"]) if isinstance(T["dropout"], float) else T["dropout"]
    )
    position = DataPosition()
    batches = training_batches(nlp, train_corpus, T["batcher"], T["max_epochs"], position, checkpoint)
    if checkpoint is not None:
        for _ in range(progress.step + 1):  # the schedules where the checkpoint left them
            optimizer.step_schedules()
            next(dropouts)
        restore_checkpoint(checkpoint, nlp, optimizer)
    else:
        helpers.clean_output_dir(output)

    def save_model(is_best: bool) -> None:
        with nlp.use_params(optimizer.averages):
            before_to_disk(nlp).to_disk(output / helpers.model_last)
        if is_best:
            if (output / helpers.model_best).exists():
                shutil.rmtree(output / helpers.model_best)
            shutil.copytree(output / helpers.model_last, output / helpers.model_best)

    def note_position() -> None:
        """Where the run is now, into ``progress``: its data position and its training time."""
        progress.epoch, progress.batches_in_epoch = position.epoch, position.batches_in_epoch
        progress.seconds = seconds_before + time.perf_counter() - start

    def keep_checkpoint() -> None:
        note_position()
        save_checkpoint(
            output / CHECKPOINT_FOLDER, nlp, optimizer, progress, config_text, position.shuffle_states
        )

    stdout.write(msg.info(f"Pipeline: {nlp.pipe_names}") + "\n")
    stdout.write(msg.info(f"Initial learn rate: {optimizer.learn_rate}") + "\n")
    with nlp.select_pipes(disable=frozen):
        log_step, finalize_logger = T["logger"](nlp, stdout, stderr)
    for info in progress.evaluations:  # the table (and the JSONL) of the run so far
        log_step(info)
    seconds_before, start = progress.seconds, time.perf_counter()
    losses: Dict[str, float] = progress.losses
    try:
        for epoch, batch in batches:
            step = progress.step + 1
            if T["before_update"]:
                T["before_update"](nlp, {"step": step, "epoch": epoch})
            dropout = next(dropouts)
            for subbatch in helpers.subdivide_batch(batch, T["accumulate_gradient"]):
                # sgd=False: the update is applied below, once per batch (as spaCy's loop does)
                no_step = cast(Optimizer, False)
                nlp.update(
                    subbatch, drop=dropout, losses=losses, sgd=no_step, exclude=frozen, annotates=annotating
                )
            for _, pipe in trainable_pipes(nlp, frozen):
                pipe.finish_update(optimizer)
            optimizer.step_schedules()
            progress.step = step
            progress.words += sum(len(eg) for eg in batch)
            evaluated = step % T["eval_frequency"] == 0
            score: Optional[float] = None
            other_scores: Optional[Dict[str, Any]] = None
            if evaluated:
                with nlp.use_params(optimizer.averages):
                    score, other_scores = evaluate()
                progress.results.append((score, step))
            info = {
                "epoch": epoch,
                "step": step,
                "score": score,
                "other_scores": other_scores,
                "losses": losses,
                "checkpoints": progress.results,
                "seconds": int(seconds_before + time.perf_counter() - start),
                "words": progress.words,
            }
            if evaluated:
                with nlp.select_pipes(disable=frozen):
                    helpers.update_meta(T, nlp, info)
                save_model(score == max(progress.results)[0])
                info["output_path"] = str(output / helpers.model_last)
                progress.evaluations.append(plain(info))
            log_step(info if evaluated else None)
            if evaluated:
                losses = {}
            progress.losses = losses
            if evaluated or (checkpoint_steps and step % checkpoint_steps == 0):
                keep_checkpoint()
            best_step = -max((s, -st) for s, st in progress.results)[1]  # the earliest of equal scores
            if T["patience"] and step - best_step >= T["patience"]:
                break
            if T["max_steps"] and step >= T["max_steps"]:
                break
    except Exception as err:
        stdout.write(msg.warn(f"Aborting and saving model-last. Encountered exception: {err!r}") + "\n")
        raise
    finally:
        finalize_logger()
        save_model(False)
    note_position()
    finish_checkpoint(output / CHECKPOINT_FOLDER, progress, config_text)
    if optimizer.averages:
        nlp.use_params(optimizer.averages)
    stdout.write(msg.good("Saved pipeline to output directory", output / helpers.model_last) + "\n")
    return progress
