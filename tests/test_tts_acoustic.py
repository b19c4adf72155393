"""The duration-based TTS acoustic model: the length regulator, speed, padding invariance,
masked batch norm, the loss, config validation, and overfitting a few utterances."""

import math

import pytest
import torch
from torch import nn

from speech.tts.acoustic import (AcousticConfig, AcousticModel, AcousticOutput, MaskedBatchNorm1d, acoustic_loss,
                                 length_regulate)

torch.set_num_threads(1)

SMALL = dict(num_phones=12, n_mels=16, embed_dim=64, encoder_hidden=64, encoder_layers=1, duration_channels=64,
             decoder_hidden=64, decoder_layers=1, postnet_layers=2, postnet_channels=32)


def small_model(**kw) -> AcousticModel:
    torch.manual_seed(0)
    return AcousticModel(AcousticConfig(**{**SMALL, **kw}))


def pad_batch(rows: list[torch.Tensor], fill: int = 0) -> torch.Tensor:
    out = torch.full((len(rows), max(len(r) for r in rows)), fill, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def random_tokens(g: torch.Generator, n: int, num_phones: int = 12) -> tuple[torch.Tensor, ...]:
    """One utterance's (phones, stress, position) of n tokens."""
    return (torch.randint(1, num_phones, (n,), generator=g), torch.randint(0, 4, (n,), generator=g),
            torch.randint(0, 5, (n,), generator=g))


def predict_frames(model: AcousticModel, mean_frames: float) -> None:
    """Make an untrained model predict about ``mean_frames`` per token (varying by token)."""
    with torch.no_grad():
        model.duration.proj.bias.fill_(math.log1p(mean_frames))


# -- length regulator ----------------------------------------------------------------------

def test_length_regulate_repeats_each_token_for_its_frames():
    x = torch.randn(2, 4, 3)
    durations = torch.tensor([[2, 0, 3, 1], [1, 4, 0, 0]])
    frames, features, lengths = length_regulate(x, durations)
    assert frames.shape == (2, 6, 3) and features.shape == (2, 6, 2)
    assert lengths.tolist() == [6, 5] and lengths.dtype == torch.long
    assert torch.equal(frames[0], x[0, [0, 0, 2, 2, 2, 3]])  # token 1 (0 frames) is skipped
    assert torch.equal(frames[1, :5], x[1, [0, 1, 1, 1, 1]])
    assert torch.equal(frames[1, 5], torch.zeros(3)) and torch.equal(features[1, 5], torch.zeros(2))
    inside = torch.tensor([[0.25, 0.75, 1 / 6, 0.5, 5 / 6, 0.5], [0.5, 0.125, 0.375, 0.625, 0.875, 0]])
    assert torch.allclose(features[..., 0], inside)
    log_length = torch.log1p(torch.tensor([[2, 2, 3, 3, 3, 1], [1, 4, 4, 4, 4, 0]]).float())
    assert torch.allclose(features[..., 1], log_length)


def test_length_regulate_matches_repeat_interleave_on_random_batches():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 9, 4, generator=g)
    durations = torch.randint(0, 5, (5, 9), generator=g)
    durations[1, 6:] = 0  # a shorter utterance's padding
    durations[2] = 0
    durations[2, 3] = 1  # one frame in all
    frames, features, lengths = length_regulate(x, durations)
    assert torch.equal(lengths, durations.sum(1))
    assert frames.shape[1] == int(durations.sum(1).max())
    for b in range(5):
        n = int(lengths[b])
        assert torch.equal(frames[b, :n], x[b].repeat_interleave(durations[b], dim=0))
        assert not frames[b, n:].any() and not features[b, n:].any()
        inside = features[b, :n, 0]
        assert ((inside > 0) & (inside < 1)).all()
        # within a token the place rises; a new token starts low again
        token_of = torch.arange(9).repeat_interleave(durations[b])
        same = token_of[1:] == token_of[:-1]
        assert (inside[1:][same] > inside[:-1][same]).all()


