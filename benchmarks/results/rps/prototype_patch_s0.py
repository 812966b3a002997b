"""Prototype (benchmark-only patch): a distance-aware loss on digit tokens added to SFT's CE.
python ntl.py ARM LAMBDA -- <lmreg bench args>; ARM: base | rps (ranked probability score per
digit position: sum_k (F(k) - 1[k >= d*])^2) | was (Wasserstein-1: sum_k |F(k) - 1[k >= d*]|)."""
import sys
import torch
import lmreg.training.sft as sft

ARM, LAM = sys.argv[1], float(sys.argv[2])
_tfs, _clp = sft.teacher_forced_states, sft.constrained_logprobs
STASH = {}

def teacher_forced_states(model, batch, grammar, tokens):
    h = _tfs(model, batch, grammar, tokens)
    STASH["h"] = h
    return h

def constrained_logprobs(model, hidden, grammar, targets, temperature=1.0):
    logp = _clp(model, hidden, grammar, targets, temperature)
    if ARM == "base" or STASH.get("h") is not hidden:
        return logp
    extra = []
    for p in range(grammar.length):
        allowed = grammar.allowed[p]
        if len(allowed) != 10:
            extra.append(torch.zeros_like(logp[:, p])); continue
        logits = hidden[:, p] @ model.head.weight[allowed].T + model.head.bias[allowed]
        probs = torch.softmax(logits.float(), dim=-1)
        cdf = probs.cumsum(-1)[:, :9]
        d = grammar.index[p, targets[:, p]]
        step = (torch.arange(9, device=d.device)[None, :] >= d[:, None]).float()
        diff = cdf - step
        extra.append((diff * diff).sum(-1) if ARM == "rps" else diff.abs().sum(-1))
    return logp - LAM * torch.stack(extra, dim=1)

sft.teacher_forced_states, sft.constrained_logprobs = teacher_forced_states, constrained_logprobs
print(f"[ntl] arm={ARM} lambda={LAM}", file=sys.stderr)
from lmreg.bench import main
sys.exit(main(sys.argv[4:]))
