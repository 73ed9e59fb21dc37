"""Reliable messaging for nameko services: topology, consuming, outbox relay."""
