"""Analysis (not part of the package), issue #31: the entity errors that only one reading of the dev
documents makes - bare tokens (bare_fp, bare_fn) or one Doc per sentence (sent_fp, sent_fn) -
each with its context (| a gold sentence start, ^ a rule start). Run from anywhere:

    python benchmarks/results/documents/bare_errors.py MODEL [DOCUMENTS] [OUT.json]

Results are in docs/whole-documents.md ("What bare reading gets wrong").
"""
import sys, json, collections
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
import spacy
from spacy.tokens import Doc
from bench_documents import read_documents
from spacy_llm_tagger.models.alignment import sentence_starts
nlp = spacy.load(sys.argv[1]); n = int(sys.argv[2]) if len(sys.argv) > 2 else 0
docs = read_documents("valid"); docs = docs[:n] if n else docs
out = []
for di, d in enumerate(docs):
    words = [w for s in d for w, _ in s]
    tags = [t for s in d for _, t in s]
    gold = Doc(nlp.vocab, words=words, ents=tags)
    G = {(e.start, e.end, e.label_) for e in gold.ents}
    sents = [nlp(Doc(nlp.vocab, words=[w for w, _ in s])) for s in d]
    off = 0; S = set()
    for s, sd in zip(d, sents):
        S |= {(e.start + off, e.end + off, e.label_) for e in sd.ents}; off += len(s)
    bare = nlp(Doc(nlp.vocab, words=words))
    B = {(e.start, e.end, e.label_) for e in bare.ents}
    starts = set(sentence_starts(Doc(nlp.vocab, words=words)).tolist())
    gold_starts = set(__import__("numpy").cumsum([0] + [len(s) for s in d])[:-1].tolist())
    for kind, ents in (("bare_fp", (B - G) - (S - G)), ("bare_fn", (G - B) - (G - S)), ("sent_fp", (S - G) - (B - G)), ("sent_fn", (G - S) - (G - B))):
        for a, b, l in sorted(ents):
            ctx = " ".join(("|" if i in gold_starts else "") + ("^" if i in starts else "") + (f"[{w}" if i == a else w) + ("]" if i == b - 1 else "") for i, w in enumerate(words[max(0, a - 8):b + 8], start=max(0, a - 8)))
            out.append({"doc": di, "kind": kind, "span": " ".join(words[a:b]), "label": l, "ctx": ctx})
json.dump(out, open(sys.argv[3] if len(sys.argv) > 3 else "/tmp/senter/diff.json", "w"), indent=1)
print(collections.Counter(o["kind"] for o in out))
