"""A small decoder-only transformer written from scratch, with a KV cache for batched sampling.

Shapes: tokens (B, T) int64; logits (B, T, V). A cache is one ``(k, v)`` pair per layer, each
(B, H, T_past, D/H). ``forward(tokens, cache)`` lets token ``t`` of the new block attend to every cached
position and to the new positions ``<= t``. ``sample`` encodes each prompt once, keeps its cache
once per prompt: rows ``m*n .. m*n+n-1`` belong to prompt ``m`` and attend to its keys without copies) and
decodes all rows together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from verl_focal.experiments.maze.generator import EOS, PAD, VOCAB


@dataclass(frozen=True)
class ModelConfig:
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    max_len: int = 128
    vocab: int = len(VOCAB)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.heads = cfg.n_heads
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, 4 * cfg.d_model), nn.GELU(), nn.Linear(4 * cfg.d_model, cfg.d_model))

    def forward(self, x: torch.Tensor, past, prefix, n: int):
        """x (B, T, d). past: this block's own (k, v) of the B rows, or None. prefix: (k, v) of M = B/n
        shared prompts, row m serving rows m*n .. m*n+n-1, or None. Returns (B, T, d) and the own (k, v)."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        att = attend(q, k, v, prefix, n)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x)), (k, v)


def attend(q, k, v, prefix, n: int) -> torch.Tensor:
    """Causal attention of q (B, H, T, e) over [shared prefix (M, H, P, e)] + own keys k, v (B, H, S, e).

    scores = q k^T / sqrt(e); new position i (of T, the last T of S) sees own positions <= S - T + i and the
    whole prefix; softmax over prefix and own positions together.
    """
    t, s = q.shape[2], k.shape[2]
    mask = None
    if t > 1:
        mask = torch.ones(t, s, dtype=torch.bool, device=q.device).tril(diagonal=s - t)
    if prefix is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    kp, vp = prefix
    m, h, p, e = kp.shape
    scale = 1.0 / math.sqrt(e)
    qm = q.view(m, n, h, t, e)
    s_pre = torch.einsum("mnhte,mhpe->mnhtp", qm, kp).reshape(m * n, h, t, p) * scale
    s_own = (q @ k.transpose(-1, -2)) * scale
    if mask is not None:
        s_own = s_own.masked_fill(~mask, float("-inf"))
    probs = torch.softmax(torch.cat([s_pre, s_own], dim=-1), dim=-1)
    out_pre = torch.einsum("mnhtp,mhpe->mnhte", probs[..., :p].reshape(m, n, h, t, p), vp).reshape(m * n, h, t, e)
    return out_pre + probs[..., p:] @ v


class MazeTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab)

    def forward(self, tokens: torch.Tensor, cache=None, prefix=None, n: int = 1):
        """logits (B, T, V) of the next token after each position, and the rows' own extended cache.

        cache: the rows' own per-layer (k, v) or None; prefix: per-layer (k, v) of shared prompts (see
        ``Block.forward``) or None. Positions continue after prefix and cache.
        """
        start = (0 if cache is None else cache[0][0].shape[2]) + (0 if prefix is None else prefix[0][0].shape[2])
        if start + tokens.shape[1] > self.cfg.max_len:
            raise ValueError(f"sequence of {start + tokens.shape[1]} tokens exceeds max_len={self.cfg.max_len}")
        x = self.tok(tokens) + self.pos(torch.arange(start, start + tokens.shape[1], device=tokens.device))
        new = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if cache is None else cache[i], None if prefix is None else prefix[i], n)
            new.append(kv)
        return self.head(self.ln(x)), new


def response_mask(responses: torch.Tensor) -> torch.Tensor:
    """(B, L) float: 1 up to and including the first ``<eos>`` (all L when there is none)."""
    is_eos = (responses == EOS).long()
    before = is_eos.cumsum(dim=1) - is_eos  # eos tokens strictly before position t
    return (before == 0).float()


@torch.no_grad()
def sample(model: MazeTransformer, prompts: torch.Tensor, n: int, max_new: int, generator: torch.Generator):
    """n samples per prompt at temperature 1.

    Args:
        prompts: (M, P) int64, all the same length.
    Returns:
        responses (M*n, max_new) int64, PAD after the first ``<eos>``; token_logprobs (M*n, max_new) float32
        (0 on padding); mask (M*n, max_new) float32 from ``response_mask``.
    """
    logits, prefix = model(prompts)
    cache = None
    last = logits[:, -1].repeat_interleave(n, dim=0)
    rows = last.shape[0]
    out = torch.full((rows, max_new), PAD, dtype=torch.long)
    logps = torch.zeros(rows, max_new)
    done = torch.zeros(rows, dtype=torch.bool)
    for t in range(max_new):
        logp = torch.log_softmax(last.float(), dim=-1)
        token = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
        token = torch.where(done, torch.full_like(token, PAD), token)
        out[:, t] = token
        logps[:, t] = torch.where(done, 0.0, logp.gather(1, token[:, None]).squeeze(1))
        done |= token == EOS
        if bool(done.all()) or t == max_new - 1:
            break
        logits, cache = model(token[:, None], cache, prefix, n)
        last = logits[:, -1]
    return out, logps, response_mask(out)


def response_logprobs(model: MazeTransformer, prompts: torch.Tensor, responses: torch.Tensor, n: int) -> torch.Tensor:
    """log pi(response_t | prompt, response_<t), (M*n, L), with gradients; the prompt is encoded once.

    The last prompt position predicts response token 0; response position t predicts token t+1.
    """
    logits_p, prefix = model(prompts)
    logits_r, _ = model(responses[:, :-1], None, prefix, n)
    logits = torch.cat([logits_p[:, -1:].repeat_interleave(n, dim=0), logits_r], dim=1)
    return torch.log_softmax(logits.float(), dim=-1).gather(2, responses[:, :, None]).squeeze(2)


def full_logprobs(model: MazeTransformer, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
    """The same log-probs from one plain causal forward of ``prompt + response`` (no cache); (B, L)."""
    seq = torch.cat([prompts, responses], dim=1)
    logits, _ = model(seq[:, :-1])
    p = prompts.shape[1]
    return torch.log_softmax(logits[:, p - 1 :].float(), dim=-1).gather(2, responses[:, :, None]).squeeze(2)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def initial_model(cfg: ModelConfig, seed: int) -> MazeTransformer:
    torch.manual_seed(seed)
    model = MazeTransformer(cfg)
    for p in model.parameters():
        if p.dim() > 1:
            nn.init.normal_(p, std=0.02 if p.shape[0] != cfg.vocab else 0.02 / math.sqrt(2))
    return model
