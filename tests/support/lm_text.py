"""Synthetic text for n-gram LM tests: large enough for real Kneser-Ney discounts."""

from __future__ import annotations

import random

from speech.lm.ngram import BOS


def synthetic(n: int, seed: int) -> list[list[str]]:
    """Sentences from a sparse random bigram chain over 150 words (the same chain for every
    seed; the seed draws the sentences)."""
    chain = random.Random(0)
    words = [f"w{i}" for i in range(150)]
    successors = {w: chain.sample(words, 8) for w in [BOS, *words]}
    rng = random.Random(seed)
    sentences = []
    for _ in range(n):
        w, sentence = BOS, []
        for _ in range(rng.randint(3, 12)):
            w = rng.choice(successors[w]) if rng.random() < 0.9 else rng.choice(words)
            sentence.append(w)
        sentences.append(sentence)
    return sentences
