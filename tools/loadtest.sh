#!/usr/bin/env bash
# Runs a k6 scenario from loadtest/ against the suite's gateway, or with the
# scenario "bench" the benchmark harness (tools/cmd/bench: the sidecar floor,
# the suite's endpoints, a sustained stream of orders). Starts the suite
# (make run's way, in the background) when nothing answers on the gateway,
# and stops it afterwards.
# Writes loadtest/results/<scenario>.json and <scenario>.txt (bench: bench.md).
# Usage: tools/loadtest.sh [scenario]
#        tools/loadtest.sh --check [scenario]   only check the settings below
#                                               (make runs it before building)
#   env: DURATION, RATE, PROFILE, BASE_URL; BENCH_RATE, BENCH_DURATION,
#   BENCH_STREAM_RATE (0: three quarters of what the machine sustains, priced
#   by a calibration stream), BENCH_STREAM_DURATION (60s),
#   BENCH_SHIPPING_STEPS (the suite's shipping steps: shipped=500ms,delivered=500ms),
#   BENCH_KAFKA_PARTITIONS (kafka-postgres: partitions of every topic;
#   default: those k8s/kafka/topics.yaml declares, as on Kubernetes);
#   APP_ENV: space-separated APP:NAME=value settings for the suite it starts
#   (daprun -app-env), e.g. APP_ENV="gateway:ADMIT=false"; GATEWAY_NICE and
#   K6_NICE (default -10 each: the priority of the gateway of the suite it
#   starts, and of k6; see below)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHECK_ONLY=""
if [[ "${1:-}" == --check ]]; then CHECK_ONLY=1; shift; fi
SCENARIO="${1:-smoke}"
BASE_URL="${BASE_URL:-http://127.0.0.1:8080}"
PROFILE="${PROFILE:-redis}"
SCRIPT="$ROOT/loadtest/$SCENARIO.js"
OUT="$ROOT/loadtest/results"

# Every setting is checked before anything is built or started, each
# problem naming the variable that has it.
problems=()
[[ -f "$SCRIPT" || "$SCENARIO" == bench ]] ||
  problems+=("SCENARIO=$SCENARIO: no such scenario (have: $(cd "$ROOT/loadtest" && ls *.js | sed 's/\.js$//' | tr '\n' ' ')bench)")
[[ -n "$PROFILE" && "$PROFILE" != config && -d "$ROOT/components/$PROFILE" ]] ||
  problems+=("PROFILE=$PROFILE: no such profile (profiles: $(cd "$ROOT/components" && ls -d */ | tr -d / | grep -vx config | tr '\n' ' '))")
