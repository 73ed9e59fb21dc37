#!/usr/bin/env bash
# Make sure a RabbitMQ broker is reachable, with the management plugin.
# AMQP_URI set: use that broker as it is. Otherwise: the local RabbitMQ, installed from
# Debian's rabbitmq-server and started if missing.
set -euo pipefail
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
  echo "broker: starting the local RabbitMQ …"
  rabbitmq-server -detached
  for _ in $(seq 1 60); do port_open 5672 && break; sleep 1; done
  port_open 5672 || { echo "RabbitMQ did not start on :5672" >&2; exit 1; }
fi
if ! port_open 15672; then
  rabbitmq-plugins enable rabbitmq_management >/dev/null
  for _ in $(seq 1 60); do port_open 15672 && break; sleep 1; done
fi
port_open 15672 || { echo "the RabbitMQ management plugin did not come up on :15672" >&2; exit 1; }
echo "broker: RabbitMQ on 127.0.0.1:5672, management on http://127.0.0.1:15672"
