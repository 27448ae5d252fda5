"""The critic trainer: pair shards -> a critic with a quality and an alignment score per (image, prompt)."""
