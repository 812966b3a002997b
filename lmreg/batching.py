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
    """Token ids, numeric values and slot kinds per row (see :mod:`lmreg.tokenizer`).

    Parameters
    ----------
    ids : list of int arrays
        Token ids of each row (variable length).
    values : list of float32 arrays
        Normalised numeric value at each slot, 0 outside numeric slots.
    kinds : list of int8 arrays
        ``0`` ordinary token, ``1`` numeric value, ``2`` missing numeric value.
    tasks : ndarray of str, optional
        Each row's task, with ``task_column`` (a model that fell back predicts from the
        training targets of the row's own task).

    Examples
    --------
    >>> ids = [np.array([2, 7, 3]), np.array([2, 3])]
    >>> enc = Encoded(ids, [np.zeros(len(r), np.float32) for r in ids],
    ...               [np.zeros(len(r), np.int8) for r in ids])
    >>> len(enc), enc.lengths().tolist()
    (2, [3, 2])
    >>> enc.subset([1]).ids[0].tolist()
    [2, 3]
    """

    ids: list
    values: list
    kinds: list
    tasks: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> np.ndarray:
        """Tokens per row, int64 ``[n_rows]``."""
        return np.fromiter((len(r) for r in self.ids), dtype=np.int64, count=len(self.ids))

    def subset(self, rows) -> "Encoded":
        """The rows ``rows`` (an index sequence), in that order; arrays are shared, not copied."""
        return Encoded([self.ids[r] for r in rows], [self.values[r] for r in rows], [self.kinds[r] for r in rows],
                       None if self.tasks is None else self.tasks[np.asarray(rows, dtype=np.int64)])


@dataclass
class Batch:
    """One left-padded mini-batch of ``B`` rows and ``T`` slots, built by :func:`collate`.

    Parameters
    ----------
    ids : LongTensor [B, T]
        Token ids; the left padding holds ``pad_id``.
    values : FloatTensor [B, T]
        Normalised numeric values, 0 outside numeric slots.
    kinds : Int8Tensor [B, T]
        Slot kinds, as in :class:`Encoded`.
    attention_mask : LongTensor [B, T]
        0 on the left padding, 1 elsewhere.

    Examples
    --------
    >>> b = Batch(torch.ones(2, 3, dtype=torch.long), torch.zeros(2, 3),
    ...           torch.zeros(2, 3, dtype=torch.int8), torch.ones(2, 3, dtype=torch.long))
    >>> moved = b.to("cpu")  # every tensor moves, dtypes are kept
    >>> moved.ids.dtype, moved.kinds.dtype, tuple(moved.values.shape)
    (torch.int64, torch.int8, (2, 3))
    """

    ids: torch.Tensor             # [B, T] long
    values: torch.Tensor          # [B, T] float
    kinds: torch.Tensor           # [B, T] int8
    attention_mask: torch.Tensor  # [B, T] long, 0 on left padding

    def to(self, device) -> "Batch":
        """A copy with every tensor on ``device``."""
        return Batch(*(t.to(device) for t in (self.ids, self.values, self.kinds, self.attention_mask)))


def collate(enc: Encoded, rows, pad_id: int) -> Batch:
    """Left-pad the selected rows to the longest among them (not to a global maximum).

    Parameters
    ----------
    enc : Encoded
    rows : sequence of int
        Indices into ``enc``, in batch order.
    pad_id : int
        Token id of the padding.

    Returns
    -------
    Batch
        Tensors ``[len(rows), T]``, ``T`` the length of the longest selected row.

    Examples
    --------
    >>> ids = [np.array([5, 6, 7]), np.array([8]), np.array([9, 9, 9, 9, 9])]
    >>> enc = Encoded(ids, [np.ones(len(r), np.float32) for r in ids],
    ...               [np.zeros(len(r), np.int8) for r in ids])
    >>> batch = collate(enc, [0, 1], pad_id=0)  # row 2, the longest, is not selected
    >>> batch.ids.tolist()
    [[5, 6, 7], [0, 0, 8]]
    >>> batch.attention_mask.tolist(), batch.values[1].tolist()
    ([[1, 1, 1], [0, 0, 1]], [0.0, 0.0, 1.0])
    """
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

    Parameters
    ----------
    lengths : int array [n]
        Tokens per row (:meth:`Encoded.lengths`).
    batch_size : int
    rng : numpy.random.Generator or None, default=None
    pool : int, default=50
        Batches per sorting pool when shuffling.

    Returns
    -------
    list of int arrays
        Row indices; every row appears in exactly one batch.

    Examples
    --------
    >>> lengths = np.array([5, 1, 4, 2, 3])
    >>> [b.tolist() for b in length_batches(lengths, 2)]
    [[1, 3], [4, 2], [0]]
    >>> batches = length_batches(lengths, 2, rng=np.random.default_rng(0))
    >>> sorted(np.concatenate(batches).tolist())
    [0, 1, 2, 3, 4]
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
