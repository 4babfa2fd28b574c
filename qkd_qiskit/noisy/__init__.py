"""Noise-aware training (draft)."""
