"""Kornia augmentation pipelines (filled in below)."""
