"""The ``llm_tagger`` factory and its TrainablePipe."""

from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple, Union, cast

import numpy as np
import srsly
from spacy import util as spacy_util
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from spacy.vocab import Vocab
from thinc.api import CategoricalCrossentropy, Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d

from ..errors import ConfigError, DataError
from ..models.decoder import DecoderModel
from ..models.settings import default_model_config
from ..packaging import add_requirements
from .calibration import (
    TEMPERATURES,
    CalibrationReport,
    Temperatures,
    collect,
    expected_calibration_error,
    fit_temperature,
    outcomes,
)
from .decoding import whitespace_tokens
from .targets import (
    DEFAULT_TARGET,
    FIXED_TARGET_SCORES,
    MISSING,
    ScoreSettings,
    Target,
    follow_target,
    make_target,
)
from .warmup import ScaledOptimizer, warmup_scale

DEFAULT_MODEL = default_model_config("spacy-llm-tagger.DecoderTagger.v1")


@Language.factory(
    "llm_tagger",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "token.tag", "token.pos", "doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "target": DEFAULT_TARGET,
        "overwrite": True,
        "confidences": True,
        "threshold": 0.0,
        "scores_key": "scored_ents",
        "warmup_steps": 30,
    },
    # the default target's scores (as spancat names those of its default key); the scores of
    # the configured target replace them in [training.score_weights] at initialize
    default_score_weights=make_target(DEFAULT_TARGET).score_weights,
)
def make_llm_tagger(
    nlp: Language,
    name: str,
    model: Model,
    target: str,
    overwrite: bool,
    confidences: bool,
    threshold: float,
    scores_key: str,
    warmup_steps: int,
) -> "LLMTagger":
    """A decoder LLM (LoRA-tuned, chosen layers unmasked) as a sequence labeler.

    target: "ents", "tag", "pos" or "spans:KEY".
    overwrite: replace existing annotations (True) or keep them and only add
        to them (False).
    confidences: compute each predicted span's probability (span targets:
        ``doc.spans[KEY].attrs["scores"]``, for ents in the group ``scores_key``) or
        each token's tag probability (``token._.tag_score`` / ``token._.pos_score``).
    threshold: span targets: predicted spans less probable than this are not written
        to ``doc.ents`` / ``doc.spans[KEY]`` (for ents they stay in ``scores_key``).
    scores_key: the span group that holds every predicted entity with its score.
    warmup_steps: the first N updates get a linearly growing share of the optimizer's
        learning rate (1/N, 2/N, ...), whatever optimizer drives them; 0 = none (e.g. when
        the training config's learn_rate schedule warms up itself).
    """
    return LLMTagger(
        nlp.vocab,
        model,
        name,
        target=target,
        overwrite=overwrite,
        confidences=confidences,
        threshold=threshold,
        scores_key=scores_key,
        warmup_steps=warmup_steps,
    )


class Prediction(NamedTuple):
    """What ``predict`` hands to ``set_annotations`` for one doc."""

    tags: np.ndarray
    confidences: Optional[np.ndarray]  # per predicted span (span targets) or per token


