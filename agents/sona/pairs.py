"""Pairs the adapter can be trained on instead of the user's own titles (docs/SONA.md, "Quality").

Trained pointwise on the user's own titles towards their ratings, the adapter learned which of
the titles they watched they rated higher, a second copy of the taste the profile already holds,
and added nothing measurable over it. What a recommendation has to get right is which unseen
title the user takes next, so here the adapter ranks (Bayesian personalized ranking):

    for each title the user likes (taste weight > 0), in the order they took them:
        a title others here like that this user never touched, drawn in proportion to its
        likers (so the pair contrasts taste, not popularity: drawn from the top only, it
        learned "unpopular", which held-out titles often are not)
    for each title the user rated low or dismissed (taste weight < 0):
        the latest liked title before it (the first after, for the earliest), against it

A pair (liked x+, other x-) is trained as one example (x+ - x-, label 1): with the logit
z = dot(output(x), p) linear in x, binary cross-entropy on the difference is BPR's
-log sigmoid(z+ - z-), the same training step (lora.train) on another input.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from agents.sona.lora import TrainingExample
from agents.sona.viewings import ViewingState

# The titles most liked here that negatives are drawn from: a larger pool reaches titles too
# obscure to tell anything about a taste.
NEGATIVE_POOL = 2000
NEGATIVES_PER_LIKED = 1
# Off by default: on the validation split the pairs added no more over the profile than the
# pointwise training on the user's own titles (folding.training_examples_of) did, none of the
# variants tried measurably (docs/SONA.md, "Quality", third pass), and their negatives depend on
# what other users liked when the round ran, so a replay (a worker's successor after a crash)
# would not train the same adapter. Kept for the probe (`--set pairs.PAIRWISE=True`) and for a
# population-trained base layer, which would train on the same pairs across users.
PAIRWISE = False
# The pairs' SGD step size (lora.train); the pointwise training keeps lora.LEARNING_RATE.
LEARNING_RATE = 0.05

F32 = npt.NDArray[np.float32]


def sample_negatives(
    popular: Sequence[tuple[uuid.UUID, int]],
    exclude: Collection[uuid.UUID],
    count: int,
    seed: int,
) -> list[uuid.UUID]:
    """`count` titles drawn (with replacement) in proportion to their likers, none of
    `exclude`; fewer (none) when no title is left to draw from. Seeded: the same round draws
    the same titles on every worker."""
    pool = [(cid, likers) for cid, likers in popular if likers > 0 and cid not in exclude]
    if not pool or count <= 0:
        return []
    weights = np.array([likers for _, likers in pool], dtype=np.float64)
    picked = np.random.default_rng(seed).choice(len(pool), size=count, p=weights / weights.sum())
    return [pool[i][0] for i in picked]


def pairwise_examples(
    rows: Sequence[ViewingState],
    vectors: Mapping[uuid.UUID, F32],
    negatives: Sequence[uuid.UUID],
    per_liked: int = NEGATIVES_PER_LIKED,
) -> list[TrainingExample]:
    """The pairs above as (x+ - x-, 1) examples, in the rows' order (oldest first, so the
    latest tastes are the last steps). Titles without a vector are left out; the sampled
    negatives are used in turn (the caller draws per_liked per liked title)."""
    liked = [r for r in rows if r.taste_weight > 0 and r.content_id in vectors]
    if not liked:
        return []
    drawn = [vectors[n] for n in negatives if n in vectors]
    examples: list[TrainingExample] = []
    next_negative = 0
    latest_liked: F32 | None = None
    first_liked = vectors[liked[0].content_id]
    for row in rows:
        vector = vectors.get(row.content_id)
        if vector is None:
            continue
        x = np.asarray(vector, dtype=np.float32)
        if row.taste_weight > 0:
            latest_liked = x
            for _ in range(per_liked):
                if next_negative >= len(drawn):
                    break
                examples.append(TrainingExample(x - drawn[next_negative], 1.0))
                next_negative += 1
        elif row.taste_weight < 0:
            anchor = latest_liked if latest_liked is not None else first_liked
            examples.append(TrainingExample(anchor - x, 1.0))
    return examples
