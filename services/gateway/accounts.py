"""Accounts and API keys: ``python -m services.gateway.accounts <command>``.

    create-admin --name NAME                       the first admin (prints the key once)
    create --role ROLE --name NAME [--unit ID] [--department ID]
    list                                           accounts (never keys)
    revoke KEY_ID
"""
from __future__ import annotations

import argparse
import sys

from shared.config import database_name, load_config
from shared.storage import mongo_client

from .auth import ROLE_NAMES, ROLES, new_key


def accounts_collection(client, config):
    return client[database_name(config, "gateway")]["accounts"]


def main(argv=None, config=None) -> int:
    parser = argparse.ArgumentParser(prog="accounts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    admin = sub.add_parser("create-admin")
    admin.add_argument("--name", required=True)
    create = sub.add_parser("create")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True)
    create.add_argument("--unit")
    create.add_argument("--department")
    sub.add_parser("list")
    revoke = sub.add_parser("revoke")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)
    config = config or load_config()
    client = mongo_client(config["MONGO_URI"])
    try:
        accounts = accounts_collection(client, config)
        if args.command in ("create-admin", "create"):
            role = "admin" if args.command == "create-admin" else args.role
            try:
                key = new_key(accounts, args.name, role, getattr(args, "unit", None),
                              getattr(args, "department", None))
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(key)
            print(f"# {ROLE_NAMES[role]} '{args.name}': keep this key; it is not stored and cannot be shown again",
                  file=sys.stderr)
        elif args.command == "list":
            for account in accounts.find({}).sort("name", 1):
                state = "revoked" if account.get("revoked") else "active"
                print(f"{account['_id']}  {account['role']:9} {state:8} {account['name']}"
                      f"  {account.get('unit_id') or account.get('department') or ''}")
        else:
            result = accounts.update_one({"_id": args.key_id}, {"$set": {"revoked": True}})
            if not result.matched_count:
                print(f"no account {args.key_id}", file=sys.stderr)
                return 1
            print(f"revoked {args.key_id}")
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
