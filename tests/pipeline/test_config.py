import json

import pytest

from geocontext.pipeline.config import RunConfig
from geocontext.training.config import default_variants


def test_partial_json_keeps_the_defaults_it_does_not_name(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"seed": 3, "decode": {"decoders": ["0.5", "global"], "folds": 3}}))
    config = RunConfig.from_file(path)
    assert config.seed == 3 and config.decode.folds == 3
    assert config.decode.decoders == ("0.5", "global")  # JSON lists become the dataclass's tuples
    assert [v.name for v in config.variants] == [v.name for v in default_variants()]
    assert config.variants[2].train.mixup_alpha == default_variants()[2].train.mixup_alpha


def test_config_round_trips_through_json(tmp_path):
    config = RunConfig(seed=7, max_tags=4)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config.to_dict()))
    assert RunConfig.from_file(path) == config


@pytest.mark.parametrize("text, says", [
    ("{not json", "not a valid run configuration"),
    ('{"variants": [{"train": {"head": "mlp"}}]}', "'name'"),  # a variant without its name
    ('{"epochs": 3}', "epochs"),  # a TrainConfig field at the top level
    ('{"decode": {"decoders": ["median"]}}', "decoders must be among"),
])
def test_bad_config_names_the_file_and_the_fault(tmp_path, text, says):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        RunConfig.from_file(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and says in message.removeprefix(f"{path}: ")


def test_one_field_of_one_default_variant_changes_alone(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"variants": {"mlp-img-txt-loc-pri-rff-nb": {"train": {"lr": 0.001}}}}))
    config = RunConfig.from_file(path)
    defaults = default_variants()
    assert [v.name for v in config.variants] == [v.name for v in defaults]
    changed = config.variants[1]
    assert changed.name == "mlp-img-txt-loc-pri-rff-nb" and changed.train.lr == 0.001
    assert changed.train.head == defaults[1].train.head and changed.train.dropout == defaults[1].train.dropout
    assert changed.features == defaults[1].features
    assert [v for i, v in enumerate(config.variants) if i != 1] == [v for i, v in enumerate(defaults) if i != 1]


def test_a_new_name_in_the_variants_object_adds_a_variant(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"variants": {"mlp-img": {"features": {"modalities": ["image"]},
                                                         "train": {"head": "mlp"}}}}))
    config = RunConfig.from_file(path)
    assert [v.name for v in config.variants][-1] == "mlp-img" and len(config.variants) == len(default_variants()) + 1
    assert config.variants[-1].features.modalities == ("image",)


@pytest.mark.parametrize("text, field, accepted", [
    ('{"variants": {"mlp256-img-txt-loc-pri-rff": {"train": {"learning_rate": 0.1}}}}', "learning_rate", "lr"),
    ('{"variants": {"mlp256-img-txt-loc-pri-rff": {"feature": {}}}}', "feature", "features"),
    ('{"decode": {"fold": 3}}', "fold", "folds"),
    ('{"holdout": 0.1}', "holdout", "holdout_fraction"),
])
def test_an_unknown_field_is_named_with_the_accepted_ones(tmp_path, text, field, accepted):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        RunConfig.from_file(path)
    message = str(err.value)
    assert f"unknown field {field!r}" in message and "accepted:" in message and accepted in message.split("accepted:")[1]


