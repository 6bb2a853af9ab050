#!/usr/bin/env bash
# Real-browser end-to-end test of the tile page (issue 20): `hls-streamer --config` with three
# 320x180 checkerboards (different seeds, one at 30000/1001, short event means so markers come
# quickly) and a fourth stream whose Y4M input does not exist, on a free loopback port; runs
# tiles_e2e.mjs (playwright-core driving Debian's headless Chromium), saves screenshots to
# tests/artifacts/ and stops the server it started. About 30 s once the binary is built.
#
# Needs what run.sh needs. Env: HLS_STREAMER_BIN to test another binary (no build), CHROMIUM.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${HLS_STREAMER_BIN:-$root/target/release/hls-streamer}"
chromium="${CHROMIUM:-/usr/bin/chromium}"
artifacts="$root/tests/artifacts"

if [ -z "${HLS_STREAMER_BIN:-}" ]; then
  # The pages are compiled into the binary: a stale one tests stale pages.
  (cd "$root" && cargo build --release --locked --bin hls-streamer)
fi
if [ ! -x "$chromium" ]; then
  echo "tiles e2e: $chromium not found (apt-get install -y chromium)" >&2
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

# Bounded streams: the process ends by itself even if nothing stops it.
cat >"$work/streams.toml" <<EOF
[server]
bind = "127.0.0.1:$port"
out_dir = "$work/video"
marker_token = "$token"
linger = 5

[[stream]]
name = "north"
size = "320x180"
seed = 3
event_mean = 2
duration = 120

[[stream]]
name = "east"
size = "320x180"
seed = 5
event_mean = 2
duration = 120

[[stream]]
name = "south"
size = "320x180"
fps = "30000/1001"
seed = 7
event_mean = 2
duration = 120

[[stream]]
name = "attic"
input = "$work/nonexistent.y4m"
EOF

env -u HLS_MARKER_TOKEN "$bin" --config "$work/streams.toml" >"$log" 2>&1 &
server=$!

cleanup() {
  if kill -0 "$server" 2>/dev/null; then
    kill -INT "$server" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server" 2>/dev/null || true
  fi
  wait "$server" 2>/dev/null || true
  cp "$log" "$artifacts/tiles-server.log" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The binary says where the tile page is (and not "player at", its one-stream line).
for _ in $(seq 100); do grep -q "streams at http://" "$log" && break; sleep 0.1; done
if ! grep -q "streams at http://127.0.0.1:$port/ (list: http://127.0.0.1:$port/streams" "$log"; then
  echo "tiles e2e: the server did not log 'streams at http://127.0.0.1:$port/ (list: ...)'" >&2
  tail -n 30 "$log" >&2 || true
  exit 1
fi

status=0
BASE_URL="http://127.0.0.1:$port" CHROMIUM="$chromium" ARTIFACT_DIR="$artifacts" MARKER_TOKEN="$token" \
  LIVE=north,east,south DOWN=attic DOWN_REASON="$work/nonexistent.y4m" OPEN=south BLOCK=20 \
  node "$here/tiles_e2e.mjs" || status=$?

if [ "$status" -ne 0 ]; then
  echo "tiles e2e: failed; last lines of the server log:" >&2
  tail -n 30 "$log" >&2 || true
fi
exit "$status"
