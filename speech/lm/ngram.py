"""Word n-gram language models in ARPA format: interpolated Kneser-Ney estimation in pure
Python, and an ARPA reader that scores words with back-off.

KenLM's ``lmplz`` (modified Kneser-Ney, three discounts per order) is the tool of choice
for large text; it is a C++ build (``tools/install_kenlm.sh``, run by
:mod:`speech.lm.lmplz`). This estimator needs nothing, handles recipe-sized text (hundreds
of thousands of words) in seconds, and writes the same format, which flashlight/KenLM
decoders load directly.

Estimation (Chen & Goodman's interpolated Kneser-Ney with one discount per order):

- sentences are padded ``<s> w1 ... wn </s>``; n-grams of every order are counted;
- the highest order and n-grams that start with ``<s>`` keep their counts; lower orders use
  continuation counts (how many distinct words precede the n-gram);
- order n's discount is D = n1 / (n1 + 2 n2) from its count-of-counts (0.5 when the text is
  too small to have both singletons and doubletons);
- p(w | h) = (a(h w) - D) / a(h) + gamma(h) p(w | h'), gamma(h) = D N1+(h .) / a(h); unigrams
  interpolate with the uniform distribution over the vocabulary (``<unk>`` included), so
  every distribution sums to one; the ARPA back-off weight of h is gamma(h).

Pruning: ``prune[k]`` drops n-grams of order k + 2 seen ``prune[k]`` times or fewer (as
lmplz ``--prune 0 1 1``); thresholds may not decrease with the order, so every kept
n-gram's prefix and suffix are kept as well. As in lmplz, the discounts come from the
counts before pruning, and a pruned n-gram's adjusted count stays in its history's total
a(h) and moves to the back-off: gamma(h) = (D N1+(h .) + pruned a(h .)) / a(h).
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Sequence

from speech.errors import SpeechError
from speech.fileio import atomic_write

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
NO_PROB = -99.0  # ARPA's log10 probability of <s>, which is never predicted

Ngram = tuple[str, ...]


def _discount(adjusted: Counter) -> float:
    n1 = sum(1 for c in adjusted.values() if c == 1)
    n2 = sum(1 for c in adjusted.values() if c == 2)
    return n1 / (n1 + 2 * n2) if n1 and n2 else 0.5


def prune_thresholds(order: int, prune: Sequence[int] = ()) -> list[int]:
    """The count threshold of each order 2..``order``: ``prune`` padded with its last value
    (0, no pruning, when empty), as lmplz pads its own list."""
    if order < 1:
        raise SpeechError(f"the LM order must be at least 1 (got {order})")
    padded = list(prune) + [prune[-1] if prune else 0] * (order - 1 - len(prune))
    if any(b < a for a, b in zip(padded, padded[1:])) or any(t < 0 for t in padded):
        raise SpeechError(f"pruning thresholds must be >= 0 and not decrease with the order (got {padded})")
    return padded[: order - 1]


def estimate(sentences: Iterable[Sequence[str]], order: int = 3,
             prune: Sequence[int] = ()) -> tuple[list[dict[Ngram, float]], list[dict[Ngram, float]]]:
    """Interpolated Kneser-Ney from word sequences.

    Returns (probs, backoffs): ``probs[n-1]`` maps each kept n-gram to log10 p(w | h),
    ``backoffs[n-1]`` maps n-grams that are histories of kept (n+1)-grams to log10 gamma.
    """
    prune = prune_thresholds(order, prune)
    counts: list[Counter] = [Counter() for _ in range(order)]
    vocab: set[str] = set()
    for words in sentences:
        vocab.update(words)
        padded = (BOS, *words, EOS)
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                if n == 1 and i == 0:
                    continue  # <s> is context, never an event
                counts[n - 1][padded[i: i + n]] += 1
    if not counts[0]:
        raise SpeechError("no text to estimate a language model from")

    # adjusted counts: continuation counts below the top order, except after <s>
    adjusted: list[Counter] = []
    for n in range(1, order + 1):
        if n == order:
            adjusted.append(Counter(counts[n - 1]))
            continue
        left = Counter(g[1:] for g in counts[n])
        adjusted.append(Counter({g: (c if g[0] == BOS else left.get(g, c)) for g, c in counts[n - 1].items()}))
    # discounts from every n-gram's adjusted count, pruned or not (as lmplz)
    discounts = [_discount(a) for a in adjusted]
    # pruned n-grams leave the model but their mass stays in a(h), and goes to the back-off
    pruned_mass: list[Counter] = [Counter() for _ in range(order)]
    for n in range(2, order + 1):
        threshold = prune[n - 2]
        if threshold:
            kept = Counter()
            for g, a in adjusted[n - 1].items():
                if counts[n - 1][g] > threshold:
                    kept[g] = a
                else:
                    pruned_mass[n - 1][g[:-1]] += a
            adjusted[n - 1] = kept

    words = sorted(vocab | {EOS, UNK})
    probs: list[dict[Ngram, float]] = []
    backoffs: list[dict[Ngram, float]] = []
    lin: list[dict[Ngram, float]] = []  # linear probabilities, to interpolate the next order
    gammas: list[dict[Ngram, float]] = []

    def lower(h: Ngram, w: str) -> float:
        """p(w | h) of the model so far (orders <= len(h) + 1), with back-off."""
        weight = 1.0
        while True:
            p = lin[len(h)].get((*h, w))
            if p is not None:
                return weight * p
            if not h:
                return weight * lin[0][(UNK,)]
            weight *= gammas[len(h) - 1].get(h, 1.0)
            h = h[1:]

    # unigrams
    d = discounts[0]
    total = sum(adjusted[0].values())
    uniform = d * len(adjusted[0]) / total / len(words)
    lin.append({(w,): max(adjusted[0].get((w,), 0) - d, 0) / total + uniform for w in words})
    for n in range(2, order + 1):
        d, pruned = discounts[n - 1], pruned_mass[n - 1]
        by_history: dict[Ngram, list[tuple[str, int]]] = defaultdict(list)
        for g, a in adjusted[n - 1].items():
            by_history[g[:-1]].append((g[-1], a))
        level: dict[Ngram, float] = {}
        gamma: dict[Ngram, float] = {}
        for h, events in by_history.items():
            total = sum(a for _, a in events) + pruned[h]
            gamma[h] = (d * len(events) + pruned[h]) / total
            for w, a in events:
                level[(*h, w)] = (a - d) / total + gamma[h] * lower(h[1:], w)
        gammas.append(gamma)
        lin.append(level)
    for n, level in enumerate(lin, 1):
        probs.append({g: math.log10(p) for g, p in level.items()})
        if n < order:
            backoffs.append({h: math.log10(g) for h, g in gammas[n - 1].items() if len(h) == n})
    probs[0][(BOS,)] = NO_PROB
    return probs, backoffs


def write_arpa(path: str | os.PathLike, probs: list[dict[Ngram, float]], backoffs: list[dict[Ngram, float]]) -> None:
    """The ARPA file: \\data\\ counts, then each order's ``logp ngram [backoff]`` lines."""
    with atomic_write(path) as f:
        f.write("\\data\\\n")
        for n, level in enumerate(probs, 1):
            f.write(f"ngram {n}={len(level)}\n")
        for n, level in enumerate(probs, 1):
            f.write(f"\n\\{n}-grams:\n")
            bows = backoffs[n - 1] if n - 1 < len(backoffs) else {}
            for g in sorted(level):
                bow = bows.get(g)
                f.write(f"{level[g]:.6f}\t{' '.join(g)}" + (f"\t{bow:.6f}\n" if bow is not None else "\n"))
        f.write("\n\\end\\\n")


