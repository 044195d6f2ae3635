"""geocontext: tag Geograph landscape photos with the competition's 49 context tags (and their type).

Data flows one way: Kaggle files (data, grid) -> features -> heads (train, model) -> probabilities
-> decoded tags (decode, select) -> submission."""

__version__ = "0.1.0"
