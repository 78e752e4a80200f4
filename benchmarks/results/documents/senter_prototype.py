"""Prototype (not part of the package): sentence boundaries from spaCy's own `senter`, issue #31.

A `senter` (spacy.Tagger.v2 on HashEmbedCNN width 96, depth 4) is trained for 20 epochs on the
1,000 training sentences of the default path, joined 30 at a time in corpus order; its
boundaries then cut the bare dev documents, alone ("senter"), with the punctuation rules
("union"), or only inside rule "sentences" longer than the segment length ("long"), at a
probability threshold (VARIANT@P). The senter's training is not seeded here, so boundary counts
differ a little between runs. Run from benchmarks/ with a saved model:

    python results/documents/senter_prototype.py MODEL union@0.5,long@0.99 [SPLIT]
    (NOEVAL=1: boundary counts only)

Results are in docs/whole-documents.md ("spaCy's senter").
"""
import sys, random, time, json
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
import numpy as np, spacy
from spacy.tokens import Doc
from spacy.training import Example
from bench_documents import read_documents, example
from bench_default_path import read_sentences
from spacy_llm_tagger.models.alignment import sentence_starts

model_path = sys.argv[1]; variants = sys.argv[2].split(","); split = sys.argv[3] if len(sys.argv) > 3 else "valid"
chunk, epochs, width, depth = 30, 20, 96, 4
sn = spacy.blank("en")
cfg = {"model": {"@architectures": "spacy.Tagger.v2", "nO": None, "normalize": False,
    "tok2vec": {"@architectures": "spacy.HashEmbedCNN.v2", "pretrained_vectors": None, "width": width, "depth": depth,
                "embed_size": 2000, "window_size": 1, "maxout_pieces": 2, "subword_features": True}}}
senter = sn.add_pipe("senter", config=cfg)
train = read_sentences("train", 1000)
gold_docs = []
for i in range(0, len(train), chunk):
    part = train[i:i + chunk]
    gold_docs.append(Doc(sn.vocab, words=[w for s, _ in part for w in s], sent_starts=[j == 0 for s, _ in part for j in range(len(s))]))
examples = [Example(Doc(sn.vocab, words=[t.text for t in d]), d) for d in gold_docs]
rng = random.Random(0); opt = sn.initialize(lambda: examples)
for ep in range(epochs):
    rng.shuffle(examples)
    for b in spacy.util.minibatch(examples, 8):
        sn.update(b, sgd=opt)
nlp = spacy.load(model_path)
tagger = nlp.get_pipe("llm_tagger").model
tok = tagger.loaded.tokenizer
seg = tagger.segment_length
docs = read_documents(split)
whole = [example(nlp, d, False) for d in docs]
def boundary_probs(words):
    d = Doc(sn.vocab, words=words)
    scores = senter.model.ops.to_numpy(senter.model.predict([d])[0])
    labels = senter.labels  # ('I','S')
    e = np.exp(scores - scores.max(1, keepdims=True)); e /= e.sum(1, keepdims=True)
    return e[:, labels.index("S")]
out = {"model": model_path, "split": split}
for variant in variants:
    name, _, thr = variant.partition("@"); thr = float(thr or 0.5)
    cut = []
    tp = fp = 0
    for d, e in zip(docs, whole):
        words = [t.text for t in e.predicted]
        rules = set(sentence_starts(e.predicted).tolist())
        p = boundary_probs(words)
        learned = {i for i in range(1, len(words)) if p[i] > thr} | {0}
        if name == "senter": starts = learned
        elif name == "union": starts = rules | learned
        elif name == "long":
            starts = set(rules); bounds = sorted(rules) + [len(words)]
            for a, b in zip(bounds[:-1], bounds[1:]):
                if len(tok(e.predicted[a:b].text)["input_ids"]) + 2 > seg:
                    starts |= {i for i in learned if a < i < b}
        elif name == "rules": starts = rules
        gold = set(np.cumsum([0] + [len(s) for s in d])[1:-1].tolist())
        tp += len(gold & (starts - {0})); fp += len((starts - {0}) - gold)
        cut.append(Example(Doc(nlp.vocab, words=words, sent_starts=[i in starts for i in range(len(words))]), e.reference))
    t0 = time.time()
    import os
    f = 0 if os.environ.get("NOEVAL") else nlp.evaluate(cut)["ents_f"] * 100
    out[variant] = {"ents_f": round(f, 2), "tp": tp, "fp": fp, "s": round(time.time() - t0)}
    print(variant, out[variant], file=sys.stderr, flush=True)
print(json.dumps(out))
