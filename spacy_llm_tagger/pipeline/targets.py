"""What the tagger writes: ``ents``, ``tag``, ``pos`` or ``spans:KEY``.

A target knows how to collect labels, read gold tags from an ``Example``,
decode scores into valid output, write annotations, score (and which of its scores
weigh in spaCy's choice of the best model), and what its confidences are given to.
"""

from typing import Any, Collection, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np
from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc, Span, Token
from spacy.training import Example
from spacy.util import filter_spans

from ..errors import ConfigError, DataError
from .confidence import forward_backward_batch, span_probabilities, tempered_log_probs
from .decoding import (
    OUTSIDE,
    bio_constraints,
    bio_tag_names,
    bio_to_spans,
    log_softmax,
    tags_around_spaces,
    viterbi_bio,
    viterbi_bio_batch,
)

MISSING = -1
Item = Tuple[int, int, int]  # (start, end, label index): a span, or (i, i + 1, tag) for a token
ScoreWeights = Dict[str, Optional[float]]


class Target:
    """Base class: a token-level classification written to the Doc."""

    name: str = ""
    score_key: str = ""

    def tag_names(self, labels: Sequence[str]) -> List[str]:
        raise NotImplementedError

    def labels_from_docs(self, docs: Iterable[Doc]) -> List[str]:
        raise NotImplementedError

    def gold(self, example: Example, tag_index: Dict[str, int]) -> np.ndarray:
        raise NotImplementedError

    def decode(self, scores: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        return scores.argmax(axis=-1).astype(np.int64) if len(scores) else np.zeros((0,), "i")

    def decode_batch(
        self,
        scores: Sequence[np.ndarray],
        labels: Sequence[str],
        spaces: Optional[Sequence[np.ndarray]] = None,
    ) -> List[np.ndarray]:
        """Decode the scores of many docs (in order). ``spaces``: per doc, which tokens are
        whitespace (span targets decode around them; token targets tag them as any token)."""
        return [self.decode(doc_scores, labels) for doc_scores in scores]

    def confidences(
        self,
        scores: Sequence[np.ndarray],
        tags: Sequence[np.ndarray],
        labels: Sequence[str],
        temperature: float,
        spaces: Optional[Sequence[np.ndarray]] = None,
    ) -> List[np.ndarray]:
        """Per doc: the probability of each predicted token tag (or span, for span targets)."""
        raise NotImplementedError

    def set_annotations(
        self,
        doc: Doc,
        tags: np.ndarray,
        labels: Sequence[str],
        overwrite: bool,
        confidences: Optional[np.ndarray] = None,
        settings: Optional["ScoreSettings"] = None,
    ) -> None:
        raise NotImplementedError

    def score(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        raise NotImplementedError

    @property
    def score_weights(self) -> ScoreWeights:
        """The scores :meth:`score` reports, with their weight in spaCy's
        ``[training.score_weights]`` (which picks model-best): 1.0 for the main score."""
        raise NotImplementedError

    def predicted_items(self, tags: np.ndarray) -> List[Item]:
        """What :meth:`confidences` gives a probability to, in its order."""
        raise NotImplementedError

    def gold_items(self, example: Example, label_index: Dict[str, int]) -> Set[Item]:
        """The items of ``example``'s reference, on its predicted tokens: a predicted item is
        right if it is one of them (labels not in ``label_index`` get index -1)."""
        raise NotImplementedError


def follow_target(
    weights: Mapping[str, Optional[float]],
    own: ScoreWeights,
    others: Collection[str],
    factory_defaults: Collection[str],
) -> ScoreWeights:
    """``[training.score_weights]`` for a pipeline with a tagger whose target reports ``own``.

    A score of ``own`` that ``weights`` gives no number (missing, or None from a config
    written for another target) gets its weight from ``own``: with None the main score would
    weigh nothing and spaCy would keep the first checkpoint; give 0.0 to leave a tagger out of
    the choice of model-best. A score of ``factory_defaults`` (those any target reports) that
    neither this tagger nor ``others`` (the other components) report is set to None, so the
    weighted score is the target's own, not a share of it. Every other weight is kept.
    """
    result: ScoreWeights = dict(weights)
    for key in factory_defaults:
        if key in result and key not in own and key not in others:
            result[key] = None
    for key, value in own.items():
        if result.get(key) is None:
            result[key] = value
    return result


class ScoreSettings:
    """Where confidences go and which spans they keep out."""

    def __init__(self, threshold: float = 0.0, scores_key: str = "scored_ents") -> None:
        self.threshold = threshold
        self.scores_key = scores_key


class TokenAttrTarget(Target):
    """``tag`` (token.tag_) or ``pos`` (token.pos_): one label per token."""

    def __init__(self, attr: str) -> None:
        self.name = attr
        self.attr = attr
        self.score_key = f"{attr}_acc"

    def tag_names(self, labels: Sequence[str]) -> List[str]:
        return list(labels)

    def labels_from_docs(self, docs: Iterable[Doc]) -> List[str]:
        found = set()
        for doc in docs:
            for token in doc:
                value = getattr(token, f"{self.attr}_")
                if value:
                    found.add(value)
        return sorted(found)

    def gold(self, example: Example, tag_index: Dict[str, int]) -> np.ndarray:
        values = example.get_aligned(self.attr.upper(), as_string=True)
        gold = np.full(len(values), MISSING, dtype=np.int64)
        for i, value in enumerate(values):
            if value is None or value == "":
                continue
            if value not in tag_index:
                raise DataError(
                    f"Training label {value!r} ({self.attr}) was not seen at initialize. "
                    f"Initialize with all training data, or add it to the labels."
                )
            gold[i] = tag_index[value]
        return gold

    @property
    def score_extension(self) -> str:
        """The token extension holding each token's tag probability: ``token._.tag_score``."""
        return f"{self.attr}_score"

    def confidences(
        self,
        scores: Sequence[np.ndarray],
        tags: Sequence[np.ndarray],
        labels: Sequence[str],
        temperature: float,
        spaces: Optional[Sequence[np.ndarray]] = None,
    ) -> List[np.ndarray]:
        out = []
        for doc_scores, doc_tags in zip(scores, tags):
            if not len(doc_tags):
                out.append(np.zeros((0,)))
                continue
            probs = np.exp(tempered_log_probs(doc_scores.astype(np.float64), temperature))
            out.append(probs[np.arange(len(doc_tags)), doc_tags])
        return out

    def set_annotations(
        self,
        doc: Doc,
        tags: np.ndarray,
        labels: Sequence[str],
        overwrite: bool,
        confidences: Optional[np.ndarray] = None,
        settings: Optional[ScoreSettings] = None,
    ) -> None:
        if confidences is not None and not Token.has_extension(self.score_extension):
            Token.set_extension(self.score_extension, default=None)
        for i, (token, tag) in enumerate(zip(doc, tags.tolist())):
            if overwrite or not getattr(token, f"{self.attr}_"):
                setattr(token, f"{self.attr}_", labels[tag])
                if confidences is not None:
                    token._.set(self.score_extension, float(confidences[i]))

    def score(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        return Scorer.score_token_attr(examples, self.attr, **kwargs)

    @property
    def score_weights(self) -> ScoreWeights:
        return {self.score_key: 1.0}

    def predicted_items(self, tags: np.ndarray) -> List[Item]:
        return [(i, i + 1, int(tag)) for i, tag in enumerate(tags.tolist())]

    def gold_items(self, example: Example, label_index: Dict[str, int]) -> Set[Item]:
        values = example.get_aligned(self.attr.upper(), as_string=True)
        return {(i, i + 1, label_index.get(v, -1)) for i, v in enumerate(values) if v}


class SpanTarget(Target):
    """``ents`` or ``spans:KEY``: BIO tags decoded into non-overlapping spans."""

    def __init__(self, spans_key: Optional[str]) -> None:
        self.spans_key = spans_key
        self.name = "ents" if spans_key is None else f"spans:{spans_key}"
        self.score_key = "ents_f" if spans_key is None else f"spans_{spans_key}_f"

    def tag_names(self, labels: Sequence[str]) -> List[str]:
        return bio_tag_names(labels)

    def spans_of(self, doc: Doc) -> Sequence[Span]:
        """The spans this target writes, as they are in ``doc``."""
        if self.spans_key is None:
            return doc.ents
        return doc.spans[self.spans_key] if self.spans_key in doc.spans else []

    def labels_from_docs(self, docs: Iterable[Doc]) -> List[str]:
        return sorted({span.label_ for doc in docs for span in self.spans_of(doc)})

    def gold(self, example: Example, tag_index: Dict[str, int]) -> np.ndarray:
        n_tokens = len(example.predicted)
        if self.spans_key is None:
            biluo = example.get_aligned_ner()
            gold = np.full(n_tokens, MISSING, dtype=np.int64)
            for i, tag in enumerate(biluo):
                if tag is None or tag == "-" or tag == "":
                    continue
                if tag == "O":
                    gold[i] = tag_index[OUTSIDE]
                    continue
                prefix, label = tag.split("-", 1)
                bio = f"{'B' if prefix in ('B', 'U') else 'I'}-{label}"
                gold[i] = self._index(bio, label, tag_index)
            return gold
        reference = example.reference
        if self.spans_key not in reference.spans:
            return np.full(n_tokens, MISSING, dtype=np.int64)
        ref_spans = list(reference.spans[self.spans_key])
        if len(filter_spans(ref_spans)) != len(ref_spans):
            raise DataError(
                f"Gold spans in doc.spans[{self.spans_key!r}] overlap in "
                f"{reference.text[:60]!r}...; the llm_tagger predicts non-overlapping "
                f"spans (BIO). Resolve overlaps (e.g. spacy.util.filter_spans) or use spancat."
            )
        aligned = example.get_aligned_spans_y2x(ref_spans, allow_overlap=False)
        gold = np.full(n_tokens, tag_index[OUTSIDE], dtype=np.int64)
        for span in aligned:
            gold[span.start] = self._index(f"B-{span.label_}", span.label_, tag_index)
            if span.end - span.start > 1:
                gold[span.start + 1 : span.end] = tag_index[f"I-{span.label_}"]
        return gold

    @staticmethod
    def _index(tag: str, label: str, tag_index: Dict[str, int]) -> int:
        if tag not in tag_index:
            raise DataError(
                f"Training label {label!r} was not seen at initialize. Initialize with "
                f"all training data, or add it to the labels."
            )
        return tag_index[tag]

    def decode(self, scores: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        start, allowed = bio_constraints(len(labels))
        return viterbi_bio(log_softmax(scores), start, allowed)

    def decode_batch(
        self,
        scores: Sequence[np.ndarray],
        labels: Sequence[str],
        spaces: Optional[Sequence[np.ndarray]] = None,
    ) -> List[np.ndarray]:
        """BIO tags under the transition constraints; whitespace tokens (``spaces``) are
        decoded around (``tags_around_spaces``): no span starts or ends on one."""
        start, allowed = bio_constraints(len(labels))
        if spaces is None:
            return viterbi_bio_batch([log_softmax(s) for s in scores], start, allowed)
        kept = viterbi_bio_batch([log_softmax(s[~m]) for s, m in zip(scores, spaces)], start, allowed)
        return [tags_around_spaces(t, m) for t, m in zip(kept, spaces)]

    def confidences(
        self,
        scores: Sequence[np.ndarray],
        tags: Sequence[np.ndarray],
        labels: Sequence[str],
        temperature: float,
        spaces: Optional[Sequence[np.ndarray]] = None,
    ) -> List[np.ndarray]:
        start, allowed = bio_constraints(len(labels))
        if spaces is not None:  # the spans are the same read with or without the whitespace tokens
            scores = [s[~m] for s, m in zip(scores, spaces)]
            tags = [t[~m] for t, m in zip(tags, spaces)]
        log_probs = [tempered_log_probs(s.astype(np.float64), temperature) for s in scores]
        lattices = forward_backward_batch(log_probs, start, allowed)
        return [
            span_probabilities(lp, lattice, bio_to_spans(doc_tags)) if len(doc_tags) else np.zeros((0,))
            for lp, lattice, doc_tags in zip(log_probs, lattices, tags)
        ]

    def set_annotations(
        self,
        doc: Doc,
        tags: np.ndarray,
        labels: Sequence[str],
        overwrite: bool,
        confidences: Optional[np.ndarray] = None,
        settings: Optional[ScoreSettings] = None,
    ) -> None:
        settings = settings or ScoreSettings()
        spans = [Span(doc, s, e, label=labels[label]) for s, e, label in bio_to_spans(tags)]
        scores = [float(p) for p in confidences] if confidences is not None else None
        kept, kept_scores = spans, scores
        if scores is not None and settings.threshold > 0:
            pairs = [(span, p) for span, p in zip(spans, scores) if p >= settings.threshold]
            kept, kept_scores = [span for span, _ in pairs], [p for _, p in pairs]
        if self.spans_key is None:
            if scores is not None:
                # every predicted entity with its probability, also those under the threshold
                doc.spans[settings.scores_key] = spans
                doc.spans[settings.scores_key].attrs["scores"] = scores
            if overwrite:
                doc.set_ents(kept, default="outside")
            else:
                existing = list(doc.ents)
                taken = set(i for ent in existing for i in range(ent.start, ent.end))
                new = [s for s in kept if not any(i in taken for i in range(s.start, s.end))]
                doc.set_ents(existing + new, default="unmodified")
            return
        if overwrite or self.spans_key not in doc.spans:
            doc.spans[self.spans_key] = kept
            if kept_scores is not None:
                doc.spans[self.spans_key].attrs["scores"] = kept_scores
        else:
            group = doc.spans[self.spans_key]
            old_scores = list(group.attrs.get("scores", [None] * len(group)))
            doc.spans[self.spans_key] = list(group) + kept
            if kept_scores is not None:
                doc.spans[self.spans_key].attrs["scores"] = old_scores + kept_scores

    def score(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        if self.spans_key is None:
            return get_ner_prf(examples)
        key = self.spans_key
        return Scorer.score_spans(
            examples,
            f"spans_{key}",
            getter=lambda doc, attr: doc.spans.get(key, []),
            has_annotation=lambda doc: key in doc.spans,
            allow_overlap=True,
            **kwargs,
        )

    @property
    def score_weights(self) -> ScoreWeights:
        prefix = "ents" if self.spans_key is None else f"spans_{self.spans_key}"
        return {f"{prefix}_f": 1.0, f"{prefix}_p": 0.0, f"{prefix}_r": 0.0, f"{prefix}_per_type": None}

    def predicted_items(self, tags: np.ndarray) -> List[Item]:
        return bio_to_spans(tags)

    def gold_items(self, example: Example, label_index: Dict[str, int]) -> Set[Item]:
        spans = example.get_aligned_spans_y2x(list(self.spans_of(example.reference)), allow_overlap=True)
        return {(span.start, span.end, label_index.get(span.label_, -1)) for span in spans}


DEFAULT_TARGET = "ents"
# the scores an llm_tagger may report whatever its spans key: written into configs by the
# factory's default_score_weights (ents) or by earlier releases (tag_acc, pos_acc)
FIXED_TARGET_SCORES = ("ents_f", "ents_p", "ents_r", "ents_per_type", "tag_acc", "pos_acc")


def make_target(target: str) -> Target:
    if target == "ents":
        return SpanTarget(None)
    if target in ("tag", "pos"):
        return TokenAttrTarget(target)
    if isinstance(target, str) and target.startswith("spans:") and len(target) > len("spans:"):
        return SpanTarget(target[len("spans:") :])
    raise ConfigError(
        f"Unknown target {target!r}. Use 'ents' (doc.ents), 'tag' (token.tag_), "
        f"'pos' (token.pos_) or 'spans:KEY' (doc.spans[KEY])."
    )
