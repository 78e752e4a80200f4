"""The ``llm_tagger`` factory and its TrainablePipe."""

from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Union

import numpy as np
import srsly
from spacy import util as spacy_util
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from spacy.vocab import Vocab
from thinc.api import Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d

from ..errors import ConfigError, DataError
from ..models.settings import default_model_config
from .targets import MISSING, ScoreSettings, Target, make_target

DEFAULT_MODEL = default_model_config("spacy-llm-tagger.DecoderTagger.v1")


@Language.factory(
    "llm_tagger",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "token.tag", "token.pos", "doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "target": "ents",
        "overwrite": True,
        "confidences": True,
        "threshold": 0.0,
        "scores_key": "scored_ents",
    },
    default_score_weights={
        "ents_f": 1.0,
        "ents_p": 0.0,
        "ents_r": 0.0,
        "ents_per_type": None,
        "tag_acc": 1.0,
        "pos_acc": 1.0,
    },
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
    ) -> None:
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
        # temperature: set by `spacy-llm-tagger calibrate`, saved with the cfg
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "target": target,
            "overwrite": overwrite,
            "temperature": 1.0,
        }

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
        if self.model.is_loaded:
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

    @property
    def temperature(self) -> float:
        return float(self.cfg.get("temperature", 1.0))

    def predict(self, docs: Iterable[Doc]) -> List[Prediction]:
        docs = list(docs)
        if not docs:
            return []
        scores = [self.model.ops.to_numpy(s) for s in self.model.predict(docs)]
        return self.decode_scores(scores)

    def decode_scores(
        self, scores: List[np.ndarray], temperature: Optional[float] = None
    ) -> List[Prediction]:
        """Tags (and, if ``confidences``, their probabilities) from the head's scores."""
        tags = self.target.decode_batch(scores, self.labels)
        if not self.confidences:
            return [Prediction(doc_tags, None) for doc_tags in tags]
        temperature = self.temperature if temperature is None else temperature
        confidences = self.target.confidences(scores, tags, self.labels, temperature)
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

    def get_loss(self, examples: Iterable[Example], scores: List[Floats2d]):
        """Softmax cross-entropy over tokens with a gold label, averaged."""
        ops = self.model.ops
        tag_index = {tag: i for i, tag in enumerate(self.tag_names)}
        golds = [self.target.gold(eg, tag_index) for eg in examples]
        flat_gold = np.concatenate(golds) if golds else np.zeros((0,), dtype=np.int64)
        flat_scores = ops.to_numpy(ops.xp.concatenate(scores)) if scores else np.zeros((0, 1))
        known = flat_gold != MISSING
        n_known = max(int(known.sum()), 1)
        shifted = flat_scores - flat_scores.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        rows = np.flatnonzero(known)
        loss = float(-np.log(probs[rows, flat_gold[rows]] + 1e-12).sum() / n_known)
        d_flat = probs
        d_flat[rows, flat_gold[rows]] -= 1.0
        d_flat[~known] = 0.0
        d_flat /= n_known
        d_flat = ops.asarray2f(d_flat.astype("float32"))
        boundaries = np.cumsum([len(g) for g in golds])[:-1].tolist()
        return loss, list(ops.xp.split(d_flat, boundaries))

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
            "model": lambda p: self.model.from_disk(p),
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

    def _load_cfg(self, cfg: Dict[str, Any]) -> None:
        self.cfg.update(cfg)
        self.target = make_target(self.cfg["target"])
