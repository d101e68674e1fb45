"""The Explorer: phase 1 of a campaign. Describes the training data and scores the baselines, once."""
