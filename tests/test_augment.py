"""Feature augmentation: warps move spectral peaks, stretches change length, masks are
bounded, and every draw is reproducible from (seed, epoch, utterance)."""

import numpy as np
import pytest

from speech.features.augment import (AugmentConfig, FeatureAugmenter, add_noise, stretch_time, warp_frequency,
                                     warp_time)


def peaked(t=50, d=80, peak=20):
    feats = np.zeros((t, d), dtype=np.float32)
    feats[:, peak] = 1.0
    return feats


def test_warp_identity_and_peak_shift():
    feats = np.random.default_rng(0).normal(size=(30, 80)).astype(np.float32)
    assert np.allclose(warp_frequency(feats, 1.0), feats)
    assert int(warp_frequency(peaked(), 1.1).argmax(axis=1)[0]) == 22  # 20 * 1.1
    assert int(warp_frequency(peaked(), 0.9).argmax(axis=1)[0]) == 18


@pytest.mark.parametrize("speed,frames", [(1.0, 100), (1.25, 80), (0.8, 125)])
def test_stretch_changes_length_and_keeps_content(speed, frames):
    ramp = np.tile(np.arange(100, dtype=np.float32)[:, None], (1, 4))
    out = stretch_time(ramp, speed)
    assert out.shape == (frames, 4)
    assert out[0, 0] == 0 and out[-1, 0] == pytest.approx(min(99, (frames - 1) * speed))


def test_masks_are_bounded():
    cfg = AugmentConfig(freq_masks=2, freq_mask_width=10, time_masks=2, time_mask_ratio=0.05)
    aug = FeatureAugmenter(cfg, seed=1)
    feats = np.ones((200, 80), dtype=np.float32)
    for epoch in range(20):
        out = aug.mask(feats, epoch, 0)
        masked_bins = (out == 0).all(axis=0).sum()
        masked_frames = (out == 0).all(axis=1).sum()
        assert masked_bins <= 20 and masked_frames <= 20
        assert out.shape == feats.shape


def test_draws_are_reproducible_per_epoch_and_utterance():
    cfg = AugmentConfig(freq_warp=0.1, time_stretch=0.1, freq_masks=2, freq_mask_width=10,
                        time_masks=2, time_mask_ratio=0.1)
    feats = np.random.default_rng(0).normal(size=(120, 80)).astype(np.float32)
    a, b = FeatureAugmenter(cfg, seed=7), FeatureAugmenter(cfg, seed=7)
    assert np.array_equal(a.perturb(feats, 3, 5), b.perturb(feats, 3, 5))
    assert np.array_equal(a.mask(feats, 3, 5), b.mask(feats, 3, 5))
    assert not np.array_equal(a.perturb(feats, 3, 5), a.perturb(feats, 4, 5))
    assert not np.array_equal(a.perturb(feats, 3, 5), a.perturb(feats, 3, 6))


def test_disabled_config():
    assert not AugmentConfig().enabled
    assert AugmentConfig(freq_warp=0.1).enabled


def test_time_warp_moves_one_point_and_keeps_the_ends():
    ramp = np.tile(np.arange(100, dtype=np.float32)[:, None], (1, 3))
    out = warp_time(ramp, center=40, shift=10)
    assert out.shape == ramp.shape
    assert out[0, 0] == 0 and out[-1, 0] == pytest.approx(99)
    assert out[50, 0] == pytest.approx(40)  # frame 40 now sits at 50
    assert np.all(np.diff(out[:, 0]) > 0)  # still monotonic: nothing reordered
    assert np.array_equal(warp_time(ramp, 40, 0), ramp)


def test_additive_noise_at_the_drawn_snr():
    rng = np.random.default_rng(0)
    clean = np.log(rng.uniform(0.5, 2.0, size=(400, 40)))
    quiet = add_noise(clean, snr_db=40, tilt=0.0, rng=np.random.default_rng(1))
    loud = add_noise(clean, snr_db=0, tilt=0.0, rng=np.random.default_rng(1))
    assert np.all(quiet >= clean - 1e-6) and np.abs(quiet - clean).max() < 0.01
    # at 0 dB the noise energy equals the mean speech energy: log(E + N) - log(E) averages about log 2
    added = np.exp(loud) - np.exp(clean)
    assert added.mean() == pytest.approx(np.exp(clean).mean(), rel=0.05)
    tilted = add_noise(np.full((400, 40), -20.0), snr_db=0, tilt=3.0, rng=np.random.default_rng(2))
    assert tilted[:, :5].mean() > tilted[:, -5:].mean() + 1  # noise falls from low to high bins


def test_noise_and_time_warp_leave_other_draws_unchanged():
    feats = np.random.default_rng(0).normal(size=(120, 80)).astype(np.float32)
    base = FeatureAugmenter(AugmentConfig(freq_warp=0.1), seed=7)
    noisy = FeatureAugmenter(AugmentConfig(freq_warp=0.1, noise_prob=1.0), seed=7)
    warped = FeatureAugmenter(AugmentConfig(freq_warp=0.1, time_warp=5), seed=7)
    plain = base.perturb(feats, 1, 2)
    assert not np.array_equal(noisy.perturb(feats, 1, 2), plain)
    assert np.all(noisy.perturb(feats, 1, 2) >= plain - 1e-5)  # noise only adds energy
    assert warped.perturb(feats, 1, 2).shape == plain.shape
    assert AugmentConfig(noise_prob=0.5).enabled and AugmentConfig(time_warp=5).enabled
