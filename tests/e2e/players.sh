#!/usr/bin/env bash
# The stream in hls.js, video.js 8 and Shaka 5 side by side in one headless Chromium
# (players_e2e.mjs), against two servers started here: low latency (the default) and classic
# (--no-low-latency). Then, unless STARTS=0, the player page's own start-up latency over STARTS
# page loads (latency_starts.mjs: each within 0.3 s of the live target after 10 s).
#
# Needs what run.sh needs (chromium, node + npm; video.js and shaka-player come from npm through
# package-lock.json). Env: HLS_STREAMER_BIN, CHROMIUM, PLAYERS, PLAY_SECONDS, STARTS (default 5),
# STREAMS (ts, fmp4 or all; default ts).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${HLS_STREAMER_BIN:-$root/target/release/hls-streamer}"
chromium="${CHROMIUM:-/usr/bin/chromium}"
play="${PLAY_SECONDS:-80}"
starts="${STARTS:-5}"
artifacts="$root/tests/artifacts"

if [ -z "${HLS_STREAMER_BIN:-}" ]; then
  (cd "$root" && cargo build --release --locked --bin hls-streamer)
fi
if [ ! -x "$chromium" ]; then
  echo "players e2e: $chromium not found (apt-get install -y chromium)" >&2
  exit 1
fi
if [ ! -d "$here/node_modules/video.js" ] || [ ! -d "$here/node_modules/shaka-player" ]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
work="$(mktemp -d)"
mkdir -p "$artifacts"
servers=()
cleanup() {
  for pid in "${servers[@]}"; do
    kill -INT "$pid" 2>/dev/null || true
  done
  for pid in "${servers[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  cp "$work"/*.log "$artifacts/" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME ARGS...: a server on a free port, which it leaves in $port. It streams long enough
# for the players and then the page's starts (a page on an ended stream shows no latency).
start() {
  local name="$1"
  shift
  port="$(free_port)"
  "$bin" --size 320x180 --seed 7 --event-mean 4 --bind "127.0.0.1:$port" \
    --out-dir "$work/$name" --duration $((play + 60 + starts * 15)) --linger 30 "$@" \
    >"$work/players-$name.log" 2>&1 &
  servers+=("$!")
}
start ll
ll_port="$port"
start classic --no-low-latency
classic_port="$port"
# STREAMS=ts (the default) plays the TS streams above; STREAMS=fmp4 plays --segment-type fmp4
# streams instead, STREAMS=all both (nine or twelve players on two cores: latencies suffer).
streams="${STREAMS:-ts}"
urls=()
case "$streams" in
  ts|all) urls+=(LL_URL="http://127.0.0.1:$ll_port" CLASSIC_URL="http://127.0.0.1:$classic_port") ;;
esac
case "$streams" in
  fmp4|all)
    start fmp4-ll --segment-type fmp4
    urls+=(FMP4_LL_URL="http://127.0.0.1:$port")
    start fmp4-classic --segment-type fmp4 --no-low-latency
    urls+=(FMP4_CLASSIC_URL="http://127.0.0.1:$port")
    ;;
esac

status=0
env "${urls[@]}" CHROMIUM="$chromium" \
  ARTIFACT_DIR="$artifacts" PLAY_SECONDS="$play" node "$here/players_e2e.mjs" || status=$?

if [ "$status" -eq 0 ] && [ "$starts" -gt 0 ]; then
  BASE_URL="http://127.0.0.1:$ll_port" CHROMIUM="$chromium" STARTS="$starts" \
    node "$here/latency_starts.mjs" || status=$?
fi
if [ "$status" -ne 0 ]; then
  echo "players e2e: failed; last lines of the servers' logs:" >&2
  tail -n 15 "$work"/players-*.log >&2 || true
fi
exit "$status"
