"""agents.vla.token_head: restricted softmax, autoregressive decoding and exact token log-probs."""

import math

import pytest
import torch

from agents.vla.token_head import action_logits, decode_tokens, token_log_probs

# 3 action tokens, hidden size 2: logits = hidden @ W^T
WEIGHT = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def step_fn(token, index):
    """A fake model: after token k the next hidden state is row k of this table."""
    table = torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, 3.0]])
    return table[token]


def log_softmax_by_hand(logits):
    norm = math.log(sum(math.exp(v) for v in logits))
    return [v - norm for v in logits]


def test_two_token_greedy_log_prob_by_hand():
    first = torch.tensor([[1.0, 2.0]])               # logits (1, 2, 3) -> argmax token 2
    tokens, logp = decode_tokens(step_fn, first, WEIGHT, num_tokens=2, greedy=True)
    assert tokens.tolist() == [[2, 1]]               # hidden after token 2 is (0, 3): logits (0, 3, 3) -> first max = 1
    expected = log_softmax_by_hand([1, 2, 3])[2] + log_softmax_by_hand([0, 3, 3])[1]
    assert logp.sum().item() == pytest.approx(expected, abs=1e-6)
    # teacher forcing gives the same numbers
    hidden = torch.stack([first[0], step_fn(torch.tensor(2), 0)])[None]
    torch.testing.assert_close(token_log_probs(hidden, WEIGHT, tokens), logp)


def test_temperature_divides_logits():
    hidden = torch.tensor([[1.0, 2.0]])
    torch.testing.assert_close(action_logits(hidden, WEIGHT, temperature=2.0), torch.tensor([[0.5, 1.0, 1.5]]))
    logp = token_log_probs(hidden[:, None], WEIGHT, torch.tensor([[0]]), temperature=2.0)
    assert logp.item() == pytest.approx(log_softmax_by_hand([0.5, 1.0, 1.5])[0], abs=1e-6)


def test_sampling_is_seeded_and_its_log_probs_are_exact():
    first = torch.tensor([[1.0, 2.0]] * 500)
    gen = torch.Generator().manual_seed(0)
    tokens, logp = decode_tokens(step_fn, first, WEIGHT, num_tokens=2, gen=gen)
    again, _ = decode_tokens(step_fn, first, WEIGHT, num_tokens=2, gen=torch.Generator().manual_seed(0))
    assert torch.equal(tokens, again)
    hand = torch.tensor(log_softmax_by_hand([1, 2, 3]))
    torch.testing.assert_close(logp[:, 0], hand[tokens[:, 0]])
    # first-token frequencies follow softmax(1, 2, 3) = (0.09, 0.245, 0.665)
    freq = torch.bincount(tokens[:, 0], minlength=3).float() / 500
    assert torch.allclose(freq, hand.exp(), atol=0.06)
