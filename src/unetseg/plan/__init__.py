"""Two folders and this machine in, params out: the fingerprint of a dataset, the decisions made
from it, a timed training step, and the schedule that fits a time budget."""
