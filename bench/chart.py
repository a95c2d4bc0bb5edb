#!/usr/bin/env python3
"""Chart of images/s against -p for both modes of image-scraper, W1 and W2 (bench/run.sh's TSV).

  chart.py RESULTS.tsv [-o docs/perf-scaling.png]

One panel per workload (W1: no added latency, W2: every response delayed); x = -p (log
scale), y = images/s from the median wall time of the runs whose files matched; one line per
mode; curl and aria2c from the same run as dashed horizontal references.

Uses matplotlib when it can be imported (bench/run.sh installs it into a venv with pip when
missing). Without it, a plain PNG is written with the standard library alone: the same
panels, axes and lines, but no text (left panel W1, right W2; blue async, orange sync, grey
dashed curl; y from 0; the x ticks are -p = 1, 2, 4, ...), and a note on stderr.
"""
import argparse
import csv
import math
import os
import re
import statistics
import struct
import sys
import zlib

PEER_RE = re.compile(r"^is-(async|sync)-p(\d+)$")
WORKLOADS = (("W1", "W1: no added latency"), ("W2", "W2: every response delayed"))
COLORS = {"async": (31, 119, 180), "sync": (255, 127, 14), "curl": (110, 110, 110), "aria2c": (44, 160, 44)}


def load(path):
    """{workload: {"async": {p: images/s}, "sync": {...}, "curl": x, "aria2c": x}}, titles."""
    rows = list(csv.DictReader(open(path), delimiter="\t"))
    data, delay = {}, {}
    for wl, _ in WORKLOADS:
        peers = {}
        for r in rows:
            if r["workload"] == wl:
                peers.setdefault(r["peer"], []).append(r)
                delay[wl] = r.get("server", "")
        d = {}
        for peer, rs in peers.items():
            good = [r for r in rs if r["ok"] == "yes" and r["rc"] == "0"]
            if not good:
                continue
            rate = int(good[0]["images"]) / statistics.median(float(r["wall_s"]) for r in good)
            m = PEER_RE.match(peer)
            if m:
                d.setdefault(m.group(1), {})[int(m.group(2))] = rate
            elif peer in ("curl", "aria2c"):
                d[peer] = rate
        if d:
            data[wl] = d
    return data, delay


def with_matplotlib(data, delay, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(data), figsize=(5.5 * len(data), 4.2), squeeze=False)
    for ax, (wl, title) in zip(axes[0], [w for w in WORKLOADS if w[0] in data]):
        d = data[wl]
        m = re.search(r"(\d+) ms delay", delay.get(wl, ""))
        if m and wl == "W2":
            title = f"W2: every response delayed {m.group(1)} ms"
        ps_all = sorted({p for mode in ("async", "sync") for p in d.get(mode, {})})
        for mode in ("async", "sync"):
            if mode in d:
                ps = sorted(d[mode])
                ax.plot(ps, [d[mode][p] for p in ps], marker="o", color=[c / 255 for c in COLORS[mode]],
                        label=f"image-scraper {mode}")
        for ref in ("curl", "aria2c"):
            if ref in d:
                ax.axhline(d[ref], linestyle="--", linewidth=1, color=[c / 255 for c in COLORS[ref]],
                           label=f"{ref}, 64 in flight (URL list)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ps_all)
        ax.set_xticklabels([str(p) for p in ps_all])
        ax.set_ylim(bottom=0)
        ax.set_xlabel("-p (workers)")
        ax.set_ylabel("images/s (median wall time)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("image-scraper: images/s against -p (async: 64 requests in flight in all; sync: -p)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def plain_png(data, out):
    """A text-free chart drawn pixel by pixel, for machines without matplotlib."""
    pw, ph, pad = 420, 300, 30
    w, h = pw * len(data) + pad, ph + 2 * pad
    px = [[(255, 255, 255)] * w for _ in range(h)]

    def dot(x, y, c, r=1):
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if 0 <= x + dx < w and 0 <= y + dy < h:
                    px[y + dy][x + dx] = c

    def line(x0, y0, x1, y1, c, dash=False):
        n = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(n + 1):
            if dash and (i // 6) % 2:
                continue
            dot(round(x0 + (x1 - x0) * i / n), round(y0 + (y1 - y0) * i / n), c, 0)

    for k, wl in enumerate(wl for wl, _ in WORKLOADS if wl in data):
        d = data[wl]
        ps = sorted({p for mode in ("async", "sync") for p in d.get(mode, {})}) or [1]
        top = max([v for mode in ("async", "sync") for v in d.get(mode, {}).values()]
                  + [d.get("curl", 0), d.get("aria2c", 0), 1]) * 1.1
        x0, y0, x1, y1 = k * pw + pad + 20, pad, (k + 1) * pw, ph + pad
        lo, hi = math.log2(ps[0]), max(math.log2(ps[-1]), math.log2(ps[0]) + 1)
        fx = lambda p: round(x0 + (math.log2(p) - lo) / (hi - lo) * (x1 - x0 - 10))
        fy = lambda v: round(y1 - v / top * (y1 - y0))
        line(x0, y1, x1, y1, (0, 0, 0))
        line(x0, y0, x0, y1, (0, 0, 0))
        for p in ps:
            line(fx(p), y1, fx(p), y1 + 5, (0, 0, 0))
        for ref in ("curl", "aria2c"):
            if ref in d:
                line(x0, fy(d[ref]), x1, fy(d[ref]), COLORS[ref], dash=True)
        for mode in ("async", "sync"):
            pts = sorted(d.get(mode, {}).items())
            for (pa, va), (pb, vb) in zip(pts, pts[1:]):
                line(fx(pa), fy(va), fx(pb), fy(vb), COLORS[mode])
            for p, v in pts:
                dot(fx(p), fy(v), COLORS[mode], 3)

    raw = b"".join(b"\x00" + bytes(c for pix in row for c in pix) for row in px)
    chunk = lambda t, b: struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xFFFFFFFF)
    with open(out, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("-o", "--out", default=os.path.join(here, "..", "docs", "perf-scaling.png"))
    a = ap.parse_args()
    data, delay = load(a.results)
    if not data:
        print("chart.py: no W1/W2 runs that passed in the results: no chart", file=sys.stderr)
        return 1
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        plain_png(data, a.out)
        print(f"chart.py: matplotlib is not installed: wrote a plain chart without text to {a.out}",
              file=sys.stderr)
        return 0
    with_matplotlib(data, delay, a.out)
    print(f"chart.py: wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
