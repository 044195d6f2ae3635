"""Kaggle plumbing: the kernel runtime, rendering kernels, driving the kaggle command, the features dataset."""
