"""Exported models: the image-to-mask path in one file that other runtimes run (SavedModel, ONNX, TFLite)."""
