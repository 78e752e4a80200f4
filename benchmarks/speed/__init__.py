"""The sections of ``benchmarks/bench_speed.py``, one module each.

Run them through the entry point, alone or together:

    python benchmarks/bench_speed.py --only overhead,hf

``common`` holds what they share; ``llm_tagger`` measures the ``nlp.pipe`` figure that the
in-process sections (overhead, hf, spacy_transformers, training) compare against.
"""
