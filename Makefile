# The suite's commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

BIN      := $(CURDIR)/.bin
SERVICES := gateway users products orders payments notifications
# Services in TypeScript on Node.js (tools/nodeapp.sh builds them).
NODE_SERVICES := shipping
MODULES  := lib $(addprefix services/,$(SERVICES)) tools k8s e2e
PROFILE  ?= redis

.PHONY: help tools build images run run-check observe test test-check test-unit test-fuzz test-e2e loadtest loadtest-check bench bench-check fuzz fmt vet clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: PROFILE=$(PROFILE) (components/<profile>)"

tools: ## build the pinned daprd, sentry, k6, Jaeger, kube-apiserver and kubectl into .bin/, install Prometheus, etcd and Chromium (skips what is there)
	@bash tools/toolchain.sh

build: ## compile every service and the runner into .bin/
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do echo "==> building $$s"; (cd services/$$s && go build -o $(BIN)/$$s .) || exit 1; done
	@for s in $(NODE_SERVICES); do echo "==> building $$s (Node.js)"; bash tools/nodeapp.sh build services/$$s $(BIN)/$$s || exit 1; done
	@echo "==> building daprun"; cd tools && go build -o $(BIN)/daprun ./cmd/daprun

TAG ?= dev

images: ## build a container image per service (needs a Docker engine; TAG=dev): daprshop/<service>:<TAG>
	@command -v docker >/dev/null || { echo "images need Docker (or a compatible builder) on PATH"; exit 1; }
	@for s in $(SERVICES) $(NODE_SERVICES); do echo "==> image daprshop/$$s:$(TAG)"; \
	  docker build -f services/$$s/Dockerfile -t daprshop/$$s:$(TAG) . || exit 1; done

# What each profile needs from `make run` beyond its components.
RUN_FLAGS_redis          := -start-redis
RUN_FLAGS_kafka-postgres := -kafka 9092

run: run-check build ## run the suite with daprd sidecars (PROFILE=redis or kafka-postgres, REPLICAS=orders=3,payments=2, PRIVATE_REDIS=1: a Redis of the run's own, DAPRD=<daprd 1.14.0>); spans go to the Jaeger of `make observe` if it runs (start that first), else nowhere (ZIPKIN=<collector URL>: there); Ctrl-C stops it
	@daprd="$$(bash tools/toolchain.sh sentry daprd-path)" && \
	  zipkin="$(ZIPKIN)" && { [ -n "$$zipkin" ] || zipkin="$$(bash tools/toolchain.sh zipkin-url)"; } && \
	  exec $(BIN)/daprun -f . -daprd "$$daprd" -sentry $(BIN)/sentry -bin $(BIN) -resources components/$(PROFILE) $(RUN_FLAGS_$(PROFILE)) $(if $(REPLICAS),-replicas $(REPLICAS)) $${zipkin:+-zipkin "$$zipkin"} $(if $(PRIVATE_REDIS),-private-redis)

# answers PORT: something listens on 127.0.0.1:PORT (bash, no client tools).
answers = (exec 3<>/dev/tcp/127.0.0.1/$(1)) 2>/dev/null

# What the profile needs from this machine, checked before minutes of building.
run-check:
	@bash tools/nodeapp.sh check
	@test -d components/$(PROFILE) || { echo "no profile components/$(PROFILE) (profiles: $$(cd components && ls -d */ | tr -d / | grep -vx config | tr '\n' ' '))"; exit 1; }
	@if [ "$(PROFILE)" = redis ] && ! $(call answers,6379) && ! command -v redis-server >/dev/null; then \
	  echo "Redis does not answer at 127.0.0.1:6379 and redis-server is not installed (the redis profile keeps state and events there)."; \
	  echo "Install it: sudo apt-get install redis-server (Debian/Ubuntu), brew install redis (macOS);"; \
	  echo "make run then starts a private one when none answers."; exit 1; fi
	@if [ "$(PROFILE)" = kafka-postgres ] && ! $(call answers,5432); then \
	  echo "PostgreSQL does not answer at 127.0.0.1:5432 (the kafka-postgres profile keeps state there)."; \
	  echo "Install and start it: sudo apt-get install postgresql (Debian/Ubuntu), brew install postgresql (macOS),"; \
	  echo "or set postgres-connection-string in components/local-secrets.json to one you have."; exit 1; fi

# Jaeger's ports in make observe (observability/jaeger/config.yaml reads
# these and JAEGER_OTLP_GRPC_PORT, JAEGER_OTLP_HTTP_PORT, JAEGER_QUERY_GRPC_PORT,
# JAEGER_HEALTH_PORT from the environment). It records its PID and ports in
# .run/jaeger: make run sends its spans there only while that process runs
# (tools/toolchain.sh zipkin-url). Both run in the background of one shell
# that waits; however it ends (Ctrl-C, kill, one of them exiting), it stops
# the other and waits for it.
JAEGER_ZIPKIN_PORT ?= 9411
JAEGER_QUERY_PORT  ?= 16686

