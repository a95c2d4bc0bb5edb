#!/usr/bin/env bash
# The side-by-side benchmark of image-scraper, in one command (from anywhere in the project):
#
#   bench/run.sh                 full run (~10-15 min on 2 cores): W1 W2 SCALE HUGE, -p sweep, chart
#   QUICK=1 bench/run.sh         smoke run (~1-2 min): W1 and W2, 1 run each, a short sweep
#
# What it does: builds image-scraper and examples/gallery_server (release); installs nginx,
# aria2c, wget, curl and GNU time with apt-get when missing (a peer that cannot be installed is
# skipped); generates the galleries under $WORK (gen_fixture.py, cached); serves each on
# 127.0.0.1:$PORT (nginx, or gallery_server with a delay for W2); runs every peer round-robin,
# each run into a fresh folder under $OUT (tmpfs), timed by /usr/bin/time -v and checked
# (sorted name + size of every file == the fixture's manifest.tsv); then prints the markdown
# table of medians and ratios (summarize.py) and draws the -p chart (chart.py).
# Nothing but 127.0.0.1 is contacted. Servers it started are stopped and $OUT is removed on exit.
#
# Workloads (WORKLOADS, default "W1 W2 SCALE HUGE"):
#   W1     50 pages x 40 images (2000 files, ~200 MB), nginx, no added latency
#   W2     the same gallery from gallery_server, every response delayed $DELAY_MS ms (20)
#   SCALE  500 pages x 40 images (20000 files, ~2 GB), nginx
#   HUGE   1 page, 5 images of 200 MB each, nginx
#   W3     W1's gallery over HTTPS: nginx with TLS 1.3 and HTTP/2 (ALPN h2, http/1.1) and a
#          certificate for 127.0.0.1 signed by a CA the bench makes (openssl, in $WORK/tls);
#          every peer trusts that CA by its own flag (curl --cacert, wget --ca-certificate,
#          aria2c --ca-certificate, image-scraper --ca-cert); the connections each run
#          opened (= TLS handshakes) are counted from nginx's log
#   W3P    W3 through a forward proxy (tinyproxy, from Debian, on 127.0.0.1:$PROXY_PORT):
#          every peer gets HTTPS_PROXY/https_proxy and tunnels with CONNECT
# Peers: curl (--parallel-max 64, URL list; --http2 in W3), curl-h1 (the same with --http1.1), wget (-r -l1, one connection), aria2c (-j 64, URL
#   list), is-MODE-pN (image-scraper -m MODE -p N, CONCURRENCY ceil(64/N): 64 requests in flight
#   in async mode; sync mode has N in flight; PER_HOST_CONCURRENCY 64, and MAX_IMAGE_BYTES
#   above 200 MB for HUGE, where the build knows those keys). The -p sweep adds is-async-pN and
#   is-sync-pN for N in $SWEEP on W1 and W2.
#
# Environment knobs:
#   QUICK=1            RUNS=1, WORKLOADS="W1 W2", SWEEP="4 16 64", shorter peer lists
#   RUNS=N             runs per peer (default W1 5, W2 3, SCALE 3, HUGE 3)
#   WORKLOADS="W1 W2"  which workloads, in order
#   PEERS="curl is-async-p2"      peers for every workload (replaces the lists below)
#   PEERS_W1, PEERS_W2, PEERS_W3, PEERS_W3P, PEERS_SCALE, PEERS_HUGE   peers for one workload
#   SWEEP="1 2 4 8 16 32 64"      -p values added for both modes on W1 and W2 ("" for none)
#   PORT=18080  PROXY_PORT=18088  DELAY_MS=20  TIMEOUT=300 (s per run)  LONG=15 (a peer whose first run takes
#     longer than LONG s per 2000 images gets 1 run only)  SETTLE=0.5 (s of pause before each run)
#   RESULTS=path.tsv   append to an earlier run's results (e.g. to redo one workload) and print
#                      the table of all of it
#   WORK=/tmp/image-scraper-bench (fixtures, logs, results)  OUT=/dev/shm/image-scraper-bench
#   BIN=path           time this image-scraper binary instead of building the work tree
#   BIN_BEFORE=path    another build to time beside it, side by side in the same run: peers
#                      was-async-pN and was-sync-pN run it with is-MODE-pN's settings (e.g.
#                      PEERS="is-async-p2 was-async-p2 is-sync-p8 was-sync-p8", a change's before
#                      and after under one machine load)
#   REF=git-ref        build image-scraper from that commit (git archive into $WORK; the work
#                      tree's examples/gallery_server.rs is added to the snapshot)
#   SERVER=path        a prebuilt gallery_server;  SERVER_WORKERS=1 (its worker threads)
#   NGINX_WORKERS=1    nginx worker processes
#   CHART=path         where chart.py writes the PNG (default docs/perf-scaling.png for a full
#                      run, $WORK/perf-scaling.png for QUICK=1; CHART="" for none)
#   NO_INSTALL=1       never call apt-get / pip
set -uo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/bench
QUICK=${QUICK:-0}
PORT=${PORT:-18080}
PROXY_PORT=${PROXY_PORT:-18088}
DELAY_MS=${DELAY_MS:-20}
TIMEOUT=${TIMEOUT:-300}
LONG=${LONG:-15}
SETTLE=${SETTLE:-0.5}
WORK=${WORK:-/tmp/image-scraper-bench}
OUT=${OUT:-/dev/shm/image-scraper-bench}
SERVER_WORKERS=${SERVER_WORKERS:-1}
NGINX_WORKERS=${NGINX_WORKERS:-1}
BASE=http://127.0.0.1:$PORT/

