#!/usr/bin/env bash
# Builds the suite's pinned toolchain into .bin/ from the Go module proxy,
# and installs what comes from Debian's packages (or says how to get it).
# Skips what is already there at the right version and patch. Tools:
#   daprd       Dapr's runtime, stablecomponents plus the SQLite name resolver,
#               with tools/dapr/daprd.patch
#   sentry      Dapr's certificate authority (mTLS between a run's sidecars)
#   k6          load tests
#   jaeger      Jaeger v2 (an OpenTelemetry collector with Jaeger's storage and
#               query): make observe runs it to receive the sidecars' spans
#   prometheus  prometheus and promtool (Debian's package)
#   etcd        the Kubernetes API server's store (Debian's etcd-server)
#   chromium    the headless browser of the storefront's test (Debian's
#               chromium; E2E_CHROMIUM names another Chromium or Chrome)
#   kube        kube-apiserver and kubectl (tools/kube): make test applies the
#               manifests to a real API server
#   dapr        the Dapr CLI 1.14.1 from tools/cli/, for the test of
#               `dapr run -f .` (CI; not in make tools: users install theirs)
#   daprd-path  prints the daprd make run starts: DAPRD, .bin/daprd, the CLI's
#               ($DAPR_RUNTIME_PATH or ~/.dapr) if 1.14.0, else builds one
#   zipkin-url  prints where make run's sidecars send spans: the Jaeger that
#               make observe runs, if it runs (.run/jaeger), else nothing
#   chromium-path  prints the browser the storefront's test drives
#               (E2E_CHROMIUM, else the usual names on PATH); fails if none
# Usage: tools/toolchain.sh [daprd|sentry|k6|jaeger|prometheus|etcd|chromium|kube|dapr|daprd-path]...
#        tools/toolchain.sh zipkin-url | chromium-path
set -euo pipefail

DAPR_VERSION="${DAPR_VERSION:-1.14.0}"
K6_VERSION="${K6_VERSION:-1.8.1}"
JAEGER_VERSION="${JAEGER_VERSION:-1.76.0}"
KUBE_VERSION="${KUBE_VERSION:-1.32.13}"
GO_MIN="1.25"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/.bin}"
# make observe writes its Jaeger's PID, Zipkin port and query port here.
JAEGER_STATE="${JAEGER_STATE:-$ROOT/.run/jaeger}"

# Progress goes to stderr: stdout carries only what a command prints for a
# caller (daprd-path).
say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'toolchain: %s\n' "$*" >&2; exit 1; }

# with_progress LABEL CMD...: runs CMD in the foreground (Ctrl-C stops it)
# while a ticker prints the elapsed time every 15 s, since go build is silent
# for minutes.
with_progress() {
  local label="$1"; shift
  local start=$SECONDS rc=0
  # The ticker takes its sleep along when stopped: a sleep left behind would
  # hold the output open (make tools | tee would wait for it).
  ( trap 'kill "${s:-}" 2>/dev/null; exit 0' TERM
    while :; do sleep 15 & s=$!; wait "$s"; say "$label: still building ($((SECONDS - start))s)"; done ) &
  local ticker=$!
  # A background job ignores Ctrl-C: stop the ticker however this ends.
  trap 'kill "$ticker" 2>/dev/null || true' EXIT
  "$@" || rc=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  trap - EXIT
  (( rc == 0 )) || die "$label failed (see the output above)"
  say "$label: done in $((SECONDS - start))s"
}

