"""Bench2Drive closed-loop driving: route scenarios, batched world, criteria and scoring, the Gymnasium env."""
