"""unetseg: folders of images and masks to a trained U-Net and its predictions."""

from unetseg.core.cpu import configure_cpu_kernels
from unetseg.core.startup import quiet_tensorflow_start

# Both before any stage, the CLI or a test imports TensorFlow: its CPU kernels are chosen
# at load, and its start-up chatter (which hides our own messages) is printed then.
configure_cpu_kernels()
quiet_tensorflow_start()

__version__ = "0.1.0"
