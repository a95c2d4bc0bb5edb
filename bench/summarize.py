#!/usr/bin/env python3
"""Markdown tables of medians and ratios from bench/run.sh's results TSV (stdlib only).

  summarize.py RESULTS.tsv [--meta META.txt]

Per workload, one row per peer: runs whose files matched the manifest (and exited 0) out of
all runs; medians over those runs (over all runs if none matched) of wall time, CPU time
(user + sys of the peer's process tree), peak RSS (the largest single process, MiB) and the
server's CPU time during the run; images/s and MB/s (1 MB = 1e6 bytes) from the median wall
time; and the ratios of the peer's median wall and CPU time to curl's in the same workload
(> 1: slower than curl, or more CPU). Then, when the run had a -p sweep, images/s for each
mode and -p.
"""
import argparse
import csv
import re
import statistics
from collections import OrderedDict

SERVER_NOTE = {
    "W1": "no added latency",
    "W2": "every response delayed",
    "SCALE": "10x the images, no added latency",
    "HUGE": "few huge images, no added latency",
    "W3": "HTTPS: TLS 1.3, HTTP/2 offered",
    "W3P": "HTTPS through a forward proxy (CONNECT)",
}
PEER_RE = re.compile(r"^is-(async|sync)-p(\d+)$")


def describe(peer):
    m = PEER_RE.match(peer)
    if m:
        mode, p = m.group(1), int(m.group(2))
        flight = p * -(-64 // p) if mode == "async" else p
        return f"image-scraper {mode} -p {p}", f"{flight} in flight"
    return {
        "curl": ("curl --parallel", "64 in flight, URL list"),
        "curl-h1": ("curl --parallel --http1.1", "64 in flight, URL list"),
        "wget": ("wget -r -l1", "1 connection, parses pages"),
        "aria2c": ("aria2c -j 64", "64 in flight, URL list"),
    }.get(peer, (peer, ""))


def order(peer):
    m = PEER_RE.match(peer)
    if m:
        return (1 if m.group(1) == "async" else 2, int(m.group(2)))
    known = ["curl", "curl-h1", "aria2c", "wget"]
    return (0, known.index(peer) if peer in known else 9)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def stats(rows):
    good = [r for r in rows if r["ok"] == "yes" and r["rc"] == "0"]
    use = good or rows
    wall = [float(r["wall_s"]) for r in use]
    return dict(
        n=len(rows), ok=len(good), wall=med(wall), lo=min(wall), hi=max(wall),
        cpu=med([float(r["user_s"]) + float(r["sys_s"]) for r in use]),
        rss=med([int(r["maxrss_kb"]) / 1024 for r in use]),
        srv=med([float(r["server_cpu_s"]) for r in use]),
        # Connections the server accepted (= TLS handshakes), where the run counted them.
        conns=med([int(r["conns"]) for r in use if (r.get("conns") or "").strip()]),
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    ap.add_argument("--meta")
    a = ap.parse_args()
    rows = list(csv.DictReader(open(a.results), delimiter="\t"))
    if a.meta:
        for line in open(a.meta):
            print(f"- {line.rstrip()}")
        print()
    by_wl = OrderedDict()
    for r in rows:
        by_wl.setdefault(r["workload"], OrderedDict()).setdefault(r["peer"], []).append(r)
    for wl, peers in by_wl.items():
        first = next(iter(peers.values()))[0]
        images, total = int(first["images"]), int(first["total_bytes"])
        print(f"### {wl}: {images} images, {total / 1e6:.1f} MB; {first['server']}"
              f" ({SERVER_NOTE.get(wl, '')})\n")
        st = {p: stats(rs) for p, rs in peers.items()}
        counted = any(s["conns"] == s["conns"] for s in st.values())  # not NaN: counted
        print("| peer | requests | ok | wall s, median (min-max) | images/s | MB/s | CPU s | peak RSS MiB"
              " | server CPU s | wall / curl | CPU / curl |" + (" connections |" if counted else ""))
        print("|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if counted else ""))
        curl = st.get("curl")
        for p in sorted(peers, key=order):
            s = st[p]
            name, flight = describe(p)
            ratio_w = f"{s['wall'] / curl['wall']:.2f}" if curl else "-"
            ratio_c = f"{s['cpu'] / curl['cpu']:.2f}" if curl and curl["cpu"] > 0 else "-"
            extra = ""
            if counted:
                extra = f" {s['conns']:.0f} |" if s["conns"] == s["conns"] else " |"
            if s["ok"] == 0:  # what a failed run measured means nothing
                print(f"| {name} | {flight} | 0/{s['n']} | failed | | | | | | | |" + (" |" if counted else ""))
                continue
            print(f"| {name} | {flight} | {s['ok']}/{s['n']} | {s['wall']:.2f} ({s['lo']:.2f}-{s['hi']:.2f})"
                  f" | {images / s['wall']:.0f} | {total / 1e6 / s['wall']:.0f} | {s['cpu']:.2f}"
                  f" | {s['rss']:.0f} | {s['srv']:.2f} | {ratio_w} | {ratio_c} |" + extra)
        sweep = {}
        for p, s in st.items():
            m = PEER_RE.match(p)
            if m and s["ok"]:
                sweep.setdefault(m.group(1), {})[int(m.group(2))] = images / s["wall"]
        ps = sorted({p for d in sweep.values() for p in d})
        if len(ps) > 2:
            print(f"\nimages/s by -p ({wl}; async keeps 64 requests in flight in all, sync has -p):\n")
            print("| mode | " + " | ".join(f"-p {p}" for p in ps) + " |")
            print("|---|" + "---|" * len(ps))
            for mode in ("async", "sync"):
                if mode in sweep:
                    cells = [f"{sweep[mode][p]:.0f}" if p in sweep[mode] else "" for p in ps]
                    print(f"| {mode} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main()
