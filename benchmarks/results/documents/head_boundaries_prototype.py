"""Prototype, issue #31: a sentence-boundary classifier on the tagger's own token vectors.

The trained tagger reads pairs of consecutive training sentences whose first ends without
sentence-final punctuation (as a bare document would give them); a logistic regression on the
head's input vector of each token learns "a sentence starts here". On bare dev documents the
vectors of the usual reading give boundary probabilities; inside rule "sentences" longer than
the segment length, tokens with p > THRESHOLD become sentence starts and the documents are read
again with them. Run from benchmarks/ with a saved model:

    python results/documents/head_boundaries_prototype.py MODEL 0.5 [N_DOCS]

Results are in docs/whole-documents.md ("The tagger's own vectors").
"""
import sys, json, time
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
import numpy as np, torch, spacy
from spacy.tokens import Doc
from spacy.training import Example
from bench_documents import read_documents, example
from bench_default_path import read_sentences
from spacy_llm_tagger.models.alignment import sentence_starts, SENTENCE_FINAL
from spacy_llm_tagger.models.passes import run_passes

nlp = spacy.load(sys.argv[1]); thresholds = [float(t) for t in sys.argv[2].split(",")]
n_docs = int(sys.argv[3]) if len(sys.argv) > 3 else 0
tagger = nlp.get_pipe("llm_tagger"); model = tagger.model
torch.manual_seed(0)

def token_vectors(docs):
    loaded = model.prepare(False)
    _, plan = model.plan(docs, False)
    captured = []
    hook = loaded.predicting_module.head.register_forward_hook(lambda m, i, o: captured.append(i[0].detach().float().numpy()))
    results = run_passes(loaded, plan.passes, False, "llm_tagger")
    hook.remove()
    flat = np.zeros((plan.n_tokens, captured[0].shape[1]), dtype="float32")
    for r, f in zip(results, captured):
        flat[r.batch.tokens] = f
    return np.split(flat, np.cumsum(plan.doc_lengths)[:-1])

t0 = time.time()
train = read_sentences("train", 1000)
X, y = [], []
pairs = []
for (w1, _), (w2, _) in zip(train, train[1:]):
    if w1[-1] not in SENTENCE_FINAL:
        pairs.append((w1, w2))
docs = [Doc(nlp.vocab, words=a + b) for a, b in pairs]
for (a, b), vec in zip(pairs, [v for i in range(0, len(docs), 64) for v in token_vectors(docs[i:i + 64])]):
    labels = np.zeros(len(a) + len(b)); labels[len(a)] = 1
    X.append(vec[1:]); y.append(labels[1:])
X = torch.from_numpy(np.concatenate(X)); y = torch.from_numpy(np.concatenate(y)).float()
print(f"pairs {len(pairs)}, tokens {len(y)}, positives {int(y.sum())}, features {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
mean, std = X.mean(0), X.std(0) + 1e-6
clf = torch.nn.Linear(X.shape[1], 1)
opt = torch.optim.Adam(clf.parameters(), lr=1e-2, weight_decay=1e-3)
for step in range(300):
    opt.zero_grad()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(clf((X - mean) / std).squeeze(-1), y)
    loss.backward(); opt.step()
print(f"train loss {loss.item():.4f}", file=sys.stderr, flush=True)

dev = read_documents("valid"); dev = dev[:n_docs] if n_docs else dev
whole = [example(nlp, d, False) for d in dev]
probs = []
for i in range(0, len(whole), 16):
    for v in token_vectors([e.predicted for e in whole[i:i + 16]]):
        with torch.no_grad():
            probs.append(torch.sigmoid(clf((torch.from_numpy(v) - mean) / std).squeeze(-1)).numpy())
print(f"dev vectors {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
seg = model.segment_length; tok = model.loaded.tokenizer
out = {"model": sys.argv[1], "pairs": len(pairs)}
for thr in thresholds:
    cut = []; tp = fp = 0
    for d, e, p in zip(dev, whole, probs):
        words = [t.text for t in e.predicted]
        rules = set(sentence_starts(e.predicted).tolist())
        starts = set(rules); bounds = sorted(rules) + [len(words)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            if len(tok(e.predicted[a:b].text)["input_ids"]) + 2 > seg:
                starts |= {i for i in range(a + 1, b) if p[i] > thr}
        gold = set(np.cumsum([0] + [len(s) for s in d])[1:-1].tolist())
        tp += len(gold & (starts - {0})); fp += len((starts - {0}) - gold)
        cut.append(Example(Doc(nlp.vocab, words=words, sent_starts=[i in starts for i in range(len(words))]), e.reference))
    f = nlp.evaluate(cut)["ents_f"] * 100
    out[str(thr)] = {"ents_f": round(f, 2), "tp": tp, "fp": fp}
    print(thr, out[str(thr)], f"{time.time() - t0:.0f} s", file=sys.stderr, flush=True)
print(json.dumps(out))