for v in RATE MAX_RATE SPIKE_RATE CALM_RATE BENCH_RATE BENCH_STREAM_RATE MAX_RSS_MB MAX_RSS_MB_NODE; do
  [[ -z "${!v:-}" || "${!v}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || problems+=("$v=${!v}: must be a number, e.g. 30")
done
for v in BENCH_KAFKA_PARTITIONS; do
  [[ -z "${!v:-}" || "${!v}" =~ ^[0-9]+$ ]] || problems+=("$v=${!v}: must be a whole number")
done
for v in GATEWAY_NICE K6_NICE; do
  [[ -z "${!v:-}" || "${!v}" =~ ^-?[0-9]+$ ]] || problems+=("$v=${!v}: must be a nice value, -20 to 19")
done
for v in DURATION RAMP SETTLE BENCH_DURATION BENCH_STREAM_DURATION; do
  [[ -z "${!v:-}" || "${!v}" =~ ^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$ ]] || problems+=("$v=${!v}: must be a duration such as 500ms, 30s or 1m30s")
done
if [[ "$SCENARIO" == bench && ${#problems[@]} -eq 0 ]] && curl -fsS -o /dev/null "$BASE_URL/healthz" 2>/dev/null; then
  # The bench's suite has settings of its own (profiling endpoints, users'
  # login limit for its 125 customers, a shipment's pace) and its own empty
  # store and broker, whose records it counts: a suite started otherwise
  # (make run) refused its sign-ups a minute in.
  problems+=("a suite already answers at $BASE_URL: make bench measures a suite it starts itself; stop that one (Ctrl-C in make run) and run make bench again")
fi
if [[ ${#problems[@]} -gt 0 ]]; then
  printf '%s\n' "${problems[@]}" >&2
  exit 2
fi
[[ -z "$CHECK_ONLY" ]] || exit 0
mkdir -p "$OUT"

started=""
kafka_started=""
stop_suite() {
  if [[ -n "$started" ]]; then
    echo "==> stopping the suite"
    kill -INT "$started" 2>/dev/null || true
    wait "$started" 2>/dev/null || true
  fi
  if [[ -n "$kafka_started" ]]; then
    kill -TERM "$kafka_started" 2>/dev/null || true
    wait "$kafka_started" 2>/dev/null || true
  fi
}
trap stop_suite EXIT

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ "$SCENARIO" == bench ]]; then
  echo "==> building the bench"
  (cd "$ROOT/tools" && go build -o "$ROOT/.bin/bench" ./cmd/bench)
fi

if ! curl -fsS -o /dev/null "$BASE_URL/healthz" 2>/dev/null; then
  echo "==> nothing answers at $BASE_URL: starting the suite (PROFILE=$PROFILE), log in $OUT/suite.log"
  # A private, empty Redis: no data or event backlog of other runs, and
  # nothing this run leaves behind in the machine's Redis.
  flags="-private-redis"
  if [[ "$PROFILE" == kafka-postgres ]]; then
    if listening 9092; then
      # A Kafka of the machine's (the secrets file names 127.0.0.1:9092).
      echo "==> a Kafka broker answers on 127.0.0.1:9092: the suite uses it"
      flags=""
    elif [[ "$SCENARIO" == bench ]]; then
      # The bench's broker: every topic with the partitions the Kubernetes
      # deployment declares, whatever the runner's own broker gives them.
      "$ROOT/.bin/bench" kafka -port 9092 -manifest "$ROOT/k8s/kafka/topics.yaml" -resources "$ROOT/components/$PROFILE" \
        -partitions "${BENCH_KAFKA_PARTITIONS:-0}" > "$OUT/kafka.log" 2>&1 &
      kafka_started=$!
      for _ in $(seq 1 50); do listening 9092 && break; sleep 0.1; done
      listening 9092 || { echo "the bench's Kafka broker did not start:"; cat "$OUT/kafka.log"; exit 1; }
      echo "==> $(cat "$OUT/kafka.log")"
      flags=""
    else
      flags="-kafka 9092"
    fi
  fi
  for kv in ${APP_ENV:-}; do flags+=" -app-env $kv"; done
  if [[ "$SCENARIO" == bench ]]; then
    # The benchmark profiles the services on the order's path, and signs
    # up more customers than users' 30 logins a minute from one address.
    flags+=" -app-env gateway:PPROF_ADDR=127.0.0.1:6060 -app-env orders:PPROF_ADDR=127.0.0.1:6061 -app-env products:PPROF_ADDR=127.0.0.1:6062 -app-env payments:PPROF_ADDR=127.0.0.1:6063"
    flags+=" -app-env users:LOGIN_ATTEMPTS_PER_ADDRESS=1000"
    # A shipment's steps half a second apart (make run: 3 s and 5 s), so
    # that how long after the stream its events settle measures the suite,
    # not the courier's pace; the same steps, the same work.
    flags+=" -app-env shipping:SHIPPING_STEPS=${BENCH_SHIPPING_STEPS:-shipped=500ms,delivered=500ms}"
  fi
  # shellcheck disable=SC2086
  "$ROOT/.bin/daprun" -f "$ROOT" -daprd "$ROOT/.bin/daprd" -sentry "$ROOT/.bin/sentry" -bin "$ROOT/.bin" -resources "$ROOT/components/$PROFILE" -color never $flags > "$OUT/suite.log" 2>&1 &
  started=$!
  for i in $(seq 1 180); do
    curl -fsS -o /dev/null "$BASE_URL/healthz" 2>/dev/null && grep -q "the suite is up" "$OUT/suite.log" && break
    kill -0 "$started" 2>/dev/null || { echo "the suite did not start:"; tail -30 "$OUT/suite.log"; exit 1; }
    (( i % 10 == 0 )) && echo "==> waiting for the suite (${i}s)"
    sleep 1
  done
  # The edge first: the gateway's refusal of what the suite cannot serve
  # takes a fraction of a millisecond of CPU, but on a machine the suite
  # saturates (2 cores shared by twelve processes, Redis and k6) it waits
  # behind everything else for a core: 10 ms at p99 where a gateway with a
  # core of its own answers within 1. A higher priority for the gateway's
  # threads, as a node or a CPU reservation of its own gives it in
  # production, keeps refusals prompt (k6 gets the same, below).
  # GATEWAY_NICE=0 leaves it as it is; lowering a nice value needs root (or
  # CAP_SYS_NICE), without which the run goes on at the usual priority.
  # Not for the bench, which measures the suite as make run starts it.
  nice_to="${GATEWAY_NICE:--10}"
  if [[ "$SCENARIO" != bench && "$nice_to" != 0 ]]; then
    for pid in $(pgrep -P "$started" -x gateway); do
      for task in /proc/"$pid"/task/*; do
        renice -n "$nice_to" -p "${task##*/}" >/dev/null 2>&1 || { echo "==> cannot renice the gateway (not root): it runs at the machine's priority"; break 2; }
      done
      echo "==> the gateway (pid $pid) runs at nice $nice_to (GATEWAY_NICE)"
    done
  fi
elif [[ "$SCENARIO" != bench ]]; then
  # Not ours to renice: say what that means for the refusals' threshold.
  echo "==> a suite already answers at $BASE_URL: its gateway runs at the priority it was started with (GATEWAY_NICE is for a suite this script starts); on two saturated cores the refusals' p99 can miss 5 ms for it (stop it and let this script start one)"
fi

if [[ "$SCENARIO" == bench ]]; then
  # The pub/sub's broker, whose topics' records the bench counts: the
  # private Redis the runner started, else the profile's own address.
  broker="-redis 127.0.0.1:6379"
  [[ "$PROFILE" == kafka-postgres ]] && broker="-kafka 127.0.0.1:9092"
  if [[ "$PROFILE" == redis && -n "$started" ]]; then
    addr=$(sed -n 's/.*started a private redis-server at \([0-9.:]*\).*/\1/p' "$OUT/suite.log" | sed -n 1p)
    [[ -n "$addr" ]] && broker="-redis $addr"
  fi
  cd "$ROOT/tools"
  # shellcheck disable=SC2086
  "$ROOT/.bin/bench" -daprd "$ROOT/.bin/daprd" -sentry "$ROOT/.bin/sentry" -gateway "$BASE_URL" -rate "${BENCH_RATE:-200}" -duration "${BENCH_DURATION:-10s}" -out "$OUT" \
    -stream-rate "${BENCH_STREAM_RATE:-0}" -stream-duration "${BENCH_STREAM_DURATION:-60s}" -profile "$PROFILE" -resources "$ROOT/components/$PROFILE" $broker \
    -k8s-topics "$ROOT/k8s/kafka/topics.yaml" \
    -pprof gateway=127.0.0.1:6060,orders=127.0.0.1:6061,products=127.0.0.1:6062,payments=127.0.0.1:6063
  exit $?
fi

echo "==> k6 $SCENARIO against $BASE_URL${DURATION:+ for $DURATION}"
# The load generator must not be starved by what it measures (elsewhere it
# runs on a machine of its own): its waits for a core would count in every
# latency it reports. K6_NICE=0 leaves it as it is; without root, nice says
# it cannot and k6 runs at the usual priority.
nice -n "${K6_NICE:--10}" "$ROOT/.bin/k6" run --summary-export "$OUT/$SCENARIO.json" -e BASE_URL="$BASE_URL" ${DURATION:+-e DURATION="$DURATION"} \
  "$SCRIPT" 2>&1 | tee "$OUT/$SCENARIO.txt"
status=${PIPESTATUS[0]}
echo "==> summary: $OUT/$SCENARIO.txt and $OUT/$SCENARIO.json (k6 exit $status)"
exit "$status"
