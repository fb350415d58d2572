"""unetseg: folders of images and masks to a trained U-Net and its predictions."""

import os

from unetseg.cpu import configure_cpu_kernels

# TensorFlow's C++ start-up chatter hides our own messages; users can still set it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Before any stage, the CLI or a test imports TensorFlow: its CPU kernels are chosen at load.
configure_cpu_kernels()

__version__ = "0.1.0"