observe: ## run Prometheus (127.0.0.1:9090) and Jaeger (traces on 127.0.0.1:16686, spans in on 9411) for `make run`: start this first; Ctrl-C stops both
	@bash tools/toolchain.sh prometheus jaeger
	@if [ -n "$$(bash tools/toolchain.sh zipkin-url 2>/dev/null)" ]; then \
	  echo "make observe already runs (Jaeger PID $$(cut -d' ' -f1 .run/jaeger)): stop it first"; exit 1; fi
	@mkdir -p .run/prometheus
	@echo "==> Prometheus on http://127.0.0.1:9090 scrapes the services (8080-8086) and their daprd (9190-9196)"
	@echo "    dashboards: import observability/grafana/dashboards/*.json into Grafana (README, Observability)"
	@echo "==> Jaeger: traces on http://127.0.0.1:$(JAEGER_QUERY_PORT); make run's sidecars send spans to http://127.0.0.1:$(JAEGER_ZIPKIN_PORT)/api/v2/spans"
	@echo "    start make run after this: a suite started before sends its spans nowhere (stop it, make run again)"
	@echo "==> Ctrl-C stops both"
	@prom=""; jaeger=""; \
	  stop() { trap - INT TERM HUP EXIT; kill $$prom $$jaeger 2>/dev/null; wait; \
	    echo "==> stopped. A make run started while this ran still sends its spans to 127.0.0.1:$(JAEGER_ZIPKIN_PORT), where any local user could now listen: stop it too (or start make observe again)"; \
	    [ -z "$$jaeger" ] || ! grep -q "^$$jaeger " .run/jaeger 2>/dev/null || rm -f .run/jaeger; }; \
	  trap 'stop; exit 130' INT; trap 'stop; exit 143' TERM HUP; trap stop EXIT; \
	  prometheus --config.file=observability/prometheus/prometheus.yml --storage.tsdb.path=.run/prometheus \
	    --web.listen-address=127.0.0.1:9090 --log.level=warn & prom=$$!; \
	  JAEGER_ZIPKIN_PORT=$(JAEGER_ZIPKIN_PORT) JAEGER_QUERY_PORT=$(JAEGER_QUERY_PORT) JAEGER_UI_ASSETS=$(CURDIR)/observability/jaeger/ui \
	    $(BIN)/jaeger --config observability/jaeger/config.yaml & jaeger=$$!; \
	  echo "$$jaeger $(JAEGER_ZIPKIN_PORT) $(JAEGER_QUERY_PORT)" > .run/jaeger; \
	  while kill -0 $$prom 2>/dev/null && kill -0 $$jaeger 2>/dev/null; do sleep 1; done; \
	  if kill -0 $$jaeger 2>/dev/null; then echo "==> Prometheus stopped: stopping Jaeger"; else echo "==> Jaeger stopped: stopping Prometheus"; fi; exit 1

test: test-check tools test-unit test-fuzz test-e2e ## unit tests, a short fuzz run, then integration tests through real sidecars

# What the integration tests need from this machine (for the profiles and
# passes E2E_PROFILES and E2E_FAULTS select), checked before minutes of building.
test-check:
	@bash tools/nodeapp.sh check
	@missing=""; profiles="$${E2E_PROFILES:-redis,kafka-postgres}"; \
	case "$$profiles" in *redis*) $(call answers,6379) || \
	  missing="$$missing\n  Redis on 127.0.0.1:6379 (sudo apt-get install redis-server, brew install redis)";; esac; \
	[ "$$E2E_FAULTS" = 0 ] || command -v redis-server >/dev/null || \
	  missing="$$missing\n  redis-server on PATH, for the fault tests (the same package; E2E_FAULTS=0 leaves them out)"; \
	case "$$profiles" in *postgres*) [ -n "$$E2E_POSTGRES" ] || $(call answers,5432) || \
	  missing="$$missing\n  PostgreSQL on 127.0.0.1:5432, user postgres with trust (sudo apt-get install postgresql), or E2E_POSTGRES set to an admin connection string";; esac; \
	if [ -n "$$missing" ]; then printf "make test needs:$$missing\n"; exit 1; fi

# The platforms every module must build and vet for besides this one: the
# README sends macOS users to brew, so the runner and tests must compile there.
CROSS := darwin/arm64 darwin/amd64

