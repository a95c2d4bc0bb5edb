#!/usr/bin/env bash
# One job shared by 1, 2 and 3 processes through Redis: throughput per process count, and
# what Redis costs per image. From anywhere in the project:
#
#   bench/distributed.sh                 IMAGES=600 RUNS=3 DELAY_MS=50
#
# Builds image-scraper and examples/gallery_server (release); starts redis-server (Debian's
# package: `apt-get install redis-server` if missing) and gallery_server on 127.0.0.1 with
# every response delayed DELAY_MS, serving IMAGES small files; lists them as URLs on two
# hosts (127.0.0.1 and localhost: one server, two host names, so two per-host limits);
# then for P = 1, 2, 3 runs P processes of one job (`--frontier --job`, `--urls`), each
# async -p 1 with CONCURRENCY 4 and PER_HOST_CONCURRENCY 8 (the hosts allow 16 in flight,
# three processes hold 12), times from the first start to the last exit, checks that the
# out dirs hold every image once, and prints medians and the speed-up over one process.
# Redis' cost: scripts per image and Redis' own time per image (INFO commandstats).
# Nothing but 127.0.0.1 is contacted; what it started is stopped on exit.
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${WORK:-/tmp/image-scraper-dist-bench}
IMAGES=${IMAGES:-600}
RUNS=${RUNS:-3}
DELAY_MS=${DELAY_MS:-50}
PORT=${PORT:-18090}
RPORT=${RPORT:-16390}
say() { echo "[dist-bench $(date +%T)] $*" >&2; }
die() { say "error: $*"; exit 1; }

command -v redis-server >/dev/null || die "redis-server missing: apt-get install redis-server"
(cd "$ROOT" && cargo build --release --quiet && cargo build --release --quiet --example gallery_server) \
  || die "build failed"
BIN=${BIN:-$ROOT/target/release/image-scraper}
SERVER=${SERVER:-$ROOT/target/release/examples/gallery_server}

rm -rf "$WORK" && mkdir -p "$WORK/site/img"
python3 - "$WORK/site/img" "$IMAGES" <<'PY'
import sys, os
folder, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    body = bytes([0xFF, 0xD8, 0xFF, 0xE0]) + bytes((i * 7 + k) % 251 for k in range(20_000)) + bytes([0xFF, 0xD9])
    open(os.path.join(folder, f"{i}.jpg"), "wb").write(body)
PY
for i in $(seq 0 $((IMAGES - 1))); do
  if ((i % 2)); then echo "http://localhost:$PORT/img/$i.jpg"; else echo "http://127.0.0.1:$PORT/img/$i.jpg"; fi
done >"$WORK/urls.txt"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
"$SERVER" --root "$WORK/site" --port "$PORT" --delay-ms "$DELAY_MS" --workers 2 >"$WORK/server.log" 2>&1 &
PIDS+=($!)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do
  redis-cli -p "$RPORT" ping >/dev/null 2>&1 && curl -s -o /dev/null "http://127.0.0.1:$PORT/img/0.jpg" && break
  sleep 0.1
done
REDIS="redis://127.0.0.1:$RPORT/0"

printf '| processes | wall s, median (min-max) | images/s | speed-up |\n|---|---|---|---|\n' >"$WORK/table.md"
base=""
for P in 1 2 3; do
  walls=()
  for run in $(seq "$RUNS"); do
    job="p$P-r$run"
    [[ $P == 1 && $run == 1 ]] && redis-cli -p "$RPORT" config resetstat >/dev/null
    start=$(date +%s.%N)
    kids=()
    for n in $(seq "$P"); do
      d="$WORK/runs/$job/node$n"
      mkdir -p "$d"
      printf 'SCRAPER:\n  IMAGE_HOST: ""\n  CONCURRENCY: 4\n  PER_HOST_CONCURRENCY: 8\n' >"$d/settings.yaml"
      (cd "$d" && "$BIN" -q --no-progress -m async -p 1 --urls "$WORK/urls.txt" -o images \
        --frontier "$REDIS" --job "$job" >"$d/log" 2>&1) &
      kids+=($!)
    done
    for k in "${kids[@]}"; do wait "$k" || die "a process of $job failed: see $WORK/runs/$job"; done
    end=$(date +%s.%N)
    got=$(find "$WORK/runs/$job" -path '*/images/*.jpg' | sed 's|.*/||' | sort -u | wc -l)
    [[ $got == "$IMAGES" ]] || die "$job: $got distinct images on disk, not $IMAGES"
    walls+=("$(echo "$end - $start" | bc -l)")
    if [[ $P == 1 && $run == 1 ]]; then
      redis-cli -p "$RPORT" info commandstats | tr -d '\r' | grep '^cmdstat_evalsha' >"$WORK/redis-cost.txt"
    fi
  done
  read -r median lo hi < <(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.2f %.2f %.2f\n", a[int((NR+1)/2)], a[1], a[NR]}')
  rate=$(echo "$IMAGES / $median" | bc -l)
  [[ -z $base ]] && base=$median
  printf '| %s | %s (%s-%s) | %.0f | %.2fx |\n' "$P" "$median" "$lo" "$hi" "$rate" "$(echo "$base / $median" | bc -l)" >>"$WORK/table.md"
done
cat "$WORK/table.md"
calls=$(sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p' "$WORK/redis-cost.txt")
usec=$(sed -n 's/.*,usec=\([0-9]*\),.*/\1/p' "$WORK/redis-cost.txt")
printf '\nRedis, one process, one run: %s scripts for %s images (%.1f per image), %.0f us of Redis time per image\n' \
  "$calls" "$IMAGES" "$(echo "$calls / $IMAGES" | bc -l)" "$(echo "$usec / $IMAGES" | bc -l)"
