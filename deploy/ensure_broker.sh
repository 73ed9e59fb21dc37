#!/usr/bin/env bash
# Make sure a RabbitMQ broker is reachable, with the management plugin.
# AMQP_URI set: use that broker as it is. Otherwise: the local RabbitMQ, installed from
# Debian's rabbitmq-server and started if missing. A broker started here reads the config
# written to var/rabbitmq/rabbitmq.conf: AMQP and management listen on 127.0.0.1 only
# (BROKER_BIND_ADDR to change it). BROKER_CONFIG_ONLY=1 writes that file and stops.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BROKER_CONFIG="${BROKER_CONFIG:-$ROOT/var/rabbitmq/rabbitmq.conf}"
write_config() {
  local addr="${BROKER_BIND_ADDR:-127.0.0.1}"
  mkdir -p "$(dirname "$BROKER_CONFIG")"
  cat >"$BROKER_CONFIG" <<CONF
# written by deploy/ensure_broker.sh: listen on $addr only
listeners.tcp.1 = $addr:5672
management.tcp.ip = $addr
management.tcp.port = 15672
loopback_users.guest = true
CONF
}
if [ -n "${BROKER_CONFIG_ONLY:-}" ]; then write_config; echo "$BROKER_CONFIG"; exit 0; fi
if [ -n "${AMQP_URI:-}" ]; then
  echo "broker: using AMQP_URI (${AMQP_URI%%@*}@…)"; exit 0
fi
port_open() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "RabbitMQ is not installed. As root run: apt-get update && apt-get install -y rabbitmq-server" >&2
    exit 1
  fi
  echo "broker: installing Debian's rabbitmq-server …"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
fi
if ! port_open 5672; then
  echo "broker: starting the local RabbitMQ (config $BROKER_CONFIG) …"
  write_config
  RABBITMQ_CONFIG_FILE="$BROKER_CONFIG" rabbitmq-server -detached
  for _ in $(seq 1 60); do port_open 5672 && break; sleep 1; done
  port_open 5672 || { echo "RabbitMQ did not start on :5672" >&2; exit 1; }
fi
if ! port_open 15672; then
  rabbitmq-plugins enable rabbitmq_management >/dev/null
  for _ in $(seq 1 60); do port_open 15672 && break; sleep 1; done
fi
port_open 15672 || { echo "the RabbitMQ management plugin did not come up on :15672" >&2; exit 1; }
echo "broker: RabbitMQ on 127.0.0.1:5672, management on http://127.0.0.1:15672"
echo "        (a broker started before: its own config decides where it listens; see docs/security.md)"
