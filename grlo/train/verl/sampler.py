"""The training-data order of a verl 0.6.1 run, made to survive a resume (`data.sampler.class_path`).

verl 0.6.1 shuffles with a `RandomSampler` on one generator seeded with `data.seed` (`main_ppo.create_rl_sampler`):
epoch e's order is the generator's e-th permutation. On resume it restores the data loader's position but not the
generator (fixed upstream after 0.6.1, verl PR #4156) and restarts its epoch loop at 0, so a run resumed in epoch
e >= 1 replays epoch 0's order from that position: a resumed run trains on other batches than an uninterrupted one.

`EpochSampler` gives epoch e the permutation of a generator seeded with `data.seed` and e (our choice: any fixed
function of the two; without shuffle, the file order), and keeps the epoch and position in the state the data loader
checkpoints (`data.pt`), so an interrupted-and-resumed run sees exactly the uninterrupted order. The epoch number in
our metrics comes from the step (grlo.train.verl.metrics), not from verl's restarted loop counter.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch

from verl.experimental.dataset.sampler import AbstractSampler

CLASS_PATH = "pkg://grlo.train.verl.sampler"
CLASS_NAME = "EpochSampler"


def permutation(n: int, seed: int, epoch: int, shuffle: bool = True) -> list[int]:
    """The order of epoch `epoch`: a permutation from a generator seeded with (seed, epoch)."""
    if not shuffle:
        return list(range(n))
    g = torch.Generator()
    g.manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=g).tolist()


class _EpochIterator:
    """One epoch's indices; its state (the epoch and how many were drawn) is what a resume needs."""

    def __init__(self, order: list[int], start: int = 0):
        self.order, self.pos = order, start

    def __iter__(self):
        return self

    def __next__(self) -> int:
        if self.pos >= len(self.order):
            raise StopIteration
        self.pos += 1
        return self.order[self.pos - 1]


class EpochSampler(AbstractSampler):
    def __init__(self, data_source, data_config):
        self.n = len(data_source)
        seed = data_config.get("seed")
        self.seed = int(seed) if seed is not None else 0
        self.shuffle = bool(data_config.get("shuffle", True))
        self.epoch = -1  # the epoch of the iteration in progress
        self._it: _EpochIterator | None = None
        self._restored: dict | None = None

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        if self._restored is not None:  # the first iteration after a resume continues the saved epoch
            self.epoch, start, self._restored = self._restored["epoch"], self._restored["pos"], None
        else:
            self.epoch, start = self.epoch + 1, 0
        self._it = _EpochIterator(permutation(self.n, self.seed, self.epoch, self.shuffle), start)
        return self._it

    # torchdata's StatefulDataLoader saves and restores these (verl: <checkpoint>/data.pt)
    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "pos": self._it.pos if self._it is not None else 0}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restored = {"epoch": int(state["epoch"]), "pos": int(state["pos"])}
