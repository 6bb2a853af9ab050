#!/usr/bin/env bash
# Glass-to-glass latency in headless Chromium with the shipped page, LL-HLS against classic HLS
# (--no-low-latency), side by side in one run; plus how long a frame takes from capture to the
# part that carries it being published (from /healthz).
#
#   bash benches/latency.sh              # 1280x720 30 fps, 60 s of playback per mode
#   SECONDS_PER_RUN=30 SIZE=1920x1080 bash benches/latency.sh
#   LL_ONLY=1 LL_ARGS="--part-duration 0.333" bash benches/latency.sh   # one LL variant
#
# Latency is what the page shows: now minus hls.js's playingDate (the PDT of the frame on
# screen), sampled every 250 ms while playing; median and p90 over the run, and the stalls
# hls.js reported (bufferStalledError). Needs chromium and node (the e2e test's playwright-core).
# Everything runs on 127.0.0.1 and stops by itself.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${SECONDS_PER_RUN:-60}"
size="${SIZE:-1280x720}"
chromium="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] || { echo "bench: $chromium not found (apt-get install -y chromium)" >&2; exit 1; }
(cd "$root" && cargo build --release --locked --bin hls-streamer)
e2e="$root/tests/e2e"
[ -d "$e2e/node_modules/playwright-core" ] || (cd "$e2e" && npm ci --no-audit --no-fund)

work="$(mktemp -d)"
streamer=""
cleanup() {
  [ -n "$streamer" ] && kill -INT "$streamer" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cat >"$work/measure.mjs" <<'JS'
import { chromium } from 'playwright-core';
const [base, secs, exe] = [process.env.BASE_URL, Number(process.env.SECS), process.env.CHROMIUM];
const browser = await chromium.launch({ executablePath: exe, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--autoplay-policy=no-user-gesture-required'] });
const page = await browser.newPage();
await page.goto(base + '/');
await page.waitForFunction(() => { const v = document.getElementById('video');
  return v.currentTime > 0 && !v.paused; }, null, { timeout: 60000 });
await page.evaluate(() => { window.__stalls = 0; window.hlsPlayer.hls.on(Hls.Events.ERROR,
  (_e, d) => { if (d.details === 'bufferStalledError') window.__stalls += 1; }); });
const xs = [];
for (let i = 0; i < secs * 4; i++) {
  await new Promise((r) => setTimeout(r, 250));
  const l = await page.evaluate(() => window.hlsPlayer.latency);
  if (l !== null) xs.push(l);
}
xs.sort((a, b) => a - b);
const q = (p) => xs.length ? xs[Math.min(xs.length - 1, Math.floor(xs.length * p))] : NaN;
const stalls = await page.evaluate(() => window.__stalls);
const ll = await page.evaluate(() => window.hlsPlayer.lowLatency);
console.log(JSON.stringify({ median: q(0.5), p90: q(0.9), samples: xs.length, stalls, ll }));
await browser.close();
JS
ln -s "$e2e/node_modules" "$work/node_modules"

run() {
  local label="$1"; shift
  local port; port="$(free_port)"
  "$root/target/release/hls-streamer" --size "$size" --out-dir "$work/$label" --bind "127.0.0.1:$port" \
    --duration $((secs + 40)) "$@" >"$work/$label.log" 2>&1 &
  streamer=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
  local m; m="$(BASE_URL="http://127.0.0.1:$port" SECS="$secs" CHROMIUM="$chromium" node "$work/measure.mjs")"
  local lag; lag="$(curl -fs "http://127.0.0.1:$port/healthz" | python3 -c 'import json,sys; h=json.load(sys.stdin); l=h.get("part_publish_lag"); print("-" if not l else "median %d ms, p90 %d ms, max %d ms (%d parts)" % (l["median_ms"], l["p90_ms"], l["max_ms"], l["parts"]))')"
  kill -INT "$streamer" 2>/dev/null || true; wait "$streamer" 2>/dev/null || true; streamer=""
  python3 - "$label" "$m" "$lag" <<'PY'
import json, sys
label, m, lag = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
print(f"{label:<18} glass-to-glass median {m['median']:.3f} s  p90 {m['p90']:.3f} s  "
      f"({m['samples']} samples, {m['stalls']} stalls, parts played: {m['ll']})")
print(f"{'':<18} capture -> part published: {lag}")
PY
}

echo "== glass-to-glass latency, $size, ${secs} s of playback each (Chromium, shipped page)"
run "LL-HLS" ${LL_ARGS:-}
[ -n "${LL_ONLY:-}" ] || run "classic" --no-low-latency
