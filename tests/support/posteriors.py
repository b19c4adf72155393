"""Made-up CTC outputs for decoder tests."""

import torch


def posteriors(table, frames):
    """[1, T, V] log-probs over ``table`` (a TokenTable): frame t puts 0.6 on the symbol
    ``frames[t]``, the rest spread evenly."""
    v = len(table)
    lp = torch.full((1, len(frames), v), 0.4 / (v - 1))
    for t, sym in enumerate(frames):
        lp[0, t, table.symbols.index(sym)] = 0.6
    return lp.log()


def ctc_frames(words, rng):
    """Frames of a CTC path for ``words``: 1-2 frames a letter (drawn from ``rng``, a
    random.Random), a blank between repeated letters, <space> between words, a final blank."""
    frames = []
    for i, w in enumerate(words):
        if i:
            frames.append("<space>")
        for ch in w:
            if frames and frames[-1] == ch:
                frames.append("<blank>")
            frames += [ch] * rng.randint(1, 2)
    return frames + ["<blank>"]
