#!/usr/bin/env python3
"""The rendering benchmark's gallery (bench/render.sh): PAGES listing pages of PER images,
written twice into DIR, then served on 127.0.0.1:PORT until killed.

  static/p{N}/cats.html   PER plain <img> and a "Page N of P" count (the static path)
  js/p{N}/cats.html       the same page with no <img>: a script of our own fetches
                          /js/p{N}/batch{K}.json (BATCHES of PER/BATCHES) as the user
                          scrolls, like an infinite scroll, and states the page count
  img/{N}-{K}.png         distinct small PNGs, shared by both

Usage: render_gallery.py DIR PORT [PAGES [PER [BATCHES]]]
"""
import http.server
import json
import os
import struct
import sys
import zlib


def png(seed):
    rows = b"".join(b"\x00" + bytes((seed * 31 + x * 7 + y) % 256 for x in range(3 * 8)) for y in range(8))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


SCRIPT = """<script>
let next = 1, busy = false;
async function more() {
  if (busy || next > %(batches)d) return;
  busy = true;
  const r = await fetch('batch' + next + '.json'); next++;
  for (const src of (await r.json()).images) {
    const box = document.createElement('div'); box.style.height = '200px';
    const img = document.createElement('img'); img.src = src; box.append(img);
    document.getElementById('grid').append(box);
  }
  busy = false;
}
addEventListener('scroll', () => { if (innerHeight + scrollY >= document.body.scrollHeight - 400) more(); });
more();
</script>"""


def write(root, pages, per, batches):
    os.makedirs(os.path.join(root, "img"), exist_ok=True)
    for n in range(1, pages + 1):
        srcs = [f"/img/{n}-{k}.png" for k in range(1, per + 1)]
        for k, src in enumerate(srcs, 1):
            with open(os.path.join(root, src.lstrip("/")), "wb") as f:
                f.write(png(n * 1000 + k))
        count = f'<li class="pag-text">Page {n} of {pages}</li>'
        os.makedirs(os.path.join(root, "static", f"p{n}"), exist_ok=True)
        with open(os.path.join(root, "static", f"p{n}", "cats.html"), "w") as f:
            imgs = "".join(f'<div><img src="{s}"></div>' for s in srcs)
            f.write(f"<!doctype html><html><body><ul>{count}</ul>{imgs}</body></html>")
        js = os.path.join(root, "js", f"p{n}")
        os.makedirs(js, exist_ok=True)
        size = per // batches
        for b in range(1, batches + 1):
            with open(os.path.join(js, f"batch{b}.json"), "w") as f:
                json.dump({"images": srcs[(b - 1) * size : b * size]}, f)
        with open(os.path.join(js, "cats.html"), "w") as f:
            body = f'<ul>{count}</ul><div id="grid" data-infinite-scroll></div>' + SCRIPT % {"batches": batches}
            f.write(f"<!doctype html><html><body>{body}</body></html>")


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main():
    root, port = sys.argv[1], int(sys.argv[2])
    pages = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    per = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    batches = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    write(root, pages, per, batches)
    os.chdir(root)
    http.server.ThreadingHTTPServer.daemon_threads = True
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Quiet).serve_forever()


if __name__ == "__main__":
    main()
