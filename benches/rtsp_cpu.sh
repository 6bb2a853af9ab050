#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CPU share of one core: our RTSP passthrough next to `ffmpeg -c copy -f hls`, side by side on
# the same 1080p30 camera stream (GStreamer's RTSP server, tests/rtsp/server.py, shared media:
# both clients read the same encode). Not a test: it prints numbers.
#
#   bash benches/rtsp_cpu.sh [SECONDS]        (default 30; needs ffmpeg and GStreamer)
#   PROFILE=test bash benches/rtsp_cpu.sh 30  (the tests' opt-level 2 build, no release build)
#
# Goal (issue 9): ours <= 3 % of a core and <= 0.5 x ffmpeg's. Each client's CPU is
# (utime + stime) from /proc/PID/stat over the measured window, after a warm-up, divided by the
# window's wall time. The camera's own x264 encode runs in the server process and is not counted.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
WARMUP=5
PY=/usr/bin/python3
command -v ffmpeg >/dev/null || { echo "needs ffmpeg (apt-get install ffmpeg)"; exit 1; }
$PY -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null ||
    { echo "needs GStreamer's RTSP server (see .ci/run)"; exit 1; }

# PROFILE=test reuses the tests' build (opt-level 2) instead of a release build of its own.
PROFILE=${PROFILE:-release}
cargo build --profile "$PROFILE" --bin hls-streamer >&2
case "$PROFILE" in
    dev | test) BIN=target/debug/hls-streamer ;;
    *) BIN=target/$PROFILE/hls-streamer ;;
esac
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

$PY tests/rtsp/server.py --width 1920 --height 1080 --fps 30 --key-int 60 \
    --preset ultrafast --bitrate 4000 --lifetime $((SECS + 60)) > "$WORK/server.out" &
PIDS+=($!)
for _ in $(seq 50); do grep -q '^PORT' "$WORK/server.out" 2>/dev/null && break; sleep 0.2; done
PORT=$(awk '/^PORT/ {print $2}' "$WORK/server.out")
URL="rtsp://127.0.0.1:$PORT/test"
echo "camera: $URL (1920x1080, 30 fps, IDR every 60 frames)"

# A first client starts the shared media, so both measured clients join a running encode.
mkdir -p "$WORK/ours" "$WORK/ffmpeg"
"$BIN" --input "$URL" --no-server --out-dir "$WORK/ours" --name bench \
    > "$WORK/ours.log" 2>&1 &
OURS=$!
PIDS+=($OURS)
ffmpeg -nostdin -loglevel error -rtsp_transport tcp -i "$URL" -c copy -f hls \
    -hls_time 2 -hls_list_size 60 "$WORK/ffmpeg/bench.m3u8" > "$WORK/ffmpeg.log" 2>&1 &
FFMPEG=$!
PIDS+=($FFMPEG)

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sleep "$WARMUP"
for p in $OURS $FFMPEG; do
    kill -0 "$p" 2>/dev/null || { echo "a client died:"; cat "$WORK"/*.log; exit 1; }
done
t0=$(date +%s.%N); o0=$(ticks $OURS); f0=$(ticks $FFMPEG)
sleep "$SECS"
t1=$(date +%s.%N); o1=$(ticks $OURS); f1=$(ticks $FFMPEG)
HZ=$(getconf CLK_TCK)
segs_ours=$(ls "$WORK/ours" | grep -c '\.ts$' || true)
segs_ff=$(ls "$WORK/ffmpeg" | grep -c '\.ts$' || true)
awk -v o="$((o1 - o0))" -v f="$((f1 - f0))" -v hz="$HZ" -v t0="$t0" -v t1="$t1" \
    -v so="$segs_ours" -v sf="$segs_ff" 'BEGIN {
    wall = t1 - t0
    ours = 100 * o / hz / wall; ff = 100 * f / hz / wall
    printf "%-28s %8s %10s\n", "client (same stream)", "CPU %", "segments"
    printf "%-28s %8.2f %10d\n", "hls-streamer passthrough", ours, so
    printf "%-28s %8.2f %10d\n", "ffmpeg -c copy -f hls", ff, sf
    if (ff > 0) printf "ratio ours / ffmpeg: %.2f (goal <= 0.5); ours goal <= 3 %%\n", ours / ff
    printf "window %.1f s after %d s warm-up; load average: ", wall, '"$WARMUP"'
}'
cut -d' ' -f1-3 /proc/loadavg
