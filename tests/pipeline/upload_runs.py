"""The upload-run competition shared by the id-neighbour tests (test_neighbours_run, test_gap_bands):
runs of consecutive ids share one tag set, the image hints at it through heavy noise, the title says
nothing."""
import numpy as np
import pandas as pd

from geocontext.competition import COLUMNS, ID
from geocontext.decoding.select import DecodeConfig
from geocontext.embedding.features import save_features
from geocontext.pipeline.config import RunConfig
from geocontext.training.config import TrainConfig, VariantConfig
from geocontext.training.inputs import FeatureSpec

N, TEST, RUN = 4000, 1000, 6


def uploads(folder, shuffled: bool, seed: int = 0):
    """DATA + FEATURES + solution.csv: runs of RUN consecutive ids share one of 40 tag sets; the image
    embedding hints at each photo's set through heavy noise (about a third right alone)."""
    rng = np.random.default_rng(seed)
    vocab = np.zeros((40, len(COLUMNS)), np.uint8)
    for s in vocab:
        s[rng.choice(len(COLUMNS), rng.integers(1, 4), replace=False)] = 1
    runs = (N + TEST) // RUN
    start = np.cumsum(rng.integers(RUN + 1, RUN + 5, runs))
    ids = (start[:, None] + np.arange(RUN)).ravel()
    which = np.repeat(rng.integers(0, len(vocab), runs), RUN)
    y = vocab[which]
    image = (np.eye(len(vocab), 16, dtype=np.float32)[which % 16] * 1.0 + rng.normal(0, 1.0, (len(ids), 16))).astype(np.float32)
    if shuffled:
        ids = rng.permutation(ids)
    test = rng.uniform(size=len(ids)) < TEST / (N + TEST)
    data, features = folder / "data", folder / "features"
    data.mkdir(parents=True)
    frame = pd.DataFrame(y, columns=list(COLUMNS))
    frame.insert(0, ID, ids)
    frame[~test].to_csv(data / "train.csv", index=False)
    frame[test].to_csv(folder / "solution.csv", index=False)
    frame[[ID]][test].to_csv(data / "test.csv", index=False)
    pd.DataFrame({ID: ids, "title": "", "grid_reference": ""}).to_csv(data / "metadata.csv", index=False)
    title = rng.normal(0, 1, (len(ids), 16)).astype(np.float32)  # says nothing
    for split, rows in (("train", ~test), ("test", test)):
        save_features(features, split, ids[rows], image[rows], title[rows], {"encoder": "test uploads", "synthetic": True})
    return data, features, folder / "solution.csv"


def config(decoders=("0.5", "label_set", "neighbour_sets")) -> RunConfig:
    spec = FeatureSpec(("image", "title"))
    train = TrainConfig(head="linear", epochs=12, lr=3e-2)
    return RunConfig(variants=[VariantConfig("linear-nb", FeatureSpec(("image", "title"), neighbours=True), train),
                               VariantConfig("linear", spec, train)],
                     decode=DecodeConfig(decoders=decoders, global_trials=6, label_sets=60, ensemble=False))
