"""Models on disk and on the Hub: the model folder, run checkpoints, cards, conversion."""