if [[ $QUICK == 1 ]]; then
  WORKLOADS=${WORKLOADS:-W1 W2}
  RUNS=${RUNS:-1}
  SWEEP=${SWEEP-4 16 64}
  : "${PEERS_W1:=curl wget aria2c is-async-p2 is-sync-p2 is-sync-p8}"
  : "${PEERS_W2:=curl aria2c is-async-p2 is-sync-p8}"
  : "${PEERS_SCALE:=curl aria2c is-async-p2 is-sync-p8}"
  : "${PEERS_HUGE:=curl aria2c is-async-p2 is-sync-p2}"
  : "${PEERS_W3:=curl curl-h1 is-async-p2 is-sync-p8}"
  : "${PEERS_W3P:=curl curl-h1 is-async-p2 is-sync-p8}"
  CHART=${CHART-$WORK/perf-scaling.png}
else
  WORKLOADS=${WORKLOADS:-W1 W2 W3 W3P SCALE HUGE}
  SWEEP=${SWEEP-1 2 4 8 16 32 64}
  : "${PEERS_W1:=curl wget aria2c is-async-p2 is-sync-p2 is-sync-p8 is-sync-p1}"
  : "${PEERS_W2:=curl aria2c is-async-p2 is-sync-p2 is-sync-p8 is-sync-p1}"
  : "${PEERS_SCALE:=curl wget aria2c is-async-p2 is-sync-p2 is-sync-p8}"
  : "${PEERS_HUGE:=curl wget aria2c is-async-p2 is-sync-p2}"
  : "${PEERS_W3:=curl curl-h1 wget aria2c is-async-p2 is-sync-p2 is-sync-p8}"
  : "${PEERS_W3P:=curl curl-h1 wget aria2c is-async-p2 is-sync-p8}"
  CHART=${CHART-$ROOT/docs/perf-scaling.png}
fi
if [[ -n ${PEERS:-} ]]; then
  PEERS_W1=$PEERS PEERS_W2=$PEERS PEERS_W3=$PEERS PEERS_W3P=$PEERS PEERS_SCALE=$PEERS PEERS_HUGE=$PEERS
fi

say() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- tools
APT_UPDATED=0
SUDO=(); [[ $EUID -ne 0 ]] && command -v sudo >/dev/null && SUDO=(sudo -n)
apt_install() {  # apt_install PACKAGE...: best effort, returns apt-get's status
  [[ ${NO_INSTALL:-0} == 1 ]] && return 1
  command -v apt-get >/dev/null || return 1
  if [[ $APT_UPDATED == 0 ]]; then "${SUDO[@]}" apt-get update -qq >/dev/null 2>&1; APT_UPDATED=1; fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "$@" >"$WORK/apt.log" 2>&1
}
have() { command -v "$1" >/dev/null 2>&1; }
ensure() {  # ensure COMMAND PACKAGE [PACKAGE2]: 0 when the command is (now) there
  have "$1" && return 0
  apt_install "$2" || { [[ -n ${3:-} ]] && apt_install "$3"; }
  have "$1"
}

