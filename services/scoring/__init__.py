"""scoring: consumes every lifecycle event and keeps the indicators."""
