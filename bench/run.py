"""``make bench``: drive the whole stack on the default district and report, in figures:

- store trips (bench/store_trips.py): writes and reads per street-owned and per joint-operation
  case, per service; store operations per second while idle; confirmed publishes per case;
  a py-spy flame graph of the busiest process;
- capacity (cases/s from report to owner notified) under a saturating load, then latency
  percentiles under a realistic load at a quarter of that capacity;
- timers falling due at once, fired per second (bench/timer_backlog.py);
- latency p50/p95/p99 report → case registered, and report → owner notified;
- joint-operation fan-out latency (operation opened → every department's inbox delivered it);
- scoring recompute time per 100,000 events;
- in the same run, the raw limits of this machine: broker publish (persistent, confirmed) and
  consume rates, and the store's raw insert rate — each figure also as a share of its limit.

Both loads run on an empty store, then again on a store preloaded with a year of the district
(bench/year_load.py: 50,000 closed cases with their events, built once and cached in the output
folder), where every query shape the services made is replayed with ``explain`` to show which
ones no index serves (bench/index_check.py). ``--skip-year`` / ``--year-only`` run one part.

Results: printed, and saved as JSON and a PNG chart under artifacts/bench/.
    python -m bench.run --reports 150 --rate 10 --store sqlite
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import requests
from kombu import Connection, Exchange, Queue

from bench.stack import PLATFORM_ENV, ROOT, Stack

WATCH = [("intake.events", "case_registered"), ("dispatch.events", "owner_notified"),
         ("coordination.events", "joint_operation_opened")]


def percentile(values, share):
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return round(ordered[index] * 1000, 1)        # ms


# ---------------------------------------------------------------- load
def class_mix(district):
    """A realistic mix: mostly street-order events, some components, some joint classes."""
    joint = [c["code"] for c in district.classes() if c.get("joint")]
    events = [c["code"] for c in district.classes("event") if not c.get("joint")]
    components = [c["code"] for c in district.classes("component")]
    return [(events, 0.65), (components, 0.25), (joint, 0.10)]


def random_point(district, rng):
    grid = rng.choice(district.grids)
    geometry = grid["geometry"]
    minx, miny, maxx, maxy = geometry.bounds
    from shapely.geometry import Point
    while True:
        point = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if geometry.contains(point):
            return {"lon": round(point.x, 6), "lat": round(point.y, 6)}


def make_report(district, mix, rng, channel):
    pool = rng.choices([codes for codes, _ in mix], weights=[w for _, w in mix])[0]
    report = {"class_code": rng.choice(pool), "location": random_point(district, rng),
              "description": "压测上报 benchmark report", "channel": channel}
    if channel == "hotline":
        report["external_id"] = uuid.uuid4().hex[:16]
    return report


class Observer:
    """Consumes copies of the watched events in the bench's vhost and stamps their arrival."""

    def __init__(self, amqp_uri):
        self.amqp_uri = amqp_uri
        self.arrivals: dict[str, dict] = {kind: {} for _, kind in WATCH}
        self.case_to_report: dict[str, str] = {}
        self.operations: dict[str, dict] = {}
        self._stop = threading.Event()
        with Connection(amqp_uri) as connection:
            for exchange, key in WATCH:
                self._queue(exchange, key)(connection.default_channel).declare()

    @staticmethod
    def _queue(exchange, key):
        return Queue(f"bench.observer.{key}", Exchange(exchange, type="topic", durable=True, no_declare=True),
                     routing_key=key, durable=False, auto_delete=False)

    def on_message(self, body, message):
        now = time.time()
        event = json.loads(body) if isinstance(body, (str, bytes)) else body
        payload, kind = event["payload"], event["type"]
        if kind == "case_registered":
            self.case_to_report[payload["case_id"]] = payload["report_id"]
            self.arrivals[kind].setdefault(payload["report_id"], now)
        elif kind == "owner_notified":
            self.arrivals[kind].setdefault(payload["case_id"], now)
        else:
            self.operations.setdefault(payload["operation_id"], {"opened_at": payload["opened_at"],
                                                                 "departments": payload["departments"]})
        message.ack()

    def run(self):
        with Connection(self.amqp_uri) as connection:
            queues = [self._queue(exchange, key) for exchange, key in WATCH]
            with connection.Consumer(queues, callbacks=[self.on_message], accept=["json"]):
                while not self._stop.is_set():
                    try:
                        connection.drain_events(timeout=0.5)
                    except TimeoutError:
                        pass
                    except OSError:
                        if self._stop.is_set():
                            break
                        raise

    def start(self):
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def stop(self):
        self._stop.set()
        self.thread.join(5)


