"""Scores of the validation split: metrics, baselines, intervals, the evaluation."""
