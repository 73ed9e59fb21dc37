"""What every service of the 大城管 platform shares: contracts, messaging, storage, config."""
