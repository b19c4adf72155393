"""WFST decoding: lexicon disambiguation, TLG construction on a toy lexicon, agreement with
the flashlight lexicon search (with and without an LM), and the make-graph stage."""

from __future__ import annotations

import math
import random

import pytest
import torch

from speech.asr.lexicon_search import LexiconBeamSearch
from speech.asr.search import save_lm_params
from speech.asr.wfst_search import WfstSearch
from speech.graph.build import GRAPH, WORDS
from speech.graph.lexicon import add_disambig
from speech.graph.make_graph import ctc_graph
from speech.cli import main
from speech.errors import SpeechError
from speech.lm.ngram import estimate, write_arpa
from speech.text.tokenizer import CharTokenizer
from speech.text.tokens import build_char_table
from support.posteriors import ctc_frames, posteriors

WORD_LIST = ["one", "on", "two", "to", "too", "ten", "net", "tone"]


def toy():
    table = build_char_table(WORD_LIST)
    return table, CharTokenizer(table), {w: [list(w)] for w in WORD_LIST}


def save_graph(tmp_path, tok, lexicon, arpa=None, name="graph"):
    tlg, words = ctc_graph(tok, lexicon, arpa)
    out = tmp_path / name
    out.mkdir()
    tlg.write(str(out / GRAPH))
    (out / WORDS).write_text("".join(f"{w} {i}\n" for i, w in words.items()))
    return out, tlg


def test_disambiguation_of_prefixes_and_homophones():
    entries = [("on", ["o", "n"]), ("one", ["o", "n", "e"]), ("read", ["R", "EH", "D"]), ("red", ["R", "EH", "D"]),
               ("two", ["t", "w", "o"])]
    out, highest = add_disambig(entries)
    assert dict(out) == {"on": ["o", "n", "#1"], "one": ["o", "n", "e"], "read": ["R", "EH", "D", "#1"],
                         "red": ["R", "EH", "D", "#2"], "two": ["t", "w", "o"]}
    assert highest == 2


def test_graph_of_a_toy_lexicon_decodes_every_word_sequence(tmp_path):
    table, tok, lexicon = toy()
    graph_dir, tlg = save_graph(tmp_path, tok, lexicon)
    assert 0 < tlg.num_states < 200
    search = WfstSearch(graph_dir, table.symbols.index("<space>"))
    rng = random.Random(0)
    for _ in range(20):
        words = [rng.choice(WORD_LIST) for _ in range(rng.randint(1, 4))]
        frames = ctc_frames(words, rng)
        lp = posteriors(table, frames)
        assert search(lp, torch.tensor([len(frames)])) == [" ".join(words)], frames


def test_wfst_and_flashlight_agree_on_noisy_posteriors(tmp_path):
    table, tok, lexicon = toy()
    lex_file = tmp_path / "lexicon.txt"
    lex_file.write_text("".join(f"{w} {' '.join(w)}\n" for w in WORD_LIST))
    arpa = tmp_path / "lm.arpa"
    rng = random.Random(1)
    texts = [[rng.choice(WORD_LIST) for _ in range(3)] for _ in range(50)]
    write_arpa(arpa, *estimate(texts, 2))
    plain, _ = save_graph(tmp_path, tok, lexicon, name="plain")
    with_lm, _ = save_graph(tmp_path, tok, lexicon, arpa, name="lm")
    space = table.symbols.index("<space>")
    pairs = [(WfstSearch(plain, space), LexiconBeamSearch(tok, lex_file, beam_size=50)),
             (WfstSearch(with_lm, space, lm_weight=0.5), LexiconBeamSearch(tok, lex_file, beam_size=50, lm=arpa, lm_weight=0.5))]
    gen = torch.Generator().manual_seed(0)
    agree = correct = correct_other = total = 0
    for words in texts[:25]:
        frames = ctc_frames(words, rng)
        noisy = torch.log_softmax(posteriors(table, frames) + 0.5 * torch.randn(len(frames), len(table), generator=gen),
                                  dim=-1)
        lengths = torch.tensor([len(frames)])
        for wfst, flashlight in pairs:
            hyp = wfst(noisy, lengths)
            total += 1
            other = flashlight(noisy, lengths)
            agree += hyp == other
            correct += hyp == [" ".join(words)]
            correct_other += other == [" ".join(words)]
    # measured: 50 of 50 agree and are right (46 before the lexicon search got its final
    # boundary frame: flashlight then cut last words short, "one" -> "on")
    assert agree >= 0.95 * total, f"{agree} of {total} agree"
    assert min(correct, correct_other) >= 0.9 * total, f"{correct} (flashlight {correct_other}) of {total} right"


