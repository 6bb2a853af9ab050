#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Several streams in one process against the same streams as one process each (issue 20): four
# RTSP cameras passed through (GStreamer's RTSP server, tests/rtsp/server.py, 640x360 at 30 fps,
# an IDR every 30 frames) and two 640x360 checkerboards encoded by us, all low latency.
# Side by side: CPU (share of one core), peak memory, dropped frames, and how far each stream's
# live edge is behind the clock when a player at the edge gets it (blocking reloads,
# benches/edge_lag.py; the player's hold-back is the same in both setups, so this is where one
# process could add latency). Not a test: it prints numbers.
#
#   bash benches/multi_stream.sh [SECONDS]        (default 60; 300 for the 5-minute figure)
#   PROFILE=test bash benches/multi_stream.sh 60  (the tests' opt-level 2 build)
#
# Goals: the four passthrough cameras together under 2 % of a core; no dropped frame; each
# stream's lag within 0.2 s of its single-stream run. CPU is (utime + stime) of the measured
# processes from /proc over the window after a warm-up; peak memory is VmHWM (summed over the
# six processes). The cameras' own x264 encodes run in their servers and are not counted. The
# two setups run one after the other on the same cameras.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
WARMUP=10
PY=/usr/bin/python3
$PY -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null ||
    { echo "needs GStreamer's RTSP server (see .ci/run)"; exit 1; }
command -v curl >/dev/null || { echo "needs curl"; exit 1; }

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

CAMS=()
for i in 1 2 3 4; do
    $PY tests/rtsp/server.py --width 640 --height 360 --fps 30 --key-int 30 --preset ultrafast \
        --bitrate 800 --lifetime $((2 * SECS + 4 * WARMUP + 120)) > "$WORK/cam$i.out" &
    PIDS+=($!)
    for _ in $(seq 50); do grep -q '^PORT' "$WORK/cam$i.out" 2>/dev/null && break; sleep 0.2; done
    CAMS+=("rtsp://127.0.0.1:$(awk '/^PORT/ {print $2}' "$WORK/cam$i.out")/test")
done
echo "cameras: ${CAMS[*]} (640x360, 30 fps, IDR every 30 frames)"

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NAMES=(cam-a cam-b cam-c cam-d board-a board-b)
# The flags of stream $1 (an index into NAMES).
stream_flags() {
    case $1 in
        [0-3]) echo "--name ${NAMES[$1]} --input ${CAMS[$1]} --hls-time 1" ;;
        *) echo "--name ${NAMES[$1]} --size 640x360 --seed $1" ;;
    esac
}
# The same as a [[stream]] table.
stream_table() {
    echo "[[stream]]"
    case $1 in
        [0-3]) printf 'name = "%s"\ninput = "%s"\nhls_time = 1\n\n' "${NAMES[$1]}" "${CAMS[$1]}" ;;
        *) printf 'name = "%s"\nsize = "640x360"\nseed = %d\n\n' "${NAMES[$1]}" "$1" ;;
    esac
}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
# "dropped encoded" of one stream's health JSON on stdin.
health_figures() {
    $PY -c 'import json,sys; h=json.load(sys.stdin); print(h["frames_dropped"], h["frames_encoded"])'
}

