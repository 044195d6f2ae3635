"""The context-tag worker: download the batch's photos, embed photos and titles with the CLIP encoder,
and apply a finished run's final choice (members, weights, decoder) exactly as `predict` does.

The protocol's rows carry no grid reference, so a photo's location is unknown (NaN, which the feature
spec turns into zeros and, with unknown="flag", an "unknown" flag, as for a blank reference in
metadata.csv); a row that does carry `grid_reference` is located like metadata.csv's.

A photo whose download failed for a fault of its own is answered "Failed"; one whose host failed
(refused, timeout, 5xx, TLS) is left for the queue, unless the host served the batch's other photos
while failing this one STRIKES batches running (then it is that photo's fault). When no photo of a
batch came and the host failed, the batch is an outage: the loop backs off. A photo URL the rules
refuse (its host not allowed) or a certificate not trusted stops the worker: the operator must act.
Photos are embedded one model batch at a time, and after a stop no further batch is begun."""
from __future__ import annotations

import io
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

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
from .photos import FATAL, HOST, PHOTO, STOPPED
from .queue import QueueClient
from .records import embedding_records, failed_records, label_records
from .worker import Answer


STRIKES = 3  # batches in which the host fails one photo while serving others, before that photo is Failed
REMEMBERED = 10_000  # photos whose strikes are kept


class ContextWorker:
    titles: ClassVar[bool] = True  # the rows must carry titles: batches.py asks for them (title=1) when they do not

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
        self.strikes: OrderedDict[int, int] = OrderedDict()
        self.run_name = Path(run_dir).resolve().name

    @property
    def facts(self) -> dict:
        """What wrote the labels, for the User-Agent Geograph stores with each of them."""
        return {"run": self.run_name, "choice": "+".join(self.choice.members) + "/" + self.choice.decoder.kind,
                "encoder": self.encoder.model_name}

    def feature_set(self, ids: np.ndarray, image: np.ndarray, title: np.ndarray) -> FeatureSet:
        """The batch's features as FEATURES blocks: image@MODEL and title@MODEL (also "image" and "title"),
        so variants trained on a folder's named blocks find theirs; with this encoder's identity, which the
        run's variants are checked against."""
        label, identity = self.encoder.label, self.encoder.identity()
        blocks = {f"{kind}@{label}": Block(f"{kind}@{label}", kind, array,
                                           {"kind": kind, "dim": array.shape[1], "identity": identity})
                  for kind, array in (("image", image), ("title", title))}
        return FeatureSet(Path("queue batch"), ids, image, title, {"normalized": False}, blocks)

    def _photo(self, prefix: str, row: dict) -> tuple[torch.Tensor | None, str, str]:
        """(the preprocessed photo, "", "") or (None, why, whose fault: photos.PHOTO, HOST, STOPPED, FATAL)."""
        path = row.get("fullpath")
        if not isinstance(path, str) or not path:
            return None, "no fullpath", PHOTO
        got = self.client.download(prefix + path)
        if got.data is None:
            return None, got.why, got.fault
        image, why = read_photo(io.BytesIO(got.data), self.encoder.preprocess)
        return image, why, "" if image is not None else PHOTO

    def embed(self, images: list[torch.Tensor], titles: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """float32 image and title embeddings, one model batch at a time; after a stop no further batch is
        begun, so fewer rows may come back than photos were given."""
        enc, size = self.encoder, self.batch_size
        image, title = [], []
        for b in range(0, len(images), size):
            if b and self.client.stopper.stopped:
                break
            image.append(enc.encode_images(torch.stack(images[b:b + size])))
            title.append(enc.encode_texts(titles[b:b + size], size))
        if not image:
            return np.empty((0, enc.dim), np.float32), np.empty((0, enc.dim), np.float32)
        return np.concatenate(image).astype(np.float32), np.concatenate(title).astype(np.float32)

    def judge(self, rows: list[dict], photos: list) -> tuple[list, list[int], str]:
        """(failures: [(id, why)], ids left for the queue, why the host is unreachable or "") of a batch's
        downloads (the module docstring's rules)."""
        fatal = next((why for _, why, fault in photos if fault == FATAL), "")
        if fatal:
            raise DataError(self.client.secrets.scrub(fatal))
        served = any(image is not None for image, _, _ in photos)
        failures, left, outage = [], [], ""
        for row, (image, why, fault) in zip(rows, photos):
            image_id = row["gridimage_id"]
            if image is not None:
                self.strikes.pop(image_id, None)
            elif fault == HOST and served:
                self.strikes[image_id] = strikes = self.strikes.pop(image_id, 0) + 1
                if strikes < STRIKES:
                    left.append(image_id)
                    continue
                del self.strikes[image_id]
                failures.append((image_id, f"{why} ({strikes} batches running, while the host served other photos)"))
            elif fault in (HOST, STOPPED):
                left.append(image_id)
                outage = outage or (why if fault == HOST else "")
            else:
                failures.append((image_id, why))
        while len(self.strikes) > REMEMBERED:
            self.strikes.popitem(last=False)
        return failures, left, outage

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
        failures, left, outage = self.judge(rows, photos)
        labels, embeddings = failed_records([i for i, _ in failures]), []
        good = [(row, image) for row, (image, _, _) in zip(rows, photos) if image is not None]
        if good:
            titles = [r["title"] if isinstance(r.get("title"), str) else "" for r, _ in good]
            image, title = self.embed([img for _, img in good], titles)
            left += [r["gridimage_id"] for r, _ in good[len(image):]]  # not embedded: stopped
            good = good[:len(image)]
        if good:
            ids = np.array([r["gridimage_id"] for r, _ in good], dtype=np.int64)
            probs, chosen = self.probabilities(ids, image, title, [r for r, _ in good])
            labels = label_records(ids, probs, self.names, self.threshold, chosen) + labels
            embeddings = embedding_records(ids, image, title)
        # labels first: they answer the photos (worker.py says why the order matters on Geograph's server)
        return Answer([labels, embeddings], failures, {"fetch": fetched - began, "embed": time.perf_counter() - fetched},
                      left, outage)
