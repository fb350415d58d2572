"""unetseg: folders of images and masks to a trained U-Net and its predictions."""

import os

# TensorFlow's C++ start-up chatter hides our own messages; users can still set it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
