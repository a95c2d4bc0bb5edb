#!/usr/bin/env bash
# Rendering's cost, side by side in one run (issue 19): the same gallery of $PAGES pages x
# $PER images, served static and as an infinite scroll (bench/render_gallery.py, on
# 127.0.0.1 only), downloaded by:
#   static-never   the static pages, RENDER: never (the static path as it always was)
#   static-auto    the static pages, RENDER: auto (the default: what auto costs a static site)
#   js-render      the infinite-scroll pages, --render (each page rendered and scrolled)
# For each: wall time, pages per second, CPU (the machine's busy time during the run: the
# tool, its browser and the gallery server), and
# for js-render the browser's peak memory (the sum of the PSS of its processes, sampled),
# at RENDER_TABS 1 and 2, whose difference is one tab's. Every run is checked: all
# PAGES x PER images on disk. Prints a markdown table; nothing is asserted on timings.
#
#   bench/render.sh            PAGES=50 PER=40 RUNS=3
#   RUNS=1 PAGES=10 bench/render.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PAGES=${PAGES:-50} PER=${PER:-40} RUNS=${RUNS:-3} PORT=${PORT:-18931}
BIN=${BIN:-target/release/image-scraper}
[ -x "$BIN" ] || cargo build --release --locked
command -v chromium >/dev/null || { echo "chromium is needed (apt install chromium)"; exit 2; }
[ -x /usr/bin/time ] || apt-get install -y --no-install-recommends time >/dev/null

WORK=$(mktemp -d /tmp/render-bench.XXXXXX)
python3 bench/render_gallery.py "$WORK/site" "$PORT" "$PAGES" "$PER" &
SERVER=$!
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/static/p1/cats.html" >/dev/null && break; sleep 0.2; done

# The machine's busy CPU time so far, in clock ticks: the browser's renderer processes
# are reaped by the browser, not by the tool, so the tool's own rusage misses them. The
# machine is otherwise idle; the gallery server's share is in every row alike.
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }

# The peak of the summed PSS (shared pages split among their sharers, so the browser's
# processes' shared libraries count once) of every process whose command line names $1.
sample_rss() {
  local marker=$1 out=$2 peak=0
  while true; do
    local kb=0 pid
    for pid in $(pgrep -f -- "$marker"); do
      kb=$((kb + $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)))
    done
    [ "$kb" -gt "$peak" ] && peak=$kb && echo "$peak" >"$out"
    sleep 0.1
  done
}

run() { # name kind render tabs
  local name=$1 kind=$2 render=$3 tabs=$4 dir="$WORK/run"
  rm -rf "$dir" && mkdir -p "$dir/tmp"
  printf 'SCRAPER:\n  URL: http://127.0.0.1:%s/%s/\n  ITEM: cats\n  PAGE_PATH: "p{page}/{item}.html"\n  AMOUNT_PAGES: %s\n  IMAGE_HOST: ""\n  OBEY_ROBOTS: false\n  RENDER: %s\n  RENDER_TABS: %s\n' \
    "$PORT" "$kind" "$PAGES" "$render" "$tabs" >"$dir/settings.yaml"
  echo 0 >"$dir/rss"
  sample_rss "$dir/tmp" "$dir/rss" & local sampler=$!
  local busy_before; busy_before=$(busy_ticks)
  local code=0
  (cd "$dir" && TMPDIR="$dir/tmp" /usr/bin/time -f '%e' -o "$dir/time" "$ROOT/$BIN" -q -o out --no-progress 2>"$dir/log") || code=$?
  local busy_after; busy_after=$(busy_ticks)
  kill $sampler 2>/dev/null; wait $sampler 2>/dev/null || true
  [ "$code" -eq 0 ] || { echo "$name: exit $code"; tail -5 "$dir/log"; exit 1; }
  local files; files=$(find "$dir/out" -maxdepth 1 -name '*.png' | wc -l)
  [ "$files" -eq $((PAGES * PER)) ] || { echo "$name: $files files, want $((PAGES * PER))"; exit 1; }
  read -r wall <"$dir/time"
  echo "$name $wall $(echo "($busy_after - $busy_before) / $(getconf CLK_TCK)" | bc -l) $(cat "$dir/rss")" >>"$WORK/results"
}

for _ in $(seq "$RUNS"); do
  run static-never static never 2
  run static-auto static auto 2
  run js-render-tabs1 js always 1
  run js-render-tabs2 js always 2
done

python3 - "$WORK/results" "$PAGES" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, wall, cpu, rss = line.split()
    rows.setdefault(name, []).append((float(wall), float(cpu), int(rss)))
pages = int(sys.argv[2])
base = statistics.median(w for w, _, _ in rows["static-never"])
print(f"| run | wall s (median) | pages/s | CPU s | CPU ms/page | vs static-never | browser peak PSS MiB |")
print("|---|---|---|---|---|---|---|")
for name, runs in rows.items():
    wall = statistics.median(w for w, _, _ in runs)
    cpu = statistics.median(c for _, c, _ in runs)
    rss = max(r for _, _, r in runs) / 1024
    print(f"| {name} | {wall:.2f} | {pages / wall:.1f} | {cpu:.2f} | {1000 * cpu / pages:.0f} | {wall / base:.2f}x | {rss:.0f} |")
t1 = max(r for _, _, r in rows["js-render-tabs1"]) / 1024
t2 = max(r for _, _, r in rows["js-render-tabs2"]) / 1024
print(f"\none more tab: {t2 - t1:+.0f} MiB of browser memory")
PY