def drive(stack, reports, rate, hotline_share, seed=7):
    """Send the reports at ``rate``/s: a share over the hotline bridge's AMQP channel, the rest
    through the gateway's HTTP API. Returns {report_id: sent_at}."""
    from shared.messaging.publisher import ConfirmedPublisher
    from shared.refdata import load_district
    district = load_district()
    rng = random.Random(seed)
    mix = class_mix(district)
    sent: dict[str, float] = {}
    errors = []
    publisher = ConfirmedPublisher(stack.config["AMQP_URI"])
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + stack.operator_key()
    lock = threading.Lock()

    def send_http(report):
        started = time.time()
        try:
            answer = session.post(f"{stack.gateway}/api/reports", json=report, timeout=30)
            if answer.status_code in (201, 422):          # 422: kept, not filed (error shape)
                body = answer.json()
                with lock:
                    sent[body.get("report_id") or body["error"]["report_id"]] = started
            else:
                errors.append(answer.text[:200])
        except requests.RequestException as exc:
            errors.append(str(exc))

    with ThreadPoolExecutor(max_workers=16) as pool:
        begin = time.time()
        for number in range(reports):
            target = begin + number / rate
            delay = target - time.time()
            if delay > 0:
                time.sleep(delay)
            channel = "hotline" if rng.random() < hotline_share else "web"
            report = make_report(district, mix, rng, channel)
            if channel == "hotline":
                with lock:
                    sent[f"hotline-{report['external_id']}"] = time.time()
                    publisher.publish("intake.inbound", "report.hotline", report)
            else:
                pool.submit(send_http, report)
    publisher.close()
    return sent, errors


def run_load(stack, reports, rate, hotline_share, seed=7) -> dict:
    """Offer ``reports`` at ``rate``/s and wait until every case's owner is notified."""
    observer = Observer(stack.config["AMQP_URI"])
    observer.start()
    sent, errors = drive(stack, reports, rate, hotline_share, seed=seed)
    registered, notified = observer.arrivals["case_registered"], observer.arrivals["owner_notified"]

    def settled():
        cases = [case for case, report in observer.case_to_report.items() if report in sent]
        return len([r for r in sent if r in registered]) >= len(sent) and all(case in notified for case in cases)
    deadline = time.time() + max(120, reports / 2)
    while not settled() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(3)                      # let the last department requests land
    observer.stop()
    cases = {case for case, report in observer.case_to_report.items() if report in sent}
    unsettled = [report for report in sent if report not in registered] + \
        [observer.case_to_report[case] for case in cases if case not in notified]
    reg_lat = [registered[r] - sent[r] for r in sent if r in registered]
    note_pairs = [(notified[c] - sent[observer.case_to_report[c]], notified[c]) for c in cases if c in notified]
    first = min(sent.values())
    last_notified = max((at for _, at in note_pairs), default=first)
    return {"sent": sent, "errors": errors, "observer": observer, "reg_lat": reg_lat, "note_pairs": note_pairs,
            "first": first, "throughput": len(note_pairs) / max(1e-9, last_notified - first),
            "fan": fan_out(stack, {k: v for k, v in observer.operations.items()}),
            "offered": rate, "reports": reports, "unsettled": where(stack, unsettled[:10])}


