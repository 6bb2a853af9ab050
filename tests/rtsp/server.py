#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A test RTSP camera: GStreamer's RTSP server on 127.0.0.1 serving a live H.264 test picture.

Run with Debian's /usr/bin/python3 (python3-gi belongs to it, not to a pyenv python):

    /usr/bin/python3 tests/rtsp/server.py [--port 0] [--user U --password P] ...

Prints `PORT <n>` on stdout once it listens (port 0 picks a free one), then serves
rtsp://127.0.0.1:<n>/test until it is killed or --lifetime seconds have passed (so a test that
dies never leaves it running for long). The media is shared: every client sees the same encode
(the CPU benchmark reads one stream with two clients).
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def launch_line(args):
    src = (
        f"videotestsrc name=src is-live=true pattern={args.pattern} ! "
        f"video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1"
    )
    if args.codec == "h264":
        if args.bframes > 0:
            # zerolatency turns B-frames off, so it is left out when they are asked for.
            enc = (
                f"x264enc speed-preset=ultrafast key-int-max={args.key_int} "
                f"bframes={args.bframes} b-adapt=false"
            )
        else:
            enc = (
                f"x264enc tune=zerolatency speed-preset={args.preset} "
                f"key-int-max={args.key_int} bframes=0 bitrate={args.bitrate}"
            )
        pay = "rtph264pay name=pay0 pt=96"
    elif args.codec == "jpeg":
        enc = "jpegenc"
        pay = "rtpjpegpay name=pay0 pt=26"
    else:
        raise SystemExit(f"unknown codec {args.codec}")
    return f"( {src} ! {enc} ! {pay} )"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--path", default="/test")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--key-int", type=int, default=60)
    p.add_argument("--bframes", type=int, default=0)
    p.add_argument("--bitrate", type=int, default=1000, help="kbit/s")
    p.add_argument("--preset", default="veryfast")
    p.add_argument("--pattern", default="ball")
    # jpeg: GStreamer's RTSP server did not answer DESCRIBE for it here (not used by the tests).
    p.add_argument("--codec", choices=["h264", "jpeg"], default="h264")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--lifetime", type=float, default=300.0)
    # A camera whose media clock is off its wall clock: the pipeline's clock (behind the frames'
    # pace and their RTP timestamps) runs this many times as fast as real time, while the RTCP
    # sender reports keep telling the real wall-clock time (1.0035: 7 ms fast every 2 s).
    p.add_argument("--clock-rate", type=float, default=1.0)
    # Prints `FRAME <n> <unix ms>` on stdout when the source makes frame n, for every n that is
    # a multiple of --key-int (x264's IDRs): the wall-clock truth of each segment's start.
    p.add_argument("--print-keyframes", action="store_true")
    args = p.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(args))
    factory.set_shared(True)
    if args.clock_rate != 1.0:
        clock = Gst.SystemClock()
        now = clock.get_internal_time()
        clock.set_calibration(now, now, round(args.clock_rate * 1_000_000), 1_000_000)
        factory.set_clock(clock)
    if args.user is not None:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_role_from_structure(
            Gst.Structure.new_from_string(
                "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )
        )
        factory.set_permissions(permissions)
    if args.print_keyframes:

        def on_configure(_factory, media):
            pad = media.get_element().get_by_name("src").get_static_pad("src")
            made = [0]

            def probe(_pad, _info):
                n = made[0]
                made[0] += 1
                if n % args.key_int == 0:
                    print(f"FRAME {n} {GLib.get_real_time() // 1000}", flush=True)
                return Gst.PadProbeReturn.OK

            pad.add_probe(Gst.PadProbeType.BUFFER, probe)

        factory.connect("media-configure", on_configure)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"PORT {server.get_bound_port()}", flush=True)
    loop = GLib.MainLoop()
    GLib.timeout_add(int(args.lifetime * 1000), loop.quit)
    loop.run()


if __name__ == "__main__":
    main()
