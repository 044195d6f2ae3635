"""Final heads on every labelled row.

Once the honest choice is made on the hold-out, each chosen member trained by this run is trained again
on the training and hold-out rows together, for the number of epochs its early stopping chose (best
epoch + 1, on the same learning-rate schedule), with its location priors and standardiser refitted on
those rows. Its test probabilities replace the stopped head's and the refitted head is the one saved
(so `predict` gives the submission's tags). Hold-out probabilities, scores and the decoder stay those of
the stopped heads: the refitted ones have seen the hold-out, so nothing is scored on them.
Members brought in with `--with` are left as they came."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..console import say
from ..training.config import TrainConfig
from ..training.heads import predict_proba
from ..training.loop import fit, storage_dtype
from ..training.variant import Variant
from .members import Members
from .prepare import Prepared
from .tensors import spec_inputs


def _refittable(out: Path, members: Members, names) -> list[Variant]:
    """The chosen members this run trained and has not refitted yet."""
    found = []
    for name in names:
        report = members.reports.get(name, {})
        if "from" in report or "refit" in report:
            continue
        variant = Variant.load(out / "variants" / name)
        if variant.info.get("best_epoch", -1) >= 0 and "train" in variant.info:
            found.append(variant)
    return found


def refit_members(prep: Prepared, max_tags: int, seed: int, out: Path, members: Members, names,
                  timings: dict) -> None:
    """Retrain the members `names` (see the module) on every labelled row with at most `max_tags` tags,
    and replace their test probabilities in `members`."""
    todo = _refittable(out, members, names)
    if not todo:
        return
    learn = prep.labels.y.sum(axis=1) <= max_tags
    groups: dict = {}
    for variant in todo:
        groups.setdefault(variant.features, []).append(variant)
    for spec, group in groups.items():
        t = time.perf_counter()
        configs = [TrainConfig(**v.info["train"]) for v in group]
        dtypes = sorted({storage_dtype(c.precision) for c in configs}, key=str)
        inputs = spec_inputs(prep, spec, learn, [(learn, dt) for dt in dtypes], seed)
        timings[f"refit features {spec.name}"] = time.perf_counter() - t
        y = torch.from_numpy(prep.labels.y[learn])
        for old, config in zip(group, configs):
            epochs = old.info["best_epoch"] + 1
            x = inputs.train[dtypes.index(storage_dtype(config.precision))]
            say(f"refitting {old.name} on all {len(x)} labelled rows for {epochs} epochs")
            result = fit(x, y, None, None, config, desc=f"{old.name} (all rows)", epochs=epochs)
            refit = {"rows": int(learn.sum()), "epochs": epochs, "seconds": round(result.seconds, 2)}
            variant = Variant(old.name, spec, old.head_kind, result.head, inputs.scaler, old.columns, old.hidden,
                              old.dropout, info={**old.info, "refit": refit}, priors=inputs.priors)
            folder = variant.save(out / "variants" / old.name)
            test = predict_proba(variant.head, inputs.test)
            np.save(folder / "test_probs.npy", test)
            members.test_probs[old.name] = test
            members.reports[old.name]["refit"] = refit
            (folder / "report.json").write_text(json.dumps(members.reports[old.name], indent=2))
            timings[f"refit {old.name}"] = result.seconds
