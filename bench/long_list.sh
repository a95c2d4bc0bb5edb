#!/usr/bin/env bash
# Peak memory over a whole list of millions (issue 22), two builds side by side.
#   bench/long_list.sh OLD_BIN NEW_BIN [N] [SAMPLE_S]     default N 10000000, SAMPLE_S 60
# 10 M stored 8 KB images are 80 GB, more than this machine has on disk or in RAM, so the
# list runs whole with every image cut off after its header (--min-width 10000 against a
# 100x80 JPEG: counted skipped, nothing stored). Everything kept per URL is still kept:
# the seen set, the names handed out, the report line. NEW runs the whole list; OLD runs
# SAMPLE_S seconds (its sets are sized for the whole list at start, so its peak is there
# early). Then a re-run of a stored list of N_RERUN (default 1000000) images, both builds:
# the resume record is what a re-run holds (KEEP_OUT=1: re-use the out dir a run before
# stored). nginx on 127.0.0.1; outputs in WORK (on disk).
# Env: WORK (default /var/tmp/long-list), PORT (8093), N_RERUN, PARTS (default "list rerun").
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
OLD=$(realpath "${1:?usage: long_list.sh OLD_BIN NEW_BIN [N] [SAMPLE_S]}"); NEW=$(realpath "${2:?}")
N=${3:-10000000}; SAMPLE_S=${4:-60}; N_RERUN=${N_RERUN:-1000000}; PARTS=${PARTS:-list rerun}
WORK=${WORK:-/var/tmp/long-list}; PORT=${PORT:-8093}
mkdir -p "$WORK/site" && cd "$WORK"
python3 - "$WORK/site/one.jpg" <<'PY'
# A 100x80 baseline JPEG header and filler: the tool reads its size from the SOF0 marker.
import sys, struct
sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 80, 100, 3) + bytes(9)
open(sys.argv[1], "wb").write(b"\xff\xd8" + sof + b"\xff\xda" + bytes(8000) + b"\xff\xd9")
PY
trap 'kill ${NGX:-} 2>/dev/null || true' EXIT
source "$HERE/one_jpeg_site.sh"
start_one_jpeg_site
printf 'SCRAPER:\n  PER_HOST_CONCURRENCY: 64\n  CONCURRENCY: 64\n  IMAGE_HOST: ""\n' > settings.yaml
list() { python3 -c "
import sys
with open(sys.argv[3], 'w') as f:
    for i in range(int(sys.argv[1])): f.write('http://127.0.0.1:%s/img/%08d.jpg\n' % (sys.argv[2], i))
" "$1" "$PORT" "$2"; }
row() { # label, then the command
  local label=$1; shift
  /usr/bin/time -f "%e\t%U\t%S\t%M" -o time.txt "$@" >run.log 2>&1 || true
  IFS=$'\t' read -r wall u s rss < <(tail -1 time.txt)
  local lines=0; [ -f report.jsonl ] && lines=$(wc -l < report.jsonl)
  printf '%s\t%s\t%.1f\t%.1f\t%.0f\t%s\n' "$label" "$N_NOW" "$wall" "$(echo "$u + $s" | bc)" "$((rss / 1024))" "$lines"
}
echo -e "run\tN\twall_s\tcpu_s\tpeak_rss_mib\treport_lines"
if [[ " $PARTS " == *" list "* ]]; then
list "$N" urls.txt
N_NOW=$N
rm -rf out report.jsonl
row "new, whole list, header only" "$NEW" -m async -p 2 --urls urls.txt -o out -c settings.yaml --no-progress \
  --min-width 10000 --report report.jsonl
rm -rf out report.jsonl
row "old, ${SAMPLE_S} s sample, header only" timeout -s INT -k 30 "$SAMPLE_S" "$OLD" -m async -p 2 --urls urls.txt \
  -o out -c settings.yaml --no-progress --min-width 10000 --report report.jsonl
rm -rf out report.jsonl urls.txt
fi
[[ " $PARTS " == *" rerun "* ]] || exit 0
list "$N_RERUN" rerun.txt
N_NOW=$N_RERUN
# Stored once (both builds write the same record), then re-run by each.
[ -n "${KEEP_OUT:-}" ] || { rm -rf out; "$NEW" -m async -p 2 --urls rerun.txt -o out -c settings.yaml --no-progress >/dev/null 2>&1 || true; }
for build in old new; do
  bin=$OLD; [ $build = new ] && bin=$NEW
  rm -f report.jsonl
  row "$build, re-run of a finished list" "$bin" -m async -p 2 --urls rerun.txt -o out -c settings.yaml --no-progress
done
rm -rf out rerun.txt
