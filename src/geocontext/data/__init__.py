"""Kaggle files in: readers for labels, test ids and metadata; grid references; the hold-out split; the submission file."""
