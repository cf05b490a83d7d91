#!/usr/bin/env python3
"""KorSTS as Korean paraphrase retrieval, scored with `searchkit eval` in every mode.

Built from ../shared/data/eval/korsts/sts-{dev,test}.tsv (never copied into the repo): every
pair whose gold score is at least --min-score (4) gives a query (its sentence1) and that
query's relevant document (its sentence2); the corpus is every sentence2 of the split, so the
other sentences are distractors. Repeated sentences are one query or one document (a query
repeated in several such pairs has several relevant documents). The BEIR files and the index
go to a temporary folder; the index is made with searchkit's Python API (the model embeds
each document once) and scored with the function behind `searchkit eval`.

Tune on dev only; the test split is for one final report.

    .venv/bin/python scripts/eval_korsts.py [--split dev|test] [--cjk-weights 1.1,3,6,10]
        [--analysis words,bigrams,cjk-bigrams+unigrams,kiwi]

--cjk-weights scores hybrid search with each CJK keyword weight (search.Fusion) as well.
--analysis re-indexes the keyword side of the one index with each named analysis in turn
and scores keyword and hybrid for each; dense is scored once. Prints one JSON document. The
analyses: searchkit's (searchkit.analysis.ANALYSES: ``cjk-bigrams+unigrams``, the default, and
``words``, unicode61 words alone, as before CJK support), and two known to this script only,
to compare with: ``bigrams`` (Lucene's CJKAnalyzer: a run's bigrams, a one-character run as
itself) and ``kiwi`` (Kiwi's Korean morphemes, particles and endings left out; other CJK runs
as the default does; needs `pip install kiwipiepy`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "eval" / "korsts"
MODES = ("dense", "keyword", "hybrid")

Qrels = dict[str, dict[str, int]]


def read_pairs(path: Path) -> list[tuple[float, str, str]]:
    """(gold score, sentence1, sentence2) of each row after the header (7 columns, tab-separated)."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        cols = line.rstrip("\n").split("\t")
        if len(cols) >= 7 and cols[5].strip() and cols[6].strip():
            pairs.append((float(cols[4]), cols[5].strip(), cols[6].strip()))
    return pairs


def build_set(
    pairs: list[tuple[float, str, str]], min_score: float
) -> tuple[dict[str, str], dict[str, str], Qrels]:
    """(corpus, queries, qrels): documents and queries by id, one id per distinct text."""
    corpus: dict[str, str] = {}  # text -> id while building
    for _, _, second in pairs:
        corpus.setdefault(second, f"d{len(corpus)}")
    queries: dict[str, str] = {}
    qrels: Qrels = {}
    for score, first, second in pairs:
        if score >= min_score:
            query = queries.setdefault(first, f"q{len(queries)}")
            qrels.setdefault(query, {})[corpus[second]] = 1
    return {i: t for t, i in corpus.items()}, {i: t for t, i in queries.items()}, qrels


def write_beir(folder: Path, corpus: dict[str, str], queries: dict[str, str], qrels: Qrels) -> None:
    """The set in BEIR's files, to rerun by hand with `searchkit index` and `searchkit eval`."""
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for id_, text in corpus.items():
            f.write(json.dumps({"_id": id_, "text": text}, ensure_ascii=False) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as f:
        for id_, text in queries.items():
            f.write(json.dumps({"_id": id_, "text": text}, ensure_ascii=False) + "\n")
    (folder / "qrels").mkdir()
    lines = [f"{q}\t{d}\t{g}" for q, docs in qrels.items() for d, g in docs.items()]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(lines) + "\n")


def _bigrams(run: str) -> list[tuple[str, int, int]]:
    if len(run) == 1:
        return [(run, 0, 1)]
    return [(run[i : i + 2], i, i + 2) for i in range(len(run) - 1)]


_KIWI: list[Any] = []  # the Kiwi analyser, loaded on first use (about a second)
# Kiwi's tags left out: particles (J), endings (E), affixes (X) and punctuation (S), but for
# Han, Latin and numbers (SH, SL, SN).
_DROPPED = ("J", "E", "X", "S")


def _kiwi(run: str) -> list[tuple[str, int, int]]:
    from searchkit.analysis import ANALYSES, DEFAULT

    if not any("\uac00" <= c <= "\ud7a3" for c in run):
        split = ANALYSES[DEFAULT]
        assert split is not None
        return split(run)
    if not _KIWI:
        from kiwipiepy import Kiwi  # type: ignore[import-not-found, unused-ignore]

        _KIWI.append(Kiwi())
    tokens = _KIWI[0].tokenize(run)
    kept = [t for t in tokens if not t.tag.startswith(_DROPPED) or t.tag in ("SH", "SL", "SN")]
    return [(t.form, t.start, t.start + t.len) for t in kept]


