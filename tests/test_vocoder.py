"""The multiband WaveRNN: mu-law, PQMF, conditioning shapes, folding, the fast generation
loop against the reference step, streaming, and overfitting one short clip."""

import numpy as np
import pytest
import torch
import torchaudio

from speech.tts.folding import Folding, Unfolder
from speech.tts.generate import GenerationConfig, generate, naive, stream
from speech.tts.mel import MelConfig, MelExtractor
from speech.tts.pqmf import PQMF, SynthesisStream
from speech.tts.segments import Segments
from speech.tts.vocoder import Deemphasis, WaveRnn, WaveRnnConfig, compiled_loop, generation_loop, preemphasize

TINY = dict(hidden=32, fc=32, cond_channels=16, embed_dim=8, cond_blocks=1)


def tiny_model(dtype=torch.float32, **kw) -> WaveRnn:
    torch.manual_seed(0)
    return WaveRnn(WaveRnnConfig(**{**TINY, **kw})).to(dtype).eval()


def chirp(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(150 + 100 * t) / rate
    return (0.3 * np.sin(phase) + 0.1 * np.sin(3 * phase)).astype(np.float32)


def test_mu_law_round_trip_within_one_level():
    model = tiny_model()
    x = torch.linspace(-1, 1, 4001)
    idx = torchaudio.functional.mu_law_encoding(x, model.cfg.levels)
    assert idx.min() == 0 and idx.max() == model.cfg.levels - 1
    back = model.dequantize(idx)
    # mu-law levels are dense near zero: the error there is far below the linear step
    step = (model.dequantize(idx + 1) - model.dequantize(idx)).abs().clamp_min(1e-9)
    assert ((back - x).abs() <= step).all()
    small = x.abs() < 0.01
    assert (back - x)[small].abs().max() < 2e-4


def test_pqmf_reconstructs_and_streams_exactly():
    pqmf = PQMF(4)
    x = torch.from_numpy(chirp(0.5) + 0.05 * np.random.default_rng(0).standard_normal(8000).astype(np.float32))
    bands = pqmf.analysis(x.view(1, 1, -1))
    assert bands.shape == (1, 4, 2000)
    y = pqmf.synthesis(bands)[0, 0]
    inner = slice(200, -200)  # the ends lack the filter's other half
    snr = 10 * torch.log10(x[inner].pow(2).mean() / (y - x)[inner].pow(2).mean())
    assert snr > 40, snr

    s = SynthesisStream(pqmf)
    cuts = [0, 1, 7, 300, 301, 1500, 2000]
    parts = [s.push(bands[0, :, a:b]) for a, b in zip(cuts, cuts[1:])] + [s.finish()]
    assert torch.allclose(torch.cat(parts), y, atol=1e-6)


def test_conditioning_and_training_shapes():
    model = tiny_model()
    cfg = model.cfg
    mel = torch.randn(2, 7, cfg.n_mels)
    assert model.condition(mel).shape == (2, 7 * cfg.steps_per_frame, cfg.cond_channels)
    frames = 3
    seg_mel = torch.randn(2, frames + 2 * cfg.context_frames, cfg.n_mels)
    prev = torch.randint(0, cfg.levels, (2, frames * cfg.steps_per_frame, cfg.bands))
    assert model(seg_mel, prev).shape == (2, frames * cfg.steps_per_frame, cfg.bands, cfg.levels)
    with pytest.raises(ValueError, match="multiple of bands"):
        WaveRnnConfig(hop_length=202).validate()


@pytest.mark.parametrize("steps", [1, 499, 500, 1234])
def test_folding_then_unfolding_returns_the_signal(steps):
    folding = Folding(target=100, warmup=20, xfade=30)
    x = torch.randn(steps, 3)
    segments = folding.fold(x)
    assert segments.shape == (folding.num_segments(steps), 150, 3)
    assert torch.allclose(folding.unfold(segments, steps), x, atol=1e-6)
    # in pieces, as the streaming generator joins them
    joiner = Unfolder(folding, (3,), x.dtype)
    pieces = [joiner.push(segments[i:i + 2]) for i in range(0, len(segments), 2)] + [joiner.finish()]
    assert torch.allclose(torch.cat(pieces)[:steps], x, atol=1e-6)


def test_fades_sum_to_one():
    fade_in, fade_out = Folding(10, 0, 7).fades()
    assert torch.allclose(fade_in + fade_out, torch.ones(7))
    assert (fade_in[1:] > fade_in[:-1]).all()


def _prepared(model, frames=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(1, frames, model.cfg.n_mels, generator=g, dtype=model.embed.dtype)
    with torch.inference_mode():
        cond = model.condition(mel)
        noise = torch.rand(cond.shape[1], 1, model.cfg.bands, generator=g, dtype=model.embed.dtype)
        return cond, noise, model.prepare(cond), model.loop_weights()


def test_fast_loop_draws_the_reference_steps_samples():
    # float64: both orders of summation round alike, so every sampled level must agree
    model = tiny_model(torch.float64)
    cond, noise, prepared, weights = _prepared(model)
    with torch.inference_mode():
        fast = generation_loop(prepared.gates, prepared.fc, noise, *weights, model.silence_index())
        idx = torch.full((1, model.cfg.bands), model.silence_index())
        h = torch.zeros(1, model.cfg.hidden, dtype=torch.float64)
        ref = []
        for t in range(cond.shape[1]):
            idx, h = model.reference_step(cond[:, t], idx, h, noise[t])
            ref.append(idx)
    assert fast.shape == (cond.shape[1], 1, model.cfg.bands)
    assert len(set(fast.flatten().tolist())) > 20  # a random model samples many levels, not a constant
    assert torch.equal(fast, torch.stack(ref))


def test_compiled_loop_gives_the_plain_loops_samples():
    model = tiny_model()
    _, noise, prepared, weights = _prepared(model, frames=4, seed=1)
    with torch.inference_mode():
        plain = generation_loop(prepared.gates, prepared.fc, noise, *weights, model.silence_index())
        compiled = compiled_loop()(prepared.gates, prepared.fc, noise, *weights, model.silence_index())
    assert torch.equal(plain, compiled)


def test_stream_yields_early_chunks_that_join_into_the_waveform():
    model = tiny_model()
    mel = np.random.default_rng(0).standard_normal((40, 80)).astype(np.float32)
    gen = GenerationConfig(target=100, warmup=10, xfade=20, batch=4)
    chunks = list(stream(model, mel, gen, seed=3))
    assert len(chunks) > 2 and chunks[0].size > 0  # audio comes out before the end
    wave = np.concatenate(chunks)
    assert wave.shape == (40 * 200,) and np.isfinite(wave).all()
    assert np.array_equal(wave, generate(model, mel, gen, seed=3))  # reproducible from the seed
    assert not np.array_equal(wave, generate(model, mel, gen, seed=4))
    plain = generate(model, mel, GenerationConfig(target=100, warmup=10, xfade=20, batch=4, compiled=False), 3)
    assert np.array_equal(wave, plain)
    assert naive(model, mel[:5]).shape == (5 * 200,)


class _Clip:
    """One utterance in the form :class:`speech.tts.segments.Segments` reads."""

    def __init__(self, mel: np.ndarray, audio: np.ndarray, hop: int):
        n = mel.shape[0] * hop
        self.mels, self.audio, self.ids = [mel], [np.pad(audio, (0, n - audio.size))], ["clip"]


def test_a_small_vocoder_overfits_one_short_clip():
    torch.manual_seed(0)
    torch.set_num_threads(1)  # small ops: a second thread costs more in handoffs than it gives
    # a little noise fills every band, so that no mel bin sits at the log floor, where any
    # sample error would dominate the comparison
    x = chirp(0.25) + 0.01 * np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    cfg = MelConfig()
    extract = MelExtractor(cfg)
    mel = extract(x)
    model = WaveRnn(WaveRnnConfig(hidden=64, fc=64, cond_channels=16, embed_dim=8, cond_blocks=1))
    model.mel_mean, model.mel_std = torch.from_numpy(mel.mean(0)), torch.from_numpy(mel.std(0).clip(1e-3))
    batches = Segments(_Clip(mel, x, cfg.hop_length), model.cfg, frames=2, batch_size=16, count=16 * 150, seed=0)
    opt = torch.optim.Adam(model.parameters(), 5e-3)
    losses = []
    for b in batches:
        loss = torch.nn.functional.cross_entropy(model(b.mel, b.prev).reshape(-1, model.cfg.levels),
                                                 b.target.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 5.5 and np.mean(losses[-10:]) < 0.3 * losses[0], (losses[0], losses[-10:])
    model.eval()
    y = generate(model, mel)[:x.size]
    untrained = generate(tiny_model(), mel)[:x.size]
    err = np.abs(extract(y) - mel).mean()
    base = np.abs(extract(untrained) - mel).mean()
    print(f"losses {losses[0]:.2f} -> {np.mean(losses[-10:]):.2f}; mel error {err:.2f} (untrained {base:.2f})")
    assert err < 0.7 * base, (err, base)


def test_deemphasis_undoes_preemphasis_over_chunks():
    x = chirp(0.1)
    pre = preemphasize(np.concatenate([[0.0], x]), 0.85)
    assert pre.shape == x.shape and np.abs(pre).sum() < np.abs(x).sum()  # the low-pass chirp is flattened
    whole = Deemphasis(0.85)(pre)
    np.testing.assert_allclose(whole, x, atol=1e-5)
    d = Deemphasis(0.85)
    np.testing.assert_allclose(np.concatenate([d(pre[:7]), d(pre[7:7]), d(pre[7:900]), d(pre[900:])]), whole,
                               atol=1e-6)
