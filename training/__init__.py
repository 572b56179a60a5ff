"""Training and evaluation: cached features, fine-tuning, the demo detector with its synthetic
manipulations, perturbations and the robustness study. Not needed to run a detector."""
