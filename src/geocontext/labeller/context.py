"""The context-tag worker: download the batch's photos, embed photos and titles with the CLIP encoder,
and apply a finished run's final choice (members, weights, decoder) exactly as `predict` does.

The protocol's rows carry no grid reference, so a photo's location is unknown (NaN, which the feature
spec turns into zeros and, with unknown="flag", an "unknown" flag, as for a blank reference in
metadata.csv); a row that does carry `grid_reference` is located like metadata.csv's."""
from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..competition import BY_COLUMN
from ..data import grid
from ..data.readers import read_tag_names
from ..embedding.encoder import Encoder
from ..embedding.features import Block, FeatureSet
from ..embedding.photos import read_photo
from ..errors import DataError
from ..pipeline.predict import check_encoders, load_run
from .photos import STOPPED
from .queue import QueueClient
from .records import embedding_records, failed_records, label_records
from .worker import Answer


class ContextWorker:
    def __init__(self, run_dir, encoder: Encoder, client: QueueClient, threshold: float = 0.2, batch_size: int = 32,
                 fetchers: int = 16, tags_dir=None):
        info, self.variants, self.choice = load_run(run_dir)
        names = read_tag_names(tags_dir) if tags_dir else {col: tag.name for col, tag in BY_COLUMN.items()}
        self.names = [names.get(col, col) for col in info["columns"]]
        self.encoder, self.client, self.threshold, self.batch_size = encoder, client, threshold, batch_size
        empty = np.empty((0, encoder.dim), dtype=np.float32)
        check_encoders(self.variants.values(), self.feature_set(np.empty(0, np.int64), empty, empty.copy()), run_dir)
        for name, variant in self.variants.items():
            try:  # the blocks a variant fuses must be this encoder's image and title blocks
                width = variant.input_width(self.feature_set(np.empty(0, np.int64), empty, empty.copy()))
            except DataError as exc:
                raise DataError(f"{run_dir}: variant {name!r} fuses blocks this worker cannot make ({exc});"
                                f" use the encoder the run was trained on") from None
            if width != variant.in_dim:
                raise DataError(f"{run_dir}: variant {name!r} expects {variant.in_dim} inputs, but {encoder.name}"
                                f" makes {encoder.dim}-d embeddings ({variant.features.name} -> "
                                f"{width}); use the encoder the run was trained on")
        self.pool = ThreadPoolExecutor(max_workers=max(1, fetchers), thread_name_prefix="photo")

    def feature_set(self, ids: np.ndarray, image: np.ndarray, title: np.ndarray) -> FeatureSet:
        """The batch's features as FEATURES blocks: image@MODEL and title@MODEL (also "image" and "title"),
        so variants trained on a folder's named blocks find theirs; with this encoder's identity, which the
        run's variants are checked against."""
        label, identity = self.encoder.label, self.encoder.identity()
        blocks = {f"{kind}@{label}": Block(f"{kind}@{label}", kind, array,
                                           {"kind": kind, "dim": array.shape[1], "identity": identity})
                  for kind, array in (("image", image), ("title", title))}
        return FeatureSet(Path("queue batch"), ids, image, title, {"normalized": False}, blocks)

    def _photo(self, prefix: str, row: dict) -> tuple[torch.Tensor | None, str]:
        path = row.get("fullpath")
        if not isinstance(path, str) or not path:
            return None, "no fullpath"
        data, why = self.client.download(prefix + path)
        if data is None:
            return None, why
        return read_photo(io.BytesIO(data), self.encoder.preprocess)

    def embed(self, images: list[torch.Tensor], titles: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """float32 image and title embeddings, batch by batch; titles sorted by length, so each batch is
        cut to its longest title (as `embed` does)."""
        enc, size = self.encoder, self.batch_size
        image = np.empty((len(images), enc.dim), dtype=np.float32)
        for b in range(0, len(images), size):
            image[b:b + size] = enc.encode_images(torch.stack(images[b:b + size]))
        title = enc.encode_texts(titles, size)
        return image, title

    def probabilities(self, ids: np.ndarray, image: np.ndarray, title: np.ndarray,
                      rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        """(the final choice's probabilities, its 0/1 tags) for these photos, through the variants' own
        predict_proba (fusing, standardising), as `predict` computes them."""
        features = self.feature_set(ids, image, title)
        refs = [r["grid_reference"] if isinstance(r.get("grid_reference"), str) else "" for r in rows]
        where = grid.locate(refs)
        location, irish = grid.normalise(where.latlon), where.irish
        fused: dict = {}
        probs = [self.variants[m].predict_proba(features, np.arange(len(ids)), location, irish, fused, ids)
                 for m in self.choice.members]
        return self.choice.combine(probs, ids), self.choice.decode(probs, ids)

    def __call__(self, reply: dict, rows: list[dict]) -> Answer:
        began = time.perf_counter()
        prefix = reply.get("prefix") if isinstance(reply.get("prefix"), str) else ""
        photos = list(self.pool.map(lambda row: self._photo(prefix, row), rows))
        fetched = time.perf_counter()
        left = [r["gridimage_id"] for r, (_, why) in zip(rows, photos) if why == STOPPED]
        failures = [(r["gridimage_id"], why) for r, (img, why) in zip(rows, photos) if img is None and why != STOPPED]
        labels, embeddings = failed_records([i for i, _ in failures]), []
        ok = np.array([img is not None for img, _ in photos], dtype=bool)
        if ok.any():
            good = [r for r, keep in zip(rows, ok) if keep]
            ids = np.array([r["gridimage_id"] for r in good], dtype=np.int64)
            titles = [r["title"] if isinstance(r.get("title"), str) else "" for r in good]
            image, title = self.embed([img for img, _ in photos if img is not None], titles)
            probs, chosen = self.probabilities(ids, image, title, good)
            labels = label_records(ids, probs, self.names, self.threshold, chosen) + labels
            embeddings = embedding_records(ids, image, title)
        # embeddings first: a worker killed between the two posts has not marked the photo done (its labels
        # are what the server counts), so the queue serves it again and nothing is lost
        return Answer([embeddings, labels], failures, {"fetch": fetched - began, "embed": time.perf_counter() - fetched},
                      left)
