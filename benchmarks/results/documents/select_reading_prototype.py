"""Prototype (not part of the package), issue #31: two readings of bare dev documents - the
punctuation rules alone (A) and rules plus learned cuts (B, learned_boundaries_prototype.py in mode
argmax2, p > 0.99) - combined inside rule sentences longer than segment_length, by keeping the more
confident reading per sentence ("select") or averaging the two ("average"). Run 2026-12-01 on
the seed-0 default model (dev, 216 documents): A 79.71, B 79.51, select 79.76, average 79.93
(per sentence 80.53).

    python results/documents/select_reading_prototype.py MODEL   (from benchmarks/)
"""
import sys, os, json, runpy
os.environ["NOEVAL"] = "1"
model = sys.argv[1]
sys.argv = ["nb.py", model, "valid", "0", "0.99", "argmax2"]
g = runpy.run_path(str(__import__("pathlib").Path(__file__).with_name("learned_boundaries_prototype.py")))
nlp, cut, whole, tok, tagger = g["nlp"], g["cut"], g["whole"], g["tok"], g["tagger"]
import numpy as np
from spacy.training import Example
from spacy_llm_tagger.models.alignment import sentence_starts
pipe = nlp.get_pipe("llm_tagger")
def scores(docs):
    out = []
    for i in range(0, len(docs), 8):
        out += [pipe.model.ops.to_numpy(s) for s in pipe.model.predict(docs[i:i+8])]
    return out
A = scores([e.predicted for e in whole]); B = scores([e.predicted for e in cut])
def softmax(x):
    x = x - x.max(-1, keepdims=True); e = np.exp(x); return e / e.sum(-1, keepdims=True)
seg = tagger.segment_length
results = {}
for name in ["A", "B", "select", "average"]:
    combined = []
    for e, a, b in zip(whole, A, B):
        if name == "A": combined.append(a); continue
        if name == "B": combined.append(b); continue
        c = a.copy()
        st = list(sentence_starts(e.predicted)) + [len(e.predicted)]
        for s0, s1 in zip(st[:-1], st[1:]):
            n = len(tok(e.predicted[s0:s1].text, add_special_tokens=False)["input_ids"]) + 2
            if n <= seg: continue
            if name == "select":
                ca = softmax(a[s0:s1]).max(-1).mean(); cb = softmax(b[s0:s1]).max(-1).mean()
                if cb > ca: c[s0:s1] = b[s0:s1]
            else:
                c[s0:s1] = np.log((softmax(a[s0:s1]) + softmax(b[s0:s1])) / 2)
        combined.append(c)
    preds = pipe.decode_scores(combined)
    docs = [e.predicted.copy() for e in whole]
    pipe.set_annotations(docs, preds)
    exs = [Example(d, e.reference) for d, e in zip(docs, whole)]
    results[name] = round(100 * pipe.score(exs)["ents_f"], 2)
    print(name, results[name], flush=True)
print(json.dumps({"model": model, **results}))
