"""The load of ``make chaos``: reports sent at a steady rate by many channels at once.

``Steady`` is the schedule: item ``n`` is made and handed to a pool of worker threads at
``begin + n / rate``, whatever the earlier sends are doing. A send that blocks (the gateway
killed, the broker restarting) holds one worker while it retries; the next reports still go out
on time on the other workers, and when every worker is busy they wait in the pool's queue with
their scheduled time. So the schedule never drifts: a fault shows up as reports accepted late,
not as a load that stops and then bursts to catch up.

``Load`` is the client: each report has an external_id and is POSTed until it is accepted
(201, or 422: refused with a reason), as a real channel would resend it; the platform must turn
those repeats into one report. Its counters are shared by the workers and the fault injector's
probes, so they change under one lock.
"""
from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.run import class_mix, random_point

WORKERS = 16          # reports in flight at most; more wait in the pool's queue, on schedule
GIVE_UP_S = 300.0     # a report not accepted this long after its scheduled time is counted as never accepted
RETRY_S = 0.5         # between two attempts of one report


class Steady:
    """Calls ``send(make(n), due)`` for n = 0, 1, … on ``workers`` threads, item ``n`` handed over at
    ``due = begin + n / rate``; until ``total`` items are handed over and ``stop`` is set. ``run``
    returns when every send has returned. ``clock`` and ``sleep`` are the schedule's time (the
    workers never read them)."""

    def __init__(self, make, send, rate: float, total: int, workers: int = WORKERS,
                 clock=time.time, sleep=time.sleep):
        self.make, self.send, self.rate, self.total, self.workers = make, send, rate, total, workers
        self.clock, self.sleep = clock, sleep
        self.stop = threading.Event()
        self.abandon = threading.Event()   # the run was interrupted: hand nothing more over
        self.lock = threading.Lock()
        self.issued = 0                # items handed to the pool
        self.in_flight = 0             # handed over and not yet returned (running or queued)
        self.most_in_flight = 0

    def run(self):
        begin = self.clock()
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="load") as pool:
            number = 0
            while (number < self.total or not self.stop.is_set()) and not self.abandon.is_set():
                due = begin + number / self.rate
                delay = due - self.clock()
                if delay > 0:
                    self.sleep(delay)
                item = self.make(number)
                with self.lock:
                    self.issued += 1
                    self.in_flight += 1
                    self.most_in_flight = max(self.most_in_flight, self.in_flight)
                pool.submit(self._send, item, due)
                number += 1
        # leaving the with-block waited for every send

    def _send(self, item, due):
        try:
            self.send(item, due)
        finally:
            with self.lock:
                self.in_flight -= 1


class Load:
    """Sends reports to ``stack``'s gateway at ``rate`` per second on a thread of its own (``thread``),
    until ``total`` are sent and ``stop`` is set: the load lasts as long as the faults do."""

    def __init__(self, stack, rate, total, outcome, seed=11, workers=WORKERS):
        from shared.refdata import load_district
        self.stack, self.outcome = stack, outcome      # outcome(stack, report_id): bench.chaos.through
        self.district = load_district()
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.mix = [(codes, w) for codes, w in class_mix(self.district)]
        self.plain = self.mix[0][0]            # street-order events, not joint: what a probe sends
        self.accepted: dict[str, dict] = {}     # external_id → answer
        self.final: dict[str, str] = {}         # external_id → "done" / "refused", once seen
        self.late: list[float] = []             # per scheduled report: seconds from its time to accepted
        self.attempts = 0
        self.key = stack.operator_key()
        self.refused: list[str] = []
        self.last_error = None
        self.schedule = Steady(lambda number: self.report(), self.send_scheduled, rate, total, workers)
        self.stop = self.schedule.stop
        self.thread = threading.Thread(target=self.schedule.run, daemon=True)

    def report(self, probe=False):
        with self.lock:
            pool = self.plain if probe else \
                self.rng.choices([codes for codes, _ in self.mix], weights=[w for _, w in self.mix])[0]
            return {"external_id": uuid.uuid4().hex[:20], "channel": "web", "class_code": self.rng.choice(pool),
                    "location": random_point(self.district, self.rng),
                    "description": "故障演练探测 chaos probe" if probe else "故障演练 chaos"}

    def send_scheduled(self, report, due):
        if self.schedule.abandon.is_set():        # queued when the run was interrupted
            return
        if self.send(report, due + GIVE_UP_S) is not None:
            with self.lock:
                self.late.append(time.time() - due)

    def send(self, report, deadline):
        """POST until accepted (201, or 422: refused with a reason); the answer, or None at ``deadline``."""
        while True:
            with self.lock:
                self.attempts += 1
            try:
                answer = requests.post(f"{self.stack.gateway}/api/reports", json=report, timeout=15,
                                       headers={"Authorization": f"Bearer {self.key}"})
                if answer.status_code in (201, 422):
                    body = answer.json()
                    with self.lock:
                        self.accepted[report["external_id"]] = body
                    return body
                error = f"{answer.status_code} {answer.text[:200]}"
            except requests.RequestException as exc:
                error = str(exc)[:200]
            with self.lock:
                self.last_error = error
            if time.time() > deadline or self.schedule.abandon.is_set():
                with self.lock:
                    self.refused.append(report["external_id"])
                return None
            time.sleep(RETRY_S)

    def abandon(self):
        """The run was interrupted: no more reports, and the ones in flight stop retrying (else the
        pool's threads would keep the interpreter alive until their reports' give-up times)."""
        self.schedule.abandon.set()

    def answers(self) -> list[tuple[str, dict]]:
        """The accepted reports so far (a copy: the workers keep adding)."""
        with self.lock:
            return list(self.accepted.items())

    def lateness(self) -> dict:
        """Seconds from a report's scheduled time until it was accepted: median, 95th percentile,
        most; and the most reports in flight at once (sending, retrying or queued for a worker)."""
        with self.lock:
            late = sorted(self.late)
        pick = (lambda q: round(late[min(len(late) - 1, int(q * len(late)))], 1)) if late else (lambda q: None)
        return {"median_s": pick(0.5), "p95_s": pick(0.95), "max_s": round(late[-1], 1) if late else None,
                "most_in_flight": self.schedule.most_in_flight, "workers": self.schedule.workers}

    def state(self, report_id) -> str:
        try:
            return self.outcome(self.stack, report_id)
        except Exception:                       # the store away: not known yet
            return "pending"
