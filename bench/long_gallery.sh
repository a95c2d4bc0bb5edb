#!/usr/bin/env bash
# Peak memory over a paged gallery of 100,000 pages (issue 22), two builds side by side.
#   bench/long_gallery.sh OLD_BIN NEW_BIN [PAGES] [PER_PAGE]     default 100000 pages of 20
# nginx on 127.0.0.1 serves PAGES listing pages (p1/g.html ...), each with PER_PAGE images
# of its own; every image is cut off after its header (--min-width 10000 against a 100x80
# JPEG, counted skipped: 2 M stored images would not fit here), so what is measured is
# what the walk keeps per page and per image. Both builds run the whole gallery.
# Env: WORK (default /var/tmp/long-gallery), PORT (8094).
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
OLD=$(realpath "${1:?usage: long_gallery.sh OLD_BIN NEW_BIN [PAGES] [PER_PAGE]}"); NEW=$(realpath "${2:?}")
PAGES=${3:-100000}; PER_PAGE=${4:-20}
WORK=${WORK:-/var/tmp/long-gallery}; PORT=${PORT:-8094}
mkdir -p "$WORK/site/pages" && cd "$WORK"
python3 - "$WORK/site" "$PAGES" "$PER_PAGE" <<'PY'
import sys, struct, os
site, pages, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 80, 100, 3) + bytes(9)
open(os.path.join(site, "one.jpg"), "wb").write(b"\xff\xd8" + sof + b"\xff\xda" + bytes(8000) + b"\xff\xd9")
for p in range(1, pages + 1):
    imgs = "".join('<img src="/img/%d-%d.jpg" alt="">' % (p, i) for i in range(per))
    with open(os.path.join(site, "pages", "%d.html" % p), "w") as f:
        f.write("<!doctype html><title>page %d</title><body>%s</body>" % (p, imgs))
PY
trap 'kill ${NGX:-} 2>/dev/null || true' EXIT
source "$HERE/one_jpeg_site.sh"
start_one_jpeg_site 'location ~ ^/p([0-9]+)/g\.html$ { try_files /pages/$1.html =404; }'
printf 'SCRAPER:\n  PER_HOST_CONCURRENCY: 64\n  CONCURRENCY: 64\n' > settings.yaml
echo -e "build\tpages\timages\twall_s\tcpu_s\tpeak_rss_mib"
for build in old new; do
  bin=$OLD; [ $build = new ] && bin=$NEW
  rm -rf out
  /usr/bin/time -f "%e\t%U\t%S\t%M" -o time.txt "$bin" -m async -p 2 --url "http://127.0.0.1:$PORT/" --item g \
    --pages "$PAGES" -o out -c settings.yaml --no-progress --min-width 10000 --report report.json >run.log 2>&1 || true
  IFS=$'\t' read -r wall u s rss < <(tail -1 time.txt)
  images=$(python3 -c "import json; print(json.load(open('report.json'))['images']['total'])" 2>/dev/null || echo '?')
  printf '%s\t%s\t%s\t%.1f\t%.1f\t%.0f\n' "$build" "$PAGES" "$images" "$wall" "$(echo "$u + $s" | bc)" "$((rss / 1024))"
done
rm -rf out