check_go() {
  command -v go >/dev/null 2>&1 || die "Go is not installed or not on PATH. Install Go $GO_MIN or newer: https://go.dev/doc/install"
  local v
  v="$(go env GOVERSION)" || die "cannot run 'go env GOVERSION'"
  v="${v#go}"
  [[ "$v" =~ ^[0-9]+\.[0-9]+ ]] || die "cannot tell the version of Go '$v' ($(command -v go)): this suite needs a release of Go $GO_MIN or newer"
  local major minor
  major="${v%%.*}"; minor="${v#*.}"; minor="${minor%%.*}"; minor="${minor%%[!0-9]*}"
  if (( major < 1 || (major == 1 && minor < ${GO_MIN#1.}) )); then
    die "Go $v is too old: this suite needs Go $GO_MIN or newer (found $(command -v go))."
  fi
  say "Go $v at $(command -v go)"
}

# module_dir MODULE@VERSION prints the source directory of a module in Go's
# module cache (read-only), downloading it once.
module_dir() {
  local dir
  dir="$(GOWORK=off GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$dir" ]] || die "could not download $1"
  printf '%s\n' "$dir"
}

# dapr_dir prints the pinned dapr module's source directory, downloading it once.
dapr_dir() {
  module_dir "github.com/dapr/dapr@v$DAPR_VERSION"
}

# patch_id NAME: a short checksum of tools/dapr/NAME.patch; the binary carries
# it (buildinfo's git version), so a changed patch means a rebuild.
patch_id() {
  cksum < "$ROOT/tools/dapr/$1.patch" | cut -d' ' -f1
}

# built NAME [PATH]: .bin/NAME (or PATH) was built from dapr $DAPR_VERSION
# with the current patch (and, for daprd, the stablecomponents tag).
built() {
  local info
  info="$(go version -m "${2:-$BIN/$1}" 2>/dev/null)" || return 1
  grep -qF "buildinfo.version=$DAPR_VERSION " <<< "$info" &&
    grep -qF "buildinfo.gitversion=v$DAPR_VERSION-daprshop.$(patch_id "$1")" <<< "$info" &&
    { [[ "$1" != daprd ]] || grep -q $'^\tbuild\t-tags=stablecomponents$' <<< "$info"; }
}

# dapr_src prints the directory of a writable copy of the pinned dapr module
# with every tools/dapr/*.patch applied (.bin/.dapr-src while it builds: the
# module cache is read-only and go build -overlay refuses to replace files in
# it). Same path and content each time, so Go's build cache still serves it.
dapr_src() {
  local dir src="$BIN/.dapr-src" p
  dir="$(dapr_dir)"
  rm -rf "$src"
  mkdir -p "$BIN"
  cp -R "$dir" "$src"
  chmod -R u+w "$src"
  for p in "$ROOT"/tools/dapr/*.patch; do
    if command -v patch >/dev/null; then
      patch -s -p1 -d "$src" < "$p" || die "$p does not apply to dapr $DAPR_VERSION"
    else
      (cd "$src" && git apply -p1 "$p") || die "$p does not apply to dapr $DAPR_VERSION"
    fi
  done
  printf '%s\n' "$src"
}

# build_dapr NAME ESTIMATE [TAGS]: builds cmd/NAME of the patched dapr module
# into .bin/NAME, marked with the checksum of tools/dapr/NAME.patch.
build_dapr() {
  local name="$1" estimate="$2" tags="${3:-}"
  if [[ -x "$BIN/$name" ]] && built "$name"; then
    say "$name $DAPR_VERSION already built ($BIN/$name)"
    return
  fi
  say "$name $DAPR_VERSION: downloading the module and applying tools/dapr/*.patch"
  local src
  src="$(dapr_src)"
  say "$name $DAPR_VERSION: building ($estimate)"
  local ldflags="-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$DAPR_VERSION -X github.com/dapr/kit/logger.DaprVersion=$DAPR_VERSION"
  ldflags+=" -X github.com/dapr/dapr/pkg/buildinfo.gitversion=v$DAPR_VERSION-daprshop.$(patch_id "$name")"
  (cd "$src" && with_progress "$name" env GOWORK=off CGO_ENABLED=0 go build -buildvcs=false ${tags:+-tags "$tags"} \
    -ldflags "$ldflags" -o "$BIN/$name.new" "./cmd/$name")
  mv "$BIN/$name.new" "$BIN/$name"
  rm -rf "$src"
  built "$name" || die "built $name does not carry dapr $DAPR_VERSION with tools/dapr/$name.patch"
}

# build_daprd: the version and the build tags: a daprd without
# stablecomponents lacks the components the profiles name. The patch makes
# --metrics-listen-address work (1.14.0 parses it and binds every interface),
# adds the SQLite name resolver to stablecomponents (the runner gives every
# run one of its own, instead of mDNS) and mends the outbox (its handler spun
# for ever after a rebalance, and held every event a second); with the build
# cache warm, a patch change rebuilds in about a minute.
build_daprd() {
  build_dapr daprd "about 3 minutes on 2 cores, once" stablecomponents
  [[ "$("$BIN/daprd" --version)" == "$DAPR_VERSION" ]] || die "built daprd reports version '$("$BIN/daprd" --version)', want $DAPR_VERSION"
}

# build_sentry: the certificate authority of a run's mTLS. The patch makes its
# three listen-address flags work (1.14.0 parses them and binds every
# interface). It shares most packages with daprd: seconds once daprd is built.
build_sentry() {
  build_dapr sentry "about 15 seconds once daprd is built, 2 minutes otherwise"
}

# apt_install PACKAGE LABEL installs a Debian package when this is
# Debian/Ubuntu and we may (root, or sudo without a password); returns 1
# when it cannot try, dies when the install fails.
apt_install() {
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo -n"
  command -v apt-get >/dev/null && $sudo true 2>/dev/null || return 1
  say "$2: installing Debian's package $1 (about 20 seconds)"
  local install=($sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$1")
  "${install[@]}" >/dev/null 2>&1 || { $sudo apt-get update >/dev/null 2>&1 && "${install[@]}" >/dev/null; } \
    || die "apt-get install $1 failed; run it yourself (sudo apt-get install $1)"
}

# install_prometheus: Prometheus runs the dashboards' queries and the alert
# rules in the integration tests and in `make observe`.
install_prometheus() {
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    say "prometheus already installed ($(prometheus --version 2>&1 | sed -n 1p))"
    return
  fi
  if apt_install prometheus "prometheus"; then
    command -v promtool >/dev/null || die "prometheus is installed but promtool is not on PATH"
    return
  fi
  die "prometheus and promtool are needed (integration tests, make observe): install them with
  sudo apt-get install prometheus     (Debian, Ubuntu)
  brew install prometheus             (macOS)
or download a release from https://prometheus.io/download/ and put prometheus and promtool on PATH"
}

# installed_daprd prints a daprd of the pinned version that is already on
# this machine, if any: DAPRD, the suite's own build, then the one the Dapr
# CLI installs (`dapr init --slim`: $DAPR_RUNTIME_PATH/.dapr/bin/daprd, else
# ~/.dapr/bin/daprd). A release build is the same Dapr without the suite's
# patches (tools/dapr/daprd.patch says what they mend); a note says so.
installed_daprd() {
  if [[ -n "${DAPRD:-}" ]]; then
    [[ -x "$DAPRD" ]] || die "DAPRD=$DAPRD is not an executable file"
    local v; v="$("$DAPRD" --version 2>/dev/null)" || die "DAPRD=$DAPRD does not run ($DAPRD --version failed)"
    [[ "$v" == "$DAPR_VERSION" ]] || say "note: DAPRD=$DAPRD is Dapr $v, the suite is tested with $DAPR_VERSION"
    printf '%s\n' "$DAPRD"; return
  fi
  if [[ -x "$BIN/daprd" ]] && built daprd; then printf '%s\n' "$BIN/daprd"; return; fi
  local cli="${DAPR_RUNTIME_PATH:-$HOME}/.dapr/bin/daprd"
  if [[ -x "$cli" ]]; then
    local v; v="$("$cli" --version 2>/dev/null || true)"
    if [[ "$v" == "$DAPR_VERSION" ]] && built daprd "$cli"; then
      say "daprd $DAPR_VERSION with the suite's patches at $cli: using it"
      printf '%s\n' "$cli"; return
    elif [[ "$v" == "$DAPR_VERSION" ]]; then
      say "daprd $DAPR_VERSION installed by the Dapr CLI ($cli): using it. A build without the suite's"
      say "  patches (the release's): its metrics port listens on every interface, its outbox holds every"
      say "  event a second and can stall with replicas on Kafka (tools/dapr/daprd.patch). make tools builds"
      say "  the patched one into .bin/."
      printf '%s\n' "$cli"; return
    fi
    say "$cli is Dapr '$v', not $DAPR_VERSION: building the pinned one instead"
  fi
  return 1
}

# daprd_path prints the daprd `make run` starts: an installed one of the
# pinned version, else the suite's build (made now if missing).
daprd_path() {
  installed_daprd && return
  build_daprd
  printf '%s\n' "$BIN/daprd"
}

# build_cli builds the Dapr CLI 1.14.1 into .bin/dapr from the source kept in
# tools/cli/ (the Go module proxy refuses github.com/dapr/cli). Only the
# integration test of `dapr run -f .` uses it; CI builds it (.ci/run).
build_cli() {
  local want="1.14.1"
  if [[ -x "$BIN/dapr" ]] && "$BIN/dapr" version --output json 2>/dev/null | grep -q "\"Cli version\": *\"$want\""; then
    say "dapr CLI $want already built ($BIN/dapr)"
    return
  fi
  say "dapr CLI $want: building from tools/cli/ (about 5 minutes on 2 cores, once)"
  with_progress "dapr CLI" bash "$ROOT/tools/cli/build.sh" "$BIN/dapr"
}

# build_kube builds kube-apiserver and kubectl of Kubernetes $KUBE_VERSION
# from the module proxy (tools/kube) into .bin/: make test applies the
# manifests to a real API server with them.
build_kube() {
  local have=""
  if [[ -x "$BIN/kube-apiserver" && -x "$BIN/kubectl" ]]; then
    have="$("$BIN/kube-apiserver" --version 2>/dev/null) / $("$BIN/kubectl" version --client 2>/dev/null | sed -n 1p)"
  fi
  if [[ "$have" == "Kubernetes v$KUBE_VERSION / Client Version: v$KUBE_VERSION" ]]; then
    say "kube-apiserver and kubectl $KUBE_VERSION already built ($BIN)"
    return
  fi
  say "kube-apiserver and kubectl $KUBE_VERSION: building (about 10 minutes on 2 cores, once)"
  mkdir -p "$BIN"
  local v=""
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    v+=" -X $p.gitVersion=v$KUBE_VERSION -X $p.gitMajor=${KUBE_VERSION%%.*}"
    v+=" -X $p.gitMinor=$(cut -d. -f2 <<< "$KUBE_VERSION") -X $p.gitTreeState=clean"
  done
  (cd "$ROOT/tools/kube" && with_progress "kube-apiserver and kubectl" env GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w$v" -o "$BIN/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)
  [[ "$("$BIN/kube-apiserver" --version)" == "Kubernetes v$KUBE_VERSION" ]] || die "built kube-apiserver reports '$("$BIN/kube-apiserver" --version)'"
}

# install_etcd: the API server's store, from Debian's package when we may
# install, otherwise it says how.
install_etcd() {
  if command -v etcd >/dev/null; then
    say "etcd already installed ($(etcd --version 2>/dev/null | sed -n 1p))"
    return
  fi
  apt_install etcd-server "etcd (the Kubernetes API server's store in make test)" || die "etcd is needed by make test (the manifests are applied to a real API server): install it with
  sudo apt-get install etcd-server    (Debian, Ubuntu)
  brew install etcd                   (macOS)
or download a release from https://github.com/etcd-io/etcd/releases and put etcd on PATH"
  command -v etcd >/dev/null || die "etcd-server is installed but etcd is not on PATH"
}

# chromium_path prints the browser the storefront's test drives, as e2e's
# chromiumPath finds it: E2E_CHROMIUM, else the usual names on PATH.
chromium_path() {
  if [[ -n "${E2E_CHROMIUM:-}" ]]; then
    command -v "$E2E_CHROMIUM"
    return
  fi
  local name
  for name in chromium chromium-browser google-chrome google-chrome-stable headless-shell; do
    command -v "$name" && return
  done
  return 1
}

# install_chromium: the storefront's test (e2e TestStorefront) drives a real
# headless Chromium; Debian's package when we may install, otherwise it says
# how.
install_chromium() {
  local p
  if [[ -n "${E2E_CHROMIUM:-}" ]] && ! chromium_path >/dev/null; then
    die "E2E_CHROMIUM=$E2E_CHROMIUM is not an executable (a path, or a name on PATH)"
  fi
  if p="$(chromium_path)"; then
    say "chromium already installed ($p: $("$p" --version 2>/dev/null | sed -n 1p))"
    return
  fi
  local how="a headless Chromium is needed by make test (the storefront is tested in a real browser): install it with
  sudo apt-get install chromium       (Debian)
  sudo snap install chromium          (Ubuntu: its apt package chromium-browser only installs this snap)
  brew install --cask chromium        (macOS)
or install Google Chrome (on Ubuntu without snap: its .deb from https://www.google.com/chrome/, then
  sudo apt-get install ./google-chrome-stable_current_amd64.deb)
or point E2E_CHROMIUM at a Chromium or Google Chrome executable"
  # Ubuntu has no chromium deb (chromium-browser is a shim for the snap,
  # which needs snapd, absent from most containers): say how, not fail in apt.
  if grep -qsE '^ID=(ubuntu|"ubuntu")$' /etc/os-release; then
    die "$how"
  fi
  apt_install chromium "chromium (the storefront's browser test in make test)" || die "$how"
  chromium_path >/dev/null || die "chromium is installed but not on PATH"
}

build_k6() {
  if [[ -x "$BIN/k6" ]] && "$BIN/k6" version 2>/dev/null | grep -q "^k6 v$K6_VERSION "; then
    say "k6 $K6_VERSION already built ($BIN/k6)"
    return
  fi
  say "k6 $K6_VERSION: building (about 1 minute, once)"
  mkdir -p "$BIN"
  with_progress "k6" env GOWORK=off GOBIN="$BIN" go install "go.k6.io/k6@v$K6_VERSION"
  "$BIN/k6" version | grep -q "^k6 v$K6_VERSION " || die "built k6 reports '$("$BIN/k6" version)', want v$K6_VERSION"
}

# jaeger_built: .bin/jaeger is the pinned release (its version command
# prints the version build_jaeger stamps into it).
jaeger_built() {
  [[ -x "$BIN/jaeger" ]] && "$BIN/jaeger" version 2>/dev/null | grep -qF "\"gitVersion\":\"v$JAEGER_VERSION\""
}

# build_jaeger builds Jaeger v2 (cmd/jaeger) into .bin/jaeger. go install
# refuses the module (it has a replace directive), so it is built in the
# module's own directory, with its go.sum and its replace, as its releases
# are. Its version is stamped as the release Makefile does. The module does
# not hold the Jaeger UI's web assets (a release build embeds them, built
# from another repository): make observe serves observability/jaeger/ui.
build_jaeger() {
  if jaeger_built; then
    say "jaeger $JAEGER_VERSION already built ($BIN/jaeger)"
    return
  fi
  say "jaeger $JAEGER_VERSION: downloading the module"
  local dir
  dir="$(module_dir "github.com/jaegertracing/jaeger@v$JAEGER_VERSION")"
  say "jaeger $JAEGER_VERSION: building (about 9 minutes on 2 cores, once; longer on a busy machine)"
  mkdir -p "$BIN"
  (cd "$dir" && with_progress "jaeger" env GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -buildvcs=false -trimpath \
    -ldflags "-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=v$JAEGER_VERSION" \
    -o "$BIN/jaeger.new" ./cmd/jaeger)
  mv "$BIN/jaeger.new" "$BIN/jaeger"
  jaeger_built || die "built jaeger does not report version v$JAEGER_VERSION ($BIN/jaeger version)"
}

# listens PID PORT: process PID listens on 127.0.0.1:PORT (ss on Linux,
# lsof on macOS; where neither is, that something answers there).
listens() {
  if command -v ss >/dev/null; then
    ss -Hltnp "sport = :$2" 2>/dev/null | grep -qE "127\.0\.0\.1:$2 .*[(,]pid=$1,"
  elif command -v lsof >/dev/null; then
    lsof -nP -a -p "$1" -iTCP@127.0.0.1:"$2" -sTCP:LISTEN >/dev/null 2>&1
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null
  fi
}

# observed_jaeger PID PORT: PID is a process of this user named jaeger that
# listens on 127.0.0.1:PORT, i.e. make observe's Jaeger still runs.
observed_jaeger() {
  [[ "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ ]] || return 1
  [[ "$(ps -o uid= -p "$1" 2>/dev/null | tr -d ' ')" == "$(id -u)" ]] || return 1
  [[ "$(basename "$(ps -o comm= -p "$1" 2>/dev/null)")" == jaeger ]] || return 1
  listens "$1" "$2"
}

# zipkin_url prints the Zipkin endpoint of the Jaeger that make observe runs,
# and says on stderr where the spans go. A port that answers is no proof:
# any local user could listen on 9411 and read every span (routes with user
# and order IDs; tools/runner/names.go), so only the process make observe
# started, found by its PID, counts.
zipkin_url() {
  local pid="" zipkin="" query=""
  if [[ -r "$JAEGER_STATE" ]]; then read -r pid zipkin query < "$JAEGER_STATE" || true; fi
  if observed_jaeger "$pid" "$zipkin"; then
    say "spans: to the Jaeger of make observe (http://127.0.0.1:$zipkin/api/v2/spans); traces on http://127.0.0.1:$query"
    printf 'http://127.0.0.1:%s/api/v2/spans\n' "$zipkin"
    return
  fi
  say "spans: exported nowhere (for traces: make observe first, then make run; or ZIPKIN=<collector URL>)"
}

case "${1:-}" in
  -h|--help|help)
    sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    echo "(none: the first eight, as make tools does)"
    exit 0 ;;
  # It needs no Go, and prints nothing else on stdout.
  zipkin-url)
    [[ $# -eq 1 ]] || die "zipkin-url goes alone"
    zipkin_url
    exit 0 ;;
  # The browser e2e drives (its chromiumPath asks here): one list of names.
  chromium-path)
    [[ $# -eq 1 ]] || die "chromium-path goes alone"
    chromium_path
    exit ;;
esac
check_go
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(daprd sentry k6 jaeger prometheus etcd chromium kube)
for t in "${targets[@]}"; do
  case "$t" in
    daprd) build_daprd ;;
    sentry) build_sentry ;;
    k6) build_k6 ;;
    jaeger) build_jaeger ;;
    prometheus) install_prometheus ;;
    kube) build_kube ;;
    etcd) install_etcd ;;
    chromium) install_chromium ;;
    dapr) build_cli ;;
    daprd-path) daprd_path ;;
    *) die "unknown tool '$t' (daprd, sentry, k6, jaeger, prometheus, etcd, chromium, kube, dapr or daprd-path)" ;;
  esac
done