# -- model ---------------------------------------------------------------------------------

def test_shapes_postnet_off_and_normalisation_buffers():
    model = small_model(postnet_layers=0).eval()
    g = torch.Generator().manual_seed(2)
    tokens = [random_tokens(g, 5), random_tokens(g, 3)]
    phones, stress, position = (pad_batch([t[i] for t in tokens]) for i in range(3))
    durations = torch.tensor([[1, 2, 0, 3, 1], [2, 2, 2, 0, 0]])
    out = model(phones, stress, position, torch.tensor([5, 3]), durations)
    assert out.mel.shape == (2, 7, 16) and out.log_duration.shape == (2, 5)
    assert out.mel_post is out.mel
    assert out.frame_lengths.tolist() == [7, 6]
    assert not out.mel[1, 6:].any() and not out.log_duration[1, 3:].any()
    silent = model(phones, stress, position, torch.tensor([5, 3]), torch.zeros_like(durations))
    assert silent.mel.shape == (2, 0, 16) and silent.frame_lengths.tolist() == [0, 0]
    # 3 frames a decoder step: still one mel frame per regulated frame
    reduced = small_model(reduction=3).eval()(phones, stress, position, torch.tensor([5, 3]), durations)
    assert reduced.mel.shape == (2, 7, 16) and not reduced.mel_post[1, 6:].any()

    assert {"mel_mean", "mel_std"} <= set(model.state_dict())
    assert torch.equal(model.mel_mean, torch.zeros(16)) and torch.equal(model.mel_std, torch.ones(16))
    model.mel_mean.copy_(torch.randn(16))
    model.mel_std.copy_(torch.rand(16) + 0.5)
    log_mel = torch.randn(3, 16) * 4 - 5
    assert torch.allclose(model.denormalise(model.normalise(log_mel)), log_mel, atol=1e-5)
    assert torch.allclose(model.normalise(model.mel_mean), torch.zeros(16))


def test_speed_divides_the_predicted_frames():
    model = small_model().eval()
    predict_frames(model, 5.3)
    g = torch.Generator().manual_seed(3)
    tokens = [random_tokens(g, 9), random_tokens(g, 6)]
    phones, stress, position = (pad_batch([t[i] for t in tokens]) for i in range(3))
    lengths = torch.tensor([9, 6])
    with torch.no_grad():
        unrounded = torch.expm1(model(phones, stress, position, lengths, torch.ones_like(phones)).log_duration)
    unrounded = unrounded.clamp_min(0).sum(1)
    total = {}
    for speed in (0.5, 1.0, 2.0):
        log_mel, durations, frames = model.infer(phones, stress, position, lengths, speed=speed)
        assert durations.dtype == torch.long and not durations[1, 6:].any()
        assert torch.equal(frames, durations.sum(1))
        assert log_mel.shape == (2, int(frames.max()), 16)
        # rounding each token's frames moves the total by at most half a frame per token
        assert ((frames - unrounded / speed).abs() <= 0.5 * lengths).all(), (speed, frames, unrounded)
        total[speed] = frames
    assert total[1.0].min() >= 30  # about 5 a token: far from the rounding's reach
    assert ((total[2.0] - total[1.0] / 2).abs() <= lengths).all()
    assert ((total[0.5] - total[1.0] * 2).abs() <= lengths).all()
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="speed"):
            model.infer(phones, stress, position, lengths, speed=bad)