def where(stack, report_ids) -> list[dict]:
    """What intake says of reports not seen registered or notified (refused with a reason, a
    duplicate merged into a case, or still in progress)."""
    found = []
    for report_id in report_ids:
        try:
            doc = stack.db("intake")["reports"].find_one({"_id": report_id}, {"status": 1, "case_id": 1, "reason": 1})
        except Exception as exc:  # noqa: BLE001 - a diagnosis, not the figure
            doc = {"error": str(exc)[:100]}
        found.append({"report_id": report_id, **{k: v for k, v in (doc or {"status": "not stored"}).items()
                                                 if k != "_id"}})
    return found


def loads(stack, args) -> tuple:
    """The saturating load (capacity), then — once the platform is quiet again — the realistic
    load at a quarter of that capacity (latency). Returns (saturating, realistic, realistic_rate)."""
    print(f"saturating load: {args.reports} reports at {args.rate}/s …", flush=True)
    saturating = run_load(stack, args.reports, args.rate, args.hotline_share)
    throughput = saturating["throughput"]
    realistic_rate = round(max(0.2, throughput / 4), 2)
    print(f"capacity {throughput:.2f} cases/s; realistic load: {args.realistic_reports} reports "
          f"at {realistic_rate}/s (a quarter of it) …", flush=True)
    # the saturating load leaves a backlog (queued hotline reports, RPC retries): the
    # realistic load starts only once the platform is quiet again
    from bench import store_trips
    store_trips.settle(stack, quiet_seconds=8.0, limit=900.0)
    realistic = run_load(stack, args.realistic_reports, realistic_rate, args.hotline_share, seed=8)
    return saturating, realistic, realistic_rate


def latency(pairs_or_values) -> dict:
    values = [item[0] if isinstance(item, tuple) else item for item in pairs_or_values]
    return {q: percentile(values, v) for q, v in (("p50", .5), ("p95", .95), ("p99", .99))}


def year_loaded(args, out: Path) -> dict:
    """The same two loads on a store preloaded with a year of the district (bench/year_load.py),
    then every query shape the services made, replayed with ``explain`` (bench/index_check.py)."""
    from bench import index_check, year_load
    stack = Stack("bench", store="sqlite", db_prefix=year_load.PREFIX,
                  env=PLATFORM_ENV)
    queries = stack.workdir / "queries"
    queries.mkdir(parents=True, exist_ok=True)
    stack.extra_env["STORE_QUERY_LOG"] = str(queries)
    print(f"year-loaded store: {args.year_cases} cases …", flush=True)
    loaded = year_load.prepare(stack.workdir, args.year_cases,
                              out / f"year-{year_load.CACHE_VERSION}-{args.year_cases}.sqlite3")
    with stack:
        print(f"stack up on the year-loaded store (copied in {loaded['copy_seconds']} s)", flush=True)
        saturating, realistic, realistic_rate = loads(stack, args)
        checked = index_check.check(stack.db("x").client, queries)
    (out / "index_check.json").write_text(json.dumps(checked, ensure_ascii=False, indent=2, default=str),
                                          encoding="utf-8")
    return {"year": loaded,
            "capacity_cases_per_s": round(saturating["throughput"], 2),
            "saturating_load": {"reports": args.reports, "rate": args.rate, "sent": len(saturating["sent"]),
                                "owner_notified": len(saturating["note_pairs"]),
                                "send_errors": len(saturating["errors"]), "first_error": saturating["errors"][:1],
                                "unsettled": saturating["unsettled"],
                                "latency_ms": latency(saturating["note_pairs"])},
            "realistic_load": {"reports": args.realistic_reports, "rate": realistic_rate,
                               "sent": len(realistic["sent"]), "owner_notified": len(realistic["note_pairs"]),
                               "send_errors": len(realistic["errors"]), "unsettled": realistic["unsettled"]},
            "latency_ms": latency(realistic["note_pairs"]),
            "report_to_registered_ms": latency(realistic["reg_lat"]),
            "fanout_ms": latency(realistic["fan"]),
            "index_check": {key: value for key, value in checked.items() if key != "rows"},
            "load_average": list(__import__("os").getloadavg())}