mkdir -p "$WORK" "$OUT" || die "cannot create $WORK or $OUT"
[[ -x /usr/bin/time ]] || apt_install time
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is needed: apt-get install time"
have curl || apt_install curl
have curl || die "curl is needed (to probe the servers)"
HAVE_NGINX=0; ensure nginx nginx-light nginx && HAVE_NGINX=1
declare -A MISSING=()
ensure wget wget || MISSING[wget]=1
ensure aria2c aria2 || MISSING[aria2c]=1
[[ $HAVE_NGINX == 1 ]] || say "nginx is not available: gallery_server --delay-ms 0 serves the nginx workloads"
HAVE_PROXY=0
if [[ " $WORKLOADS " == *" W3P "* ]]; then ensure tinyproxy tinyproxy && HAVE_PROXY=1; fi
if [[ " $WORKLOADS " == *" W3"* ]]; then
  have openssl || apt_install openssl
  have openssl || die "openssl is needed to make the W3 certificates"
  [[ $HAVE_NGINX == 1 ]] || die "W3 needs nginx (TLS and HTTP/2)"
fi
for tool in "${!MISSING[@]}"; do say "$tool is not available: its runs are skipped"; done

# ---------------------------------------------------------------- build
cd "$ROOT" || die "cannot enter $ROOT"
GIT_DESC=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [[ -n ${BIN:-} ]]; then
  BIN=$(realpath "$BIN") || die "BIN: no such file"
  BIN_DESC="$BIN ($("$BIN" --version 2>/dev/null))"
  SERVER=${SERVER:-}
  if [[ -z $SERVER ]]; then
    say "cargo build --release --example gallery_server"
    cargo build -q --release --example gallery_server || die "building gallery_server failed"
    SERVER=$ROOT/target/release/examples/gallery_server
  fi
elif [[ -n ${REF:-} ]]; then
  COMMIT=$(git -C "$ROOT" rev-parse --short=12 "$REF^{commit}") || die "REF=$REF is not a commit"
  SNAP=$WORK/src-$COMMIT
  if [[ ! -f $SNAP/.complete ]]; then
    rm -rf "$SNAP"; mkdir -p "$SNAP"
    git -C "$ROOT" archive "$COMMIT" | tar -x -C "$SNAP" || die "git archive $COMMIT failed"
    # tar gives the files the commit's time; fresh times make cargo rebuild them even where
    # $WORK/target holds a newer build of other sources (the crate's hash ignores its path)
    find "$SNAP" -type f -exec touch {} +
    touch "$SNAP/.complete"
  fi
  # The crate's hash in $WORK/target ignores its path, and cargo compares file times: when the
  # last build there was of another commit, fresh times make it rebuild this one.
  if [[ $(cat "$WORK/target/.commit" 2>/dev/null) != "$COMMIT" ]]; then
    find "$SNAP" -type f -exec touch {} +
  fi
  mkdir -p "$SNAP/examples"   # copied only when changed, so cargo does not rebuild it every time
  cmp -s "$ROOT/examples/gallery_server.rs" "$SNAP/examples/gallery_server.rs" ||
    cp "$ROOT/examples/gallery_server.rs" "$SNAP/examples/"
  say "cargo build --release (snapshot of $COMMIT in $SNAP, target $WORK/target)"
  (cd "$SNAP" && CARGO_TARGET_DIR=$WORK/target cargo build -q --release --locked --bin image-scraper \
     && CARGO_TARGET_DIR=$WORK/target cargo build -q --release --locked --example gallery_server) \
    || die "building $COMMIT failed"
  echo "$COMMIT" >"$WORK/target/.commit"
  BIN=$WORK/target/release/image-scraper
  SERVER=${SERVER:-$WORK/target/release/examples/gallery_server}
  BIN_DESC="commit $COMMIT (REF=$REF, clean snapshot)"
else
  say "cargo build --release"
  cargo build -q --release || die "cargo build --release failed (src/ mid-edit? retry, or use REF=HEAD)"
  cargo build -q --release --example gallery_server || die "building gallery_server failed"
  BIN=$ROOT/target/release/image-scraper
  SERVER=${SERVER:-$ROOT/target/release/examples/gallery_server}
  dirty=$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock build.rs 2>/dev/null)
  BIN_DESC="commit $GIT_DESC${dirty:+ + uncommitted changes in src/ or Cargo.*} (work tree)"
fi
[[ -x $BIN && -x $SERVER ]] || die "missing binary: $BIN or $SERVER"
if [[ -n ${BIN_BEFORE:-} ]]; then
  BIN_BEFORE=$(realpath "$BIN_BEFORE") || die "BIN_BEFORE: no such file"
  BIN_DESC="$BIN_DESC; was-* peers: $BIN_BEFORE"
