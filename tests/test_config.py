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
