"""IoT sensor feed simulator: publishes readings of a registered sensor (shared/refdata
sensors.yaml) to intake — plain pika, exchange ``intake.inbound``, routing key
``reading.<metric>``.  intake's rule (intake.yaml ``sensor_rules``) turns a sustained
exceedance into a report by itself.

    # 40 one-minute PM10 readings at 180 µg/m³ ending now (back-filled): the 30-minute rule fires
    python -m bridges.sensor_feed --sensor dust-tsl-001 --value 180 --minutes 40
    # live: one reading every 60 s until Ctrl-C
    python -m bridges.sensor_feed --sensor dust-tsl-001 --value 180 --live --interval 60

A reading:  {"reading_id": "dust-tsl-001:20261123T091200Z", "sensor_id": "dust-tsl-001",
             "metric": "pm10", "value": 180.0, "unit": "µg/m³", "measured_at": "2026-11-23T09:12:00Z"}

Settings: SENSOR_AMQP_URL (else BRIDGE_AMQP_URL, else guest on localhost — development only).
"""
from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from datetime import datetime, timedelta, timezone

from bridges.publisher import Publisher, amqp_url

log = logging.getLogger("sensor-feed")


def reading(sensor: dict, value: float, at: datetime, unit: str) -> dict:
    stamp = at.astimezone(timezone.utc).replace(microsecond=0)
    return {"reading_id": f"{sensor['id']}:{stamp:%Y%m%dT%H%M%SZ}", "sensor_id": sensor["id"],
            "metric": sensor["metric"], "value": round(value, 1), "unit": unit,
            "measured_at": stamp.isoformat().replace("+00:00", "Z")}


def series(sensor: dict, value: float, minutes: int, end: datetime, unit: str, jitter: float = 0.0,
           step_minutes: float = 1.0, seed: int = 1) -> list[dict]:
    """Readings every ``step_minutes`` from ``end - minutes`` to ``end`` (inclusive)."""
    draw = random.Random(seed)
    count = int(minutes / step_minutes)
    start = end - timedelta(minutes=count * step_minutes)
    return [reading(sensor, value + draw.uniform(-jitter, jitter), start + timedelta(minutes=i * step_minutes), unit)
            for i in range(count + 1)]


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m bridges.sensor_feed", description=__doc__.split("\n")[0])
    parser.add_argument("--sensor", required=True, help="a sensor id of sensors.yaml, e.g. dust-tsl-001")
    parser.add_argument("--value", type=float, required=True)
    parser.add_argument("--minutes", type=int, default=40, help="length of the back-filled series")
    parser.add_argument("--jitter", type=float, default=5.0)
    parser.add_argument("--live", action="store_true", help="publish in real time instead")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between live readings")
    args = parser.parse_args(argv)
    from shared.refdata import load_district
    district = load_district()
    try:
        sensor = district.sensor(args.sensor)
    except KeyError:
        print(f"未登记的传感器 {args.sensor}; known: {', '.join(sorted(district.sensors))}", file=sys.stderr)
        return 2
    rule = district.sensor_rule(sensor["metric"])
    publisher = Publisher(amqp_url("SENSOR_AMQP_URL"))
    key = f"reading.{sensor['metric']}"
    sent = 0
    try:
        if args.live:
            while True:
                publisher.publish(key, reading(sensor, args.value + random.uniform(-args.jitter, args.jitter),
                                               datetime.now(timezone.utc), rule["unit"]))
                sent += 1
                time.sleep(args.interval)
        for item in series(sensor, args.value, args.minutes, datetime.now(timezone.utc), rule["unit"],
                           args.jitter):
            publisher.publish(key, item, message_id=item["reading_id"])
            sent += 1
    except KeyboardInterrupt:
        pass
    finally:
        publisher.close()
    print(f"已发送 {sent} 条 {sensor['metric']} 读数 (threshold {rule['threshold']:g}{rule['unit']} "
          f"for {rule['sustained_minutes']:g} min) → intake.inbound/{key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