fi

# Settings keys that only some builds have: an unknown key is an error (exit 2) before any
# request, so a settings file with the key and an unreachable URL tells which builds know it.
declare -A KEYS=()
probe=$WORK/probe; rm -rf "$probe"; mkdir -p "$probe"
for key in PER_HOST_CONCURRENCY:64 MAX_IMAGE_BYTES:1000000; do
  printf 'SCRAPER:\n  URL: http://127.0.0.1:1/\n  ITEM: x\n  AMOUNT_PAGES: 1\n  %s: %s\n' "${key%%:*}" "${key#*:}" >"$probe/settings.yaml"
  said=$(cd "$probe" && timeout 3 "$BIN" -q -o "$probe/out" 2>&1)
  [[ $said == *"unknown field"*"${key%%:*}"* ]] || KEYS[${key%%:*}]=1
done
rm -rf "$probe"

# ---------------------------------------------------------------- fixtures
fixture() {  # fixture NAME ARGS...: generate (or reuse) $WORK/fixtures/NAME-pPORT, print its path
  local dir=$WORK/fixtures/$1-p$PORT; shift
  say "fixture $dir"
  python3 "$HERE/gen_fixture.py" "$dir" --base-url "${FIX_BASE:-$BASE}" "$@" >/dev/null || die "gen_fixture.py failed"
  echo "$dir"
}

# ---------------------------------------------------------------- TLS (W3, W3P)
TLS=$WORK/tls
CA=$TLS/ca.pem
make_ca() {  # a CA, and a certificate for 127.0.0.1 and localhost signed by it; made once
  [[ -s $TLS/server.pem ]] && return 0
  mkdir -p "$TLS"
  say "making a CA and a server certificate in $TLS (openssl)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=image-scraper bench CA" -keyout "$TLS/ca.key" -out "$CA" 2>"$TLS/openssl.log" &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>>"$TLS/openssl.log" &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$TLS/ext.cnf" &&
    openssl x509 -req -in "$TLS/server.csr" -CA "$CA" -CAkey "$TLS/ca.key" -CAcreateserial -days 3650 \
      -extfile "$TLS/ext.cnf" -out "$TLS/server.pem" 2>>"$TLS/openssl.log" ||
    { cat "$TLS/openssl.log" >&2; rm -f "$TLS/server.pem"; die "openssl could not make the certificates"; }
}

# ---------------------------------------------------------------- the forward proxy (W3P)
PROXY_PID=""
start_proxy() {
  local state=$WORK/tinyproxy-$PROXY_PORT
  mkdir -p "$state"; : >"$state/tinyproxy.log"
  # Our own config: CONNECT only to the gallery's port, from loopback only; no upstream.
  cat >"$state/tinyproxy.conf" <<EOF
Port $PROXY_PORT
Listen 127.0.0.1
Timeout 600
MaxClients 1024
Allow 127.0.0.1
ConnectPort $PORT
LogLevel Connect
LogFile "$state/tinyproxy.log"
EOF
  if [[ $EUID -eq 0 ]]; then  # tinyproxy drops root; it must still write its log
    printf 'User nobody\nGroup nogroup\n' >>"$state/tinyproxy.conf"; chmod 777 "$state"; chmod 666 "$state/tinyproxy.log"
  fi
  tinyproxy -d -c "$state/tinyproxy.conf" >"$state/tinyproxy.out" 2>&1 </dev/null &
  PROXY_PID=$!
  local i
  for ((i = 0; i < 50; i++)); do
    curl -fs --cacert "$CA" -x "http://127.0.0.1:$PROXY_PORT" -o /dev/null "https://127.0.0.1:$PORT/fixture.json" && break
    sleep 0.1
  done
  ((i < 50)) || { cat "$state/tinyproxy.out" "$state/tinyproxy.log" >&2; die "tinyproxy did not come up"; }
  PROXY_KIND="tinyproxy $(tinyproxy -v 2>&1 | awk '{print $2}')"
}
stop_proxy() {
  [[ -n $PROXY_PID ]] || return 0
  kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; PROXY_PID=""
}
fx() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1/fixture.json" "$2"; }

