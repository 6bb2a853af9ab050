#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How far each stream's live edge is behind the wall clock, as a low-latency player sees it.

    python3 benches/edge_lag.py PLAYLIST_URL [PLAYLIST_URL ...]

For each stream, 20 blocking reloads in a row, each for the next part (`_HLS_msn`/`_HLS_part`,
as a player at the live edge asks): when the answer arrives, the edge (the last program date
time plus the segments and parts listed after it) is compared with the local clock. Prints one
line per stream: `NAME median_ms p90_ms` (capture or arrival of the edge's last frame to the
player holding the playlist that lists it; the edge is the end of the last frame's interval, so
a publication within one frame of the capture reads as slightly negative). The streams are read
side by side (one thread each). Standard library only.
"""
import re
import sys
import threading
import time
import urllib.request
from datetime import datetime

RELOADS = 20


def edge_of(text):
    """(edge time, msn, part) of a playlist: the end of its last listed media (segment or part)
    in UTC seconds, and the next part a player at the edge asks for (`part` None: classic)."""
    seq = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))
    start = t = None
    parts = 0
    low_latency = "#EXT-X-PART-INF" in text
    for line in text.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            stamp = line.split(":", 1)[1].replace("Z", "+00:00")
            start = t = datetime.fromisoformat(stamp).timestamp()
            parts = 0
        elif line.startswith("#EXT-X-PART:") and t is not None:
            t += float(re.search(r"DURATION=([\d.]+)", line).group(1))
            parts += 1
        elif line.startswith("#EXTINF:") and start is not None:
            t = start + float(line[8:].split(",")[0])
        elif line and not line.startswith("#"):
            seq += 1  # a complete segment: the next one is the open one
            parts = 0
    return t, seq, (parts if low_latency else None)


def edge_lag(url, out):
    name = url
    lags = []
    query = ""
    deadline = time.time() + 60
    while len(lags) < RELOADS and time.time() < deadline:
        try:
            with urllib.request.urlopen(url + query, timeout=10) as r:
                text = r.read().decode()
        except OSError:
            time.sleep(0.2)
            query = ""
            continue
        now = time.time()
        edge, msn, part = edge_of(text)
        if edge is None:
            break
        if query:
            # Only answers to a blocking reload: they come as the edge moves.
            lags.append((now - edge) * 1000)
        if part is None:
            query = f"?_HLS_msn={msn}"
            time.sleep(0.2)
        else:
            query = f"?_HLS_msn={msn}&_HLS_part={part}"
    lags.sort()
    if lags:
        out[name] = (lags[len(lags) // 2], lags[max(0, int(len(lags) * 0.9) - 1)])
    else:
        out[name] = (float("nan"), float("nan"))


def main():
    names = sys.argv[1:]
    out = {}
    threads = [threading.Thread(target=edge_lag, args=(n, out)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in names:
        m, p = out[n]
        print(f"{n.rsplit('/', 1)[-1].removesuffix('.m3u8')} {m:.0f} {p:.0f}")


if __name__ == "__main__":
    main()
