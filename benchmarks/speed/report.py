"""The table bench_speed.py prints from its results, whichever sections they hold."""
from typing import Any, Dict


def print_table(r: Dict[str, Any]) -> None:
    print(f"\n{r['machine']}; {r['sentences']} CoNLL-2003 test sentences ({r.get('words')} words)\n")
    if "llm_tagger" in r:
        tagger = r["llm_tagger"]["words_per_second"]
        print("| system | words/s | llm_tagger ratio |\n|---|---|---|")
        if "raw_forward" in r:
            print(f"| raw transformers forward (floor) | {r['raw_forward']['words_per_second']:.0f} "
                  f"| {r['overhead_ratio']:.2f} |")
        print(f"| llm_tagger nlp.pipe | {tagger:.0f} | 1.00 |")
        for key, name in (("hf_token_classification", "transformers token-classification pipeline"),
                          ("spacy_transformers", "spacy-transformers + ner (same weights)")):
            if key in r and "words_per_second" in r[key]:
                ours = r[key].get("llm_tagger_words_per_second_same_run", tagger)
                print(f"| {name} | {r[key]['words_per_second']:.0f} | {ours / r[key]['words_per_second']:.2f} |")
            elif key in r:
                print(f"| {name} | failed: {r[key].get('error')} | |")
        if "training" in r:
            t = r["training"]
            print(f"| training: llm_tagger nlp.update | {t['llm_tagger_words_per_second']:.0f} | {t['ratio']:.2f} |")
            print(f"| training: plain peft loop | {t['plain_peft_loop_words_per_second']:.0f} | |")
        print(f"\npadding share {100 * r['llm_tagger']['padding_share']:.1f}%, "
              f"stages {r['llm_tagger']['stage_share']}")
    if "fast" in r:
        fast = r["fast"]
        print("\n| configuration | words/s | ratio to default |\n|---|---|---|")
        for name, wps in fast["words_per_second"].items():
            print(f"| {name} | {wps:.0f} | {fast['ratio_to_default'][name]:.2f} |")
    if "confidences" in r:
        c = r["confidences"]
        print(f"\nconfidences: decode + annotate {1000 * c['decode_seconds']['on']:.0f} ms on, "
              f"{1000 * c['decode_seconds']['off']:.0f} ms off, nlp.pipe {c['pipe_seconds']:.1f} s: "
              f"cost {100 * c['cost']:.2f}% of nlp.pipe ({c['scored_spans']} scored spans)")
    if "scaling" in r:
        print("\n| doc words | words/s | peak RSS MB | RSS before MB |\n|---|---|---|---|")
        for s in r["scaling"]:
            print(f"| {s['words']} | {s['words_per_second']:.0f} | {s['peak_rss_mb']:.0f} | {s['rss_before_mb']:.0f} |")
    for m in r.get("memory", []):
        print(f"peak RSS {m['mode']}: {m['peak_rss_mb']:.0f} MB (after load {m['after_load_rss_mb']:.0f} MB)")
    if "memory_growth" in r:
        samples = r["memory_growth"]["samples"]
        print("\nRSS along nlp.pipe: " + ", ".join(f"{s['docs']} docs {s['rss_mb']:.0f} MB" for s in samples))
