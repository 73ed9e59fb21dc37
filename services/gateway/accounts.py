"""Accounts and API keys: ``python -m services.gateway.accounts <command>``.

    create-admin --name NAME                       the first admin (prints the key once)
    create --role ROLE --name NAME [--unit ID] [--department ID] [--person-id ID] [--approver RANK]
    ensure --role ROLE --name NAME --file FILE     print the valid key kept in FILE, or create one
                                                   there (mode 0600): e.g. the demo Open311 app
    list                                           accounts (never keys)
    revoke KEY_ID

An Open311 app (a city app posting GeoReport requests for citizens) is a ``citizen`` account:
its key is the ``api_key`` of /open311/, verified by the gateway like every other key.

Roles: citizen 市民, inspector 信息采集员, operator 指挥中心值班员, unit 处置单位 (--unit, e.g.
street.tianshengjie), partner 联动部门 (--department, e.g. police), leader 领导（只读）, admin 管理员.
--person-id: the person's staff number (工号), e.g. insp-017; an inspector's reports and
verifications are counted under it (default: the key id). --approver: the rank an operator or
admin approves extensions and parking with (operator | centre | leader; default operator → centre,
admin → leader). The key is printed once; only its hash is stored. See docs/api.md.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shared.config import database_name, load_config
from shared.storage import mongo_client

from .auth import APPROVER_RANKS, ROLE_NAMES, ROLES, Unauthorized, authenticate, new_key


def accounts_collection(client, config):
    return client[database_name(config, "gateway")]["accounts"]


def _scope_problem(args) -> str | None:
    """A unit or department that the district does not know (a typo would make an account that
    sees nothing)."""
    if args.command != "create":
        return None
    if args.role == "unit" and args.unit:
        from shared.refdata import load_district
        try:
            load_district().unit(args.unit)
        except KeyError:
            return f"unknown unit {args.unit} (see shared/refdata/default_district/units.yaml)"
    if args.role == "partner" and args.department:
        from shared.departments import department_ids
        if args.department not in department_ids():
            return f"unknown department {args.department}; known: {', '.join(department_ids())}"
    return None


def _ensure(accounts, role: str, name: str, path: Path) -> str:
    """The key kept in ``path`` if it still opens an active account of ``role``, else a new one
    written there (mode 0600)."""
    if path.is_file():
        kept = path.read_text(encoding="utf-8").strip()
        try:
            if authenticate(accounts, kept).role == role:
                return kept
        except Unauthorized:
            pass
    key = new_key(accounts, name, role)
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


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
    create.add_argument("--person-id", dest="person_id")
    create.add_argument("--approver", choices=APPROVER_RANKS)
    ensure = sub.add_parser("ensure")
    ensure.add_argument("--role", required=True, choices=ROLES)
    ensure.add_argument("--name", required=True)
    ensure.add_argument("--file", required=True)
    sub.add_parser("list")
    revoke = sub.add_parser("revoke")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)
    problem = _scope_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    config = config or load_config()
    client = mongo_client(config["MONGO_URI"])
    try:
        accounts = accounts_collection(client, config)
        if args.command in ("create-admin", "create"):
            role = "admin" if args.command == "create-admin" else args.role
            try:
                key = new_key(accounts, args.name, role, getattr(args, "unit", None),
                              getattr(args, "department", None), person_id=getattr(args, "person_id", None),
                              approver=getattr(args, "approver", None))
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(key)
            print(f"# {ROLE_NAMES[role]} '{args.name}': keep this key; it is not stored and cannot be shown again",
                  file=sys.stderr)
        elif args.command == "ensure":
            print(_ensure(accounts, args.role, args.name, Path(args.file)))
        elif args.command == "list":
            for account in accounts.find({}).sort("name", 1):
                state = "revoked" if account.get("revoked") else "active"
                extra = " ".join(f"{label}={account[key]}" for key, label in
                                 (("person_id", "person"), ("approver", "approver")) if account.get(key))
                print(f"{account['_id']}  {account['role']:9} {state:8} {account['name']}"
                      f"  {account.get('unit_id') or account.get('department') or ''}  {extra}".rstrip())
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