# ---------------------------------------------------------------- servers
SPID=""; SERVER_KIND=""
port_busy() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/"; [[ $? != 7 ]]; }
SCHEME=http
wait_up() {  # wait_up FIXTURE SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    curl -fs --cacert "$CA" -o /dev/null "$SCHEME://127.0.0.1:$PORT/fixture.json" && return 0
    kill -0 "$SPID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
server_block() {  # server_block ROOT STATE: plain HTTP, or (SCHEME=https) TLS 1.3 + HTTP/2
  if [[ $SCHEME == https ]]; then
    # One line per request naming its connection: the connections a run opened are its
    # TLS handshakes.
    cat <<EOF
  log_format conn '\$connection';
  server {
    listen 127.0.0.1:$PORT ssl http2 backlog=4096; root $1;
    ssl_certificate $TLS/server.pem; ssl_certificate_key $TLS/server.key;
    ssl_protocols TLSv1.3;
    access_log $2/access.log conn;
  }
EOF
  else
    echo "  server { listen 127.0.0.1:$PORT backlog=4096; root $1; }"
  fi
}
start_nginx() {  # start_nginx FIXTURE
  local state=$WORK/nginx-$PORT
  mkdir -p "$state"
  cat >"$state/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
worker_rlimit_nofile 16384;
daemon off;
pid $state/nginx.pid;
error_log $state/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_timeout 65; keepalive_requests 100000;
  open_file_cache max=4000 inactive=60s;  # all of W1; LRU for SCALE (fds stay under the limit)
  types { text/html html; image/jpeg jpg; image/png png; text/plain txt tsv; application/json json; }
  default_type application/octet-stream;
$(server_block "$1" "$state")
}
EOF
  nginx -p "$state" -c "$state/nginx.conf" >"$state/nginx.out" 2>&1 </dev/null &
  SPID=$!; SERVER_KIND="nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $NGINX_WORKERS worker"
  wait_up "$1" 10 || { cat "$state/nginx.out" "$state/error.log" >&2 2>/dev/null; die "nginx did not come up"; }
}
start_gallery() {  # start_gallery FIXTURE DELAY_MS
  "$SERVER" --root "$1" --port "$PORT" --delay-ms "$2" --workers "$SERVER_WORKERS" \
    >"$WORK/gallery_server.out" 2>&1 </dev/null &
  SPID=$!; SERVER_KIND="gallery_server, $SERVER_WORKERS worker, ${2} ms delay"
  wait_up "$1" 120 || { cat "$WORK/gallery_server.out" >&2; die "gallery_server did not come up"; }
}
stop_server() {
  [[ -n $SPID ]] || return 0
  kill "$SPID" 2>/dev/null
  local i; for ((i = 0; i < 100; i++)); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SPID" 2>/dev/null
  wait "$SPID" 2>/dev/null
  SPID=""
}
start_server() {  # start_server WORKLOAD FIXTURE
  port_busy && die "something already answers on 127.0.0.1:$PORT (set PORT=...)"
  case $1 in
    W2) start_gallery "$2" "$DELAY_MS" ;;
    W3 | W3P) start_nginx "$2"; SERVER_KIND="$SERVER_KIND, TLS 1.3 + HTTP/2" ;;
    *) if [[ $HAVE_NGINX == 1 ]]; then start_nginx "$2"; else start_gallery "$2" 0; fi ;;
  esac
  if [[ $1 == W3P ]]; then start_proxy; SERVER_KIND="$SERVER_KIND, through $PROXY_KIND"; fi
  say "$1: $SERVER_KIND, pid $SPID, $SCHEME://127.0.0.1:$PORT/ root $2"
}
cleanup() { stop_proxy; stop_server; rm -rf "$OUT"; }
# W3, W3P: nginx logs one line per request naming its connection, and connection numbers
# only grow, so the distinct ones past a mark are the connections a run opened.
log_lines() { if [[ $SCHEME == https ]]; then wc -l <"$WORK/nginx-$PORT/access.log" 2>/dev/null || echo 0; else echo 0; fi; }
conns_since() {  # conns_since MARK
  [[ $SCHEME == https ]] || return 0
  tail -n +"$(($1 + 1))" "$WORK/nginx-$PORT/access.log" 2>/dev/null | sort -u | wc -l
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CLK=$(getconf CLK_TCK)
server_ticks() {  # the server's CPU, and the proxy's in W3P
  { cat "/proc/$SPID/stat"; for c in $(pgrep -P "$SPID"); do cat "/proc/$c/stat"; done
    [[ -n $PROXY_PID ]] && cat "/proc/$PROXY_PID/stat"; } 2>/dev/null |
    awk '{sub(/^.*\) /, ""); t += $12 + $13} END {print t + 0}'   # utime + stime, after "(comm) "
}

# ---------------------------------------------------------------- peers
setup() {  # setup PEER FIXTURE RUNDIR: sets cmd=(...) and img (where the files must land)
  local peer=$1 fix=$2 d=$3 mode procs
  img=$d/images; mkdir -p "$img"
  case $peer in
    curl | curl-h1) sed 's/.*/url = "&"/' "$fix/urls.txt" >"$d/curl.cfg"
      cmd=(curl -sS --fail --parallel --parallel-max 64 --remote-name-all --output-dir "$img" -K "$d/curl.cfg")
      if [[ $SCHEME == https ]]; then
        cmd+=(--cacert "$CA")
        if [[ $peer == curl-h1 ]]; then cmd+=(--http1.1); else cmd+=(--http2); fi
      fi ;;
    wget) cmd=(wget -q -e robots=off -r -l1 -nd --follow-tags=img -A jpg -P "$img" -i "$fix/pages.txt")
      [[ $SCHEME == https ]] && cmd+=(--ca-certificate="$CA") ;;
    aria2c) cmd=(aria2c -q -i "$fix/urls.txt" -j 64 -d "$img" --file-allocation=none --auto-file-renaming=false)
      [[ $SCHEME == https ]] && cmd+=(--ca-certificate="$CA") ;;
    is-async-p* | is-sync-p* | was-async-p* | was-sync-p*)
      IFS=- read -r build mode procs <<<"$peer"; procs=${procs#p}
      printf 'SCRAPER:\n  URL: %s\n  ITEM: %s\n  OUT_DIR: images\n  AMOUNT_PAGES: %s\n  IMAGE_SELECTOR: %s\n  IMAGE_HOST: ""\n  CONCURRENCY: %s\n' \
        "$(fx "$fix" base_url)" "$(fx "$fix" item)" "$(fx "$fix" pages)" \
        "'img[src*=\"images.stockfreeimages.com\"]'" $(((64 + procs - 1) / procs)) >"$d/settings.yaml"
      # 64 in flight to the one host, as the peers (the tool's own cap is 32 by default), and
      # for HUGE no cap on image size (100 MiB by default); only where the build has the keys.
      [[ -n ${KEYS[PER_HOST_CONCURRENCY]:-} ]] && echo "  PER_HOST_CONCURRENCY: 64" >>"$d/settings.yaml"
      if [[ $(fx "$fix" huge) == True && -n ${KEYS[MAX_IMAGE_BYTES]:-} ]]; then
        echo "  MAX_IMAGE_BYTES: $((4 * $(fx "$fix" bytes)))" >>"$d/settings.yaml"
      fi
      local bin=$BIN
      if [[ $build == was ]]; then bin=${BIN_BEFORE:?was-* peers need BIN_BEFORE}; fi
      cmd=(env -C "$d" "$bin" -q -m "$mode" -p "$procs")
      [[ $SCHEME == https ]] && cmd+=(--ca-cert "$CA") ;;
    *) die "unknown peer $peer (curl curl-h1 wget aria2c is-async-pN is-sync-pN was-async-pN was-sync-pN)" ;;
  esac
  # W3P: every peer through the proxy, by the environment each reads (curl and
  # image-scraper either case, wget and aria2c lower case).
  if [[ -n $PROXY_PID ]]; then
    cmd=(env "HTTPS_PROXY=http://127.0.0.1:$PROXY_PORT" "https_proxy=http://127.0.0.1:$PROXY_PORT" "${cmd[@]}")
  fi
  return 0
}
available() {  # available PEER WORKLOAD
  case $1 in
    wget | aria2c) [[ -z ${MISSING[$1]:-} ]] ;;
    *) true ;;
  esac
}

