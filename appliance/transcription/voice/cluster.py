"""Grouping voice embeddings into speakers, estimating how many, and naming them.

How the method was chosen (DER %, collar 0.25 s, CAM++ embeddings of 1.5 s
windows every 0.75 s inside Silero VAD regions, speaker count known; files: the
series dialogues week1-3, the dialogues sleep and quiet, AMI dev00, dev01,
trn03, trn04, trn05):

===========================================  ================  ==========  ========
clustering                                   series            dialogues   AMI dev
===========================================  ================  ==========  ========
AHC, average linkage (cosine), cut at k      45 / 42 / 48      3.0 / 3.5   7.9 / 8.5
AHC, complete linkage                        4.9 / 45 / 4.4    3.0 / 3.5   7.9 / 8.5
AHC average, k largest of k+2 clusters       4.9 / 45 / 4.4    3.0 / 3.5   7.9 / 7.9
spectral (p-pruned cosine affinity, p 0.3)   3.5 / 3.1 / 4.4   3.0 / 3.5   7.9 / 7.9
k-means on unit vectors, 10 k-means++ starts 3.5 / 3.2 / 4.9   3.0 / 3.5   7.9 / 8.5
===========================================  ================  ==========  ========

Agglomerative clustering splits off a handful of windows that straddle a change
of speaker (they resemble neither voice) as one of the k clusters and merges
the two real voices; spectral clustering was right on the dialogues but 20-35 %
on the short AMI training clips (trn03-05: 10-30 s of speech, 3-4 speakers),
where k-means scored 16 / 35 / 17. k-means with several seeded starts (scipy's
``kmeans2``, so the same embeddings always give the same labels) was kept:
within a point of the best everywhere and never collapsing. Splitting regions
at short pauses first, or longer and non-overlapping windows, did not help.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
from scipy.cluster.vq import ClusterError, kmeans2

from appliance.transcription.voice.model import unit

log = logging.getLogger(__name__)

MAX_AUTO_SPEAKERS = 4
_RESTARTS = 10
# Silhouettes are computed on at most this many windows (an n x n matrix).
_SILHOUETTE_SAMPLE = 1200
# The automatic count takes the best two-way split for one voice when its two mean
# voices are at least ONE_VOICE_SIMILARITY alike (cosine) AND the split does not
# follow turns: fewer than _TURN_PERSISTENCE of consecutive windows share a group.
# Two people take turns, so their windows come in runs (0.70-0.94 measured); one
# voice split in two alternates with the sounds spoken (0.50-0.80). Measured on 10
# files with 2-4 speakers (series, dialogues, AMI) and 11 with one (JFK, each
# dialogue speaker's turns alone): right on all 10 and on 9 of the 11 (JFK at
# similarity 0.77 / persistence 0.91 and one espeak voice at 0.84 / 0.86 split in
# two). Similarity alone called the three series sessions (two espeak voices 0.88-0.89
# alike) one speaker. The same files chose the thresholds: no held-out set here.
# Enrollment uses the similarity to refuse a sample holding two voices.
ONE_VOICE_SIMILARITY = 0.75
_TURN_PERSISTENCE = 0.84


def kmeans(points: np.ndarray, k: int) -> np.ndarray:
    """Cluster index per row of unit vectors: the best of several seeded k-means runs."""
    if k <= 1 or len(points) <= k:
        return np.arange(len(points)) if 1 < len(points) <= k else np.zeros(len(points), int)
    best: tuple[float, np.ndarray] | None = None
    for seed in range(_RESTARTS):
        try:
            # Identical windows (a hum, one held sound) make the ++ start divide 0 by 0.
            with np.errstate(all="ignore"):
                centroids, labels = kmeans2(points, k, minit="++", missing="raise",
                                            seed=np.random.default_rng(seed))
        except (ClusterError, ValueError):
            continue  # an empty cluster or no start: fewer distinct voices than asked
        spread = float(np.sum((points - centroids[labels]) ** 2))
        if best is None or spread < best[0]:
            best = (spread, labels)
    return best[1] if best is not None else np.zeros(len(points), int)


def centroids(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unit mean vector of each cluster 0..max(labels)."""
    return unit(np.stack([points[labels == j].mean(axis=0) for j in range(int(labels.max()) + 1)]))