def test_a_misspelt_variant_name_is_an_error_naming_the_close_one(tmp_path):
    """Issue 25: a typo in a name silently added a linear variant of plain defaults, which then won."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"variants": {"mlp-img-txt-loc-pri-rf": {"train": {"lr": 0.001}}}}))
    with pytest.raises(ValueError, match=r"variants\.mlp-img-txt-loc-pri-rf: no variant of that name \(did you mean"
                                         r" 'mlp256-img-txt-loc-pri-rff'\?\); to add a new variant, give \"from\""):
        RunConfig.from_file(path)
    path.write_text(json.dumps({"variants": {"zzz": {"train": {"lr": 0.001}}}}))  # nothing close: the names
    with pytest.raises(ValueError, match=r"no variant of that name \(variants: linear-img-txt-loc-pri-rff-nb,"):
        RunConfig.from_file(path)


def test_a_new_variant_declared_with_from_copies_that_variant(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"variants": {"mlp-slow": {"from": "mlp256-img-txt-loc-pri-rff", "train": {"lr": 0.0003}}}}))
    config = RunConfig.from_file(path)
    defaults = default_variants()
    assert [v.name for v in config.variants] == [v.name for v in defaults] + ["mlp-slow"]
    new, source = config.variants[-1], next(v for v in defaults if v.name == "mlp256-img-txt-loc-pri-rff")
    assert new.train.lr == 0.0003 and new.train.head == "mlp" and new.train.hidden == source.train.hidden
    assert new.features == source.features and config.variants[:-1] == defaults


@pytest.mark.parametrize("variants, says", [
    ({"x": {"from": "mlp-img-txt-loc-pri-rf"}}, r"variants\.x: from 'mlp-img-txt-loc-pri-rf': no such variant \(did you"
                                                r" mean 'mlp256-img-txt-loc-pri-rff'\?\)"),
    ({"mlp256-img-txt-loc-pri-rff": {"from": "linear-img-txt-loc-pri-rff-nb"}}, r"'from' declares a new variant"),
    ({"x": {"features": {"modalities": ["image"]}}}, r"variants\.x: no variant of that name"),  # train not given
])
def test_from_must_name_a_variant_and_declare_a_new_one(tmp_path, variants, says):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"variants": variants}))
    with pytest.raises(ValueError, match=says):
        RunConfig.from_file(path)


@pytest.mark.parametrize("config, says", [
    ({"variants": {"mine": {"from": 3}}}, "variants.mine.from: expected a variant name, got 3 (variants: linear-img"),
    ({"variants": {"mine": {"from": ["mlp256-img-txt-loc-pri-rff"]}}},
     "variants.mine.from: expected a variant name, got ['mlp256-img-txt-loc-pri-rff']"),
    ({"variants": {"mine": {"from": None}}}, "variants.mine.from: expected a variant name, got None"),
    ({"variants": {"mine": {"from": {"name": "x"}}}}, "variants.mine.from: expected a variant name, got {'name': 'x'}"),
    ({"variants": {"mlp256-img-txt-loc-pri-rff": {"features": {"modalities": "image"}}}},
     "variants.mlp256-img-txt-loc-pri-rff.features: features.modalities must be a list of names from ('image', 'title',"
     " 'location'), got 'image'"),
    ({"variants": {"mlp256-img-txt-loc-pri-rff": {"features": {"modalities": 3}}}}, "features.modalities must be a list"),
    ({"variants": {"mlp256-img-txt-loc-pri-rff": {"features": {"blocks": 3}}}}, "features.blocks must be a list of names, got 3"),
    ({"variants": {"mlp256-img-txt-loc-pri-rff": {"features": {"blocks": [["image@x"]]}}}},
     "features.blocks must be a list of names, got [['image@x']]"),
    ({"variants": [{"name": ["a"], "features": {}, "train": {}}]}, "variants: name ['a'] must be a non-empty folder name"),
    ({"decode": {"decoders": [["global"]]}}, "decode.decoders must be a list of names from ('0.5', 'global'"),
])
def test_a_value_of_the_wrong_type_names_its_field(tmp_path, config, says):
    """Issue 31, item 4: `"from": 3` said only `('int' object is not iterable)`, a list `(unhashable type: 'list')`,
    `"blocks": [[...]]` ended in a traceback."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError) as err:
        RunConfig.from_file(path)
    message = str(err.value)
    assert message.startswith(f"{path}: not a valid run configuration (") and says in message, message


def test_no_neighbours_drops_the_block_and_the_neighbour_set_decoder_and_nothing_else(tmp_path):
    """`run --no-neighbours` (RunConfig.load(neighbours=False)) and config `"neighbours": false`: every variant
    without the block (`-nb` dropped; a twin of a default kept once), the decoders without neighbour_sets."""
    plain = RunConfig.load(None, neighbours=False)
    assert not any(v.features.reads_ids for v in plain.variants)
    assert [v.name for v in plain.variants] == ["linear-img-txt-loc-pri-rff", "mlp-img-txt-loc-pri-rff",
                                                "mlp256-img-txt-loc-pri-rff"]
    assert "neighbour_sets" not in plain.decode.decoders
    assert plain.decode.decoders == tuple(d for d in RunConfig().decode.decoders if d != "neighbour_sets")
    assert plain.variants[1].train == RunConfig().variants[1].train  # like for like
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"neighbours": False, "variants": {"mine": {"from": "mlp-img-txt-loc-pri-rff-nb"}}}))
    assert "mine-without-nb" in [v.name for v in RunConfig.from_file(path).variants]
    path.write_text(json.dumps({"neighbours": False, "variants": {
        "linear-img-txt-loc-pri-rff": {"train": {"lr": 0.5}}}}))
    with pytest.raises(ValueError, match="variant 'linear-img-txt-loc-pri-rff' without its block would differ"):
        RunConfig.from_file(path)