@pytest.mark.parametrize("reduction", [1, 3])
def test_an_utterance_padded_in_a_batch_gives_what_it_gives_alone(reduction):
    # with r = 3 neither utterance's frames are a multiple of r: its last decoder step is partial
    model = small_model(dropout=0.1, reduction=reduction).eval()
    predict_frames(model, 3.0)
    with torch.no_grad():  # batch-norm statistics and mel scale that are not the identity
        for norm in model.postnet.norms:
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.5, 2.0)
        model.mel_mean.normal_()
        model.mel_std.uniform_(0.5, 2.0)
    g = torch.Generator().manual_seed(4)
    short, long = random_tokens(g, 6), random_tokens(g, 11)
    short_d, long_d = torch.tensor([2, 0, 3, 1, 4, 2]), torch.randint(1, 6, (11,), generator=g)
    # padding that is not even zeros: nothing of it may reach the short utterance
    batch = [pad_batch([short[i], long[i]], fill=3) for i in range(3)]
    durations = pad_batch([short_d, long_d], fill=5)
    lengths = torch.tensor([6, 11])
    alone = model(*(x.unsqueeze(0) for x in short), torch.tensor([6]), short_d.unsqueeze(0))
    both = model(*batch, lengths, durations)
    t = int(short_d.sum())
    assert both.mel.shape[1] > t and both.frame_lengths.tolist() == [t, int(long_d.sum())]
    for a, b in ((alone.mel, both.mel), (alone.mel_post, both.mel_post)):
        assert torch.allclose(a[0], b[0, :t], atol=1e-5)
        assert not b[0, t:].any()
    assert torch.allclose(alone.log_duration[0], both.log_duration[0, :6], atol=1e-5)
    assert not both.log_duration[0, 6:].any()

    mel_alone, d_alone, _ = model.infer(*(x.unsqueeze(0) for x in short), torch.tensor([6]))
    mel_both, d_both, f_both = model.infer(*batch, lengths)
    assert torch.equal(d_alone[0], d_both[0, :6]) and not d_both[0, 6:].any()
    n = int(f_both[0])
    assert n > 0 and torch.allclose(mel_alone[0], mel_both[0, :n], atol=1e-5)


def test_masked_batch_norm_takes_its_statistics_from_valid_frames_only():
    torch.manual_seed(5)
    c, lengths = 3, [4, 7]
    x = torch.randn(2, c, 7) * 2 + 1
    x[0, :, 4:] = 50.0  # padding far from the data
    mask = (torch.arange(7)[None, :] < torch.tensor(lengths)[:, None]).unsqueeze(1).float()
    masked, plain = MaskedBatchNorm1d(c), nn.BatchNorm1d(c)
    with torch.no_grad():
        masked.weight.uniform_(0.5, 2)
        masked.bias.normal_()
    plain.load_state_dict(masked.state_dict())
    valid = torch.cat([x[0, :, :4], x[1]], dim=1).unsqueeze(0)  # (1, C, 11): the valid frames only
    y, ref = masked(x, mask), plain(valid)[0]
    assert torch.allclose(torch.cat([y[0, :, :4], y[1]], dim=1), ref, atol=1e-5)
    assert torch.allclose(masked.running_mean, plain.running_mean, atol=1e-6)
    assert torch.allclose(masked.running_var, plain.running_var, atol=1e-6)
    masked.eval(), plain.eval()
    assert torch.allclose(masked(x, mask), plain(x), atol=1e-6)


def synthetic_corpus(num_phones: int, n_mels: int):
    """4 utterances of 8-15 tokens, 0-8 frames each; a frame's mel is its phone's vector
    plus a per-phone slope times its place inside the token, smoothed over 3 frames."""
    g = torch.Generator().manual_seed(6)
    base = torch.randn(num_phones, n_mels, generator=g)
    slope = 2 * torch.randn(num_phones, n_mels, generator=g)
    tokens, durations, mels = [], [], []
    for _ in range(4):
        n = int(torch.randint(8, 16, (1,), generator=g))
        tokens.append(random_tokens(g, n, num_phones))
        durations.append(torch.randint(0, 9, (n,), generator=g))
        rows = [base[p] + ((k + 0.5) / d - 0.5) * slope[p]
                for p, d in zip(tokens[-1][0].tolist(), durations[-1].tolist()) for k in range(d)]
        mel = torch.stack(rows)
        mel[1:-1] = 0.25 * mel[:-2] + 0.5 * mel[1:-1] + 0.25 * mel[2:]
        mels.append(mel)
    phones, stress, position = (pad_batch([t[i] for t in tokens]) for i in range(3))
    target = torch.zeros(4, max(len(m) for m in mels), n_mels)
    for i, m in enumerate(mels):
        target[i, :len(m)] = m
    lengths = torch.tensor([len(d) for d in durations])
    return (phones, stress, position, lengths), pad_batch(durations), target


