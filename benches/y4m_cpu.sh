#!/usr/bin/env bash
# CPU share of one core, live 1080p30, Y4M input next to the checkerboard, in one run
# (issue 9's benchmark, the Y4M half). Not a test: prints the numbers.
#
#   bash benches/y4m_cpu.sh [SECONDS]      (default 20; needs ffmpeg and a release build)
#
# Both runs are paced (real time), --no-server. The Y4M run reads ffmpeg's testsrc2 from a FIFO;
# ffmpeg's own CPU is its own process and is not counted. The figures are the "done" line the
# binary logs (its user + system CPU over its wall time, peak resident memory).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
frames=$((secs * 30))
exe=target/release/hls-streamer
[ -x "$exe" ] || cargo build --release
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() { # label, args...
    local label=$1
    shift
    "$exe" --no-server --out-dir "$tmp/$label" --fresh "$@" 2>"$tmp/$label.log" || {
        cat "$tmp/$label.log"
        exit 1
    }
    local done
    done=$(grep ' done ' "$tmp/$label.log" | tail -1)
    printf '%-13s %s\n' "$label" "$(echo "$done" | grep -o 'frames=[0-9]* dropped=[0-9]*.*')"
}

run checkerboard --size 1920x1080 --fps 30 --frames "$frames"
mkfifo "$tmp/in.y4m"
ffmpeg -loglevel error -f lavfi -i testsrc2=size=1920x1080:rate=30 -frames:v "$frames" \
    -pix_fmt yuv420p -f yuv4mpegpipe -y "$tmp/in.y4m" &
run y4m-fifo --input "$tmp/in.y4m"
wait
