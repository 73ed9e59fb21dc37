"""gateway: HTTP in front of the services (native REST, Open311, the command-centre page)."""
