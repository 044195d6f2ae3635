"""Final heads on every labelled row.

Once the honest choice is made on the hold-out, each chosen member trained by this run is trained again
on the training and hold-out rows together, for the number of epochs its early stopping chose (best
epoch + 1, on the same learning-rate schedule), with its location priors and standardiser refitted on
those rows (pipeline.group, as training does). Its test probabilities replace the stopped head's and the
refitted head is the one saved (so `predict` gives the submission's tags). Hold-out probabilities, scores
and the decoder stay those of the stopped heads: the refitted ones have seen the hold-out, so nothing is
scored on them. Members brought in with `--with` are left as they came."""
from __future__ import annotations

from ..training.config import TrainConfig
from ..training.variant import Variant
from .group import Job, train_group
from .members import Members, save_member
from .prepare import Prepared
from .run_folder import RunFolder


def _refittable(out: RunFolder, members: Members, names) -> list[Variant]:
    """The chosen members this run trained and has not refitted yet."""
    found = []
    for name in names:
        report = members.reports.get(name, {})
        if "from" in report or "refit" in report:
            continue
        variant = Variant.load(out.member(name).path)
        if variant.info.get("best_epoch", -1) >= 0 and "train" in variant.info:
            found.append(variant)
    return found


def refit_members(prep: Prepared, max_tags: int, seed: int, out: RunFolder, members: Members, names,
                  timings: dict) -> None:
    """Retrain the members `names` (see the module) on every labelled row with at most `max_tags` tags,
    and replace their test probabilities in `members`."""
    todo = _refittable(out, members, names)
    learn = prep.labels.y.sum(axis=1) <= max_tags
    groups: dict = {}
    for variant in todo:
        groups.setdefault(variant.features, []).append(variant)
    for spec, group in groups.items():
        jobs = [Job(v.name, TrainConfig.from_dict(v.info["train"]), epochs=v.info["best_epoch"] + 1, info=v.info)
                for v in group]
        for done in train_group(prep, spec, jobs, learn, timings, seed, label="refit "):
            refit = {"rows": int(learn.sum()), "epochs": done.job.epochs, "seconds": round(done.result.seconds, 2)}
            done.variant.info["refit"] = refit
            name = done.job.name
            save_member(out, done.variant, members.holdout_probs[name], done.test, {**members.reports[name], "refit": refit},
                        members, members.far_probs.get(name))
            timings[f"refit {name}"] = done.result.seconds