def summary(result: dict) -> str:
    """What make bench prints last: both stores side by side, and the index check."""
    lines = ["", "== 大城管 make bench: empty store / year-loaded store =="]
    empty, year = result.get("empty_store"), result.get("year_loaded_store")
    for name, part in (("empty store", empty), ("year-loaded store", year)):
        if not part:
            continue
        lat = part["latency_ms"]
        lines.append(f"{name:18} capacity {part['capacity_cases_per_s']} cases/s; report → owner notified "
                     f"(realistic load {part['realistic_load']['rate']}/s) p50 {lat['p50']} / p95 {lat['p95']} / "
                     f"p99 {lat['p99']} ms; load average {', '.join(f'{x:.1f}' for x in part['load_average'])}")
    if year:
        check = year["index_check"]
        lines.append(f"index check: {check['shapes']} query shapes — {check['index']} by an index, "
                     f"{check['whole']} whole (small) collections, {check['scan']} scans, {check['error']} errors")
        for row in check["unindexed"]:
            lines.append(f"  NOT INDEXED {row['db']}.{row['coll']} {row['command']} "
                         f"{json.dumps(row['filter'], ensure_ascii=False, default=str)[:160]} sort {row['sort']}")
    return "\n".join(lines)


# ---------------------------------------------------------------- raw limits
def raw_broker(amqp_uri, count=3000):
    """Persistent publishes, each confirmed (as the platform publishes), then consume + ack."""
    from shared.messaging.publisher import ConfirmedPublisher
    name = f"bench.raw.{uuid.uuid4().hex[:6]}"
    with Connection(amqp_uri) as connection:
        Queue(name, durable=True)(connection.default_channel).declare()
    publisher = ConfirmedPublisher(amqp_uri)
    body = {"event_id": "x" * 40, "payload": {"text": "压测" * 40}}
    begin = time.time()
    for _ in range(count):
        publisher.publish("", name, body, mandatory=True)
    publish_rate = count / (time.time() - begin)
    publisher.close()
    got = 0
    with Connection(amqp_uri) as connection:
        def on_message(body, message):
            nonlocal got
            got += 1
            message.ack()
        queue = Queue(name, durable=True)
        begin = time.time()
        with connection.Consumer([queue], callbacks=[on_message], accept=["json"], prefetch_count=100):
            while got < count:
                connection.drain_events(timeout=10)
        consume_rate = count / (time.time() - begin)
        queue(connection.default_channel).delete()
    return round(publish_rate), round(consume_rate)


def raw_store(stack, count=300):
    collection = stack.db("bench_raw")["docs"]
    begin = time.time()
    for number in range(count):
        collection.insert_one({"n": number, "payload": {"text": "压测" * 40}})
    rate = count / (time.time() - begin)
    collection.drop()
    return round(rate)


def scoring_recompute(stack):
    """Seconds to recompute every indicator from the event log, scaled to 100,000 events."""
    try:
        from services.scoring import recompute as recompute_module
    except ImportError:
        return None
    events = stack.db("scoring")["events"].count_documents({})
    if not events or not hasattr(recompute_module, "recompute"):
        return None
    begin = time.time()
    outcome = recompute_module.recompute(stack.config)
    seconds = time.time() - begin
    fold = outcome.get("seconds") or seconds          # the fold of the log alone (store.rebuild)
    return {"events": events, "seconds": round(seconds, 3), "fold_seconds": fold,
            "seconds_per_100k_events": round(seconds * 100_000 / events, 1),
            "fold_events_per_s": round(events / fold) if fold else None}


