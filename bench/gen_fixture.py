#!/usr/bin/env python3
"""Write a static gallery site for the image-scraper benchmark (stdlib only, deterministic).

  gen_fixture.py OUT [--pages 50] [--per-page 40] [--seed 1] [--base-url http://127.0.0.1:18080/]
                     [--item cats] [--min-kb 20] [--max-kb 400] [--huge [--huge-count 5 --huge-mb 200]]

Layout under OUT:
  p{N}/{ITEM}.html                  N = 1..PAGES, each with PER_PAGE <img src=ABSOLUTE_URL>, one decoy
                                    <img> and the page count as <li class="pag-text">of PAGES</li>
  images.stockfreeimages.com/*.jpg  the images (a path segment, so the tool's substring filter
                                    img[src*="images.stockfreeimages.com"] passes on a loopback URL)
  static/logo.png                   the decoy: on every page, must NOT be downloaded
  urls.txt      every image URL, one a line (for the peers that parse no pages: curl, aria2c)
  pages.txt     every page URL (for wget -r -l1)
  manifest.tsv  "name<TAB>bytes" per image: a run is correct when its files are exactly these
  fixture.json  the parameters and totals; generation is skipped when it already matches

Sizes: seeded log-normal (median ~88 kB, sigma 0.55, so the mean is ~100 kB) clipped to
[MIN_KB, MAX_KB] (1 kB = 1000 bytes). Bodies: seeded random bytes inside a JPEG SOI + JFIF APP0
... EOI frame, so they look like JPEGs and do not compress. --huge: one page holding
HUGE_COUNT images of exactly HUGE_MB MB each (the "few huge images" workload).
The same arguments always give the same bytes.
"""
import argparse
import json
import os
import random
import shutil
import sys

JPEG_HEAD = bytes.fromhex("ffd8ffe000104a46494600010100000100010000")  # SOI + JFIF APP0
JPEG_TAIL = bytes.fromhex("ffd9")  # EOI
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
IMAGE_DIR = "images.stockfreeimages.com"
FORMAT = 2  # bump when the layout changes, so old fixtures are regenerated


def sizes(a, rng):
    """One size per image, in page order."""
    if a.huge:
        return [a.huge_mb * 1000 * 1000] * (a.pages * a.per_page)
    lo, hi = a.min_kb * 1000, a.max_kb * 1000
    return [max(lo, min(hi, int(rng.lognormvariate(11.38, 0.55)))) for _ in range(a.pages * a.per_page)]


def page_html(a, n, imgs):
    prev_link = f'<a href="/p{n - 1}/{a.item}.html">prev</a>' if n > 1 else ""
    next_link = f'<a href="/p{n + 1}/{a.item}.html">next</a>' if n < a.pages else ""
    return "\n".join([
        "<!DOCTYPE html>",
        f'<html><head><meta charset="utf-8"><title>{a.item} - page {n}</title></head><body>',
        '<header><img src="/static/logo.png" alt="logo"></header>',
        '<div class="gallery">', *imgs, "</div>",
        f'<ul class="pagination"><li>{prev_link}</li><li class="pag-cur">Page {n}</li>'
        f'<li class="pag-text">of {a.pages}</li><li>{next_link}</li></ul>',
        "</body></html>", ""])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--pages", type=int, default=50)
    ap.add_argument("--per-page", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--base-url", default="http://127.0.0.1:18080/")
    ap.add_argument("--item", default="cats")
    ap.add_argument("--min-kb", type=int, default=20)
    ap.add_argument("--max-kb", type=int, default=400)
    ap.add_argument("--huge", action="store_true", help="one page of HUGE_COUNT images of HUGE_MB MB")
    ap.add_argument("--huge-count", type=int, default=5)
    ap.add_argument("--huge-mb", type=int, default=200)
    ap.add_argument("--force", action="store_true", help="regenerate even if fixture.json matches")
    a = ap.parse_args()
    if a.huge:
        a.pages, a.per_page = 1, a.huge_count
    if a.pages < 1 or a.per_page < 1:
        ap.error("--pages and --per-page must be at least 1")
    base = a.base_url if a.base_url.endswith("/") else a.base_url + "/"
    params = dict(format=FORMAT, pages=a.pages, per_page=a.per_page, seed=a.seed, base_url=base,
                  item=a.item, min_kb=a.min_kb, max_kb=a.max_kb, huge=a.huge,
                  huge_mb=a.huge_mb if a.huge else None)

    info_path = os.path.join(a.out, "fixture.json")
    if not a.force and os.path.exists(info_path):
        try:
            old = json.load(open(info_path))
        except ValueError:
            old = {}
        if {k: old.get(k) for k in params} == params:
            print(json.dumps(old))
            return
    if os.path.exists(a.out):  # stale or partial: start clean so no old file stays behind
        shutil.rmtree(a.out)

    rng = random.Random(a.seed)
    os.makedirs(os.path.join(a.out, IMAGE_DIR))
    os.makedirs(os.path.join(a.out, "static"))
    with open(os.path.join(a.out, "static", "logo.png"), "wb") as f:
        f.write(PNG_1PX)

    all_sizes = iter(sizes(a, rng))
    urls, pages, manifest, total = [], [], [], 0
    for n in range(1, a.pages + 1):
        imgs = []
        for k in range(a.per_page):
            name = f"{a.item}-{n:04d}-{k:03d}.jpg"
            size = next(all_sizes)
            with open(os.path.join(a.out, IMAGE_DIR, name), "wb") as f:
                f.write(JPEG_HEAD)
                left = size - len(JPEG_HEAD) - len(JPEG_TAIL)
                while left > 0:  # in pieces, so a 200 MB image is not held twice
                    piece = min(left, 16 << 20)
                    f.write(rng.randbytes(piece))
                    left -= piece
                f.write(JPEG_TAIL)
            url = f"{base}{IMAGE_DIR}/{name}"
            urls.append(url)
            manifest.append(f"{name}\t{size}")
            total += size
            imgs.append(f'  <div class="thumb"><a href="#{k}"><img src="{url}" alt="{a.item} {n}-{k}"></a></div>')
        os.makedirs(os.path.join(a.out, f"p{n}"))
        with open(os.path.join(a.out, f"p{n}", f"{a.item}.html"), "w") as f:
            f.write(page_html(a, n, imgs))
        pages.append(f"{base}p{n}/{a.item}.html")

    for fname, lines in (("urls.txt", urls), ("pages.txt", pages), ("manifest.tsv", sorted(manifest))):
        with open(os.path.join(a.out, fname), "w") as f:
            f.write("\n".join(lines) + "\n")
    info = dict(params, images=len(urls), bytes=total, mean_bytes=total // len(urls))
    with open(info_path, "w") as f:  # last: its presence means the fixture is complete
        json.dump(info, f, indent=1)
    print(json.dumps(info))


if __name__ == "__main__":
    sys.exit(main())
