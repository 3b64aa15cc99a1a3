#!/usr/bin/env bash
# Runs a k6 scenario from loadtest/ against the suite's gateway, or with the
# scenario "bench" the benchmark harness (tools/cmd/bench: the sidecar floor
# and the suite's endpoints). Starts the suite (make run's way, in the
# background) when nothing answers on the gateway, and stops it afterwards.
# Writes loadtest/results/<scenario>.json and <scenario>.txt (bench: bench.md).
# Usage: tools/loadtest.sh [scenario]
#   env: DURATION, RATE, PROFILE, BASE_URL; BENCH_RATE, BENCH_DURATION
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCENARIO="${1:-smoke}"
BASE_URL="${BASE_URL:-http://127.0.0.1:8080}"
PROFILE="${PROFILE:-redis}"
SCRIPT="$ROOT/loadtest/$SCENARIO.js"
OUT="$ROOT/loadtest/results"
[[ -f "$SCRIPT" || "$SCENARIO" == bench ]] || { echo "no scenario $SCENARIO (have: $(cd "$ROOT/loadtest" && ls *.js | sed 's/\.js$//' | tr '\n' ' '))" >&2; exit 1; }
mkdir -p "$OUT"

started=""
stop_suite() {
  if [[ -n "$started" ]]; then
    echo "==> stopping the suite"
    kill -INT "$started" 2>/dev/null || true
    wait "$started" 2>/dev/null || true
  fi
}
trap stop_suite EXIT

if ! curl -fsS -o /dev/null "$BASE_URL/healthz" 2>/dev/null; then
  echo "==> nothing answers at $BASE_URL: starting the suite (PROFILE=$PROFILE), log in $OUT/suite.log"
  # A private, empty Redis: no data or event backlog of other runs, and
  # nothing this run leaves behind in the machine's Redis.
  flags="-private-redis"
  [[ "$PROFILE" == kafka-postgres ]] && flags="-kafka 9092"
  # The benchmark profiles the services on the order's path.
  [[ "$SCENARIO" == bench ]] && flags+=" -app-env gateway:PPROF_ADDR=127.0.0.1:6060 -app-env orders:PPROF_ADDR=127.0.0.1:6061 -app-env products:PPROF_ADDR=127.0.0.1:6062 -app-env payments:PPROF_ADDR=127.0.0.1:6063"
  # shellcheck disable=SC2086
  "$ROOT/.bin/daprun" -f "$ROOT" -daprd "$ROOT/.bin/daprd" -sentry "$ROOT/.bin/sentry" -bin "$ROOT/.bin" -resources "$ROOT/components/$PROFILE" -color never $flags > "$OUT/suite.log" 2>&1 &
  started=$!
  for i in $(seq 1 180); do
    curl -fsS -o /dev/null "$BASE_URL/healthz" 2>/dev/null && grep -q "the suite is up" "$OUT/suite.log" && break
    kill -0 "$started" 2>/dev/null || { echo "the suite did not start:"; tail -30 "$OUT/suite.log"; exit 1; }
    (( i % 10 == 0 )) && echo "==> waiting for the suite (${i}s)"
    sleep 1
  done
fi

if [[ "$SCENARIO" == bench ]]; then
  cd "$ROOT/tools"
  go run ./cmd/bench -daprd "$ROOT/.bin/daprd" -sentry "$ROOT/.bin/sentry" -gateway "$BASE_URL" -rate "${BENCH_RATE:-200}" -duration "${BENCH_DURATION:-10s}" -out "$OUT" \
    -pprof gateway=127.0.0.1:6060,orders=127.0.0.1:6061,products=127.0.0.1:6062,payments=127.0.0.1:6063
  exit $?
fi

echo "==> k6 $SCENARIO against $BASE_URL${DURATION:+ for $DURATION}"
"$ROOT/.bin/k6" run --summary-export "$OUT/$SCENARIO.json" -e BASE_URL="$BASE_URL" ${DURATION:+-e DURATION="$DURATION"} \
  "$SCRIPT" 2>&1 | tee "$OUT/$SCENARIO.txt"
status=${PIPESTATUS[0]}
echo "==> summary: $OUT/$SCENARIO.txt and $OUT/$SCENARIO.json (k6 exit $status)"
exit "$status"
