"""Facts every stage shares: the competition's slug, id column, photo layout, its 49 context tags
and the rule that every photo carries at least one tag.

The tags are held as facts so the demo needs nothing from Kaggle. `prevalence` is the share of the 609,822 labelled training photos that carry the tag (measured on
the competition's train.csv); the demo uses it to draw realistic labels.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

COMPETITION = "predict-geographic-context-from-landscape-photos"
ID = "gridimage_id"
SPLITS = ("train", "test")  # DATA's two id lists: train.csv [+ train-extra.csv] and test.csv


class Tag(NamedTuple):
    tag_id: int
    name: str
    grouping: str
    prevalence: float

    @property
    def column(self) -> str:
        return f"tag{self.tag_id}"


# In tags-top.csv order (grouped by theme).
TAGS: tuple[Tag, ...] = (
    Tag(787, "Coastal", "Topography", 0.0779),
    Tag(946, "Islands", "Topography", 0.0137),
    Tag(1166, "Flat landscapes", "Topography", 0.0109),
    Tag(788, "Lowlands", "Topography", 0.0507),
    Tag(791, "Uplands", "Topography", 0.0790),
    Tag(789, "Geological interest", "Topography", 0.0276),
    Tag(1060, "Air, Sky, Weather", "Natural environment", 0.0295),
    Tag(1167, "Estuary, Marine", "Natural environment", 0.0345),
    Tag(890, "Lakes, Wetland, Bog", "Natural environment", 0.0374),
    Tag(853, "Rivers, Streams, Drainage", "Natural environment", 0.0474),
    Tag(840, "Grassland", "Natural environment", 0.0369),
    Tag(48483, "Rocks, Scree, Cliffs", "Natural environment", 0.0348),
    Tag(48550, "Barren Plateaux", "Natural environment", 0.0056),
    Tag(33096, "Moorland", "Natural environment", 0.0383),
    Tag(1076, "Heath, Scrub", "Natural environment", 0.0273),
    Tag(1050, "Woodland, Forest", "Natural environment", 0.0538),
    Tag(919, "Wild Animals, Plants and Mushrooms", "Natural environment", 0.0298),
    Tag(837, "Farm, Fishery, Market Gardening", "Human use", 0.0739),
    Tag(875, "Quarrying, Mining", "Human use", 0.0272),
    Tag(1059, "Water resources", "Human use", 0.0232),
    Tag(479, "Energy infrastructure", "Human use", 0.0210),
    Tag(963, "Country estates", "Human use", 0.0276),
    Tag(1052, "Industry", "Human use", 0.0238),
    Tag(1116, "Defence, Military", "Human use", 0.0309),
    Tag(998, "Construction, Development", "Human use", 0.0077),
    Tag(886, "Business, Retail, Services", "Human use", 0.0420),
    Tag(834, "Sport, Leisure", "Human use", 0.0397),
    Tag(1066, "Waste, Waste management", "Human use", 0.0160),
    Tag(976, "Derelict, Disused", "Human use", 0.0319),
    Tag(969, "City, Town centre", "Human habitat", 0.0469),
    Tag(891, "Suburb, Urban fringe", "Human habitat", 0.0539),
    Tag(861, "Village, Rural settlement", "Human habitat", 0.0693),
    Tag(881, "Park and Public Gardens", "Human habitat", 0.0326),
    Tag(868, "Public buildings and spaces", "Human habitat", 0.0288),
    Tag(862, "Housing, Dwellings", "Human habitat", 0.0529),
    Tag(894, "Educational sites", "Human habitat", 0.0284),
    Tag(990, "Health and social services", "Human habitat", 0.0112),
    Tag(790, "Historic sites and artefacts", "Human habitat", 0.0754),
    Tag(869, "Religious sites", "Human habitat", 0.0439),
    Tag(832, "Boundary, Barrier", "Human habitat", 0.0275),
    Tag(1025, "People, Events", "Human habitat", 0.0268),
    Tag(1040, "Burial ground, Crematorium", "Human habitat", 0.0275),
    Tag(1077, "Canals", "Communications", 0.0281),
    Tag(1103, "Docks, Harbours", "Communications", 0.0286),
    Tag(972, "Railways", "Communications", 0.0304),
    Tag(809, "Paths", "Communications", 0.0733),
    Tag(950, "Roads, Road transport", "Communications", 0.1056),
    Tag(953, "Air transport", "Communications", 0.0269),
    Tag(1054, "Communications", "Communications", 0.0272),
)

# train.csv (and so the submission) orders its columns by numeric tag id.
COLUMNS: tuple[str, ...] = tuple(t.column for t in sorted(TAGS, key=lambda t: t.tag_id))
BY_COLUMN: dict[str, Tag] = {t.column: t for t in TAGS}


def image_path(data_dir: str | Path, split: str, gridimage_id: int) -> Path:
    """Where the competition keeps a photo: {split}_images/{id // 10000:05d}/{id}.jpg."""
    return Path(data_dir) / f"{split}_images" / f"{gridimage_id // 10000:05d}" / f"{gridimage_id}.jpg"


# The competition archive lacks some training photos; the published notebooks ship them in a separate
# extra_images/ folder (same layout) that users were told to rsync into train_images/, which Kaggle's
# read-only input forbids: the kit looks in both.
EXTRA_IMAGES = "extra_images"
MISSING_LIMIT = 0.01  # a split with a larger share of photos missing stops unless the user accepts it


def _listed_ids(folder: Path) -> np.ndarray:
    """Ids of the NNNNN/ID.jpg files under `folder` (directory listings only: no stat per photo)."""
    found = []
    if folder.is_dir():
        for sub in os.scandir(folder):
            if sub.is_dir():
                found += [e.name[:-4] for e in os.scandir(sub.path) if e.name.endswith(".jpg")]
    ids = np.array([int(n) for n in found if n.isdigit()], dtype=np.int64)
    return ids


def photo_paths(data_dir: str | Path, split: str, ids: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Where each photo is, {split}_images/ first, then extra_images/; and a mask of those in neither."""
    ids = np.asarray(ids, dtype=np.int64)
    main = np.isin(ids, _listed_ids(Path(data_dir) / f"{split}_images"))
    extra = ~main & np.isin(ids, _listed_ids(Path(data_dir) / EXTRA_IMAGES))
    paths = [str(image_path(data_dir, split, int(i))) for i in ids]
    for k in np.flatnonzero(extra):
        paths[k] = str(Path(data_dir) / EXTRA_IMAGES / f"{ids[k] // 10000:05d}" / f"{ids[k]}.jpg")
    return paths, ~(main | extra)


def missing_share_error(split: str, missing_ids: np.ndarray, total: int, what: str, flag: str) -> str:
    """'' when at most MISSING_LIMIT of a split's photos are missing; else the message that stops the run."""
    if total == 0 or len(missing_ids) <= MISSING_LIMIT * total:
        return ""
    return (f"{split}: {len(missing_ids)} of {total} photos ({len(missing_ids) / total:.1%}) {what}"
            f" (e.g. gridimage_id {', '.join(map(str, np.asarray(missing_ids)[:5]))}); more than"
            f" {MISSING_LIMIT:.0%} missing usually means a wrong or incomplete DATA folder. Pass {flag} to go on"
            " with them as missing photos")


def ensure_one_tag(tags: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Give rows of `tags` with no tag their highest-scoring one, in place: every Geograph photo has a tag."""
    empty = ~tags.any(axis=1)
    if empty.any():
        tags[np.flatnonzero(empty), scores[empty].argmax(axis=1)] = 1
    return tags