STAMP=$(date +%Y%m%d-%H%M%S)
if [[ -n ${RESULTS:-} && -s ${RESULTS:-} ]]; then   # append to an earlier run
  RESULTS=$(realpath "$RESULTS"); META=${RESULTS%.tsv}.meta.txt
  echo "appended $(date -u '+%Y-%m-%d %H:%M UTC'): WORKLOADS=$WORKLOADS" >>"$META"
else
RESULTS=${RESULTS:-$WORK/results-$STAMP.tsv}
META=${RESULTS%.tsv}.meta.txt
echo -e "workload\tpeer\trun\twall_s\tuser_s\tsys_s\tmaxrss_kb\tfiles\tbytes\tok\trc\tserver_cpu_s\timages\ttotal_bytes\tserver\tconns" >"$RESULTS"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "image-scraper: $BIN_DESC"
  echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(free -g | awk '/Mem:/ {print $2}') GiB, Linux $(uname -r)"
  echo "load average at start (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg) (anything else running competes for the same cores)"
  echo "image-scraper settings: CONCURRENCY ceil(64/p)${KEYS[PER_HOST_CONCURRENCY]:+, PER_HOST_CONCURRENCY 64}${KEYS[MAX_IMAGE_BYTES]:+, MAX_IMAGE_BYTES 4 GB for HUGE}, the rest default"
  echo "output: $OUT ($(df -T "$OUT" | awk 'NR==2 {print $2}')); runs per peer: ${RUNS:-W1 5, W2 SCALE HUGE 3}; delay: $DELAY_MS ms; sweep: ${SWEEP:-none}"
  echo "peers: curl $(curl --version | awk 'NR==1 {print $2}'), wget $(have wget && wget --version | awk 'NR==1 {print $3}'), aria2c $(have aria2c && aria2c --version | awk 'NR==1 {print $3}')"
} >"$META"
fi

