"""Diagonal GMMs of the GMM-HMM baseline: likelihoods against a direct computation, EM on a toy
mixture, update and its floors, mixing up, and the safetensors round trips."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from speech.hmm.gmm import DiagGmms, GmmStats


def padded_gmms(seed: int = 0) -> DiagGmms:
    """Three pdfs of 1, 3 and 2 components over D=4, padded to M=3."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.tensor([1, 3, 2])
    present = torch.arange(3)[None, :] < counts[:, None]
    raw = torch.rand(3, 3, generator=g) + 0.5
    weights = torch.where(present, raw, 0.0)
    means = torch.where(present[:, :, None], 2 * torch.randn(3, 3, 4, generator=g), 0.0)
    variances = torch.where(present[:, :, None], torch.rand(3, 3, 4, generator=g) + 0.2, 1.0)
    return DiagGmms((weights / weights.sum(-1, keepdim=True)).log(), means, variances)


def direct_log_likelihoods(gmms: DiagGmms, feats: torch.Tensor) -> torch.Tensor:
    """[T, P] by an explicit loop over frames, pdfs and components, in float64."""
    out = torch.empty(feats.shape[0], gmms.num_pdfs, dtype=torch.float64)
    for t in range(feats.shape[0]):
        for p in range(gmms.num_pdfs):
            terms = []
            for m in range(gmms.num_components):
                if gmms.log_weights[p, m] == -math.inf:
                    continue
                normal = torch.distributions.Normal(gmms.means[p, m].double(), gmms.variances[p, m].double().sqrt())
                terms.append(gmms.log_weights[p, m].double() + normal.log_prob(feats[t].double()).sum())
            out[t, p] = torch.stack(terms).logsumexp(0)
    return out


