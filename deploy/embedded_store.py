"""The embedded MongoDB-wire-compatible store for ONE machine (mongoeco over SQLite or memory).

This is an emulator, not MongoDB: production runs real MongoDB (docker-compose.yml).
Run with the Python 3.13 virtualenv (.venv-store):

    .venv-store/bin/python deploy/embedded_store.py --port 27017 --data var/mongo
    .venv-store/bin/python deploy/embedded_store.py --port 27117 --memory      # tests
"""
from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path


async def serve(port: int, data: str | None, host: str):
    import mongoeco.wire
    if data:
        from mongoeco.engines.sqlite import SQLiteEngine
        Path(data).mkdir(parents=True, exist_ok=True)
        engine = SQLiteEngine(str(Path(data) / "store.sqlite3"))
    else:
        from mongoeco.engines.memory import MemoryEngine
        engine = MemoryEngine()
    server = mongoeco.wire.AsyncMongoEcoProxyServer(engine=engine, host=host, port=port)
    await server.start()
    where = data or "memory"
    print(f"embedded store (mongoeco emulator) on mongodb://{host}:{port} data={where}", flush=True)
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
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--data", default="var/mongo", help="folder that keeps the data")
    group.add_argument("--memory", action="store_true", help="keep nothing on disk")
    args = parser.parse_args()
    asyncio.run(serve(args.port, None if args.memory else args.data, args.host))


if __name__ == "__main__":
    main()