def register_analyses() -> None:
    """Make this script's analyses known to searchkit, in this process only."""
    from searchkit import analysis

    analysis.ANALYSES.setdefault("bigrams", _bigrams)
    analysis.ANALYSES.setdefault("kiwi", _kiwi)


def score(index: Any, queries: dict[str, str], qrels: Qrels, mode: str, k: int) -> dict[str, Any]:
    from searchkit.service.quality import evaluate

    started = time.perf_counter()
    report = evaluate(index, queries, qrels, k=k, mode=mode)
    report["seconds"] = round(time.perf_counter() - started, 2)
    return {name: round(v, 4) if isinstance(v, float) else v for name, v in report.items()}


def fusion_grid(
    index: Any, queries: dict[str, str], qrels: Qrels, weights: list[float], k: int
) -> dict[str, float]:
    """Hybrid NDCG@k for each CJK keyword weight (search.Fusion.cjk_keyword_weight), the
    other settings as they are: how the weight was chosen (on dev)."""
    from dataclasses import replace

    from searchkit.evaluate import mean_metrics
    from searchkit.service.search import DEFAULT_FUSION, fuse

    ids = [q for q in qrels if q in queries]
    texts = [queries[q] for q in ids]
    depth = DEFAULT_FUSION.depth
    number: dict[str, int] = {}
    rankings = {
        mode: [[(number.setdefault(h.id, len(number)), h.score) for h in hits] for hits in results]
        for mode in ("dense", "keyword")
        for results in [index.search_many(texts, depth, mode=mode)]
    }
    key = {n: id_ for id_, n in number.items()}
    found = {}
    for weight in weights:
        fusion = replace(DEFAULT_FUSION, cjk_keyword_weight=weight)
        fused = [
            fuse(d, w, fusion.for_query(t))[:k]
            for d, w, t in zip(rankings["dense"], rankings["keyword"], texts, strict=True)
        ]
        ranked = {q: [key[i] for i, _ in r] for q, r in zip(ids, fused, strict=True)}
        found[str(weight)] = round(mean_metrics(ranked, qrels, k)[f"ndcg@{k}"], 4)
    return found


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from searchkit import Index

    corpus, queries, qrels = build_set(read_pairs(DATA / f"sts-{args.split}.tsv"), args.min_score)
    write_beir(folder, corpus, queries, qrels)
    result: dict[str, Any] = {
        "split": args.split,
        "min_score": args.min_score,
        "model": args.model,
        "documents": len(corpus),
        "queries": len(queries),
        "qrels": sum(len(d) for d in qrels.values()),
        "modes": {},
    }
    with Index.create(folder / "index", model=args.model, backend=args.backend) as index:
        index.add({"id": i, "text": t} for i, t in corpus.items())
        if not args.analysis:  # the index's own (default) analysis
            result["analysis"] = getattr(index.store, "analysis", "words")
            for mode in args.modes:
                result["modes"][mode] = score(index, queries, qrels, mode, args.k)
            if args.cjk_weights:
                result["hybrid_by_cjk_keyword_weight"] = fusion_grid(
                    index, queries, qrels, args.cjk_weights, args.k
                )
            return result
        if "dense" in args.modes:
            result["modes"]["dense"] = score(index, queries, qrels, "dense", args.k)
        for name in args.analysis:
            index.store.set_analysis(name)  # the keyword index re-analysed from the items
            for mode in (m for m in args.modes if m != "dense"):
                result["modes"][f"{mode}/{name}"] = score(index, queries, qrels, mode, args.k)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--split", choices=["dev", "test"], default="dev")
    parser.add_argument("--min-score", type=float, default=4.0, help="gold score of a relevant pair")
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="a model name or a local model folder")
    parser.add_argument("--backend", default=None, help="embedding backend (default: searchkit's)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: dense,keyword,hybrid")
    parser.add_argument("--analysis", default="", help="comma-separated analyses to compare (see above)")
    parser.add_argument(
        "--cjk-weights", default="", help="comma-separated CJK keyword weights to try (hybrid)"
    )
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="write the BEIR files and the index here (a new folder)")
    args = parser.parse_args()
    args.modes = [m for m in args.modes.split(",") if m]
    args.analysis = [a for a in args.analysis.split(",") if a]
    args.cjk_weights = [float(w) for w in args.cjk_weights.split(",") if w]
    if args.analysis:
        register_analyses()
    if args.keep is not None:
        args.keep.mkdir(parents=True)
        result = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="korsts-") as tmp:
            result = run(args, Path(tmp))
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
