"""geocontext: tag Geograph landscape photos with the competition's 49 context tags (and their type).

Data flows one way, one package per stage: Kaggle files (data/) -> features (embedding/) -> heads
(training/) -> probabilities -> decoded tags (decoding/) -> submission (pipeline/). `cli.py` lists the
verbs each package owns (`<package>/verbs.py`)."""

from .threads import prepare_environment

prepare_environment()  # before torch is imported: its OpenMP threads then sleep instead of spinning (threads.py)

__version__ = "0.1.0"
