"""Prototype (not part of the package): learned sentence boundaries for bare documents, issue #31.

Naive Bayes over token shapes, learned from the 1,000 training sentences of the default path; cuts
rule "sentences" (bench_documents / sentence_starts) where the boundary probability passes a
threshold, then scores the tagger on dev documents with those boundaries set. Modes: "all" (cut
anywhere), "long" (only inside rule sentences longer than segment_length), "argmax" (recursive cut
at the most likely boundary while a piece is longer than segment_length), "argmax2" (as argmax, and
always cut pieces longer than sentence_length). Run from benchmarks/ with a saved model:

    python results/documents/learned_boundaries_prototype.py MODEL valid 0 0.999 long
    (NOEVAL=1: boundary counts only)

Results are in docs/whole-documents.md ("Learned boundaries").
"""
import sys, json, math, collections
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
import numpy as np, spacy
from spacy.tokens import Doc
from bench_documents import read_documents, example
from bench_default_path import read_sentences
from spacy_llm_tagger.models.alignment import sentence_starts, SENTENCE_FINAL

model, split, n_docs = sys.argv[1], sys.argv[2], int(sys.argv[3])
threshold = float(sys.argv[4]) if len(sys.argv) > 4 else 0.5
mode = sys.argv[5] if len(sys.argv) > 5 else "all"   # all | long
nlp = spacy.load(model)
tagger = nlp.get_pipe("llm_tagger").model
tok = tagger.loaded.tokenizer

def coarse(w):
    if any(c.isdigit() for c in w): return "D"
    if w.isupper() and any(c.isalpha() for c in w): return "U"
    if w[:1].isupper(): return "T"
    if w.islower(): return "L"
    return "P:" + w if len(w) <= 2 else "O"
def shape(w):
    out = []
    for c in w:
        k = "X" if c.isupper() else "x" if c.isalpha() else "d" if c.isdigit() else c
        if len(out) >= 4 and all(o == k for o in out[-4:]): continue
        out.append(k)
    return "".join(out)

train = read_sentences("train", 1000)
words_of = lambda s: list(s[0])
pos = collections.Counter(); neg = collections.Counter(); n_pos = n_neg = 0
def feats(ws, i):  # boundary before ws[i]; ws padded
    p1 = ws[i - 1]; p2 = ws[i - 2] if i >= 2 else "<S>"
    n1 = ws[i] if i < len(ws) else "</S>"; n2 = ws[i + 1] if i + 1 < len(ws) else "</S>"
    return [("e1", shape(p1)), ("e1c", coarse(p1)), ("e2c", coarse(p2) if p2 != "<S>" else p2),
            ("s1", shape(n1)), ("s1c", coarse(n1)), ("s2c", coarse(n2) if n2 != "</S>" else n2)]
for s in train:
    ws = words_of(s)
    for i in range(1, len(ws)):
        if ws[i - 1] in SENTENCE_FINAL: continue
        n_neg += 1
        for f in feats(ws, i): neg[f] += 1
prev = None
for s in train:
    ws = words_of(s)
    if ws[-1] not in SENTENCE_FINAL:
        n_pos += 1
        # end side from this sentence, start side from any sentence (marginals)
        for f in feats(ws + ["</S>", "</S>"], len(ws))[:3]: pos[f] += 1
n_start = 0
for s in train:
    ws = words_of(s); n_start += 1
    for f in feats(["<S>", "<S>"] + ws, 2)[3:]: pos[f] += 1
V = collections.defaultdict(set)
for k, v in list(pos) + list(neg): V[k].add(v)
def lr(f, total_pos):
    k = f[0]
    return ((pos[f] + 0.5) / (total_pos + 0.5 * len(V[k]))) / ((neg[f] + 0.5) / (n_neg + 0.5 * len(V[k])))
prior = math.log(n_pos / n_neg)
print("positives", n_pos, "negatives", n_neg, file=sys.stderr)
def boundary_logodds(ws, i):
    fs = feats(ws, i)
    return prior + sum(math.log(lr(f, n_pos)) for f in fs[:3]) + sum(math.log(lr(f, n_start)) for f in fs[3:])

def split_long(doc, ws, a, b, seg_len, out):
    n = len(tok(doc[a:b].text)["input_ids"]) + 2
    if n <= seg_len or b - a < 2:
        return
    scores = [(boundary_logodds(ws, i), i) for i in range(a + 1, b)]
    best, i = max(scores)
    forced = mode == "argmax2" and n > tagger.sentence_length
    if best < math.log(threshold / (1 - threshold)) and not forced:
        return
    out.add(i)
    split_long(doc, ws, a, i, seg_len, out); split_long(doc, ws, i, b, seg_len, out)

def add_cuts(doc, seg_len):
    if mode in ("argmax", "argmax2"):
        starts = list(sentence_starts(doc)) + [len(doc)]
        ws = [t.text for t in doc]; new = set(starts[:-1])
        for a, b in zip(starts[:-1], starts[1:]):
            split_long(doc, ws, a, b, seg_len, new)
        return Doc(nlp.vocab, words=ws, sent_starts=[i in new for i in range(len(doc))])
    starts = list(sentence_starts(doc)) + [len(doc)]
    ws = [t.text for t in doc]
    new = set(starts[:-1])
    for a, b in zip(starts[:-1], starts[1:]):
        if mode == "long" and len(tok(doc[a:b].text)["input_ids"]) + 2 <= seg_len: continue
        for i in range(a + 1, b):
            if boundary_logodds(ws, i) > math.log(threshold / (1 - threshold)):
                new.add(i)
    s = [i in new for i in range(len(doc))]
    return Doc(nlp.vocab, words=ws, sent_starts=s)

docs = read_documents(split)[:n_docs] if n_docs else read_documents(split)
whole = [example(nlp, d, False) for d in docs]
seg = tagger.segment_length
from spacy.training import Example
cut = [Example(add_cuts(e.predicted, seg), e.reference) for e in whole]
# boundary quality vs gold
tp = fp = fn = 0
for d, e in zip(docs, cut):
    gold = set(np.cumsum([0] + [len(s) for s in d])[1:-1].tolist())
    pred = {t.i for t in e.predicted if t.is_sent_start and t.i > 0}
    tp += len(gold & pred); fp += len(pred - gold); fn += len(gold - pred)
heur = 0
print(f"boundaries: tp {tp} fp {fp} fn {fn}", file=sys.stderr)
import os
score = nlp.evaluate(cut)["ents_f"] * 100 if not os.environ.get("NOEVAL") else 0
print(json.dumps({"threshold": threshold, "mode": mode, "bare_nb": round(score, 2), "tp": tp, "fp": fp, "fn": fn}))
