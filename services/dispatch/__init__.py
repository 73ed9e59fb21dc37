"""dispatch: routes each case to its owning unit, starts the deadline clock, notifies the owner."""
