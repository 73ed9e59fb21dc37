"""Department programs: stand-ins for each partner department's own system.

They use nothing but pika and the published contract (docs/integration/departments.md) and do
not import the platform's code, so each can run on another host with its own credentials.
"""
