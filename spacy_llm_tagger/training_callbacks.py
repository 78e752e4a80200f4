"""Registered pieces for ``spacy train`` configs: a logger and a checkpoint callback.

- ``spacy-llm-tagger.ConsoleLogger.v1`` (spaCy loggers): spaCy's ``ConsoleLogger.v3``, plus
  a warning at the end when model-best is the first evaluation (the untrained model).
- ``spacy-llm-tagger.calibrate.v1`` (spaCy misc, for ``[training.before_to_disk]``): every
  llm_tagger fits its confidence temperature on the dev data before a checkpoint is saved,
  so model-best's span scores come out calibrated without an extra command.
"""

import sys
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import registry
from wasabi import Printer

LogStep = Callable[[Optional[Dict[str, Any]]], None]


def untrained_best_warning(evaluations: List[Tuple[int, float]]) -> Optional[str]:
    """The warning to print when model-best is the first evaluation, or None."""
    if not evaluations:
        return None
    first_step, first_score = evaluations[0]
    if any(score > first_score for _, score in evaluations[1:]):
        return None
    if len(evaluations) == 1:
        return (
            f"Training ended after a single evaluation (step {first_step}): model-best is the "
            f"untrained model. Train for more steps than training.eval_frequency."
        )
    return (
        f"model-best is the first evaluation (step {first_step}, score {first_score:.3f}): the "
        f"dev score never rose above it in {len(evaluations)} evaluations, so model-best is "
        f"the untrained model. Train longer (training.max_steps, training.patience), lower the "
        f"learning rate if the loss jumps, and check that the dev data carries the labels the "
        f"training data has."
    )


@registry.loggers("spacy-llm-tagger.ConsoleLogger.v1")
def console_logger(
    progress_bar: Optional[str] = None,
    console_output: bool = True,
    output_file: Optional[Union[str, Path]] = None,
) -> Callable[..., Tuple[LogStep, Callable[[], None]]]:
    """spaCy's ConsoleLogger.v3 that warns when model-best is the untrained model."""
    spacy_logger = registry.loggers.get("spacy.ConsoleLogger.v3")(progress_bar, console_output, output_file)

    def setup(
        nlp: Language, stdout: IO = sys.stdout, stderr: IO = sys.stderr
    ) -> Tuple[LogStep, Callable[[], None]]:
        log_step, finalize = spacy_logger(nlp, stdout, stderr)
        evaluations: List[Tuple[int, float]] = []

        def log(info: Optional[Dict[str, Any]]) -> None:
            log_step(info)
            if info is not None and info.get("score") is not None:
                evaluations.append((int(info["step"]), float(info["score"])))

        def done() -> None:
            finalize()
            warning = untrained_best_warning(evaluations)
            if warning:
                print(
                    Printer().text(warning, color="yellow", icon="warn", no_print=True),
                    file=stderr,
                    flush=True,
                )

        return log, done

    return setup


@registry.misc("spacy-llm-tagger.calibrate.v1")
def calibrate_before_to_disk(
    path: Optional[Union[str, Path]], limit: int = 500
) -> Callable[[Language], Language]:
    """Fit every llm_tagger's temperature on the first ``limit`` docs of ``path`` (a .spacy
    file or folder) before the pipeline is saved; ``path = null`` leaves them as they are."""

    references: List[Any] = []  # read once, at the first checkpoint

    def calibrate(nlp: Language) -> Language:
        from .corpus import tokens_only
        from .pipeline.llm_tagger import LLMTagger

        taggers = [pipe for _, pipe in nlp.pipeline if isinstance(pipe, LLMTagger)]
        if path is None or not taggers:
            return nlp
        if not references:
            files = sorted(Path(path).rglob("*.spacy")) if Path(path).is_dir() else [Path(path)]
            docs = [doc for file in files for doc in DocBin().from_disk(file).get_docs(nlp.vocab)]
            references.extend(docs[:limit])
        examples = [Example(tokens_only(doc, nlp.vocab), doc) for doc in references if len(doc)]
        for tagger in taggers:
            tagger.calibrate(examples)
        return nlp

    return calibrate
