"""What every step shares: errors, atomic writes, TensorFlow's start-up, the application record, constants."""
