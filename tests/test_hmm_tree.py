"""The phonetic decision tree: tree statistics, greedy likelihood splits, pdf lookup, the text
format, and the hand-written phone questions."""

from __future__ import annotations

import itertools

import pytest
import torch

from speech.errors import SpeechError
from speech.hmm.tree import DecisionTree, TreeStats, gauss_loglik, phone_questions, question_ids

PHONES = 5
NUM_STATES = {p: 3 for p in range(1, PHONES + 1)}
ROOTS = PHONES * 3
# singletons, the {3, 4} class the data depend on, and two distractors
QUESTIONS = [frozenset({p}) for p in range(PHONES + 1)] + [frozenset({3, 4}), frozenset({1, 2}), frozenset({0, 5})]


def all_contexts() -> torch.Tensor:
    """Every (left, center, right, state) of the toy system, [N, 4]."""
    rows = [(l, c, r, s) for c, n in NUM_STATES.items() for s in range(n)
            for l, r in itertools.product(range(PHONES + 1), repeat=2)]
    return torch.tensor(rows, dtype=torch.int64)


def synthetic(shifts: dict[tuple[int, int], float], frames: int = 20, dim: int = 2,
              seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames of every context: a mean per (center, state) plus unit noise; the roots in ``shifts``
    move their mean by that much in every dimension when the left phone is 3 or 4."""
    g = torch.Generator().manual_seed(seed)
    contexts = all_contexts().repeat_interleave(frames, 0)
    mean = (contexts[:, 1] * 3 + contexts[:, 3]).double()[:, None].repeat(1, dim)
    for (c, s), shift in shifts.items():
        hit = (contexts[:, 1] == c) & (contexts[:, 3] == s) & torch.isin(contexts[:, 0], torch.tensor([3, 4]))
        mean[hit] += shift
    return contexts, mean + torch.randn(mean.shape, generator=g, dtype=torch.float64)


def split_roots(tree: DecisionTree) -> dict[tuple[int, int], int]:
    """(center, state) -> its number of leaves, for the roots with more than one."""
    counts: dict[tuple[int, int], int] = {}
    for key in tree.owner():
        counts[key] = counts.get(key, 0) + 1
    return {k: n for k, n in counts.items() if n > 1}


def test_accumulate_equals_a_direct_computation_and_adds_up():
    contexts, feats = synthetic({}, frames=3)
    contexts, feats = contexts[::2], feats[::2]  # uneven counts per context
    stats = TreeStats.accumulate(contexts, feats.float())
    direct = {}
    for ctx, x in zip(contexts.tolist(), feats.float().double()):
        n, s, ss = direct.get(tuple(ctx), (0.0, 0.0, 0.0))
        direct[tuple(ctx)] = (n + 1, s + x, ss + x * x)
    assert [tuple(k) for k in stats.keys.tolist()] == sorted(direct)
    for i, key in enumerate(stats.keys.tolist()):
        n, s, ss = direct[tuple(key)]
        assert stats.count[i] == n
        assert torch.allclose(stats.sum[i], s) and torch.allclose(stats.sumsq[i], ss)

    half = len(contexts) // 2
    parts = TreeStats.accumulate(contexts[:half], feats[:half]) + TreeStats.accumulate(contexts[half:], feats[half:])
    whole = TreeStats.accumulate(contexts, feats)
    assert torch.equal(parts.keys, whole.keys) and torch.equal(parts.count, whole.count)
    assert torch.allclose(parts.sum, whole.sum) and torch.allclose(parts.sumsq, whole.sumsq)

    back = TreeStats.from_tensors(whole.tensors())
    assert all(torch.equal(a, b) for a, b in zip(back.tensors().values(), whole.tensors().values()))
    with pytest.raises(SpeechError, match="stats.st: no sumsq tensor"):
        TreeStats.from_tensors({k: v for k, v in whole.tensors().items() if k != "sumsq"}, source="stats.st")


def test_as_many_leaves_as_roots_is_the_monophone_tree():
    stats = TreeStats.accumulate(*synthetic({(2, 1): 5.0}))
    mono = DecisionTree.monophone(NUM_STATES)
    assert mono.num_pdfs == ROOTS and mono.owner() == sorted(mono.owner())
    for leaves in (1, ROOTS):
        tree = DecisionTree.build(stats, NUM_STATES, QUESTIONS, num_leaves=leaves, min_count=1)
        assert torch.equal(tree.pdfs(all_contexts()), mono.pdfs(all_contexts()))


def test_splits_the_context_dependent_root_on_the_left_phone_only():
    stats = TreeStats.accumulate(*synthetic({(2, 1): 5.0}))
    # Noise alone gains a few nats per split; the real one gains over a thousand.
    tree = DecisionTree.build(stats, NUM_STATES, QUESTIONS, num_leaves=ROOTS + 10, min_count=50, min_gain=100)
    assert split_roots(tree) == {(2, 1): 2}
    question = tree.nodes[tree.roots[(2, 1)]]
    assert question.position == 0 and question.phones == {3, 4}
    assert [tree.pdf(left, 2, 1, 1) == tree.pdf(3, 2, 1, 1) for left in range(PHONES + 1)] == [
        False, False, False, True, True, False]
    assert "16 leaves over 15 roots, likelihood gain" in tree.describe(stats)
    assert float(tree.describe(stats).split("gain ")[1].split()[0]) > 0


def test_the_one_split_goes_to_the_largest_gain():
    stats = TreeStats.accumulate(*synthetic({(2, 1): 2.0, (4, 0): 5.0, (1, 2): 3.0}))
    tree = DecisionTree.build(stats, NUM_STATES, QUESTIONS, num_leaves=ROOTS + 1, min_count=1)
    assert split_roots(tree) == {(4, 0): 2}
    tree = DecisionTree.build(stats, NUM_STATES, QUESTIONS, num_leaves=ROOTS + 3, min_count=50, min_gain=100)
    assert split_roots(tree) == {(4, 0): 2, (1, 2): 2, (2, 1): 2}


def test_min_count_and_num_leaves_are_respected_and_the_build_is_deterministic():
    stats = TreeStats.accumulate(*synthetic({(2, 1): 5.0}))
    # A root has 720 frames, 20 per context; no question puts >= 300 on both sides (the most
    # balanced, {3, 4}, {1, 2} and {0, 5}, put 240 on one), and min_count 1 allows a leaf per context.
    for min_count, expected in ((1.0, 200), (150.0, None), (300.0, ROOTS)):
        tree = DecisionTree.build(stats, NUM_STATES, QUESTIONS, num_leaves=200, min_count=min_count,
                                  min_gain=-float("inf"))
        counts = torch.zeros(tree.num_pdfs, dtype=torch.float64).index_add_(0, tree.pdfs(stats.keys), stats.count)
        assert counts.sum() == stats.count.sum()
        assert counts.min() >= min_count
        assert (tree.num_pdfs == expected) if expected else (ROOTS < tree.num_pdfs < 200)
    for leaves in (ROOTS + 1, ROOTS + 7, 100):
        tree = DecisionTree.build(stats, NUM_STATES, QUESTIONS, num_leaves=leaves, min_count=1, min_gain=-float("inf"))
        assert tree.num_pdfs == leaves
        again = DecisionTree.build(stats, NUM_STATES, QUESTIONS, num_leaves=leaves, min_count=1,
                                   min_gain=-float("inf"))
        assert again.to_text() == tree.to_text()


def test_unseen_contexts_and_roots_without_stats_get_a_pdf_of_their_root():
    contexts, feats = synthetic({(2, 1): 5.0})
    seen = (contexts[:, 0] != 5) & (contexts[:, 1] != 5)  # phone 5 never left, never a center
    stats = TreeStats.accumulate(contexts[seen], feats[seen])
    tree = DecisionTree.build(stats, NUM_STATES, QUESTIONS, num_leaves=40, min_count=20)
    owner = tree.owner()
    assert (5, 0) not in split_roots(tree) and len(split_roots(tree)) > 3
    ctx = all_contexts()
    pdfs = tree.pdfs(ctx)
    assert all(owner[p] == (c, s) for p, (_, c, _, s) in zip(pdfs.tolist(), ctx.tolist()))
    assert pdfs.tolist() == [tree.pdf(*c) for c in ctx.tolist()]
    assert owner[tree.pdf(7, 2, 1, 1)] == (2, 1)  # a phone id above every question's
    with pytest.raises(SpeechError, match="no root for center phone 6 state 0"):
        tree.pdfs(torch.tensor([[1, 2, 3, 0], [1, 6, 1, 0]]))


def test_text_round_trip_and_malformed_lines():
    stats = TreeStats.accumulate(*synthetic({(2, 1): 5.0, (4, 0): 3.0}))
    tree = DecisionTree.build(stats, NUM_STATES, QUESTIONS, num_leaves=30, min_count=20)
    text = tree.to_text()
    back = DecisionTree.from_text(text)
    assert torch.equal(back.pdfs(all_contexts()), tree.pdfs(all_contexts())) and back.to_text() == text

    lines = DecisionTree.monophone({1: 1, 2: 1}).to_text().splitlines()
    assert lines[1:] == ["root 1 0 0", "root 2 0 1", "0 leaf 0", "1 leaf 1"]
    bad = {
        "root 1 x 0": "tree:2: state 'x' is not a non-negative integer",
        "0 lef 1 0 1": "tree:4: not a leaf or a question",
        "0 leaf 1": "tree:5: pdf 1 is also the leaf of line 4",
        "root 2 0 0": "tree:3: node 0 is already in a tree",
        "0 left 1 7 1": "tree:4: node 7 does not exist",
    }
    for i, (line, message) in enumerate(bad.items()):
        edited = list(lines)
        edited[[1, 3, 3, 2, 3][i]] = line
        with pytest.raises(SpeechError) as e:
            DecisionTree.from_text("\n".join(edited))
        assert str(e.value).startswith(message) and "\n" not in str(e.value)
    with pytest.raises(SpeechError, match="^exp/tree:3: node 1 is not reachable"):
        DecisionTree.from_text("root 1 0 0\n0 leaf 0\n1 leaf 1\n", source="exp/tree")


def test_phone_questions():
    phones = ["SIL", "AA1", "AE", "B", "IY", "S", "Z"]
    qs = phone_questions(phones)
    assert len(qs) == len(set(qs)) and all(qs)
    for single in [*phones, "<edge>"]:
        assert frozenset({single}) in qs
    assert frozenset({"AA1", "AE", "IY"}) in qs  # the vowels; AA1 is AA with a stress mark
    assert frozenset({"SIL", "<edge>"}) in qs
    assert frozenset({"S", "Z"}) in qs  # alveolars, sibilants, fricatives all become this, kept once
    ids = question_ids(qs, phones)
    assert frozenset({1, 0}) in ids and frozenset({2, 3, 5}) in ids


def test_gauss_loglik_is_the_ml_gaussian_likelihood():
    x = torch.tensor([[0.0, 1.0], [2.0, 5.0], [1.0, 3.0]], dtype=torch.float64)
    var = x.var(0, unbiased=False)
    expected = torch.distributions.Normal(x.mean(0), var.sqrt()).log_prob(x).sum()
    got = gauss_loglik(torch.tensor(3.0, dtype=torch.float64), x.sum(0), (x * x).sum(0))
    assert torch.allclose(got, expected)