def test_overfits_a_few_utterances_and_predicts_their_durations():
    model = small_model(postnet_layers=0, dropout=0.0)
    inputs, durations, target = synthetic_corpus(model.cfg.num_phones, model.cfg.n_mels)
    lengths = inputs[3]
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    first = None
    for _ in range(120):
        out = model(*inputs, durations)
        loss, count, parts = acoustic_loss(out, target, durations, lengths, 1.0)
        first = first or parts
        opt.zero_grad()
        (loss / count).backward()
        opt.step()
    # measured (seed 0): mel L1 0.77 untrained, about 0.03 after 120 steps; durations exact
    assert parts["mel"] < 0.15 * first["mel"], (first, parts)
    assert parts["duration"] < 0.05 * first["duration"], (first, parts)
    model.eval()
    _, predicted, frames = model.infer(*inputs)
    valid = torch.arange(durations.shape[1])[None, :] < lengths[:, None]
    assert (predicted - durations).abs()[valid].float().mean() < 0.5
    assert ((frames - durations.sum(1)).abs() <= 0.1 * durations.sum(1)).all()


# -- loss ----------------------------------------------------------------------------------

def test_loss_masks_padding_counts_frames_and_weighs_its_parts():
    torch.manual_seed(7)
    durations = torch.tensor([[2, 1, 2], [3, 0, 0]])
    token_lengths = torch.tensor([3, 2])
    frame_lengths = durations.sum(1)  # [5, 3]
    target = torch.randn(2, 5, 4)
    valid = (torch.arange(5)[None, :] < frame_lengths[:, None]).unsqueeze(-1)
    mel = torch.where(valid, target + 1, torch.randn(2, 5, 4))  # anything in the padding
    mel_post = torch.where(valid, target - 0.5, torch.randn(2, 5, 4))
    exact = torch.log1p(durations.float())
    out = AcousticOutput(mel, mel_post, exact, frame_lengths)
    loss, count, parts = acoustic_loss(out, target, durations, token_lengths, 2.0)
    assert count == 8
    assert parts["mel"] == pytest.approx(1.0) and parts["post"] == pytest.approx(0.5)
    assert parts["duration"] == pytest.approx(0.0, abs=1e-12)
    assert (loss / count).item() == pytest.approx(1.5)

    changed = target.clone()
    changed[1, 3:] = float("nan")  # the second utterance's padding
    assert acoustic_loss(out, changed, durations, token_lengths, 2.0)[0].item() == pytest.approx(loss.item())

    # 0.3 off every valid token, anything on the padding token
    off = out._replace(log_duration=torch.where(token_lengths[:, None] > torch.arange(3), exact + 0.3,
                                                torch.tensor(9.0)))
    loss, count, parts = acoustic_loss(off, target, durations, token_lengths, 2.0)
    assert parts["duration"] == pytest.approx(0.09)
    assert (loss / count).item() == pytest.approx(1.5 + 2.0 * 0.09)


# -- config --------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value", [("num_phones", 1), ("encoder_hidden", 0), ("duration_kernel", 4),
                                        ("postnet_layers", -1), ("postnet_kernel", 2), ("dropout", 1.0),
                                        ("duration_weight", -0.5), ("decoder_layers", 0), ("reduction", 0)])
def test_validate_names_the_bad_key(key, value):
    AcousticConfig().validate()  # the defaults, num_phones not filled yet
    with pytest.raises(ValueError, match=f"^{key}: must be"):
        AcousticConfig(**{key: value}).validate()


def test_model_needs_the_phone_count():
    with pytest.raises(ValueError, match="^num_phones: must be"):
        AcousticModel(AcousticConfig())
