"""``spacy-llm-tagger init-config``: a complete ``spacy train`` config for an llm_tagger.

Like ``spacy init config``: the file holds every setting, with comments saying what to change.
Its training defaults work from about 50 to 50,000 training documents: no epoch cap, so
training runs until dev scores stop improving (``patience``) or ``max_steps``; the tagger's
updates warm up (``warmup_steps``) so that the first evaluations already see a trained head; and the best
checkpoint is chosen on the target's own score.
"""

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Union

import spacy
from thinc.api import Config

from .errors import ConfigError
from .models.settings import DEFAULT_MODEL_NAME, default_model_config
from .models.unmasking import check_unmask_syntax
from .pipeline.targets import make_target

ARCHITECTURE = "spacy-llm-tagger.DecoderTagger.v1"
TEMPLATE = """\
# Made by: spacy-llm-tagger init-config {command}
# Train:     python -m spacy train {output} --output training --paths.train train.spacy --paths.dev dev.spacy
# Evaluate:  python -m spacy evaluate training/model-best dev.spacy
# Every [components.{name}.model] setting is explained in docs/configuration.md.

[paths]
train = null
dev = null

[system]
gpu_allocator = {gpu_allocator}
seed = 0

[nlp]
lang = "{lang}"
pipeline = {pipeline}
batch_size = 32
tokenizer = {{"@tokenizers":"spacy.Tokenizer.v1"}}

[components]
{sourced}
[components.{name}]
factory = "llm_tagger"
target = "{target}"
# true: replace what earlier components wrote for the target; false: only add to it
overwrite = true
confidences = true
threshold = 0.0
scores_key = "scored_ents"
# the first N updates get 1/N, 2/N, ... of the learning rate (docs/default-path.md)
warmup_steps = 30

[components.{name}.model]
{model}

[corpora]

[corpora.train]
# Runs of consecutive sentences of mixed lengths (up to max_words), so the tagger learns to
# read whole documents as well as single sentences.
@readers = "spacy-llm-tagger.DocumentCorpus.v1"
path = ${{paths.train}}
max_words = 256
limit = 0
shuffle = false
gold_tokens = true

[corpora.dev]
@readers = "spacy.Corpus.v1"
path = ${{paths.dev}}
max_length = 0
gold_preproc = false
limit = 0
augmenter = null

[training]
seed = ${{system.seed}}
gpu_allocator = ${{system.gpu_allocator}}
dropout = 0.1
accumulate_gradient = 1
# Stop when the dev score has not improved for `patience` steps (0 = never), or at
# max_steps (0 = no cap). No epoch cap: with 50 training documents an epoch is a few steps,
# and a cap on epochs would end training before the first useful checkpoint.
# Rule of thumb: eval_frequency about an epoch's steps, between 25 and 200
# (training documents / 16, for sentence-sized documents); patience 4-8 evaluations.
max_epochs = 0
max_steps = {max_steps}
patience = {patience}
eval_frequency = {eval_frequency}
frozen_components = {frozen}
annotating_components = []
before_update = null

[training.before_to_disk]
# Before each checkpoint is saved, fit the confidence temperature on (up to `limit`) dev docs,
# so the saved pipeline's span scores are calibrated (see docs: confidences)
@misc = "spacy-llm-tagger.calibrate.v1"
path = ${{paths.dev}}
limit = 500

[training.batcher]
@batchers = "spacy.batch_by_words.v1"
# About 16 sentences of 12 words per batch
size = 200
tolerance = 0.2
discard_oversize = false
get_length = null

[training.logger]
# spaCy's console logger, plus a warning when model-best is the untrained first evaluation
@loggers = "spacy-llm-tagger.ConsoleLogger.v1"
progress_bar = "eval"
console_output = true
output_file = null

[training.optimizer]
@optimizers = "Adam.v1"
beta1 = 0.9
beta2 = 0.999
L2_is_weight_decay = true
L2 = 0.01
grad_clip = 1.0
use_averages = false
eps = 0.00000001

learn_rate = {learn_rate}

[training.score_weights]
{score_weights}

[pretraining]

[initialize]
vectors = null
init_tok2vec = null
before_init = null
after_init = null

[initialize.components]

[initialize.tokenizer]
"""
# Constant after the component's own warm-up (warmup_steps), so no total number of steps is
# needed and training can run until the dev score stops improving.
LEARN_RATE = 0.0005


