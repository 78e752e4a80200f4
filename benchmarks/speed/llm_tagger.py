"""The llm_tagger's own nlp.pipe: words/s, padding share and time per stage.

Every in-process section (overhead, hf, spacy_transformers, training) starts from this
figure, measured once per run by :func:`load`; each peer's ratio is taken against it.

The stages are measured without touching package code: the forward through torch's public
forward hooks on the network (``tagger.model.loaded.module``), the rest by timing the
public calls one by one on the same batches.
"""
import time
from typing import Any, Callable, Dict, List, Tuple

from .common import Workload, build_tagger, log, pipe_speeds, test_docs, timed


class ForwardClock:
    """Adds up the time spent in ``module``'s forward, through torch's forward hooks.

    The hooks are registered on entering the ``with`` block and removed on leaving it.
    """

    def __init__(self, module: Any) -> None:
        self.module = module
        self.seconds = 0.0
        self._starts: List[float] = []
        self._handles: List[Any] = []

    def __enter__(self) -> "ForwardClock":
        self._handles = [
            self.module.register_forward_pre_hook(lambda module, args: self._starts.append(time.perf_counter())),
            self.module.register_forward_hook(self._stop),
        ]
        return self

    def _stop(self, module: Any, args: Any, output: Any) -> None:
        self.seconds += time.perf_counter() - self._starts.pop()

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def clocked(fn: Callable, *args: Any) -> Tuple[Any, float]:
    """``fn(*args)`` and the seconds it took."""
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def stage_breakdown(nlp, docs, batch_size: int) -> Dict[str, Any]:
    """Seconds per stage of nlp.pipe at ``batch_size``, and the padding share of its passes.

    forward: the network's forward calls inside one nlp.pipe run (forward hooks), whose
    duration is the total. tokenize_align, decode and set_annotations: timed call by call in
    a second pass over the same batches, as nlp.pipe makes them (``loaded.aligner(docs)``,
    ``tagger.predict(docs)``, ``tagger.set_annotations(docs, tags)``); decode is
    ``tagger.predict`` less its aligner call, its pass planning and its network forward: the
    constrained Viterbi, and moving inputs and scores between numpy and torch. other: the
    nlp.pipe run less all stages (spaCy's batching, doc copies, pass planning). Stages come
    from two runs, so on a noisy machine ``other`` is only good to a few hundredths.
    """
    from spacy_llm_tagger.models.batching import plan_passes

    tagger = nlp.get_pipe("llm_tagger")
    model = tagger.model
    loaded = model.loaded
    with ForwardClock(loaded.module) as pipe_forward:
        total = timed(lambda: list(nlp.pipe([d.copy() for d in docs], batch_size=batch_size)))
    stages = {"tokenize_align": 0.0, "forward": pipe_forward.seconds, "decode": 0.0, "set_annotations": 0.0}
    real = padded = 0
    with ForwardClock(loaded.module) as predict_forward:
        for i in range(0, len(docs), batch_size):
            batch = [d.copy() for d in docs[i:i + batch_size]]
            encoded, align_seconds = clocked(loaded.aligner, batch)
            # the pad id does not change the attention masks the padding share is read from
            plan, plan_seconds = clocked(plan_passes, encoded, model.batch_tokens, 0, model.settings.pooling)
            for window_pass in plan.passes:
                real += int(window_pass.attention_mask.sum())
                padded += window_pass.attention_mask.size
            forward_before = predict_forward.seconds
            tags, predict_seconds = clocked(tagger.predict, batch)
            forward_seconds = predict_forward.seconds - forward_before
            stages["tokenize_align"] += align_seconds
            stages["decode"] += predict_seconds - forward_seconds - align_seconds - plan_seconds
            stages["set_annotations"] += clocked(tagger.set_annotations, batch, tags)[1]
    stages["other"] = total - sum(stages.values())
    return {
        "padding_share": 1 - real / padded,
        "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
        "stage_share": {k: round(v / total, 3) for k, v in stages.items()},
    }


def tagger_pipe(nlp, docs, n_words: int) -> Tuple[Dict[str, Any], Callable]:
    """nlp.pipe with the llm_tagger, with a per-stage time breakdown."""
    results, best = pipe_speeds(nlp, docs, n_words)
    return {
        "words_per_second": results[best],
        "batch_size": best,
        "by_batch_size": results,
        **stage_breakdown(nlp, docs, best),
    }, lambda: list(nlp.pipe([d.copy() for d in docs], batch_size=best))


def load(n_sentences: int, result: Dict[str, Any]) -> Workload:
    """Build the tagger, read the test sentences, measure the tagger's nlp.pipe.

    Records ``words`` in ``result``, and ``llm_tagger`` where it has none: when the overhead
    section is not re-run, the earlier figure stays and the peers keep their same-run figure.
    """
    log("loading SmolLM2 and building the tagger ...")
    nlp, examples = build_tagger()
    docs, _ = test_docs(nlp, n_sentences)
    n_words = sum(len(d) for d in docs)
    log("llm_tagger nlp.pipe ...")
    tagger, run_pipe = tagger_pipe(nlp, docs, n_words)
    result["words"] = n_words
    result.setdefault("llm_tagger", tagger)
    return Workload(nlp, examples, docs, [d.text for d in docs], n_words, tagger, run_pipe)
