"""The U-Net and its training: tf.data input, augmentation, patches, losses, the fit loop, model files."""
