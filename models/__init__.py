"""Models that studies tune: PyTorch autoencoder/classifiers and scikit-learn baselines."""
