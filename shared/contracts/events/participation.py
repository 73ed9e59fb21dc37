"""Events participation publishes on ``participation.events`` (community reviews, citizen
points, stall permits, frontage duties)."""

SCHEMAS: dict = {}
