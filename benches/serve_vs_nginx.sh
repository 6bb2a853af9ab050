#!/usr/bin/env bash
# Serving benchmark: hls-streamer's own HTTP origin against nginx (sendfile) serving the very
# same files, side by side in one run, with wrk on 127.0.0.1.
#
#   bash benches/serve_vs_nginx.sh            # 720p30 stream, wrk -t2 -c64 -d10s per target
#   SECONDS_PER_RUN=20 CONNECTIONS=128 bash benches/serve_vs_nginx.sh
#   BITRATE=400k bash benches/serve_vs_nginx.sh   # 2 s segments of about 100 KB (issue 10's size)
#   ROUNDS=5 bash benches/serve_vs_nginx.sh        # rounds per target (default 3; median ratio)
#
# It starts the streamer (release build), waits for its playlist, starts nginx on another port
# with the stream's directory as its root, then loads with wrk, one target at a time: the newest
# segment (which the streamer holds in memory) and the playlist. It prints requests per second
# and the ratio ours / nginx. Needs wrk and nginx (apt-get install -y wrk nginx). Both servers
# run while the stream is live, so the encoder competes with them for the two cores, as in
# production. Every run is bounded: the streamer stops by itself (--duration), nginx is stopped.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${SECONDS_PER_RUN:-10}"
conns="${CONNECTIONS:-64}"
threads="${THREADS:-2}"
for tool in wrk nginx; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install -y wrk nginx)" >&2; exit 1; }
done
(cd "$root" && cargo build --release --locked --bin hls-streamer)

work="$(mktemp -d)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ours_port="$(free_port)"
nginx_port="$(free_port)"
"$root/target/release/hls-streamer" --out-dir "$work/video" --bind "127.0.0.1:$ours_port" \
  --duration $((secs * ${ROUNDS:-3} * 6 + 60)) --fresh ${BITRATE:+--bitrate "$BITRATE"} >"$work/streamer.log" 2>&1 &
streamer=$!
nginx_pid=""
cleanup() {
  kill -INT "$streamer" 2>/dev/null || true
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 120); do
  if [ "$(grep -c '\.ts$' "$work/video/chessboard.m3u8" 2>/dev/null || echo 0)" -ge 3 ]; then break; fi
  sleep 0.5
done
newest="$(grep '\.ts$' "$work/video/chessboard.m3u8" | tail -n 1)"
size="$(stat -c %s "$work/video/$newest")"

cat >"$work/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
  server {
    listen 127.0.0.1:$nginx_port;
    location /video/ { alias $work/video/; }
  }
}
EOF
# nginx started as root serves as an unprivileged worker user, and mktemp's directory is 0700:
# without this every nginx answer is a 403 and the benchmark measures error pages.
chmod -R a+rX "$work"
nginx -c "$work/nginx.conf" -p "$work" &
nginx_pid=$!
sleep 1

# Both servers must give the same 200 and the same bytes before any load is measured.
for path in "/video/$newest" /video/chessboard.m3u8; do
  for port in "$ours_port" "$nginx_port"; do
    status="$(curl -s -o "$work/probe" -w '%{http_code}' "http://127.0.0.1:$port$path")"
    [ "$status" = 200 ] || { echo "bench: 127.0.0.1:$port$path answered $status, not 200" >&2; exit 1; }
  done
done
cmp <(curl -s "http://127.0.0.1:$ours_port/video/$newest") <(curl -s "http://127.0.0.1:$nginx_port/video/$newest") \
  || { echo "bench: the two servers sent different segment bytes" >&2; exit 1; }

# Requests per second, refusing a run in which any answer was not a 2xx/3xx.
rps() {
  local out
  out="$(wrk -t"$threads" -c"$conns" -d"${secs}s" "$1")"
  if grep -q 'Non-2xx' <<<"$out"; then
    echo "bench: error answers under load from $1:" >&2
    echo "$out" >&2
    exit 1
  fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
# ROUNDS rounds per target, ours and nginx alternating (which one goes first alternates too), so
# a burst of other work on the machine lands on both; the median of the per-round ratios is the
# figure, the per-round ones show the spread. Each round asks for what a player would ask for
# then: the newest segment (held in memory), the playlist, and a DVR segment a minute back
# (older than the 10 segments held in memory, so our origin reads it from disk).
rounds="${ROUNDS:-3}"
segment_path() {
  local segs
  segs="$(grep '\.ts$' "$work/video/chessboard.m3u8")"
  case "$1" in
    newest) tail -n 1 <<<"$segs" ;;
    dvr) tail -n 30 <<<"$segs" | head -n 1 ;;
  esac
}
printf '%-34s %12s %12s %8s   %s\n' target "ours req/s" "nginx req/s" ratio "per round"
for target in "segment, newest ($((size / 1024)) KiB)" playlist "segment, DVR (from disk)"; do
  ours_all=""
  theirs_all=""
  for round in $(seq "$rounds"); do
    case "$target" in
      playlist) path=/video/chessboard.m3u8 ;;
      *newest*) path="/video/$(segment_path newest)" ;;
      *) path="/video/$(segment_path dvr)" ;;
    esac
    if [ $((round % 2)) = 1 ]; then
      ours="$(rps "http://127.0.0.1:$ours_port$path")"
      theirs="$(rps "http://127.0.0.1:$nginx_port$path")"
    else
      theirs="$(rps "http://127.0.0.1:$nginx_port$path")"
      ours="$(rps "http://127.0.0.1:$ours_port$path")"
    fi
    ours_all="$ours_all $ours"
    theirs_all="$theirs_all $theirs"
  done
  python3 - "$target" "$ours_all" "$theirs_all" <<'PY'
import statistics, sys
name, ours, theirs = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
ratios = [float(o) / float(t) for o, t in zip(ours, theirs)]
print(f"{name:<34} {statistics.median(map(float, ours)):12.0f} "
      f"{statistics.median(map(float, theirs)):12.0f} {statistics.median(ratios):8.2f}   "
      + " ".join(f"{r:.2f}" for r in ratios))
PY
done
