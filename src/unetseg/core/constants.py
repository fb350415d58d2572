"""Numbers every step must agree on, in one place so that none imports a whole module for one of them."""

IGNORE = 255  # class index of ignored pixels in label maps at the model size (and of padding in patch mode)
EPOCH_STRIDE = 1_000_003  # keeps (seed, epoch) and (seed, epoch, batch) pairs apart in derived seeds
WEIGHTS_DIR = "weights"  # encoder weights of one's own: a folder the train stage depends on (dvc.yaml)
