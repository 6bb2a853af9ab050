#!/usr/bin/env bash
# Real-browser end-to-end test of the player page.
#
# Starts target/release/hls-streamer at 320x180 with a fixed seed and a short event mean on a free
# loopback port, waits for its playlist, runs player_e2e.mjs (playwright-core driving Debian's
# headless Chromium), saves screenshots to tests/artifacts/ and stops the server it started.
#
# Needs: chromium (apt-get install -y chromium), node + npm (playwright-core is installed here
# from package-lock.json). Env: HLS_STREAMER_BIN to test another binary, CHROMIUM, E2E_DURATION,
# E2E_FPS (default 30; 29.97 runs the NTSC fraction).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${HLS_STREAMER_BIN:-$root/target/release/hls-streamer}"
chromium="${CHROMIUM:-/usr/bin/chromium}"
duration="${E2E_DURATION:-50}"
fps="${E2E_FPS:-30}"
artifacts="$root/tests/artifacts"

if [ -z "${HLS_STREAMER_BIN:-}" ]; then
  # Always (re)build: the page is compiled into the binary, so a stale one tests a stale page.
  (cd "$root" && cargo build --release --locked --bin hls-streamer)
fi
if [ ! -x "$chromium" ]; then
  echo "e2e: $chromium not found (apt-get install -y chromium)" >&2
  exit 1
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi

port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
work="$(mktemp -d)"
log="$work/server.log"
mkdir -p "$artifacts"

token="e2e-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
HLS_MARKER_TOKEN="$token" \
"$bin" --size 320x180 --fps "$fps" --seed 7 --event-mean 4 --bind "127.0.0.1:$port" \
  --out-dir "$work/video" --duration "$duration" --linger 60 >"$log" 2>&1 &
server=$!

cleanup() {
  if kill -0 "$server" 2>/dev/null; then
    kill -INT "$server" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server" 2>/dev/null || true
  fi
  wait "$server" 2>/dev/null || true
  cp "$log" "$artifacts/server.log" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

status=0
BASE_URL="http://127.0.0.1:$port" CHROMIUM="$chromium" ARTIFACT_DIR="$artifacts" MARKER_TOKEN="$token" \
  EXPECT_END=1 STREAM_DURATION="$duration" BLOCK=20 \
  node "$here/player_e2e.mjs" || status=$?

if [ "$status" -ne 0 ]; then
  echo "e2e: failed; last lines of the server log:" >&2
  tail -n 30 "$log" >&2 || true
  exit "$status"
fi

# A Y4M pipe that stalls for 5 s (issue 9): the page plays on after the discontinuity.
kill -INT "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
mkfifo "$work/y4m"
python3 "$here/y4m_stall.py" 8 5 10 >"$work/y4m" &
producer=$!
"$bin" --input "$work/y4m" --hls-time 1 --bind "127.0.0.1:$port" --out-dir "$work/stall" \
  --linger 20 >"$work/stall.log" 2>&1 &
server=$!
python3 - "$port" <<'PY'
import sys, time, urllib.request
for _ in range(150):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1)
        break
    except Exception:
        time.sleep(0.2)
PY
BASE_URL="http://127.0.0.1:$port" CHROMIUM="$chromium" node "$here/stall_e2e.mjs" || status=$?
kill "$producer" 2>/dev/null || true
if [ "$status" -ne 0 ]; then
  echo "e2e: the stall run failed; last lines of its server log:" >&2
  tail -n 30 "$work/stall.log" >&2 || true
fi
exit "$status"
