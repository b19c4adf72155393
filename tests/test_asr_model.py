"""BLSTM-CTC model: shapes, padding invariance, and that it can learn (overfit to 0 CER)."""

import pytest
import torch

from speech.asr.model import BlstmCtc, BlstmCtcConfig, stack_frames
from speech.ctc import greedy_ctc_decode

torch.set_num_threads(1)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_stack_frames_shapes_and_content(k):
    feats = torch.arange(2 * 7 * 4, dtype=torch.float32).reshape(2, 7, 4)
    stacked, lens = stack_frames(feats, torch.tensor([7, 5]), k)
    t_out = -(-7 // k)
    assert stacked.shape == (2, t_out, 4 * k)
    assert lens.tolist() == [-(-7 // k), -(-5 // k)]
    # the first output frame is the first k input frames side by side
    assert torch.equal(stacked[0, 0], feats[0, :k].reshape(-1))


@pytest.mark.parametrize("subsample,proj", [(1, 0), (3, 16)])
def test_output_shapes_and_log_probs(subsample, proj):
    cfg = BlstmCtcConfig(input_dim=10, vocab_size=7, subsample=subsample, hidden_size=8, num_layers=2, proj_size=proj)
    model = BlstmCtc(cfg).eval()
    lengths = torch.tensor([30, 17, 4])
    log_probs, out_lengths = model(torch.randn(3, 30, 10), lengths)
    t_out = -(-30 // subsample)
    assert log_probs.shape == (3, t_out, 7)
    assert out_lengths.tolist() == [-(-n // subsample) for n in lengths.tolist()]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(3, t_out), atol=1e-5)


def test_padding_does_not_change_outputs():
    cfg = BlstmCtcConfig(input_dim=6, vocab_size=5, subsample=3, hidden_size=8, num_layers=2)
    model = BlstmCtc(cfg).eval()
    short = torch.randn(1, 11, 6)
    alone, n_alone = model(short, torch.tensor([11]))
    padded = torch.cat([short, torch.randn(1, 19, 6)], dim=1)  # garbage after the end
    batch = torch.cat([padded, torch.randn(1, 30, 6)])
    together, n = model(batch, torch.tensor([11, 30]))
    assert n[0] == n_alone[0]
    assert torch.allclose(together[0, : n_alone[0]], alone[0], atol=1e-5)


def test_greedy_decode_merges_repeats_and_drops_blanks():
    ids = torch.tensor([[0, 3, 3, 0, 3, 2, 2, 0, 1]])
    log_probs = torch.nn.functional.one_hot(ids, 4).float().log()
    assert greedy_ctc_decode(log_probs, torch.tensor([9])) == [[3, 3, 2, 1]]
    assert greedy_ctc_decode(log_probs, torch.tensor([3])) == [[3]]


def test_overfits_a_few_utterances_to_zero_cer():
    torch.manual_seed(0)
    targets = [[1, 2, 3], [4, 4, 2], [3, 1], [2, 4, 1, 3]]
    lengths = torch.tensor([24, 27, 18, 30])
    feats = torch.randn(4, 30, 8)
    cfg = BlstmCtcConfig(input_dim=8, vocab_size=5, subsample=2, hidden_size=32, num_layers=2, dropout=0.0)
    model = BlstmCtc(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    flat = torch.tensor([t for seq in targets for t in seq])
    target_lengths = torch.tensor([len(t) for t in targets])
    for _ in range(300):
        log_probs, out_lengths = model(feats, lengths)
        loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), flat, out_lengths, target_lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.02:
            break
    model.eval()
    with torch.no_grad():
        log_probs, out_lengths = model(feats, lengths)
    assert greedy_ctc_decode(log_probs, out_lengths) == targets
