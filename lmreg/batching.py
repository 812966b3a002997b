"""Encoded rows -> left-padded tensors, with dynamic padding.

Shared by training and decoding. Left padding puts the end of every prompt at the
same position, so the number tokens that follow occupy the same tail slots in every
row and positions are recovered from the attention mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Encoded:
    """Token ids, numeric values and slot kinds per row (see :mod:`lmreg.tokenizer`)."""

    ids: list
    values: list
    kinds: list

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(r) for r in self.ids), dtype=np.int64, count=len(self.ids))


@dataclass
class Batch:
    ids: torch.Tensor             # [B, T] long
    values: torch.Tensor          # [B, T] float
    kinds: torch.Tensor           # [B, T] int8
    attention_mask: torch.Tensor  # [B, T] long, 0 on left padding

    def to(self, device) -> "Batch":
        return Batch(*(t.to(device) for t in (self.ids, self.values, self.kinds, self.attention_mask)))


def collate(enc: Encoded, rows, pad_id: int) -> Batch:
    """Left-pad the selected rows to the longest among them (not to a global maximum)."""
    rows = np.asarray(rows)
    T = max(len(enc.ids[r]) for r in rows)
    B = len(rows)
    ids = np.full((B, T), pad_id, dtype=np.int64)
    values = np.zeros((B, T), dtype=np.float32)
    kinds = np.zeros((B, T), dtype=np.int8)
    mask = np.zeros((B, T), dtype=np.int64)
    for b, r in enumerate(rows):
        n = len(enc.ids[r])
        ids[b, T - n:] = enc.ids[r]
        values[b, T - n:] = enc.values[r]
        kinds[b, T - n:] = enc.kinds[r]
        mask[b, T - n:] = 1
    return Batch(torch.from_numpy(ids), torch.from_numpy(values), torch.from_numpy(kinds),
                 torch.from_numpy(mask))


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None,
                   pool: int = 50) -> list[np.ndarray]:
    """Split row indices into batches of similar length.

    Without ``rng`` (prediction): rows sorted by length, in order. With ``rng``
    (training): shuffled, then sorted within pools of ``pool`` batches so padding
    stays small while the batch order stays random.
    """
    n = len(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    order = rng.permutation(n)
    batches = []
    span = batch_size * pool
    for start in range(0, n, span):
        chunk = order[start:start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]
