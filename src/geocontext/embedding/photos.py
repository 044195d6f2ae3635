"""Photos and titles as a torch Dataset, so JPEG decoding and tokenizing run in DataLoader worker processes.

A photo that is missing or cannot be decoded yields a zero image and the reason; it never stops the run.
"""
from __future__ import annotations

import signal
import threading
from dataclasses import dataclass

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset


def read_photo(path: str, preprocess) -> tuple[torch.Tensor | None, str]:
    """(preprocessed image, "") or (None, why it could not be read)."""
    try:
        with Image.open(path) as img:
            return preprocess(img.convert("RGB")), ""
    except FileNotFoundError:
        return None, "missing file"
    except Exception as exc:  # truncated or corrupt JPEGs raise OSError, others ValueError, SyntaxError...
        return None, f"unreadable: {type(exc).__name__}: {exc}"


@dataclass
class Batch:
    positions: torch.Tensor  # int64 (B,): rows of the dataset
    images: torch.Tensor  # (B, 3, H, W); zeros where `reasons` is non-empty
    reasons: list[str]  # "" where the photo was read
    ok: torch.Tensor  # bool (B,): the photo was read
    tokens: torch.Tensor  # int64 (B, context_length)

    def pin_memory(self) -> "Batch":  # DataLoader(pin_memory=True) calls this on custom batches
        return Batch(self.positions.pin_memory(), self.images.pin_memory(), self.reasons, self.ok,
                     self.tokens.pin_memory())


class PhotoDataset(Dataset):
    """Item i: photo `paths[i]` through the model's preprocessing and `titles[i]` through its tokenizer."""

    def __init__(self, paths: list[str], titles: list[str], preprocess, tokenizer):
        if len(paths) != len(titles):
            raise ValueError(f"{len(paths)} photo paths but {len(titles)} titles")
        self.paths, self.titles = paths, titles
        self.preprocess, self.tokenizer = preprocess, tokenizer
        self.image_shape = tuple(preprocess(Image.new("RGB", (8, 8))).shape)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        image, reason = read_photo(self.paths[i], self.preprocess)
        if image is None:
            image = torch.zeros(self.image_shape)
        tokens = self.tokenizer([self.titles[i]])[0]
        return i, image, reason, tokens


def collate(items) -> Batch:
    positions, images, reasons, tokens = zip(*items)
    ok = torch.tensor([not r for r in reasons], dtype=torch.bool)
    return Batch(torch.tensor(positions, dtype=torch.int64), torch.stack(images), list(reasons), ok, torch.stack(tokens))


def batches_within(ranges: list[tuple[int, int]], batch_size: int) -> list[list[int]]:
    """Consecutive batches of at most `batch_size` rows that never cross a (start, stop) range's border,
    so each chunk is computed the same way whichever run, resumed or sharded, computes it."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    return [list(range(b, min(b + batch_size, stop))) for start, stop in ranges for b in range(start, stop, batch_size)]


def photo_loader(dataset: PhotoDataset, batches: list[list[int]], workers: int, pin_memory: bool) -> DataLoader:
    """Batches in the order given; workers decode ahead of the model (a few batches each). Iterate it
    through `each_batch`."""
    return DataLoader(dataset, batch_sampler=batches, num_workers=workers, collate_fn=collate,
                      pin_memory=pin_memory, prefetch_factor=4 if workers else None,
                      worker_init_fn=_deaf_to_interrupts if workers else None)


def _deaf_to_interrupts(worker_id: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def each_batch(loader: DataLoader):
    """The batches of `loader`. A terminal's Ctrl-C reaches every process of its group, and the workers
    are stopped by the main process: they are forked with SIGINT blocked, then ignore it (one that took
    it would print its own KeyboardInterrupt traceback, from any point of its life). In the main process
    a Ctrl-C is taken between two batches, as KeyboardInterrupt, never while a batch is handed over (a
    worker whose handover is cut prints a traceback too); later ones are ignored until the process ends."""
    main = threading.current_thread() is threading.main_thread()  # signal.signal works there only
    asked: list[int] = []

    def ask(signum, frame):
        asked.append(signum)
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    previous = signal.signal(signal.SIGINT, ask) if main else None
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        iterator = iter(loader)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    try:
        for batch in iterator:
            if asked:
                break
            yield batch
        if asked:
            raise KeyboardInterrupt
    finally:
        if main and not asked:
            signal.signal(signal.SIGINT, previous)
