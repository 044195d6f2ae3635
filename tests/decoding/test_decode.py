import numpy as np
import pytest

from geocontext.competition import ensure_one_tag
from geocontext.decoding.decoders import LabelSetDecoder, ThresholdDecoder
from geocontext.decoding.methods import decoder_from_dict


def random_probs(n=300, t=8, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, t)).astype(np.float32) ** 3


def check_valid(tags, n, t):
    assert tags.shape == (n, t) and set(np.unique(tags)) <= {0, 1} and tags.any(axis=1).all()


def test_threshold_decoders_give_every_photo_a_tag():
    probs = random_probs()
    probs[0] = 0.01
    probs[0, 3] = 0.2
    for decoder in (ThresholdDecoder(0.5), ThresholdDecoder(0.99), ThresholdDecoder(np.linspace(0.3, 0.9, 8))):
        tags = decoder.decode(probs)
        check_valid(tags, 300, 8)
    assert ThresholdDecoder(0.5).decode(probs)[0].tolist() == [0, 0, 0, 1, 0, 0, 0, 0]  # its most probable tag


def test_threshold_checks_its_input():
    with pytest.raises(ValueError, match="3 thresholds for 8 tags"):
        ThresholdDecoder([0.5, 0.5, 0.5]).decode(random_probs())
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        ThresholdDecoder(1.5)


def test_label_set_decoder_picks_the_most_probable_known_set():
    y = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0]])
    decoder = LabelSetDecoder.from_labels(y)
    assert decoder.sets.tolist() == [[1, 0, 0], [0, 0, 1], [1, 1, 0]]  # most frequent first, no empty set
    probs = np.array([[0.9, 0.6, 0.1], [0.4, 0.2, 0.45], [0.1, 0.1, 0.1], [0.6, 0.1, 0.9]])
    out = decoder.decode(probs)
    # brute force over the known sets: sum of log p for members, log(1-p) for the rest
    logp = np.array([[np.sum(np.where(s, np.log(p), np.log(1 - p))) for s in decoder.sets] for p in probs])
    assert out.tolist() == decoder.sets[logp.argmax(axis=1)].tolist()
    assert out[3].tolist() in decoder.sets.tolist()  # {0, 2} is not a known set, so it is never output


def test_label_set_prior_favours_common_sets():
    y = np.array([[1, 0]] * 9 + [[0, 1]])
    probs = np.array([[0.45, 0.55]])
    decoder = LabelSetDecoder.from_labels(y)
    assert decoder.decode(probs).tolist() == [[0, 1]]
    assert decoder.with_settings(1.0, None).decode(probs).tolist() == [[1, 0]]


@pytest.mark.parametrize("decoder", [ThresholdDecoder(0.3), ThresholdDecoder(np.full(8, 0.4)),
                                     LabelSetDecoder.from_labels((random_probs(seed=2) > 0.5).astype(np.uint8), 20, 0.5)])
def test_decoders_survive_a_round_trip(decoder):
    again = decoder_from_dict(decoder.to_dict(), 8)
    probs = random_probs(seed=5)
    assert (again.decode(probs) == decoder.decode(probs)).all()
    check_valid(again.decode(probs), 300, 8)


def test_ensure_one_tag_leaves_tagged_rows_alone():
    tags = np.array([[0, 1, 0], [0, 0, 0]], dtype=np.uint8)
    out = ensure_one_tag(tags, np.array([[0.9, 0.8, 0.1], [0.2, 0.3, 0.1]]))
    assert out.tolist() == [[0, 1, 0], [0, 1, 0]]


def test_label_set_with_free_novel_sets_is_plain_thresholding():
    probs = random_probs(seed=4)
    y = (random_probs(seed=6) > 0.6).astype(np.uint8)
    decoder = LabelSetDecoder.from_labels(y, 10, prior_weight=0.0, novel_penalty=0.0)
    assert (decoder.decode(probs) == ThresholdDecoder(0.5).decode(probs)).all()
    again = decoder_from_dict(decoder.to_dict(), 8)
    assert again.novel_penalty == 0.0 and (again.decode(probs) == decoder.decode(probs)).all()


def test_label_set_tuning_picks_the_best_settings_on_its_rows():
    from geocontext.decoding.metrics import exact_match

    rng = np.random.default_rng(0)
    common = np.array([[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]], dtype=np.uint8)
    y = common[rng.integers(0, 3, 600)]
    y[:60] = [1, 0, 0, 1]  # a set too rare to be among the known ones
    probs = np.clip(y * 0.55 + rng.uniform(0, 0.45, y.shape), 0, 1).astype(np.float32)
    base = LabelSetDecoder.from_labels(y[60:], 3)
    tuned = base.tune(probs, y, (0.0, 1.0), (0.0, 1.0, None))
    grid = [base.with_settings(w, p) for w in (0.0, 1.0) for p in (0.0, 1.0, None)]
    assert exact_match(y, tuned.decode(probs)) == max(exact_match(y, d.decode(probs)) for d in grid)
    assert exact_match(y, tuned.decode(probs)) > exact_match(y, base.decode(probs))  # rare set now reachable