# $1: label; then PID PORT pairs; measures the window and prints per-process CPU and memory.
measure() {
    local label=$1; shift
    local pids=() i=0
    while [ $# -gt 0 ]; do pids+=("$1"); shift 2; done
    sleep "$WARMUP"
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "$label: a process died"; tail "$WORK"/*.log; exit 1; }; done
    local t0 t1; t0=$(date +%s.%N)
    local c0=() c1=()
    for p in "${pids[@]}"; do c0+=("$(ticks "$p")"); done
    sleep "$SECS"
    t1=$(date +%s.%N)
    for p in "${pids[@]}"; do c1+=("$(ticks "$p")"); done
    local hz; hz=$(getconf CLK_TCK)
    local total=0 mem=0
    for i in "${!pids[@]}"; do
        total=$((total + c1[i] - c0[i]))
        mem=$((mem + $(hwm_kb "${pids[$i]}")))
    done
    awk -v t="$total" -v hz="$hz" -v a="$t0" -v b="$t1" -v m="$mem" -v l="$label" \
        'BEGIN { printf "%-34s CPU %6.2f %% of a core, peak memory %7.1f MB (window %.0f s)\n", l, 100 * t / hz / (b - a), m / 1024, b - a }'
    # Per process, for the split between cameras and checkerboards.
    for i in "${!pids[@]}"; do
        echo "${pids[$i]} $((c1[i] - c0[i]))" >> "$WORK/$label.cpu"
    done
}

echo
echo "== one process, --config with six streams"
CONF="$WORK/streams.toml"
PORT=$(free_port)
{
    printf '[server]\nbind = "127.0.0.1:%s"\nout_dir = "%s"\n\n' "$PORT" "$WORK/one"
    for i in 0 1 2 3 4 5; do stream_table $i; done
} > "$CONF"
"$BIN" --config "$CONF" > "$WORK/one.log" 2>&1 &
ONE=$!
PIDS+=($ONE)
measure one "$ONE" "$PORT"
$PY benches/edge_lag.py $(for n in "${NAMES[@]}"; do echo "http://127.0.0.1:$PORT/video/$n.m3u8"; done) > "$WORK/one.lag"
curl -s "http://127.0.0.1:$PORT/healthz" > "$WORK/one.health"
kill -TERM "$ONE"; wait "$ONE" 2>/dev/null || true

echo "== six processes, one stream each"
SIX=()
PORTS=()
for i in 0 1 2 3 4 5; do
    p=$(free_port)
    # shellcheck disable=SC2046
    "$BIN" --bind "127.0.0.1:$p" --out-dir "$WORK/six" $(stream_flags $i) > "$WORK/six$i.log" 2>&1 &
    SIX+=($!); PIDS+=($!); PORTS+=("$p")
done
args=()
for i in 0 1 2 3 4 5; do args+=("${SIX[$i]}" "${PORTS[$i]}"); done
measure six "${args[@]}"
$PY benches/edge_lag.py $(for i in 0 1 2 3 4 5; do echo "http://127.0.0.1:${PORTS[$i]}/video/${NAMES[$i]}.m3u8"; done) > "$WORK/six.lag"
for i in 0 1 2 3 4 5; do curl -s "http://127.0.0.1:${PORTS[$i]}/healthz" > "$WORK/six$i.health"; done
HZ=$(getconf CLK_TCK)
cams=0; for i in 0 1 2 3; do cams=$((cams + $(sed -n "$((i + 1))p" "$WORK/six.cpu" | cut -d' ' -f2))); done
awk -v c="$cams" -v hz="$HZ" -v s="$SECS" 'BEGIN { printf "   the four passthrough cameras (six processes): %.2f %% of a core together (goal < 2 %%)\n", 100 * c / hz / s }'

echo
printf "%-8s %22s %22s\n" "stream" "one process" "six processes"
printf "%-8s %22s %22s\n" "" "dropped/frames edge ms" "dropped/frames edge ms"
for i in 0 1 2 3 4 5; do
    n=${NAMES[$i]}
    one=$($PY -c "import json; print(json.dumps(json.load(open('$WORK/one.health'))['streams']['$n']))" | health_figures)
    six=$(health_figures < "$WORK/six$i.health")
    read -r od oe <<< "$one"
    read -r sd se <<< "$six"
    read -r _ om op <<< "$(grep "^$n " "$WORK/one.lag")"
    read -r _ sm sp <<< "$(grep "^$n " "$WORK/six.lag")"
    printf "%-8s %7s/%-6s %4s/%-4s %7s/%-6s %4s/%-4s\n" "$n" "$od" "$oe" "$om" "$op" "$sd" "$se" "$sm" "$sp"
done
echo "(edge: median/p90 over 20 blocking reloads of how far the live edge a player is handed is behind"
echo " the clock, ms (benches/edge_lag.py); goal: one process within 200 ms of six)"
printf "load average: "; cut -d' ' -f1-3 /proc/loadavg
