"""Token action head: the language model's output restricted to the K action tokens, decoded
autoregressively (L = 8 tokens, KV cache held by the caller's step function), with exact log-probs.

The policy is the softmax over the action-token logits only (text tokens are masked out), divided by
the sampling temperature: log π(tokens) = Σ_l log_softmax(logits_l / T)[token_l]. `sample` and
`log_prob` use the same temperature, so their ratio is exact (TRL scales logits the same way).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torch.nn import functional as F


def action_logits(hidden: Tensor, head_weight: Tensor, temperature: float = 1.0) -> Tensor:
    """(..., D) last hidden states x (K, D) rows of the LM head for the action tokens -> (..., K) float32 logits / T."""
    return F.linear(hidden, head_weight).float() / temperature


def decode_tokens(step_fn: Callable[[Tensor, int], Tensor], first_hidden: Tensor, head_weight: Tensor, num_tokens: int,
                  temperature: float = 1.0, gen: torch.Generator | None = None,
                  greedy: bool = False) -> tuple[Tensor, Tensor]:
    """Decode num_tokens action tokens for N sequences -> tokens (N, L) int64, per-token log-probs (N, L).

    first_hidden: (N, D) hidden state at the last prompt position (it predicts token 0).
    step_fn(token (N,) action indices, l) feeds token l to the model (advancing its KV cache) and
    returns (N, D), the hidden state that predicts token l + 1. greedy: argmax instead of sampling.
    """
    hidden, tokens, token_logp = first_hidden, [], []
    for step in range(num_tokens):                        # autoregressive: token l conditions token l + 1
        logp = torch.log_softmax(action_logits(hidden, head_weight, temperature), dim=-1)    # (N, K)
        if greedy:
            token = logp.argmax(dim=-1)
        else:
            probs = logp.exp()
            device = gen.device if gen is not None else probs.device
            token = torch.multinomial(probs.to(device), 1, generator=gen).squeeze(-1).to(probs.device)
        tokens.append(token)
        token_logp.append(logp.gather(-1, token[:, None]).squeeze(-1))
        if step + 1 < num_tokens:
            hidden = step_fn(token, step)
    return torch.stack(tokens, dim=-1), torch.stack(token_logp, dim=-1)


def token_log_probs(hidden: Tensor, head_weight: Tensor, tokens: Tensor, temperature: float = 1.0) -> Tensor:
    """Teacher-forced per-token log-probs (N, L): hidden (N, L, D) where hidden[:, l] predicts tokens[:, l]."""
    logp = torch.log_softmax(action_logits(hidden, head_weight, temperature), dim=-1)
    return logp.gather(-1, tokens[..., None]).squeeze(-1)
