"""Resized (or working-scale) pairs into TFRecord shards, and reading them back."""
