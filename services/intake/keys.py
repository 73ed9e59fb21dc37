"""Open311 API keys used to be kept here, by intake (collection ``api_keys``). There is now one
key store: the gateway's accounts. An Open311 app is a ``citizen`` account, and its key is the
``api_key`` of /open311/; the gateway verifies it and tells intake which app posted.

    python -m services.gateway.accounts create --role citizen --name <应用名>
    python -m services.gateway.accounts ensure --role citizen --name demo --file var/secrets/open311-demo.key
    python -m services.gateway.accounts list | revoke <key id>

Keys made by the old command (``dcg311_…``) no longer open anything: issue each app a new key
(the old ones were stored as hashes only, so they cannot be carried over). This command only
says so.
"""
from __future__ import annotations

import sys

MOVED = ("Open311 keys are gateway accounts now (one key store): "
         "python -m services.gateway.accounts create --role citizen --name <应用名>  "
         "(old dcg311_ keys no longer work; issue each app a new key — docs/intake.md)")


def main(argv=None) -> int:
    print(f"error: {MOVED}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
