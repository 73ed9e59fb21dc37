"""enforcement-coordination (城管+N): joint operations fanned out to department systems."""
