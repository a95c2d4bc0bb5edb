#!/usr/bin/env bash
# Long URL lists (issue 22): N image URLs, one small JPEG served by nginx on 127.0.0.1 under
# N names, downloaded by image-scraper --urls and by the peers a dataset builder would use:
# curl --parallel and img2dataset (two processes, no resize, files out). Per N and peer:
# wall, CPU, peak RSS, files saved, CPU per image. Outputs go to tmpfs.
#   bench/scale.sh BIN [N...]            default N: 10000 100000 1000000
# N above MAX_FULL (default 1000000) is run as a sample: each peer is stopped (SIGINT) after
# SAMPLE_S seconds (default 60) and the row says how many it saved in that time. The tool
# sizes its per-URL sets for the whole list at start, so its peak RSS in the sample is the
# whole list's; its wall time is extrapolated from its rate (say so wherever it is quoted).
# Env: PEERS (default "is-async-p2 curl img2dataset"), I2D (img2dataset venv bin dir),
#      WORK (default /var/tmp/scale), OUTD (default /dev/shm/scale-out), PORT (8091).
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
BIN=$(realpath "${1:?usage: scale.sh BIN [N...]}"); shift
NS=${*:-10000 100000 1000000}
PEERS=${PEERS:-is-async-p2 curl img2dataset}
I2D=${I2D:-$HOME/.cache/i2d-venv/bin}
WORK=${WORK:-/var/tmp/scale}; PORT=${PORT:-8091}
OUTD=${OUTD:-/dev/shm/scale-out}
MAX_FULL=${MAX_FULL:-1000000}; SAMPLE_S=${SAMPLE_S:-60}
mkdir -p "$WORK/site/img" && cd "$WORK"
# A real, decodable 100x80 JPEG (~8 KB): img2dataset decodes every image even with --resize_mode no.
"$I2D/python" - "$WORK/site/one.jpg" <<'PY'
import sys, numpy as np, cv2
img = (np.random.default_rng(7).random((80, 100, 3)) * 255).astype("uint8")
open(sys.argv[1], "wb").write(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
PY
trap 'kill ${NGX:-} 2>/dev/null || true; rm -rf "$OUTD"' EXIT
source "$HERE/one_jpeg_site.sh"
start_one_jpeg_site
printf 'SCRAPER:\n  PER_HOST_CONCURRENCY: 64\n  CONCURRENCY: 64\n  IMAGE_HOST: ""\n' > settings.yaml
echo -e "N\tpeer\twall_s\tcpu_s\tmaxrss_mib\tfiles\tus_cpu_per_image\tsampled"
for n in $NS; do
  python3 -c "
import sys
n=int(sys.argv[1]); p=sys.argv[2]
with open('urls.txt','w') as f, open('curl.cfg','w') as c, open('urls.csv','w') as v:
    v.write('url\n')
    for i in range(n):
        u='http://127.0.0.1:%s/img/%08d.jpg' % (p, i)
        f.write(u+'\n'); v.write(u+'\n'); c.write('url = \"%s\"\noutput = \"%08d.jpg\"\n' % (u, i))
" "$n" "$PORT"
  sampled=no; stop=()
  if [ "$n" -gt "$MAX_FULL" ]; then sampled=yes; stop=(timeout -s INT -k 30 "$SAMPLE_S"); fi
  for peer in $PEERS; do
    rm -rf "$OUTD"; mkdir -p "$OUTD"; sync
    case $peer in
      is-async-p2) cmd=("$BIN" -m async -p 2 --urls urls.txt -o "$OUTD" -c settings.yaml --no-progress) ;;
      is-sync-p8)  cmd=("$BIN" -m sync -p 8 --urls urls.txt -o "$OUTD" -c settings.yaml --no-progress) ;;
      curl)        cmd=(sh -c "cd \"$OUTD\" && exec curl -s --parallel --parallel-max 64 -K $WORK/curl.cfg") ;;
      img2dataset) cmd=("$I2D/img2dataset" --url_list urls.csv --input_format csv --url_col url --output_folder "$OUTD"
                        --processes_count 2 --thread_count 64 --resize_mode no --output_format files
                        --number_sample_per_shard 10000 --disallowed_header_directives '[]' --timeout 10
                        --enable_wandb False) ;;
    esac
    /usr/bin/time -f "%e\t%U\t%S\t%M" -o time.txt "${stop[@]}" "${cmd[@]}" >peer.log 2>&1 \
      || [ "$sampled" = yes ] || echo "# $peer exited $? (see $WORK/peer.log)" >&2
    files=$(find "$OUTD" -type f -name '*.jpg' | wc -l)
    IFS=$'\t' read -r wall u s rss < <(tail -1 time.txt)
    awk -v n="$n" -v p="$peer" -v w="$wall" -v u="$u" -v s="$s" -v r="$rss" -v f="$files" -v sm="$sampled" \
      'BEGIN{printf "%d\t%s\t%.2f\t%.2f\t%.0f\t%d\t%.1f\t%s\n", n, p, w, u+s, r/1024, f, (u+s)*1e6/(f?f:1), sm}'
  done
done
