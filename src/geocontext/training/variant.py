"""A trained variant: how its input is fused, the standardiser fitted on training rows, its location
priors, peers (first stage and pool) and id-neighbour block when its spec uses them, and its head.

Saved as a folder: model.pt (tensors only, loads with weights_only=True) and variant.json."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..embedding.features import FeatureSet, looks_normalised
from ..embedding.identity import check_same
from ..errors import DataError
from ..writing import atomic_file
from .heads import build_head, predict_proba
from .inputs import FeatureSpec, Standardizer, extra_columns, fuse, located
from .location import FOURIER_DIM, LocationPriors
from .neighbours import IdNeighbours
from .peers import Peers, new_photo_columns

MODEL_FILE = "model.pt"  # tensors only: head, standardiser, location priors
SPEC_FILE = "variant.json"  # how the input is fused, the head's shape, what the run recorded


def load_tensors(path: Path) -> dict:
    """A checkpoint of tensors only, loaded with weights_only=True. Anything else (a pickle that would run
    code, a broken file) is refused in one line; PyTorch's advice to retry with the weights-only guard off
    is not passed on, as following it would run the file's code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: missing") from exc
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError...: all mean "not a plain checkpoint"
        raise DataError(f"{path}: refused: not a plain tensor checkpoint that loads safely (weights only);"
                        f" it may run code when unpickled ({type(exc).__name__})") from exc
    if not isinstance(state, dict) or not {"head", "scaler"} <= set(state):
        raise DataError(f"{path}: not a variant checkpoint (expected 'head' and 'scaler' state dicts)")
    return state


