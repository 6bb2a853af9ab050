#!/usr/bin/env python3
"""A YUV4MPEG2 producer for the stall e2e: 320x180 30 fps frames in real time on stdout (a FIFO),
`before` seconds, a `pause` of silence (the pipe stays open), `after` seconds more, then EOF.
Each frame is a grey ramp with a bright bar that moves one column per frame."""
import sys
import time

W, H, FPS = 320, 180, 30
before, pause, after = (float(a) for a in sys.argv[1:4])
out = sys.stdout.buffer
out.write(b"YUV4MPEG2 W%d H%d F%d:1 Ip A1:1 C420jpeg\n" % (W, H, FPS))
chroma = bytes([128]) * (W * H // 2)
rows = [bytes((x + y) % 200 + 16 for x in range(W)) for y in range(H)]


def frame(n):
    bar = n % W
    luma = bytearray(b"".join(rows))
    for y in range(H):
        luma[y * W + bar] = 235
    return b"FRAME\n" + bytes(luma) + chroma


start = time.monotonic()
n = 0
for part, secs in ((0, before), (1, after)):
    if part == 1:
        out.flush()
        time.sleep(pause)
        start += pause
    for _ in range(int(secs * FPS)):
        deadline = start + n / FPS
        delay = deadline - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        out.write(frame(n))
        n += 1
    out.flush()
