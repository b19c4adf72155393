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
