VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian packages the tests use: promtool (prometheus) checks /metrics, prometheus and
# victoria-metrics are the engines of the Prometheus store's tests, ip (iproute2) makes the
# real-kernel test's network namespaces, chromium runs the dashboard's browser tests;
# buildah builds the images (on a base mmdebstrap makes where the official one cannot be
# pulled), containerd and runc run them; the CNI plugins give the real node's pods their
# network, gcc and libc6-dev build its static pause.
DEBIAN_PACKAGES := prometheus victoria-metrics iproute2 chromium buildah mmdebstrap containerd runc \
	containernetworking-plugins gcc libc6-dev
# uPlot, pinned in web/package-lock.json, copied into the package by web/build.mjs.
DASHBOARD_ASSETS := src/cloudmon/dashboard/static/uPlot.iife.min.js

.PHONY: run demo test soak lint bench images system-packages dashboard clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	$(PY) -m pip install --quiet -e '.[test]'
	# The CRI's stubs for the real node's tests. Its metadata asks for protobuf 6 where
	# cloudmon pins 7, with which the stubs load and run: installed without its dependencies.
	$(PY) -m pip install --quiet --no-deps container-runtime-interface-api==2.0.1
	touch $(STAMP)

dashboard: $(DASHBOARD_ASSETS)

$(DASHBOARD_ASSETS): web/package.json web/package-lock.json web/build.mjs
	cd web && npm ci --no-audit --no-fund --silent && npm run --silent build

system-packages:
	@if command -v promtool >/dev/null && command -v victoria-metrics >/dev/null \
		&& command -v ip >/dev/null && command -v chromium >/dev/null \
		&& command -v buildah >/dev/null && command -v mmdebstrap >/dev/null \
		&& command -v containerd >/dev/null && command -v runc >/dev/null \
		&& [ -x /usr/lib/cni/bridge ] && command -v gcc >/dev/null \
		&& [ -f "$$(gcc -print-file-name=libc.a)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $(DEBIAN_PACKAGES) >/dev/null; \
	else echo "note: install $(DEBIAN_PACKAGES) for the tests that need them"; fi

PORT ?= 8080

# $(call serve,STORE,COMMAND,HINT): the server on port $(PORT) with STORE and, once it answers,
# COMMAND beside it (run with $$url set) until Ctrl-C or either exits. It fails at once when
# the port is taken (checked before starting), and whenever the server exits.
define serve
	@bash -c 'url=http://127.0.0.1:$(PORT); \
		if (exec 3<>/dev/tcp/127.0.0.1/$(PORT)) 2>/dev/null; then \
			echo "make $@: port $(PORT) is taken: something already answers at $$url." \
				"Stop it, or choose another port: make $@ PORT=$$(($(PORT) + 1))" >&2; \
			exit 1; \
		fi; \
		trap "kill \$$(jobs -p) 2>/dev/null" EXIT; \
		$(VENV)/bin/cloudmon server --port $(PORT) --storage $(1) & \
		server=$$!; \
		until (exec 3<>/dev/tcp/127.0.0.1/$(PORT)) 2>/dev/null; do \
			kill -0 $$server 2>/dev/null || break; sleep 0.2; \
		done; \
		if kill -0 $$server 2>/dev/null; then \
			echo; echo "cloudmon is at $$url -- try:"; $(3) echo; \
			$(2) & \
			wait -n $$server $$!; \
			kill -0 $$server 2>/dev/null && { echo "make $@: cloudmon $(word 2,$(2)) exited" >&2; exit 1; }; \
		fi; \
		echo "make $@: the server on port $(PORT) exited (its log is above)" >&2; exit 1'
endef

# The server on ./data/cloudmon.db and an agent monitoring this machine; Ctrl-C stops both.
run: $(STAMP) $(DASHBOARD_ASSETS)
	@mkdir -p data
	$(call serve,sqlite:///data/cloudmon.db,$(VENV)/bin/cloudmon agent --server $$url --interval 10,\
		echo "  curl -s $$url/api/nodes"; echo "  curl -s \"$$url/api/cluster?window=5m\"";)

# A synthetic cluster (namespaces shop, payments, monitoring, kube-system) fed to a server with
# a store of its own, new each time (data/demo/): an hour of history, then live samples every
# 10 s, until Ctrl-C.
demo: $(STAMP) $(DASHBOARD_ASSETS)
	@rm -rf data/demo && mkdir -p data/demo
	$(call serve,sqlite:///data/demo/cloudmon.db,$(VENV)/bin/cloudmon demo --server $$url,\
		echo "  .venv/bin/cloudmon top pods -n shop --server $$url"; \
		echo "  curl -s \"$$url/api/namespaces/shop?window=1h&metrics=cpu_cores\"";)

# build/monitor.tar and build/monitor-api.tar, as ./deploy builds and saves them; where GitHub
# cannot be reached: make images DEPLOY_OPTIONS=--no-crictl
images: $(DASHBOARD_ASSETS)
	./deploy --images-only $(DEPLOY_OPTIONS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

test: lint system-packages $(DASHBOARD_ASSETS)
	$(PY) -m pytest

# The long fault and load tests: a 5-minute server outage with agents sampling every second,
# then 10 minutes of 200 nodes x 50 pods every 10 s and readers (figures printed).
soak: $(STAMP)
	CLOUDMON_OUTAGE_SECONDS=300 CLOUDMON_OUTAGE_INTERVAL=1 \
		$(PY) -m pytest --timeout 900 tests/e2e/test_server_outage.py
	CLOUDMON_SOAK_SECONDS=600 $(PY) -m pytest -s --timeout 900 tests/e2e/test_soak.py

bench: $(STAMP)
	$(PY) bench/agent.py
	$(PY) bench/server.py
	$(PY) bench/prometheus.py
	$(PY) bench/density.py
	$(PY) bench/catchup.py
	$(PY) bench/rightsize.py

clean:
	rm -rf $(VENV)