def sample(gmms: DiagGmms, pdfs: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One frame [T, D] from pdf pdfs[t] of ``gmms`` for each t."""
    comp = torch.multinomial(gmms.log_weights.exp()[pdfs], 1, generator=g).squeeze(1)
    noise = torch.randn(pdfs.shape[0], gmms.dim, generator=g)
    return gmms.means[pdfs, comp] + gmms.variances[pdfs, comp].sqrt() * noise


def test_log_likelihoods_match_direct_computation_with_padding():
    gmms = padded_gmms()
    feats = 2 * torch.randn(7, 4, generator=torch.Generator().manual_seed(1))
    assert gmms.component_counts().tolist() == [1, 3, 2] and gmms.num_gaussians() == 6
    got = gmms.log_likelihoods(feats)
    assert got.shape == (7, 3)
    torch.testing.assert_close(got.double(), direct_log_likelihoods(gmms, feats), atol=1e-4, rtol=0)


def test_accumulate_matches_log_likelihoods_and_chunks(monkeypatch):
    gmms = padded_gmms()
    g = torch.Generator().manual_seed(2)
    pdfs = torch.randint(0, 3, (50,), generator=g)
    feats = sample(gmms, pdfs, g)
    whole = GmmStats.zeros(3, 3, 4)
    total = gmms.accumulate(feats, pdfs, whole)
    assert total == pytest.approx(float(gmms.log_likelihoods(feats)[torch.arange(50), pdfs].sum()), abs=1e-3)
    torch.testing.assert_close(whole.occupancy.sum(-1), torch.bincount(pdfs, minlength=3).double())
    assert torch.all(whole.occupancy[0, 1:] == 0) and torch.all(whole.occupancy[2, 2] == 0)  # padding
    # Chunks of a few frames give the same statistics as one chunk.
    monkeypatch.setattr("speech.hmm.gmm._CHUNK_ELEMENTS", 3 * 4 * 7)
    chunked = GmmStats.zeros(3, 3, 4)
    assert gmms.accumulate(feats, pdfs, chunked) == pytest.approx(total, abs=1e-3)
    for a, b in zip(chunked.tensors().values(), whole.tensors().values()):
        torch.testing.assert_close(a, b)
    monkeypatch.setattr("speech.hmm.gmm._CHUNK_ELEMENTS", 5)
    torch.testing.assert_close(gmms.log_likelihoods(feats), direct_log_likelihoods(gmms, feats).float(), atol=1e-4,
                               rtol=0)


def test_em_raises_the_likelihood_every_pass_and_ends_near_the_generating_model():
    true = DiagGmms(
        torch.tensor([[0.3, 0.7, 0.0], [0.2, 0.3, 0.5]]).log(),
        torch.tensor([[[-3.0, 0.0], [2.0, 1.0], [0.0, 0.0]], [[0.0, 4.0], [3.0, -2.0], [-2.0, -2.0]]]),
        torch.tensor([[[0.5, 1.0], [1.0, 0.3], [1.0, 1.0]], [[1.0, 0.5], [0.4, 0.4], [0.8, 1.2]]]),
    )
    g = torch.Generator().manual_seed(3)
    pdfs = torch.randint(0, 2, (4000,), generator=g)
    feats = sample(true, pdfs, g)
    gmms = DiagGmms.single(2, feats.mean(0), feats.var(0))
    split_seed = torch.Generator().manual_seed(4)
    totals = []
    # Kaldi-style: mix up gradually, then let EM separate the split components (perturb 0.01 makes
    # that slow at first), ending with more Gaussians (8) than the generating model (5).
    for target in [2, 2, 4, 4, 6, 6, 8] + [8] * 23:
        stats = GmmStats.zeros(gmms.num_pdfs, gmms.num_components, gmms.dim)
        totals.append(gmms.accumulate(feats, pdfs, stats))
        gmms = gmms.update(stats).split(target, stats.occupancy.sum(-1), generator=split_seed)
    assert gmms.component_counts().tolist() == [4, 4]
    # A split may cost a little likelihood, far less than the update before it gains.
    assert all(b >= a - 1e-4 * len(feats) for a, b in zip(totals, totals[1:])), totals
    reference = true.accumulate(feats, pdfs, GmmStats.zeros(2, 3, 2))
    assert totals[0] < reference - 1.0 * len(feats)
    assert abs(totals[-1] - reference) < 0.01 * len(feats), (totals[-1], reference)


def test_update_recovers_single_gaussians():
    mean = torch.tensor([[1.0, -2.0, 0.5], [-4.0, 3.0, 0.0]])
    var = torch.tensor([[0.5, 2.0, 1.0], [3.0, 0.1, 0.7]])
    g = torch.Generator().manual_seed(5)
    pdfs = torch.arange(2).repeat_interleave(20000)
    feats = mean[pdfs] + var[pdfs].sqrt() * torch.randn(40000, 3, generator=g)
    gmms = DiagGmms.single(2, feats.mean(0), feats.var(0))
    stats = GmmStats.zeros(2, 1, 3)
    gmms.accumulate(feats, pdfs, stats)
    new = gmms.update(stats)
    torch.testing.assert_close(new.means[:, 0], mean, atol=0.05, rtol=0)
    torch.testing.assert_close(new.variances[:, 0], var, atol=0, rtol=0.05)
    assert torch.all(new.log_weights == 0)


def test_map_means_move_by_the_data_against_the_prior():
    old = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    gmms = DiagGmms.single(2, torch.zeros(2), torch.ones(2))
    gmms = DiagGmms(gmms.log_weights, old[:, None, :].clone(), gmms.variances)
    # 10 frames of pdf 0 at (2, -2); pdf 1 has no data
    stats = GmmStats.zeros(2, 1, 2)
    gmms.accumulate(torch.tensor([[2.0, -2.0]]).repeat(10, 1), torch.zeros(10, dtype=torch.int64), stats)
    for tau, want in ((10.0, [1.0, -1.0]), (1e-9, [2.0, -2.0]), (1e9, [0.0, 0.0])):
        new = gmms.map_means(stats, tau)
        torch.testing.assert_close(new.means[0, 0], torch.tensor(want), atol=1e-5, rtol=0)
        torch.testing.assert_close(new.means[1], gmms.means[1])
        assert torch.equal(new.variances, gmms.variances) and torch.equal(new.log_weights, gmms.log_weights)


def test_update_keeps_pdfs_without_data_and_low_count_components_and_floors_variances():
    gmms = DiagGmms(
        torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.2, 0.8]]).log(),
        torch.tensor([[[0.0, 0.0], [0.0, 0.0]], [[5.0, 5.0], [0.0, 0.0]], [[0.0, 0.0], [100.0, 100.0]]]),
        torch.tensor([[[1.0, 1.0], [1.0, 1.0]], [[2.0, 3.0], [1.0, 1.0]], [[1.0, 1.0], [4.0, 4.0]]]),
    )
    g = torch.Generator().manual_seed(6)
    tight = torch.stack([torch.full((500,), 0.5), torch.randn(500, generator=g)], 1)  # dim 0 constant
    spread = 10 * torch.randn(1000, 2, generator=g)
    far = 100 + torch.randn(3, 2, generator=g)  # 3 frames for pdf 2's component 1: below min_count 10
    feats = torch.cat([tight, spread, far])
    pdfs = torch.cat([torch.zeros(500), torch.full((1003,), 2)]).long()
    stats = GmmStats.zeros(3, 2, 2)
    gmms.accumulate(feats, pdfs, stats)
    assert stats.occupancy[2, 1] == pytest.approx(3.0, abs=1e-3)
    new = gmms.update(stats, min_variance=1e-3, min_count=10.0)
    # pdf 1 had no frames: unchanged, padding included.
    for a, b in zip(new.tensors().values(), gmms.tensors().values()):
        assert torch.equal(a[1], b[1])
    # pdf 0, dimension 0 is constant: floored at 1e-3 of the global variance.
    global_var = feats.double().var(0, unbiased=False)
    assert new.variances[0, 0, 0] == pytest.approx(1e-3 * float(global_var[0]), rel=1e-4)
    assert torch.all(new.variances[0, 0] >= 1e-3 * global_var.float() * (1 - 1e-6))
    assert new.means[0, 0, 0] == pytest.approx(0.5, abs=1e-5)
    # pdf 2's low-count component keeps weight, mean and variance; the other takes the rest.
    assert torch.equal(new.means[2, 1], gmms.means[2, 1]) and torch.equal(new.variances[2, 1], gmms.variances[2, 1])
    assert new.log_weights[2, 1] == gmms.log_weights[2, 1]
    assert new.log_weights[2, 0].exp() == pytest.approx(0.2, abs=1e-6)
    torch.testing.assert_close(new.means[2, 0], spread.mean(0), atol=1e-4, rtol=0)
    assert new.log_weights[0, 1] == -math.inf and new.variances[0, 1].tolist() == [1.0, 1.0]


def test_split_allocates_by_occupancy_and_keeps_the_likelihood():
    gmms = padded_gmms()
    occupancy = torch.tensor([1000.0, 50.0, 3000.0], dtype=torch.float64)
    new = gmms.split(20, occupancy, generator=torch.Generator().manual_seed(7))
    counts = new.component_counts()
    assert new.num_gaussians() == 20 and new.num_components == int(counts.max())
    assert torch.all(counts >= gmms.component_counts())
    assert counts[2] > counts[0] > counts[1], counts
    torch.testing.assert_close(new.log_weights.exp().sum(-1), torch.ones(3))
    present = new.log_weights > -math.inf
    assert torch.all(present == (torch.arange(new.num_components) < counts[:, None]))
    assert torch.all(new.variances[~present] == 1) and torch.all(new.means[~present] == 0)
    again = gmms.split(20, occupancy, generator=torch.Generator().manual_seed(7))
    for a, b in zip(new.tensors().values(), again.tensors().values()):
        assert torch.equal(a, b)
    other = gmms.split(20, occupancy, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(other.means, new.means)
    g = torch.Generator().manual_seed(9)
    pdfs = torch.randint(0, 3, (300,), generator=g)
    feats = sample(gmms, pdfs, g)
    change = (new.log_likelihoods(feats) - gmms.log_likelihoods(feats)).abs()
    assert change[torch.arange(300), pdfs].max() < 1e-2 and change.mean() < 5e-3, change


def test_split_never_removes_gaussians():
    gmms = padded_gmms()
    for target in (0, 6):
        new = gmms.split(target, torch.tensor([1.0, 1.0, 1.0]))
        assert new.component_counts().tolist() == [1, 3, 2]
        torch.testing.assert_close(new.log_likelihoods(torch.zeros(1, 4)), gmms.log_likelihoods(torch.zeros(1, 4)))
    # Occupancy of a pdf outweighed by its existing Gaussians: the others take the rest.
    assert gmms.split(9, torch.tensor([1.0, 1.0, 1.0])).component_counts().tolist() == [3, 3, 3]


def test_stats_add_and_round_trip():
    a, b = GmmStats.zeros(2, 3, 4), GmmStats.zeros(2, 3, 4)
    gmms = DiagGmms.single(2, torch.zeros(4), torch.ones(4)).split(6, torch.ones(2))
    feats = torch.randn(30, 4, generator=torch.Generator().manual_seed(10))
    pdfs = torch.arange(30) % 2
    gmms.accumulate(feats[:12], pdfs[:12], a)
    gmms.accumulate(feats[12:], pdfs[12:], b)
    whole = GmmStats.zeros(2, 3, 4)
    gmms.accumulate(feats, pdfs, whole)
    summed = GmmStats.from_tensors((a + b).tensors())
    for x, y in zip(summed.tensors().values(), whole.tensors().values()):
        torch.testing.assert_close(x, y)
    with pytest.raises(ValueError):
        a + GmmStats.zeros(2, 2, 4)
    with pytest.raises(ValueError):
        GmmStats.from_tensors({"occupancy": a.occupancy, "first": a.first})


def test_gmms_round_trip_through_safetensors(tmp_path):
    gmms = padded_gmms()
    save_file(gmms.tensors(), tmp_path / "gmms.safetensors")
    loaded = DiagGmms.from_tensors(load_file(tmp_path / "gmms.safetensors"))
    for a, b in zip(loaded.tensors().values(), gmms.tensors().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError):
        DiagGmms.from_tensors({**gmms.tensors(), "means": gmms.means[:, :2]})


def test_input_checks():
    gmms = padded_gmms()
    with pytest.raises(ValueError):
        gmms.log_likelihoods(torch.zeros(3, 5))
    with pytest.raises(ValueError):
        gmms.accumulate(torch.zeros(3, 4), torch.tensor([0, 1, 3]), GmmStats.zeros(3, 3, 4))
    with pytest.raises(ValueError):
        gmms.accumulate(torch.zeros(3, 4), torch.tensor([0, 1, 2]), GmmStats.zeros(3, 2, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    gmms = padded_gmms()
    g = torch.Generator().manual_seed(11)
    pdfs = torch.randint(0, 3, (500,), generator=g)
    feats = sample(gmms, pdfs, g)
    results = []
    for device in ("cpu", "cuda"):
        model = gmms.to(device)
        stats = GmmStats.zeros(3, 3, 4, device=device)
        total = model.accumulate(feats.to(device), pdfs.to(device), stats)
        new = model.update(stats).split(10, stats.occupancy.sum(-1), generator=torch.Generator().manual_seed(12))
        results.append((total, new.to("cpu"), model.log_likelihoods(feats.to(device)).cpu()))
    (cpu_total, cpu_new, cpu_ll), (cuda_total, cuda_new, cuda_ll) = results
    assert cuda_total == pytest.approx(cpu_total, abs=1e-2)
    torch.testing.assert_close(cuda_ll, cpu_ll, atol=1e-4, rtol=0)
    for a, b in zip(cuda_new.tensors().values(), cpu_new.tensors().values()):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