def test_word_score_moves_both_searches_alike(tmp_path):
    """Very noisy posteriors, where the word score decides how many words come out: the WFST
    (word cost composed into its graph) and flashlight find the same words at every score."""
    table, tok, lexicon = toy()
    lex_file = tmp_path / "lexicon.txt"
    lex_file.write_text("".join(f"{w} {' '.join(w)}\n" for w in WORD_LIST))
    arpa = tmp_path / "lm.arpa"
    rng = random.Random(1)
    write_arpa(arpa, *estimate([[rng.choice(WORD_LIST) for _ in range(3)] for _ in range(50)], 2))
    graph_dir, _ = save_graph(tmp_path, tok, lexicon, arpa)
    space = table.symbols.index("<space>")
    gen = torch.Generator().manual_seed(0)
    utterances = []
    for _ in range(25):
        frames = ctc_frames([rng.choice(WORD_LIST) for _ in range(3)], rng)
        utterances.append(torch.log_softmax(posteriors(table, frames) + 1.5 * torch.randn(len(frames), len(table),
                                                                                         generator=gen), dim=-1))
    words_out = []
    for word_score in (-3.0, 0.0, 3.0):
        wfst = WfstSearch(graph_dir, space, lm_weight=0.5, word_score=word_score)
        # beam 500: at beam 50 flashlight misses the best path in 2 of the 75 searches
        flashlight = LexiconBeamSearch(tok, lex_file, beam_size=500, lm=arpa, lm_weight=0.5, word_score=word_score)
        hyps = [wfst(lp, torch.tensor([lp.shape[1]])) for lp in utterances]
        assert hyps == [flashlight(lp, torch.tensor([lp.shape[1]])) for lp in utterances]
        words_out.append(sum(len(h[0].split()) for h in hyps))
    # measured: 57, 66, 81 words
    assert words_out[0] < words_out[1] < words_out[2], words_out


def test_lm_in_the_graph_decides_what_the_acoustics_cannot(tmp_path):
    table = build_char_table(["the cat cot sat"])
    tok = CharTokenizer(table)
    lexicon = {w: [list(w)] for w in ("the", "cat", "cot", "sat")}
    frames = ["t", "h", "e", "<space>", "c", "a", "t", "<space>", "s", "a", "t", "<blank>"]
    lp = posteriors(table, frames)
    lp[0, 5] = torch.log(torch.full((len(table),), 0.02))
    lp[0, 5, table.symbols.index("a")] = lp[0, 5, table.symbols.index("o")] = math.log(0.4)
    for word in ("cat", "cot"):
        arpa = tmp_path / f"{word}.arpa"
        other = "cot" if word == "cat" else "cat"
        write_arpa(arpa, *estimate([["the", word, "sat"]] * 4 + [["a", other]], 2))
        graph_dir, _ = save_graph(tmp_path, tok, lexicon, arpa, name=word)
        assert WfstSearch(graph_dir, table.symbols.index("<space>"), lm_weight=2.0)(lp, torch.tensor([len(frames)])) == [f"the {word} sat"]


def test_lexicon_with_unknown_tokens_is_an_error():
    _, tok, _ = toy()
    with pytest.raises(SpeechError, match="symbols the model does not have"):
        ctc_graph(tok, {"zebra": [list("zebra")]})


def test_make_graph_and_decode_with_it(tmp_path):
    from support.feature_dirs import make_asr_dirs

    dirs = make_asr_dirs(tmp_path / "data")
    exp = tmp_path / "exp"
    assert main(["train-asr", "--train-dir", str(dirs["train"]), "--dev-dir", str(dirs["dev"]), "--lang-dir",
                 str(dirs["lang"]), "--exp-dir", str(exp), "--device", "cpu", "model.hidden_size=16",
                 "model.num_layers=1", "trainer.epochs=1", "trainer.tensorboard=false", "cmvn=utterance"]) == 0
    lm = tmp_path / "lm.arpa"
    assert main(["train-lm", str(dirs["train"] / "text"), str(lm), "--order", "2"]) == 0
    assert main(["make-graph", str(dirs["lang"]), str(tmp_path / "graph"), "--lm", str(lm)]) == 0
    assert main(["decode-asr", str(exp), str(dirs["dev"]), str(tmp_path / "decode"), "--graph",
                 str(tmp_path / "graph")]) == 0
    hyps = (tmp_path / "decode" / "text").read_text().splitlines()
    vocabulary = {w for line in (dirs["train"] / "text").read_text().splitlines() for w in line.split()[1:]}
    assert len(hyps) == 12 and {w for h in hyps for w in h.split()[1:]} <= vocabulary
    assert main(["decode-asr", str(exp), str(dirs["dev"]), str(tmp_path / "x"), "--graph", str(tmp_path / "graph"),
                 "--lm", str(lm)]) == 1
    # tune-lm's weights apply to the WFST search too: a large word score makes it emit more words
    counts = []
    for word_score in (-5.0, 5.0):
        params = tmp_path / f"best{word_score}.yaml"
        save_lm_params(params, 0.5, word_score)
        out = tmp_path / f"decode{word_score}"
        assert main(["decode-asr", str(exp), str(dirs["dev"]), str(out), "--graph", str(tmp_path / "graph"),
                     "--lm-params", str(params)]) == 0
        counts.append(sum(len(line.split()) - 1 for line in (out / "text").read_text().splitlines()))
    assert counts[0] < counts[1], counts