def _silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette on cosine distance (higher: better separated groups; -1 for one group)."""
    if len(np.unique(labels)) < 2:
        return -1.0
    distance = 1.0 - points @ points.T
    scores = []
    for i, own in enumerate(labels):
        mine = labels == own
        inside = distance[i, mine].sum() / max(1, mine.sum() - 1)
        outside = min(distance[i, labels == j].mean() for j in np.unique(labels) if j != own)
        scores.append((outside - inside) / max(inside, outside, 1e-9))
    return float(np.mean(scores))


def estimate_count(points: np.ndarray, most: int = MAX_AUTO_SPEAKERS) -> int:
    """How many voices (1 to ``most``) the embeddings (in time order) hold.

    1 when the best two-way split looks like one voice (see ONE_VOICE_SIMILARITY),
    else the count whose k-means split has the best silhouette.
    """
    if len(points) < 4:
        return 1
    two = kmeans(points, 2)
    if len(np.unique(two)) < 2:
        return 1  # not even two groups: all windows sound the same
    middle = centroids(points, two)
    persistence = float(np.mean(two[1:] == two[:-1]))
    if float(middle[0] @ middle[1]) >= ONE_VOICE_SIMILARITY and persistence < _TURN_PERSISTENCE:
        return 1
    sample = points[np.linspace(0, len(points) - 1, min(len(points), _SILHOUETTE_SAMPLE)).astype(int)]
    scores = {k: _silhouette(sample, kmeans(sample, k)) for k in range(2, most + 1)
              if len(sample) > 2 * k}
    count = max(scores, key=lambda k: scores[k]) if scores else 2
    log.debug("speaker count: silhouettes %s -> %d", scores, count)
    return count


# --- re-segmentation ------------------------------------------------------------------------

# Changing speaker between two windows costs this much cosine similarity. Measured
# (DER of the turns, collar 0.25 s, Silero regions) against a 3-window majority
# filter: week3 4.9 -> 3.1 %, AMI trn05 35 -> 28 %, trn03 16 -> 21 %, the rest equal
# (series week1-2, dialogues, AMI dev00-01, trn04); 0.02-0.05 changed nothing and
# 0.3 merged real short turns (dev01 7.9 -> 13.5 %).
SWITCH_COST = 0.1


def resegment(similarity: np.ndarray, switch_cost: float = SWITCH_COST) -> np.ndarray:
    """The best speaker sequence over consecutive windows (Viterbi).

    ``similarity[i, j]`` is window i's cosine similarity to speaker j's mean
    voice. The path maximises the summed similarity minus ``switch_cost`` per
    change, so a window or two that lean the other way only where the voice is
    unclear do not start a turn, while a clear change does.
    """
    count = len(similarity)
    if count == 0:
        return np.zeros(0, dtype=int)
    score = similarity[0].astype(np.float64)
    back = np.zeros(similarity.shape, dtype=int)
    for index in range(1, count):
        best = int(np.argmax(score))
        switch = score[best] - switch_cost
        back[index] = np.where(score >= switch, np.arange(similarity.shape[1]), best)
        score = np.maximum(score, switch) + similarity[index]
    path = [int(np.argmax(score))]
    for index in range(count - 1, 0, -1):
        path.append(int(back[index, path[-1]]))
    return np.array(path[::-1])


# --- naming clusters by enrolled voices ---------------------------------------------------

# An enrolled voice names a cluster only when its cosine similarity to the
# cluster's mean voice is at least _MATCH_MIN and beats every other cluster by
# _MATCH_MARGIN. Measured with voices enrolled from the lavalier channel of the
# stereo dialogues and clusters of the mono mix (Silero regions): the same voice
# 0.96-0.99 with margins 0.10-0.39; another espeak voice 0.65-0.92 with margins
# 0.04-0.06 (or 0.13-0.33 at similarities up to 0.95 for near-identical espeak
# variants, the one case these synthetic voices cannot separate); JFK 0.44-0.51.
_MATCH_MIN = 0.8
_MATCH_MARGIN = 0.08


def match_voices(means: np.ndarray, voices: Mapping[str, np.ndarray]) -> dict[int, str]:
    """``{cluster: name}`` for the clusters an enrolled voice clearly matches.

    Each voice names at most one cluster and each cluster takes at most one
    name (the more similar voice wins); unsure matches name nobody.
    """
    candidates = []
    for name, voice in voices.items():
        similarity = means @ unit(np.asarray(voice, dtype=np.float64))
        order = np.argsort(similarity)[::-1]
        best = int(order[0])
        margin = similarity[best] - (similarity[order[1]] if len(order) > 1 else -1.0)
        confident = similarity[best] >= _MATCH_MIN and margin >= _MATCH_MARGIN
        log.debug("voice %r: similarity %.2f, margin %.2f to cluster %d: %s", name,
                  similarity[best], margin, best, "named" if confident else "not named")
        if confident:
            candidates.append((float(similarity[best]), best, name))
    named: dict[int, str] = {}
    for _, cluster, name in sorted(candidates, reverse=True):
        if cluster not in named and name not in named.values():
            named[cluster] = name
    return named