def timer_backlog(stack, count=300):
    """Timers falling due at once, fired per second (bench/timer_backlog.py, its own process)."""
    import subprocess
    import sys
    try:
        done = subprocess.run([sys.executable, "-m", "bench.timer_backlog", "--mongo-uri", stack.config["MONGO_URI"],
                               "--count", str(count)], cwd=ROOT, capture_output=True, text=True, timeout=900)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except Exception as exc:  # noqa: BLE001 - a figure missing, not the run
        print(f"timer backlog not measured: {exc}")
        return None


# ---------------------------------------------------------------- fan-out
def fan_out(stack, operations):
    history = stack.workdir / "departments"
    received: dict[tuple, float] = {}
    for path in history.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            message = entry.get("message") or {}
            if entry.get("type", entry.get("direction")) == "received" and message.get("kind") == "Request":
                moment = datetime.fromisoformat(entry["at"].replace("Z", "+00:00")).timestamp()
                received[(message["incident_id"], path.stem)] = moment
    latencies = []
    for op_id, op in operations.items():
        opened = datetime.fromisoformat(op["opened_at"].replace("Z", "+00:00")).timestamp()
        arrivals = [received.get((op_id, dept)) for dept in op["departments"]]
        if all(arrivals):
            latencies.append(max(arrivals) - opened)
    return latencies


