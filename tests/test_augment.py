"""Feature augmentation: warps move spectral peaks, stretches change length, masks are
bounded, and every draw is reproducible from (seed, epoch, utterance)."""

import numpy as np
import pytest

from speech.features.augment import AugmentConfig, FeatureAugmenter, stretch_time, warp_frequency


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
