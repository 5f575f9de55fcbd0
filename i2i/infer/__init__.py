"""Inference: the Translator (padding, tiling, batching), apply over files and videos, ONNX."""
