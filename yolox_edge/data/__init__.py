"""Data: the preprocessing contract, dataset readers and training transforms."""