run_workload() {  # run_workload WL FIXTURE RUNS PEER...
  local wl=$1 fix=$2 runs=$3; shift 3
  local peers=() p; for p in "$@"; do available "$p" "$wl" && peers+=("$p"); done
  local images total long; images=$(fx "$fix" images); total=$(fx "$fix" bytes)
  long=$(awk -v l="$LONG" -v n="$images" 'BEGIN {print (n > 2000 ? l * n / 2000 : l)}')
  start_server "$wl" "$fix"
  say "$wl: $images images, $total bytes; $runs run(s) of: ${peers[*]}"
  local -A once=()
  local i peer d t0 t1 s e rc wall user sys rss nfiles nbytes ok scpu mark conns
  for ((i = 1; i <= runs; i++)); do
    for peer in "${peers[@]}"; do
      [[ -n ${once[$peer]:-} ]] && continue
      d=$OUT/$wl-$peer-$i; rm -rf "$d"; mkdir -p "$d"; setup "$peer" "$fix" "$d"
      sync; sleep "$SETTLE"
      mark=$(log_lines); t0=$(server_ticks); s=$(date +%s%N)
      /usr/bin/time -v -o "$d/time.txt" timeout "$TIMEOUT" "${cmd[@]}" >"$d/log" 2>&1; rc=$?
      e=$(date +%s%N); t1=$(server_ticks)
      wall=$(awk -v s="$s" -v e="$e" 'BEGIN {printf "%.3f", (e - s) / 1e9}')
      read -r user sys rss < <(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} /Maximum resident/ {r=$2}
                                           END {print u+0, s+0, r+0}' "$d/time.txt")
      # The images are the out dir's top-level files; a subfolder is a tool's own state
      # (image-scraper's .image-scraper/done.jsonl), but a partial download anywhere fails.
      read -r nfiles nbytes < <(find "$img" -maxdepth 1 -type f -printf '%s\n' | awk '{n++; b+=$1} END {print n+0, b+0}')
      ok=no
      find "$img" -maxdepth 1 -type f -printf '%f\t%s\n' | sort | cmp -s - "$fix/manifest.tsv" &&
        [[ -z $(find "$img" -type f \( -name '*.part' -o -name '*.aria2' \) -print -quit) ]] && ok=yes
      scpu=$(awk -v a="$t0" -v b="$t1" -v c="$CLK" 'BEGIN {printf "%.2f", (b - a) / c}')
      echo -e "$wl\t$peer\t$i\t$wall\t$user\t$sys\t$rss\t$nfiles\t$nbytes\t$ok\t$rc\t$scpu\t$images\t$total\t$SERVER_KIND\t$(conns_since "$mark")" >>"$RESULTS"
      printf '%-6s %-14s run %d: %7.2f s wall, %5.2f s CPU, %4d MiB, %5d files, ok=%s rc=%s\n' \
        "$wl" "$peer" "$i" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')" $((rss / 1024)) "$nfiles" "$ok" "$rc" >&2
      if [[ $ok != yes || $rc != 0 ]]; then  # keep what is needed to see why
        mkdir -p "$WORK/failed"; rm -rf "$WORK/failed/$STAMP-$wl-$peer-$i"
        cp -r "$d" "$WORK/failed/$STAMP-$wl-$peer-$i" 2>/dev/null && rm -rf "$WORK/failed/$STAMP-$wl-$peer-$i/images"
        say "run failed: log in $WORK/failed/$STAMP-$wl-$peer-$i"
      fi
      rm -rf "$d"
      if ((i == 1 && runs > 1)) && awk -v w="$wall" -v l="$long" 'BEGIN {exit !(w > l)}'; then
        once[$peer]=1; say "$wl $peer took ${wall}s > ${long}s: 1 run only"
      fi
    done
  done
  stop_proxy
  stop_server
}

