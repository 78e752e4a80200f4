"""Peer: a spacy-transformers ``transformer`` + ``ner`` listener loading the same SmolLM2 weights.

    python benchmarks/bench_speed.py --only spacy_transformers

nlp.pipe words/s (best of batch sizes 64 and 256), and the llm_tagger's nlp.pipe words/s
measured in the same run, which its ratio is taken against. A failure to build or run the
peer is recorded as ``error``, not hidden.
"""
from pathlib import Path
from typing import Any, Dict

from .common import Workload, log, pipe_speeds


def with_vocab_files(folder: str, tokenizer: Any) -> str:
    """A copy of the model folder whose tokenizer also has vocab.json + merges.txt.

    spacy-transformers reads ``tokenizer.vocab_file``, which a tokenizer loaded from
    tokenizer.json alone (as converted from GGUF) does not have.
    """
    import tempfile

    target = Path(tempfile.mkdtemp(prefix="smollm2-st-"))
    for item in Path(folder).iterdir():
        if not item.name.startswith("tokenizer") and item.name not in ("vocab.json", "merges.txt"):
            (target / item.name).symlink_to(item.resolve())
    from transformers import GPT2TokenizerFast  # SmolLM2's tokenizer is GPT-2 style byte-level BPE

    tokenizer.save_pretrained(str(target))
    tokenizer.backend_tokenizer.model.save(str(target))  # vocab.json + merges.txt
    with_files = GPT2TokenizerFast(
        vocab_file=str(target / "vocab.json"),
        merges_file=str(target / "merges.txt"),
        tokenizer_file=str(target / "tokenizer.json"),
        **{k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)},
    )
    with_files.save_pretrained(str(target))
    return str(target)


def spacy_transformers_pipe(nlp_llm, docs, n_words: int, examples) -> Dict[str, Any]:
    """spacy-transformers transformer + ner listener loading the same SmolLM2 weights."""
    import spacy

    loaded = nlp_llm.get_pipe("llm_tagger").model.loaded
    folder = with_vocab_files(loaded.location.path, loaded.tokenizer)
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "spacy-transformers.TransformerModel.v3",
                "name": folder,
                "tokenizer_config": {"use_fast": True, "pad_token": loaded.tokenizer.pad_token},
                "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96},
            }
        },
    )
    ner_config = {
        "model": {
            "@architectures": "spacy.TransitionBasedParser.v2",
            "state_type": "ner",
            "extra_state_tokens": False,
            "hidden_width": 64,
            "maxout_pieces": 2,
            "use_upper": False,
            "tok2vec": {
                "@architectures": "spacy-transformers.TransformerListener.v1",
                "grad_factor": 1.0,
                "pooling": {"@layers": "reduce_mean.v1"},
            },
        }
    }
    nlp.add_pipe("ner", config=ner_config)
    nlp.initialize(lambda: examples)
    results, best = pipe_speeds(nlp, docs, n_words)
    return {"words_per_second": results[best], "batch_size": best}


def measure(result: Dict[str, Any], work: Workload) -> None:
    """Records ``spacy_transformers``."""
    log("spacy-transformers + ner ...")
    try:
        peer = spacy_transformers_pipe(work.nlp, work.docs, work.n_words, work.examples)
        peer["llm_tagger_words_per_second_same_run"] = work.tagger_words_per_second
    except Exception as err:  # report, do not hide
        peer = {"error": f"{type(err).__name__}: {err}"[:300]}
    result["spacy_transformers"] = peer