test-unit: ## vet and unit-test every module on its own (GOWORK=off); cross-compile and vet each for macOS
	@for m in $(filter-out e2e,$(MODULES)); do \
	  echo "==> $$m: vet and unit tests"; \
	  (cd $$m && GOWORK=off go vet ./... && PROMTOOL_REQUIRED=1 RUNNER_REQUIRED=1 DAPRD=$(BIN)/daprd SENTRY=$(BIN)/sentry \
	    KUBE_REQUIRED=1 KUBE_APISERVER=$(BIN)/kube-apiserver KUBECTL=$(BIN)/kubectl ETCD=$$(command -v etcd) JAEGER_REQUIRED=1 JAEGER=$(BIN)/jaeger \
	    GOWORK=off go test -count=1 -timeout 30m ./...) || exit 1; \
	done
	@for s in $(NODE_SERVICES); do echo "==> services/$$s: build and unit tests (node --test)"; \
	  bash tools/nodeapp.sh build services/$$s $(BIN)/$$s && (cd services/$$s && npm test) || exit 1; done
	@echo "==> e2e: vet"; cd e2e && GOWORK=off go vet ./...
	@for p in $(CROSS); do echo "==> every module: build and vet for $$p"; \
	  for m in $(MODULES); do \
	    (cd $$m && GOOS=$${p%/*} GOARCH=$${p#*/} GOWORK=off go build ./... && \
	      GOOS=$${p%/*} GOARCH=$${p#*/} GOWORK=off go vet ./...) || { echo "$$m does not build or vet for $$p"; exit 1; }; \
	  done; \
	done

# The e2e binary runs every pass (each profile, the CLI, the faults) in one
# process: go test's default 10m (killed at 11m) is for the whole of it, and a
# slow CI machine needs more than that. Each pass's own m.Run gets it too.
E2E_TIMEOUT ?= 45m

test-e2e: ## integration tests on both profiles (real daprd sidecars, Redis, then Kafka in-process + PostgreSQL), the suite under `dapr run -f .` (with a Dapr CLI), fault tests
	@echo "==> e2e: the suite on the redis profile (127.0.0.1:6379), then on kafka-postgres (PostgreSQL 127.0.0.1:5432)"
	@cd e2e && DAPRD=$(BIN)/daprd SENTRY=$(BIN)/sentry K6=$(BIN)/k6 JAEGER=$(BIN)/jaeger $(if $(wildcard $(BIN)/dapr),DAPR_CLI=$(BIN)/dapr) \
	  E2E_REQUIRED=1 GOWORK=off go test -count=1 -timeout $(E2E_TIMEOUT) -v ./... 2>&1 | \
	  grep --line-buffered -vE '^=== (RUN|PAUSE|CONT)'; exit $${PIPESTATUS[0]}

SCENARIO ?= load

loadtest: loadtest-check tools build ## run loadtest/<SCENARIO>.js with k6 (SCENARIO=load by default, smoke, stress, spike or soak; starts the suite if none answers); DURATION, RATE (load, soak), MAX_RATE and RAMP (stress), SPIKE_RATE (spike), LATENCY=0 (no latency thresholds), PROFILE
	@PROFILE=$(PROFILE) bash tools/loadtest.sh $(SCENARIO)

bench: bench-check tools build ## the sidecar floor, each sidecar operation's cost, a stream of orders (BENCH_STREAM_RATE: 0 calibrates, BENCH_STREAM_DURATION, BENCH_SHIPPING_STEPS) and the overload (BENCH_RATE, BENCH_DURATION); PROFILE=kafka-postgres; starts a suite of its own (stop make run first)
	@PROFILE=$(PROFILE) BENCH_RATE=$(BENCH_RATE) BENCH_DURATION=$(BENCH_DURATION) bash tools/loadtest.sh bench

# The settings of loadtest and bench, checked before minutes of building.
loadtest-check:
	@PROFILE=$(PROFILE) bash tools/loadtest.sh --check $(SCENARIO)
bench-check:
	@PROFILE=$(PROFILE) BENCH_RATE=$(BENCH_RATE) BENCH_DURATION=$(BENCH_DURATION) bash tools/loadtest.sh --check bench

BENCH_RATE ?= 200
BENCH_DURATION ?= 10s

# Fuzz targets: module:package:Target. `make fuzz FUZZTIME=5m` for a long run.
FUZZTIME ?= 20s
FUZZ := lib:./web:FuzzDecode lib:./events:FuzzHandler \
	services/gateway:./internal/httpapi:FuzzGateway services/users:./internal/httpapi:FuzzSignUpAndLogin \
	services/products:./internal/httpapi:FuzzWrites services/orders:./internal/httpapi:FuzzPlaceOrder \
	services/orders:./internal/httpapi:FuzzEventsAndCancel services/payments:./internal/httpapi:FuzzWrites \
	services/notifications:./internal/httpapi:FuzzEvents

test-fuzz: ## every fuzz target for 5,000 inputs (part of make test; a count, not a duration, so a busy machine cannot time it out)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=5000x

fuzz: ## run every fuzz target for FUZZTIME (default 20s each)
	@for f in $(FUZZ); do IFS=: read -r mod pkg target <<< "$$f"; \
	  echo "==> fuzz $$mod $$pkg $$target ($(FUZZTIME))"; \
	  (cd $$mod && GOWORK=off go test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$pkg) || exit 1; \
	done

fmt: ## gofmt every Go file
	@gofmt -w $$(git ls-files '*.go')

vet: ## go vet every module through go.work
	@for m in $(MODULES); do (cd $$m && go vet ./...) || exit 1; done

clean: ## remove built binaries (.bin/) and what runs left in .run/ (Prometheus data, private Redis)
	rm -rf $(BIN) .run