sweep_peers() { local p; for p in $SWEEP; do echo "is-async-p$p is-sync-p$p"; done; }
dedup() { awk '{for (i = 1; i <= NF; i++) if (!seen[$i]++) printf "%s ", $i}'; }

say "image-scraper: $BIN_DESC"
awk -v n="$(nproc)" '$1 > n / 4 {exit 1}' /proc/loadavg ||
  say "WARNING: load average $(cut -d' ' -f1 /proc/loadavg) before starting: other work competes with the benchmark"
say "results: $RESULTS"
for wl in $WORKLOADS; do
  case $wl in
    W1) fix=$(fixture w1 --pages 50 --per-page 40 --seed 1) || exit 1
        read -ra ps < <(echo "$PEERS_W1 $(sweep_peers)" | dedup)
        run_workload W1 "$fix" "${RUNS:-5}" "${ps[@]}" ;;
    W2) fix=$(fixture w1 --pages 50 --per-page 40 --seed 1) || exit 1
        read -ra ps < <(echo "$PEERS_W2 $(sweep_peers)" | dedup)
        run_workload W2 "$fix" "${RUNS:-3}" "${ps[@]}" ;;
    W3 | W3P) make_ca; SCHEME=https
        fix=$(FIX_BASE=https://127.0.0.1:$PORT/ fixture w3 --pages 50 --per-page 40 --seed 1) || exit 1
        if [[ $wl == W3 ]]; then peers=$PEERS_W3; else peers=$PEERS_W3P; fi
        read -ra ps < <(echo "$peers" | dedup)
        if [[ $wl == W3P && $HAVE_PROXY != 1 ]]; then say "tinyproxy is not available: W3P skipped"
        else run_workload "$wl" "$fix" "${RUNS:-5}" "${ps[@]}"; fi
        SCHEME=http ;;
    SCALE) fix=$(fixture scale --pages 500 --per-page 40 --seed 2) || exit 1
        read -ra ps < <(echo "$PEERS_SCALE" | dedup)
        run_workload SCALE "$fix" "${RUNS:-3}" "${ps[@]}" ;;
    HUGE) fix=$(fixture huge --huge --huge-count 5 --huge-mb 200 --seed 3) || exit 1
        read -ra ps < <(echo "$PEERS_HUGE" | dedup)
        run_workload HUGE "$fix" "${RUNS:-3}" "${ps[@]}" ;;
    *) die "unknown workload $wl (W1 W2 W3 W3P SCALE HUGE)" ;;
  esac
done

# ---------------------------------------------------------------- report
echo "load average at the end (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg)" >>"$META"
PY=python3
if [[ -n $CHART ]] && ! python3 -c 'import matplotlib' 2>/dev/null; then
  if [[ -x $WORK/venv/bin/python ]] && "$WORK/venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    PY=$WORK/venv/bin/python
  elif [[ ${NO_INSTALL:-0} != 1 ]]; then
    say "installing matplotlib into $WORK/venv (pip)"
    if python3 -m venv "$WORK/venv" >/dev/null 2>&1 && "$WORK/venv/bin/pip" install -q matplotlib >"$WORK/pip.log" 2>&1; then
      PY=$WORK/venv/bin/python
    else
      say "matplotlib could not be installed: chart.py draws a plain PNG without text"
    fi
  fi
fi
TABLE=${RESULTS%.tsv}.table.md
python3 "$HERE/summarize.py" "$RESULTS" --meta "$META" >"$TABLE" || die "summarize.py failed"
if [[ -n $CHART ]]; then
  "$PY" "$HERE/chart.py" "$RESULTS" -o "$CHART" >&2 || say "chart.py failed"
fi
cat "$TABLE"
say "table: $TABLE; results: $RESULTS${CHART:+; chart: $CHART}"