class ArpaModel:
    """An ARPA model in memory: log10 p(w | h) with back-off."""

    def __init__(self, probs: list[dict[Ngram, float]], backoffs: list[dict[Ngram, float]]):
        self.probs, self.backoffs = probs, backoffs
        self.order = len(probs)
        self.vocab = [g[0] for g in probs[0]]

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ArpaModel":
        path = Path(path)
        probs: list[dict[Ngram, float]] = []
        backoffs: list[dict[Ngram, float]] = []
        declared: list[int] = []
        n = 0
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise SpeechError(f"{path}: cannot read the ARPA file ({e.strerror})") from None
        for lineno, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line in ("\\data\\", "\\end\\"):
                continue
            if line.startswith("ngram "):
                declared.append(int(line.split("=")[1]))
            elif line.startswith("\\") and line.endswith("-grams:"):
                n = int(line[1:].split("-")[0])
                probs.append({})
                backoffs.append({})
            elif n:
                fields = line.split()
                try:
                    logp = float(fields[0])
                    gram = tuple(fields[1: 1 + n])
                    if len(gram) != n or len(fields) > n + 2:
                        raise ValueError
                    probs[n - 1][gram] = logp
                    if len(fields) == n + 2:
                        backoffs[n - 1][gram] = float(fields[-1])
                except (ValueError, IndexError):
                    raise SpeechError(f"{path}:{lineno}: expected 'log10p w1 ... w{n} [backoff]', got {line!r}") from None
        if not probs or declared != [len(p) for p in probs]:
            raise SpeechError(f"{path}: the \\data\\ counts {declared} do not match the n-grams listed")
        return cls(probs, backoffs)

    def logprob(self, history: Sequence[str], word: str) -> float:
        """log10 p(word | history), backing off through shorter histories."""
        h = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        if (word,) not in self.probs[0]:
            word = UNK
        penalty = 0.0
        while True:
            p = self.probs[len(h)].get((*h, word))
            if p is not None:
                return penalty + p
            penalty += self.backoffs[len(h) - 1].get(h, 0.0)
            h = h[1:]

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """Per-word perplexity (``</s>`` counted as a word, as SRILM's ppl does)."""
        total, n = 0.0, 0
        for words in sentences:
            history = [BOS]
            for w in (*words, EOS):
                total += self.logprob(history, w)
                history.append(w)
                n += 1
        return 10 ** (-total / max(n, 1))