class LLMTagger(TrainablePipe):
    """Labels every token with scores from a decoder LLM; writes ents, tags or spans."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "llm_tagger",
        *,
        target: str = "ents",
        overwrite: bool = True,
        confidences: bool = True,
        threshold: float = 0.0,
        scores_key: str = "scored_ents",
        warmup_steps: int = 30,
    ) -> None:
        if warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be 0 (no warm-up) or more, not {warmup_steps}.")
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold must be a probability in [0, 1], not {threshold}.")
        if threshold > 0 and not confidences:
            raise ConfigError("threshold needs confidences = true (it compares span probabilities).")
        self.vocab = vocab
        self.model = model
        self.name = name
        self.target: Target = make_target(target)
        self.confidences = confidences
        self.score_settings = ScoreSettings(threshold, scores_key)
        self.warmup_steps = warmup_steps
        # updates applied since this object was made (not saved: retraining warms up again,
        # as it starts with a fresh optimizer)
        self.updates_done = 0
        # temperature: set by calibrate(), saved with the cfg
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "target": target,
            "overwrite": overwrite,
            "temperature": 1.0,
        }
        # the head's scores -> loss gradient; see get_loss
        self.loss_func = CategoricalCrossentropy(normalize=False, missing_value=MISSING)

    @property
    def labels(self) -> List[str]:
        return list(self.cfg["labels"])

    @property
    def tag_names(self) -> List[str]:
        """The classes the head predicts (BIO tags for span targets)."""
        return self.target.tag_names(self.labels)

    @property
    def label_data(self) -> List[str]:
        return self.labels

    def add_label(self, label: str) -> int:
        if label in self.cfg["labels"]:
            return 0
        if isinstance(self.model, DecoderModel) and self.model.is_loaded:
            raise ConfigError(
                "Cannot add labels to an llm_tagger that is already initialized; "
                "add them before nlp.initialize()."
            )
        self.cfg["labels"].append(label)
        return 1

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
    ) -> None:
        validate_examples(get_examples(), "LLMTagger.initialize")
        if labels is None and next(iter(get_examples()), None) is None:
            raise DataError(
                f"The llm_tagger '{self.name}' got no training examples: the corpus is empty. "
                f"spaCy's corpus readers read .spacy files (DocBin) only, so a .jsonl, .json or "
                f".conll export passed as paths.train gives nothing: convert it first with "
                f"`spacy-llm-tagger convert INPUT train.spacy`."
            )
        if labels is not None:
            self.cfg["labels"] = sorted(set(labels))
        elif not self.cfg["labels"]:
            self.cfg["labels"] = self.target.labels_from_docs(eg.reference for eg in get_examples())
        if not self.cfg["labels"]:
            raise DataError(
                f"No labels found for the llm_tagger '{self.name}' (target "
                f"{self.cfg['target']!r}): the training examples carry no "
                f"{self.target.name} annotation. Check the corpus, or give labels in "
                f"[initialize.components.{self.name}]."
            )
        sample = [eg.predicted for eg in islice(get_examples(), 8)]
        self.model.set_dim("nO", len(self.tag_names), force=True)
        self.model.initialize(X=sample)
        if nlp is not None:
            self.weigh_target_scores(nlp)
            if isinstance(self.model, DecoderModel):
                add_requirements(nlp.meta, self.model.settings.name)

    def weigh_target_scores(self, nlp: Language) -> None:
        """Make the target's scores the ones that pick model-best in ``nlp``'s
        ``[training.score_weights]`` (see :func:`.targets.follow_target`).

        spaCy fills those weights from each factory's ``default_score_weights``, which cannot
        know the configured target, so the target's are put in when the component is
        initialized (``spacy train`` scores with the config of the initialized pipeline,
        and saves it).
        """
        others: set = set()
        for name in nlp.component_names:
            if name == self.name:
                continue
            pipe = nlp.get_pipe(name)
            if isinstance(pipe, LLMTagger):
                others.update(pipe.target.score_weights)
            else:
                others.update(nlp.get_pipe_meta(name).default_score_weights or {})
        training = nlp.config["training"]
        training["score_weights"] = follow_target(
            training.get("score_weights", {}), self.target.score_weights, others, FIXED_TARGET_SCORES
        )

    @property
    def temperature(self) -> float:
        """Divides the head's scores before the softmax of the confidences (see :meth:`calibrate`)."""
        return float(self.cfg.get("temperature", 1.0))

    @temperature.setter
    def temperature(self, value: float) -> None:
        if not value > 0:
            raise ConfigError(f"The temperature must be > 0, not {value}.")
        self.cfg["temperature"] = float(value)

    def calibrate(
        self, examples: Iterable[Example], *, temperatures: Temperatures = TEMPERATURES
    ) -> CalibrationReport:
        """Fit the temperature of the confidences on held-out ``examples`` and keep it.

        The temperature (from ``temperatures``) is the one under which "this predicted span
        (token tag) is right" is most likely on ``examples``; it changes confidences only,
        never predictions. It is kept in the component's cfg, so ``nlp.to_disk`` (or the
        component's ``to_disk``) saves it. The examples' predicted docs are tagged, so give
        them the reference's tokens to score every gold span. Returns the temperature and the
        expected calibration error of the confidences before (at the current temperature)
        and after.
        """
        examples = list(examples)
        validate_examples(examples, "LLMTagger.calibrate")
        held_out = collect(self, examples)
        before = outcomes(self, held_out, self.temperature)
        temperature = fit_temperature(self, held_out, temperatures)
        after = outcomes(self, held_out, temperature)
        self.temperature = temperature
        return CalibrationReport(
            temperature=temperature,
            predictions=int(len(before[0])),
            ece_before=expected_calibration_error(*before),
            ece_after=expected_calibration_error(*after),
        )

    def predict(self, docs: Iterable[Doc]) -> List[Prediction]:
        docs = list(docs)
        if not docs:
            return []
        scores = [self.model.ops.to_numpy(s) for s in self.model.predict(docs)]
        return self.decode_scores(scores, spaces=[whitespace_tokens(doc) for doc in docs])

    def decode_scores(
        self,
        scores: List[np.ndarray],
        temperature: Optional[float] = None,
        spaces: Optional[List[np.ndarray]] = None,
    ) -> List[Prediction]:
        """Tags (and, if ``confidences``, their probabilities) from the head's scores;
        ``spaces``: per doc, which tokens are whitespace (``whitespace_tokens``)."""
        tags = self.target.decode_batch(scores, self.labels, spaces)
        if not self.confidences:
            return [Prediction(doc_tags, None) for doc_tags in tags]
        temperature = self.temperature if temperature is None else temperature
        confidences = self.target.confidences(scores, tags, self.labels, temperature, spaces)
        return [Prediction(t, c) for t, c in zip(tags, confidences)]

    def set_annotations(self, docs: Iterable[Doc], predictions: List[Prediction]) -> None:
        for doc, (tags, confidences) in zip(docs, predictions):
            self.target.set_annotations(
                doc, tags, self.labels, self.cfg["overwrite"], confidences, self.score_settings
            )

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "LLMTagger.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_scores = self.get_loss(examples, scores)
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def finish_update(self, sgd: Optimizer) -> None:
        """Apply the gradients; the first ``warmup_steps`` updates at a reduced rate."""
        scale = warmup_scale(self.updates_done, self.warmup_steps)
        self.model.finish_update(sgd if scale == 1.0 else cast(Optimizer, ScaledOptimizer(sgd, scale)))
        self.updates_done += 1

    def training_state(self) -> Dict[str, int]:
        """What training has changed beside the weights (kept in resumable checkpoints)."""
        return {"updates_done": self.updates_done}

    def restore_training_state(self, state: Dict[str, int]) -> None:
        """Continue from :meth:`training_state` (a resumed run warms up where it stopped)."""
        self.updates_done = int(state["updates_done"])

    def get_loss(self, examples: Iterable[Example], scores: List[Floats2d]) -> Tuple[float, List[Floats2d]]:
        """Softmax cross-entropy of the head's scores, a mean over the words with a gold tag.

        The gradient is thinc's ``CategoricalCrossentropy`` on the softmax of the scores
        (probabilities minus the one-hot gold, zero for words whose gold tag is missing),
        divided by the number of words with a gold tag; it stays on the model's device. Not
        thinc's own normalizations: ``normalize=True`` divides by every word, missing ones
        included, and ``SequenceCategoricalCrossentropy`` by the number of docs, so the step
        size would change with missing annotation or doc lengths, and data-parallel training
        relies on a mean over words. The loss reported is the cross-entropy itself (thinc's
        loss value is the squared norm of the gradient). tests/test_loss.py checks both
        against the hand-written numpy version this replaced.
        """
        ops = self.model.ops
        xp = ops.xp
        tag_index = {tag: i for i, tag in enumerate(self.tag_names)}
        golds = [self.target.gold(eg, tag_index) for eg in examples]
        if not golds:
            return 0.0, []
        truths = xp.asarray(np.concatenate(golds))
        probs = ops.softmax(xp.concatenate(scores), axis=-1)
        d_flat = self.loss_func.get_grad(probs, truths)
        known = xp.flatnonzero(truths != MISSING)
        n_known = max(int(known.size), 1)
        d_flat /= n_known
        loss = float(-xp.log(probs[known, truths[known]] + 1e-12).sum() / n_known)
        boundaries = np.cumsum([len(g) for g in golds])[:-1].tolist()
        return loss, list(xp.split(ops.asarray2f(d_flat), boundaries))

    def score(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        validate_examples(examples, "LLMTagger.score")
        return self.target.score(examples, **kwargs)

    # -- serialization: the cfg, and the model's own folder (models/decoder.py) ---

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        serialize = {
            "cfg": lambda p: srsly.write_json(p, self.cfg),
            "model": lambda p: self.model.to_disk(p),
        }
        spacy_util.to_disk(path, serialize, exclude)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "LLMTagger":
        deserialize = {
            "cfg": lambda p: self._load_cfg(srsly.read_json(p)),
            "model": self._model_from_disk,
        }
        spacy_util.from_disk(path, deserialize, exclude)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        serialize = {
            "cfg": lambda: srsly.json_dumps(self.cfg),
            "model": lambda: self.model.to_bytes(),
        }
        return spacy_util.to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "LLMTagger":
        deserialize = {
            "cfg": lambda b: self._load_cfg(srsly.json_loads(b)),
            "model": lambda b: self.model.from_bytes(b),
        }
        spacy_util.from_bytes(bytes_data, deserialize, exclude)
        return self

    def _model_from_disk(self, path: Path) -> None:
        self.model.from_disk(path)

    def _load_cfg(self, cfg: Dict[str, Any]) -> None:
        self.cfg.update(cfg)
        self.target = make_target(self.cfg["target"])
