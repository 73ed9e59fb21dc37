"""Run one nameko service as its own process: ``python -m services.<name>``.

Patches eventlet first, loads config/platform.yaml (with environment overrides), applies the
topology (idempotent, so a service deployed on its own never publishes into the void), then
runs until SIGTERM/SIGINT and stops gracefully: in-flight messages finish and are acked.
"""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()  # noqa: E402  (must precede every other import)

import gc  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402

import greenlet  # noqa: E402

from nameko.runners import ServiceRunner  # noqa: E402

from .config import load_config  # noqa: E402
from .logs import setup_logging  # noqa: E402
from .messaging import topology  # noqa: E402


DUMP_END = "--- end of green threads\n"


def dump_green_threads(signum=None, frame=None):  # noqa: ARG001
    """SIGUSR2: write every green thread's stack to stderr (what is a stuck service waiting on?).

    The dump is built whole and written at once, ending with a marker line, so a reader of
    the log never sees half of it."""
    parts = []
    for thread in gc.get_objects():
        if isinstance(thread, greenlet.greenlet) and thread.gr_frame is not None:
            parts.append(f"--- green thread {thread!r}\n")
            parts.append("".join(traceback.format_stack(thread.gr_frame)))
    if frame:
        parts.append("".join(["--- current\n"] + traceback.format_stack(frame)))
    parts.append(DUMP_END)
    sys.stderr.write("".join(parts))
    sys.stderr.flush()


def run(service_cls, config: dict | None = None):
    config = config or load_config()
    setup_logging(config.get("LOG_LEVEL", "INFO"), service_cls.name)
    log = logging.getLogger("runner")
    for attempt in range(30):
        try:
            topology.apply(config)
            break
        except Exception as exc:  # noqa: BLE001 - broker still starting
            log.warning("topology not applied yet (%s); retrying", exc)
            eventlet.sleep(2)
    else:
        sys.exit("could not reach the broker to apply the topology")
    from . import metrics
    metrics.PROCESS[0] = service_cls.name
    metrics.serve(int(config.get("METRICS_PORT") or 0), config.get("METRICS_HOST"))
    runner = ServiceRunner(config)
    runner.add_service(service_cls)

    stopping = []

    def shutdown(signum, frame):  # noqa: ARG001
        if stopping:                  # a second signal while stopping: nameko's stop is not re-entrant
            log.info("already stopping (signal %s ignored)", signum)
            return
        stopping.append(signum)
        eventlet.spawn(runner.stop)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGUSR2, dump_green_threads)
    runner.start()
    log.info("service %s started", service_cls.name)
    runner.wait()
    log.info("service %s stopped", service_cls.name)