# ---------------------------------------------------------------- report
def chart(result, timeline, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager
    cjk = [f.name for f in font_manager.fontManager.ttflist if "CJK" in f.name or "WenQuanYi" in f.name]
    if cjk:
        plt.rcParams["font.family"] = cjk[0]
    plt.rcParams["axes.unicode_minus"] = False
    fig, (top, bottom, shares) = plt.subplots(3, 1, figsize=(10, 10))
    xs = [t for t, _ in timeline]
    top.scatter(xs, [lat * 1000 for _, lat in timeline], s=6)
    top.set_ylabel("report → owner notified (ms)")
    realistic = result.get("realistic_load") or {"reports": result["reports"], "rate": result["rate"]}
    top.set_title(f"大城管 benchmark — realistic load {realistic['reports']} reports at {realistic['rate']}/s, "
                  f"store={result['store']}")
    buckets: dict[int, int] = {}
    for t in xs:
        buckets[int(t)] = buckets.get(int(t), 0) + 1
    seconds = sorted(buckets)
    bottom.bar(seconds, [buckets[s] for s in seconds], width=0.9)
    bottom.set_ylabel("cases notified / s")
    bottom.set_xlabel("seconds since the first report")
    share = (result.get("store_trips") or {}).get("load_share_by_service") or {}
    total = sum(share.values()) or 1
    names = sorted(share, key=share.get, reverse=True)
    shares.bar(names, [100 * share[n] / total for n in names])
    shares.set_ylabel("% of store operations")
    shares.set_title("各服务的存储操作占比 each service's share of the store operations (load)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=150, help="reports of the saturating load")
    parser.add_argument("--rate", type=float, default=10.0, help="reports per second of the saturating load")
    parser.add_argument("--hotline-share", type=float, default=0.3)
    parser.add_argument("--store", choices=["sqlite", "memory"], default="sqlite",
                        help="embedded store engine when MONGO_URI is not set")
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "bench"))
    parser.add_argument("--count-cases", type=int, default=10,
                        help="reports of each kind (street-owned, joint) whose store trips are counted")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--cluster", action="store_true", help="also the three-node cluster beside the single "
                        "node, same load, as ratios (bench/cluster_bench.py); saved under 'cluster'")
    parser.add_argument("--trips-only", action="store_true",
                        help="only the store trips (idle, per case), no loads")
    parser.add_argument("--realistic-reports", type=int, default=60,
                        help="reports of the realistic load, offered at a quarter of the measured capacity")
    parser.add_argument("--year-cases", type=int, default=50_000,
                        help="cases of the year preloaded for the second run (built once, cached in --out)")
    year = parser.add_mutually_exclusive_group()
    year.add_argument("--skip-year", action="store_true", help="only the empty store")
    year.add_argument("--year-only", action="store_true",
                      help="only the two loads on the year-loaded store and the index check")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    if args.year_only:
        result = {"when": datetime.now().isoformat(timespec="seconds"), "year_loaded_store": year_loaded(args, out)}
        (out / f"bench-{stamp}-year.json").write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str),
                                                      encoding="utf-8")
        print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
        print(summary(result))
        return 0

    from bench import store_trips
    from shared.refdata import load_district
    # the platform's own settings for the polls and heartbeats (the fault suite's stack is faster)
    with Stack("bench", store=args.store, env=PLATFORM_ENV) as stack:
        print(f"stack up (vhost {stack.vhost}); idle store operations for {args.idle_seconds:.0f} s …", flush=True)
        idle = store_trips.idle(stack, args.idle_seconds)
        print(f"idle: {idle['ops_per_s']} store ops/s; counting store trips per case …", flush=True)
        district = load_district()
        street = store_trips.trips_per_case(stack, district, False, args.count_cases, idle_rates=idle["rates"])
        joint = store_trips.trips_per_case(stack, district, True, args.count_cases, idle_rates=idle["rates"])
        print(f"street-owned case: {street['writes']} writes, {street['reads']} reads; "
              f"joint: {joint['writes']} writes, {joint['reads']} reads", flush=True)
        if args.trips_only:
            print(json.dumps({"idle_store_ops_per_s": idle["ops_per_s"], "idle": idle,
                              "street_owned_case": street, "joint_operation_case": joint,
                              "load_average": list(__import__("os").getloadavg())}, ensure_ascii=False))
            return 0
        load_before = store_trips.scrape(stack)
        hottest = store_trips.busiest(stack)
        flame = out / f"bench-{stamp}-flame.svg"
        spy = store_trips.profile(hottest[1], 20, flame) if hottest else None
        saturating, realistic, realistic_rate = loads(stack, args)
        throughput = saturating["throughput"]
        share = store_trips.difference(store_trips.scrape(stack), load_before)
        sent, errors, observer = realistic["sent"], realistic["errors"], realistic["observer"]
        reg_lat, note_pairs, fan, first = (realistic["reg_lat"], realistic["note_pairs"], realistic["fan"],
                                           realistic["first"])
        spy_error = None
        if spy is not None:
            try:
                spy.wait(60)
                spy_error = (spy.stderr.read() or b"").decode()[-300:] if spy.returncode else None
            except Exception as exc:  # noqa: BLE001
                spy_error = str(exc)
        # the raw limits are measured on an idle machine: the platform's processes stop first
        # (a backlog still being worked through would halve the figures); broker and store stay
        for name in list(stack.procs):
            if name != "store":
                stack.kill(name, signal.SIGKILL)
        print("measuring the raw limits of this machine (platform stopped) …", flush=True)
        publish_rate, consume_rate = raw_broker(stack.config["AMQP_URI"])
        store_rate = raw_store(stack)
        recompute = scoring_recompute(stack)
        backlog = timer_backlog(stack)

    result = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "saturating_load": {"reports": args.reports, "rate": args.rate, "sent": len(saturating["sent"]),
                            "owner_notified": len(saturating["note_pairs"]),
                            "capacity_cases_per_s": round(throughput, 2),
                            "latency_ms": {q: percentile([l for l, _ in saturating["note_pairs"]], v)
                                           for q, v in (("p50", .5), ("p95", .95), ("p99", .99))}},
        "realistic_load": {"reports": args.realistic_reports, "rate": realistic_rate,
                           "unsettled": realistic["unsettled"]},
        "load_average": list(__import__("os").getloadavg()),
        "reports": args.reports, "rate": args.rate, "store": "MONGO_URI" if __import__("os").environ.get("MONGO_URI") else args.store,
        "sent": len(sent), "send_errors": len(errors), "registered": len(reg_lat),
        "owner_notified": len(note_pairs), "joint_operations": len(observer.operations),
        "throughput_cases_per_s": round(throughput, 2),
        "latency_ms": {
            "report_to_registered": {"p50": percentile(reg_lat, .5), "p95": percentile(reg_lat, .95), "p99": percentile(reg_lat, .99)},
            "report_to_owner_notified": {"p50": percentile([l for l, _ in note_pairs], .5),
                                         "p95": percentile([l for l, _ in note_pairs], .95),
                                         "p99": percentile([l for l, _ in note_pairs], .99)},
            "fan_out_all_departments": {"p50": percentile(fan, .5), "p95": percentile(fan, .95), "p99": percentile(fan, .99),
                                        "operations": len(fan)},
        },
        "scoring_recompute": recompute,
        "store_trips": {"street_owned_case": street, "joint_operation_case": joint, "idle": idle,
                        "load_share_by_service": {name: sum(e["kinds"].values()) for name, e in share.items()}},
        "profile": {"process": hottest[0] if hottest else None,
                    "flame_graph": str(flame) if flame.exists() else None, "error": spy_error},
        "limits": {"broker_publish_confirmed_per_s": publish_rate, "broker_consume_ack_per_s": consume_rate,
                   "store_insert_per_s": store_rate},
    }
    # Each report costs several confirmed publishes and store writes along the path; the ratios
    # show how close the platform runs to the raw limits of the same machine.
    result["ratios"] = {
        "throughput_vs_store_inserts": round(throughput / store_rate, 3) if store_rate else None,
        "throughput_vs_broker_publish": round(throughput / publish_rate, 4) if publish_rate else None,
        "offered_rate_achieved": round(throughput / args.rate, 3),
    }
    # the figures issue 19 asks for, under its names
    fan_figures = result["latency_ms"]["fan_out_all_departments"]
    result.update({
        "cases_per_s": result["throughput_cases_per_s"], "raw_store_inserts_per_s": store_rate,
        "store_writes_per_case": street["writes"], "store_reads_per_case": street["reads"],
        "store_writes_per_joint_case": joint["writes"], "store_reads_per_joint_case": joint["reads"],
        "confirmed_publishes_per_case": street["confirmed_publishes"],
        "idle_store_ops_per_s": idle["ops_per_s"],
        "fanout_ms": {k: fan_figures[k] for k in ("p50", "p95", "p99")},
        # the whole command (connect, district, fold, indicators of the month) over the run's log;
        # recompute["fold_events_per_s"] is the fold of the log alone
        "recompute_events_per_s": round(recompute["events"] / recompute["seconds"]) if recompute and recompute["seconds"] else None,
        "timers_fired_per_s": (backlog or {}).get("timers_fired_per_s"), "timer_backlog": backlog,
    })
    result["latency_ms"].update({k: result["latency_ms"]["report_to_owner_notified"][k] for k in ("p50", "p95", "p99")})
    result["empty_store"] = {"capacity_cases_per_s": result["cases_per_s"],
                             "realistic_load": result["realistic_load"],
                             "latency_ms": result["latency_ms"]["report_to_owner_notified"],
                             "load_average": result["load_average"]}
    json_path = out / f"bench-{stamp}.json"

    def save():                      # saved now and again after each later part: a part that
        text = json.dumps(result, ensure_ascii=False, indent=2)     # fails loses only itself
        json_path.write_text(text, encoding="utf-8")
        (out / "latest.json").write_text(text, encoding="utf-8")
    save()
    png_path = out / f"bench-{stamp}.png"
    chart(result, sorted((at - first, lat) for lat, at in note_pairs), png_path)
    if not args.skip_year:
        result["year_loaded_store"] = year_loaded(args, out)
        save()
    if args.cluster:                 # cluster ÷ single node, same load, same run
        from bench import cluster_bench
        result["cluster"] = cluster_bench.compare(args.store)
        save()
    print(json.dumps(result, ensure_ascii=False, indent=2))
    print(summary(result))
    print(f"saved {json_path} and {png_path}")
    if errors:
        print(f"{len(errors)} send errors, first: {errors[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