@dataclass
class Variant:
    name: str
    features: FeatureSpec
    head_kind: str
    head: nn.Module
    scaler: Standardizer
    columns: tuple[str, ...]
    hidden: int = 256
    dropout: float = 0.5
    # training config, history, scores: carried, not used; except "embeddings": "raw", which makes
    # predict_proba refuse L2-normalised features (the published heads were trained on raw ones), and
    # "encoders" (block -> encoder identity of the features it was trained on), which check_encoders reads
    info: dict = field(default_factory=dict)
    priors: LocationPriors | None = None  # fitted on the training rows, when features.priors
    neighbours: IdNeighbours | None = None  # the labelled rows it reads, when features.neighbours
    peers: Peers | None = None  # the first stage and the scored photos it reads, when features.peers

    @property
    def in_dim(self) -> int:
        return len(self.scaler.mean)

    def input_width(self, features: FeatureSet) -> int:
        """Columns `features` give this variant's spec (to compare with `in_dim`)."""
        extra = (self.priors.dim if self.priors is not None else 0) + FOURIER_DIM * self.features.fourier + \
            (self.neighbours.dim if self.neighbours is not None else 0) + (self.peers.dim if self.peers is not None else 0)
        return self.features.width(features, extra)

    def _fused_key(self):
        """Variants with the same spec (and the same priors and neighbours) read and fuse the inputs once."""
        fitted = [x for x in (self.priors, self.neighbours, self.peers) if x is not None]
        if not fitted:
            return self.features
        if "_fitted_digest" not in self.__dict__:
            self._fitted_digest = tuple(x.digest() for x in fitted)
        return (self.features, self._fitted_digest)

    def check_features(self, features: FeatureSet) -> None:
        """Refuse features the head was not trained on: a head fitted on raw embeddings gives wrong
        probabilities on L2-normalised ones (raw CLIP rows have norms far from 1)."""
        if self.info.get("embeddings") == "raw" and looks_normalised(features):
            said = "its meta.json says normalized: true" if features.meta.get("normalized") else "its rows have unit norm"
            raise DataError(f"{features.path}: variant {self.name!r} needs raw (un-normalised) embeddings, as it was"
                            f" trained on them, but {said}; embed the photos again without L2 normalisation")

    def check_encoders(self, features: FeatureSet, run: str) -> list[str]:
        """Refuse features whose blocks come from other encoders than those the variant was trained on
        (DataError naming both); return warnings for what could not be compared (embedding.identity)."""
        recorded = self.info.get("encoders") or {}
        warnings = []
        for name in self.features.block_names():
            block = features.block(name)
            warnings += check_same(recorded.get(name), block.info.get("identity"),
                                   f"{run}: variant {self.name!r} (trained on {name})", block.where,
                                   "give the features the run was trained on, or embed them with its encoder")
        return warnings

    def predict_proba(self, features: FeatureSet, rows: np.ndarray, location: np.ndarray,
                      irish: np.ndarray | None = None, fused: dict | None = None,
                      ids: np.ndarray | None = None, radius: np.ndarray | None = None) -> np.ndarray:
        """Probabilities for `features` rows `rows` (photos `ids`: the id-neighbour block needs them; each
        ignoring the labelled ids within its `radius`, when given).
        Pass the same dict as `fused` to every variant of an ensemble: variants with the same feature
        spec then read and fuse the inputs once."""
        self.check_features(features)
        fused = {} if fused is None else fused
        key = self._fused_key()
        if key not in fused:
            priors = None if self.priors is None else self.priors.columns(located(self.features, location, irish))
            if self.features.reads_ids and ids is None:
                raise ValueError(f"variant {self.name!r} reads upload neighbours: the photos' ids are needed")
            near = None if self.neighbours is None else self.neighbours.features(ids, radius)
            peers = None if self.peers is None else \
                new_photo_columns(self.peers, self.features, features, rows, location, irish, ids)
            extra = extra_columns(self.features, location, irish, priors, near, peers)
            fused[key] = fuse(self.features, features, rows, location, irish, extra)
        raw = fused[key]  # kept as it is; standardised into a scratch array the variants share
        if raw.shape[1] != self.in_dim:
            raise DataError(f"{features.path}: variant {self.name!r} expects {self.in_dim} inputs"
                            f" ({self.features.name}), the features give {raw.shape[1]} (blocks"
                            f" {', '.join(self.features.block_names())})")
        scratch = fused.get((key, "scratch"))
        if scratch is None:
            scratch = fused[(key, "scratch")] = np.empty_like(raw)
        x = self.scaler.transform(raw, out=scratch)
        return predict_proba(self.head, x)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {"head": self.head.state_dict(), "scaler": self.scaler.state()}
        if self.priors is not None:
            state["priors"] = self.priors.state()
        if self.neighbours is not None:
            state["neighbours"] = self.neighbours.state()
        if self.peers is not None:
            state["peers"] = self.peers.state()
        atomic_file(folder / MODEL_FILE, lambda h: torch.save(state, h))
        spec = {"name": self.name, "features": self.features.to_dict(), "head": self.head_kind,
                "hidden": self.hidden, "dropout": self.dropout, "in_dim": self.in_dim,
                "columns": list(self.columns), **self.info}
        atomic_file(folder / SPEC_FILE, lambda h: h.write(json.dumps(spec, indent=2).encode()))
        return folder

    @staticmethod
    def encoders(spec: FeatureSpec, features: FeatureSet) -> dict:
        """What a variant on `spec` records of `features`: each fused block's encoder identity."""
        return {name: features.block(name).info.get("identity") for name in spec.block_names()}

    @staticmethod
    def read_info(folder: str | Path) -> dict:
        """variant.json of a saved variant, without loading its weights."""
        folder = Path(folder)
        try:
            return json.loads((folder / SPEC_FILE).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{folder}: not a readable variant folder ({exc})") from exc

    @classmethod
    def load(cls, folder: str | Path) -> "Variant":
        folder = Path(folder)
        spec = cls.read_info(folder)
        state = load_tensors(folder / MODEL_FILE)
        head = build_head(spec["head"], spec["in_dim"], len(spec["columns"]), spec["hidden"], spec["dropout"])
        head.load_state_dict(state["head"])
        head.eval()
        info = {k: v for k, v in spec.items()
                if k not in ("name", "features", "head", "hidden", "dropout", "in_dim", "columns")}
        features = FeatureSpec.from_dict(spec["features"])
        if features.priors and "priors" not in state:
            raise DataError(f"{folder / MODEL_FILE}: the variant uses location priors but its checkpoint has none")
        priors = LocationPriors.from_state(state["priors"]) if features.priors else None
        if features.neighbours and "neighbours" not in state:
            raise DataError(f"{folder / MODEL_FILE}: the variant reads the id-neighbour block but its checkpoint"
                            " has none")
        neighbours = IdNeighbours.from_state(state["neighbours"]) if features.neighbours else None
        if features.peers and "peers" not in state:
            raise DataError(f"{folder / MODEL_FILE}: the variant reads its peers' columns but its checkpoint has"
                            " no first stage")
        peers = Peers.from_state(state["peers"]) if features.peers else None
        return cls(spec["name"], features, spec["head"], head, Standardizer.from_state(state["scaler"]),
                   tuple(spec["columns"]), spec["hidden"], spec["dropout"], info, priors, neighbours, peers)
