"""Benchmark (``make bench``) and fault suite (``make chaos``) over the whole stack."""
