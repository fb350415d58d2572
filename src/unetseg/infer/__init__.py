"""A trained model applied: probabilities to masks, the sliding window, file outputs, pictures."""
