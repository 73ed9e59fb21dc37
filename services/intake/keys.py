"""Open311 API keys, kept by intake (collection ``api_keys`` in intake's database).

Only a SHA-256 hash of each key is stored; the key itself is printed once, when it is created.
No key lives in the repository.

    python -m services.intake.keys create --name demo          # prints a new key
    python -m services.intake.keys ensure --name demo --file var/open311-demo.key
                                                                # reuse the key in that file if it is
                                                                # still valid, else create one there
    python -m services.intake.keys list
    python -m services.intake.keys revoke --id <key id>

The store comes from config/platform.yaml (MONGO_URI, DB_PREFIX), overridable from the environment.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
from datetime import datetime, timezone
from pathlib import Path

PREFIX = "dcg311_"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(24)


def create(collection, name: str, now: datetime | None = None) -> tuple[str, dict]:
    """Create a key; returns (the key, its stored record). The key is not stored."""
    key = new_key()
    digest = key_hash(key)
    record = {"_id": digest[:16], "hash": digest, "name": name, "active": True,
              "created_at": now or datetime.now(timezone.utc), "hint": key[:len(PREFIX) + 4]}
    collection.insert_one(record)
    return key, record


def verify(collection, key) -> dict | None:
    """The active key record for ``key``, or None (missing, unknown, revoked, malformed)."""
    if not isinstance(key, str) or not key.startswith(PREFIX) or len(key) > 200:
        return None
    digest = key_hash(key)
    record = collection.find_one({"_id": digest[:16]})
    if record is None or not record.get("active") or not secrets.compare_digest(record["hash"], digest):
        return None
    return record


def revoke(collection, key_id: str) -> bool:
    return collection.update_one({"_id": key_id}, {"$set": {"active": False}}).matched_count == 1


def _collection():
    from shared.config import database_name, load_config
    from shared.storage import mongo_client
    config = load_config()
    client = mongo_client(config["MONGO_URI"])
    return client, client[database_name(config, "intake")]["api_keys"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.intake.keys",
                                     description="Open311 API keys (只存哈希 — only hashes are stored)")
    sub = parser.add_subparsers(dest="command", required=True)
    create_cmd = sub.add_parser("create", help="create a key and print it (shown once)")
    create_cmd.add_argument("--name", required=True)
    ensure_cmd = sub.add_parser("ensure", help="print the valid key kept in FILE, or create one there")
    ensure_cmd.add_argument("--name", required=True)
    ensure_cmd.add_argument("--file", required=True)
    sub.add_parser("list", help="list keys (no secrets)")
    revoke_cmd = sub.add_parser("revoke", help="revoke a key by its id (see list)")
    revoke_cmd.add_argument("--id", required=True)
    args = parser.parse_args(argv)

    client, collection = _collection()
    try:
        if args.command == "create":
            key, record = create(collection, args.name)
            print(key)
            print(f"# id {record['_id']}, name {args.name}: 请妥善保存，密钥只显示这一次 (shown once)",
                  file=sys.stderr)
        elif args.command == "ensure":
            path = Path(args.file)
            if path.is_file():
                kept = path.read_text(encoding="utf-8").strip()
                if verify(collection, kept):
                    print(kept)
                    return 0
            key, record = create(collection, args.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(key + "\n")
            print(key)
        elif args.command == "list":
            for record in collection.find({}, {"hash": 0}).sort("created_at", 1):
                state = "active" if record.get("active") else "revoked"
                print(f"{record['_id']}  {record.get('hint', '')}…  {record.get('name')}  {state}  "
                      f"{record.get('created_at')}")
        elif args.command == "revoke":
            if not revoke(collection, args.id):
                print(f"no key with id {args.id}", file=sys.stderr)
                return 1
            print(f"revoked {args.id}")
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
