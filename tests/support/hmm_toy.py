"""A toy task a GMM-HMM must learn exactly: three words (yes, no, go) of five phones, each
HMM state a Gaussian in 13 "MFCC" dimensions, utterances of 1-4 words with silences between
some of them, speakers offset by a constant (what per-speaker mean normalisation removes).
The phone boundaries of every utterance are known (``truth``), and OW's first state sounds
different after N than after G, which only context-dependent models can tell apart."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from speech.config import save_config
from speech.data.datadir import FEATURE_CONFIG
from speech.features import FeatureConfig
from speech.features.storage import ark_writer
from speech.fileio import write_key_value
from speech.text.tokens import BLANK, UNK, TokenTable

LEXICON = {"yes": ["Y", "EH", "S"], "no": ["N", "OW"], "go": ["G", "OW"]}
PHONES = ["EH", "G", "N", "OW", "S", "Y"]
DIM = 13


def make_lang(path: Path) -> Path:
    """A phone lang dir as prepare-lang --unit phone writes it (tokens.txt, lexicon.txt)."""
    path.mkdir(parents=True)
    TokenTable([BLANK, UNK, *PHONES]).write(path / "tokens.txt")
    (path / "lexicon.txt").write_text("".join(f"{w} {' '.join(p)}\n" for w, p in LEXICON.items()))
    return path


def _means(seed: int = 7) -> dict[tuple[str, int], np.ndarray]:
    gen = np.random.default_rng(seed)
    means = {(p, s): gen.normal(scale=3.0, size=DIM) for p in PHONES for s in range(3)}
    means.update({("SIL", s): gen.normal(scale=3.0, size=DIM) for s in range(5)})
    means[("OW-after-G", 0)] = gen.normal(scale=3.0, size=DIM)
    return means


def make_data(path: Path, num_utts: int, seed: int, words: list[str] | None = None) -> dict[str, list[tuple]]:
    """A data dir with feats.scp (MFCC-like), text, utt2spk; returns utt -> [(phone, start
    frame, end frame)], SIL included, the truth an aligner should find."""
    rng = random.Random(seed)
    gen = np.random.default_rng(seed)
    means = _means()
    path.mkdir(parents=True)
    text, utt2spk, frames, truth = {}, {}, {}, {}
    with ark_writer(path / "feats.ark") as ark:
        for i in range(num_utts):
            spk = f"spk{i % 4}"
            utt = f"{spk}-u{i:03d}"
            ws = words or [rng.choice(sorted(LEXICON)) for _ in range(rng.randint(1, 4))]
            phones = ["SIL"]
            for k, w in enumerate(ws):
                if k and rng.random() < 0.3:
                    phones.append("SIL")
                phones += LEXICON[w]
            phones.append("SIL")
            rows, spans = [], []
            for j, p in enumerate(phones):
                start = sum(len(r) for r in rows)
                for s in range(5 if p == "SIL" else 3):
                    key = ("OW-after-G", 0) if (p, s) == ("OW", 0) and phones[j - 1] == "G" else (p, s)
                    n = rng.randint(2, 6)
                    rows.append(means[key] + gen.normal(size=(n, DIM)))
                spans.append((p, start, sum(len(r) for r in rows)))
            offset = np.full(DIM, 2.0 * (i % 4))
            x = (np.concatenate(rows) + offset).astype(np.float32)
            ark.write(utt, x)
            text[utt], utt2spk[utt], frames[utt], truth[utt] = " ".join(ws), spk, str(len(x)), spans
    write_key_value(path / "feats.scp", ark.entries)
    write_key_value(path / "utt2num_frames", frames)
    write_key_value(path / "text", text)
    write_key_value(path / "utt2spk", utt2spk)
    write_key_value(path / "wav.scp", {u: f"{path}/wav/{u}.wav" for u in text})  # never read: features are given
    spk2utt: dict[str, list[str]] = {}
    for u, s in utt2spk.items():
        spk2utt.setdefault(s, []).append(u)
    write_key_value(path / "spk2utt", {s: " ".join(us) for s, us in spk2utt.items()})
    save_config(FeatureConfig(type="mfcc", num_ceps=DIM), path / FEATURE_CONFIG)
    return truth


# small and quick: 8 iterations, realigned at 1-6, 60 Gaussians
TINY_MONO = ["train.num_iters=8", "train.realign_iters=[1,2,3,4,5,6]", "train.total_gaussians=60",
             "train.max_iter_inc=5"]
TINY_TRI = ["train.num_iters=10", "train.realign_iters=[2,4,6,8]", "train.total_gaussians=80", "train.max_iter_inc=4",
            "train.num_leaves=30", "train.min_leaf_count=20"]