def target_score(target: str) -> str:
    """The score that measures the target (its weight-1.0 score): ents_f, spans_KEY_f, tag_acc
    or pos_acc."""
    return next(key for key, weight in make_target(target).score_weights.items() if weight == 1.0)


def score_weights(target: str, sourced_scores: List[str]) -> Dict[str, Optional[float]]:
    """The target's own score decides model-best; every other score is reported only."""
    own = target_score(target)
    weights: Dict[str, Optional[float]] = {key: None for key in sourced_scores if key != own}
    weights[own] = 1.0
    return weights


def init_config(
    output: Union[str, Path],
    *,
    target: str = "ents",
    model: str = DEFAULT_MODEL_NAME,
    lang: str = "en",
    base_pipeline: Optional[str] = None,
    gpu: bool = False,
    name: str = "llm_tagger",
    unmask: Optional[str] = None,
    learn_rate: float = LEARN_RATE,
    command: str = "",
) -> Config:
    """Write a complete training config to OUTPUT (``-`` = standard output); the config.

    ``unmask``: the layers to unmask, as the model setting takes it ("all", "none", a 0/1 group
    pattern such as "0011", or comma-separated layer indices); None keeps the default ("all").
    """
    make_target(target)  # validates the target, with an error naming the choices
    if learn_rate <= 0:
        raise ConfigError(f"--learn-rate must be above 0, not {learn_rate}.")
    sourced, pipeline, frozen = "", [name], []
    sourced_scores: List[str] = []
    if base_pipeline:
        base = _load_base(base_pipeline)
        lang = base.lang or lang
        pipeline = [*base.pipe_names, name]
        frozen = list(base.pipe_names)
        sourced = "".join(f'[components.{pipe}]\nsource = "{base_pipeline}"\n\n' for pipe in base.pipe_names)
        for pipe in base.pipe_names:
            sourced_scores.extend(base.get_pipe_meta(pipe).default_score_weights or {})
        if name in base.pipe_names:
            raise ConfigError(f"{base_pipeline} already has a component named {name!r}; pick another --name.")
    settings = default_model_config(ARCHITECTURE)
    settings["name"] = model
    if unmask is not None:
        settings["unmask"] = parse_unmask_option(unmask)
    if gpu:
        settings["dtype"] = "bfloat16"
    text = TEMPLATE.format(
        command=command,
        output=output,
        name=name,
        gpu_allocator='"pytorch"' if gpu else "null",
        lang=lang,
        pipeline=_list(pipeline),
        sourced=sourced,
        target=target,
        model=_block(settings),
        max_steps=3000,
        patience=400,
        eval_frequency=50,
        frozen=_list(frozen),
        learn_rate=learn_rate,
        score_weights=_block(score_weights(target, sourced_scores)),
    )
    config = Config().from_str(text, interpolate=False)
    if str(output) == "-":
        print(text, end="")
    else:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf8")
    return config


def parse_unmask_option(text: str) -> Union[str, List[int]]:
    """``--unmask`` as the model setting takes it, checked by the setting's own parser: "0,1,5"
    becomes a list of layer indices; "all", "none" and group patterns ("0011") stay strings."""
    value = text.strip()
    check_unmask_syntax(value)
    return [int(part) for part in value.split(",")] if "," in value else value


def _load_base(base_pipeline: str) -> spacy.Language:
    try:
        return spacy.load(base_pipeline)
    except OSError as err:
        raise ConfigError(
            f"Cannot load --base-pipeline {base_pipeline!r}: install it (`python -m spacy download "
            f"{base_pipeline}` for spaCy's own pipelines) or give its folder. ({err})"
        ) from err


def _list(items: List[str]) -> str:
    return "[" + ",".join(f'"{item}"' for item in items) + "]"


def _block(values: Mapping[str, object]) -> str:
    return "\n".join(f"{key} = {_value(value)}" for key, value in values.items())


def _value(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ",".join(_value(v) for v in value) + "]"
    return str(value)
