"""The network (U-Net, its pretrained encoder and weights reader), its file, and how it meets an image."""
