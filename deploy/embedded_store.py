"""The embedded MongoDB-wire-compatible store for ONE machine (mongoeco over SQLite or memory).

This is an emulator, not MongoDB: production runs real MongoDB (docker-compose.yml).
Run with the Python 3.13 virtualenv (.venv-store):

    .venv-store/bin/python deploy/embedded_store.py --port 27017 --data var/mongo
    .venv-store/bin/python deploy/embedded_store.py --port 27117 --memory      # tests

It listens on 127.0.0.1 only. With EMBEDDED_STORE_PASSWORD in its environment (``make run``
sets it: var/secrets/store.json) every client must authenticate: user ``dcg`` (or --user),
``authSource=admin&authMechanism=SCRAM-SHA-256`` in the URI (the one mechanism mongoeco
negotiates correctly). mongoeco checks WHO connects but not WHAT they may do: any
authenticated user may read and write every database, so one user serves all services here
(MongoDB in docker-compose.yml has one user per service, each on its own database).

Before serving it applies deploy/store_patches.py, seven fixes that keep the store from walking
whole collections (a search by a string ``_id``, a find by an indexed field, an insert's unique
check, the question whether a field holds arrays), from delivering every write's change to
change-stream hubs nobody watches and from rebuilding every index each time it opens its file.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path


async def serve(port: int, data: str | None, host: str, user: str | None = None, password: str | None = None):
    import mongoeco.wire
    try:
        from deploy import store_patches
    except ImportError:                       # run as a script: deploy/ is on the path
        import store_patches
    store_patches.apply()
    from mongoeco.wire.auth import WireAuthUser
    if data:
        from mongoeco.engines.sqlite import SQLiteEngine
        Path(data).mkdir(parents=True, exist_ok=True)
        engine = SQLiteEngine(str(Path(data) / "store.sqlite3"))
    else:
        from mongoeco.engines.memory import MemoryEngine
        engine = MemoryEngine()
    users = (WireAuthUser(username=user, password=password, source="admin",
                          mechanisms=("SCRAM-SHA-256",)),) if password else ()
    server = mongoeco.wire.AsyncMongoEcoProxyServer(engine=engine, host=host, port=port, auth_users=users)
    await server.start()
    where = data or "memory"
    print(f"embedded store (mongoeco emulator) on mongodb://{host}:{port} data={where} "
          f"authentication={'on, user ' + user if password else 'off'}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--user", default="dcg", help="the one user (password: EMBEDDED_STORE_PASSWORD)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--data", default="var/mongo", help="folder that keeps the data")
    group.add_argument("--memory", action="store_true", help="keep nothing on disk")
    args = parser.parse_args()
    asyncio.run(serve(args.port, None if args.memory else args.data, args.host, args.user,
                      os.environ.get("EMBEDDED_STORE_PASSWORD") or None))


if __name__ == "__main__":
    main()
