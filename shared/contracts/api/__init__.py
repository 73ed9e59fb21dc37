"""The APIs services offer each other and the gateway (RPC inputs, queries, the bodies the
gateway validates before it calls): one module per service. Each service's own ``schemas.py``
re-exports its module, so the service and the gateway validate with the same schema."""
