// End-to-end test of the player page in a real browser: Debian's headless Chromium driven by
// playwright-core, against a running hls-streamer (tests/e2e/run.sh starts one).
//
// It proves, on the page a person opens:
//   - the live stream plays (video.currentTime advances over 10 s),
//   - marker rows appear while watching, and ticks on the seek bar,
//   - the page uses the stream's exact frame rate from GET /stream, and every row's timecode is
//     the one the burnt-in overlay computes for that frame (src/overlay.rs, recomputed here),
//   - clicking a marker seeks to its frame: the top-left block sampled from the video (drawn into
//     a canvas) is mint, and on the frame just before the marker it is not,
//   - the seek stays where it landed inside the DVR window (hls.js does not jump back to live),
//   - "Go live" returns to the live edge,
//   - the layout fits a phone width without horizontal scrolling,
//   - when the stream ends (EXT-X-ENDLIST) the page says so and keeps playing, with no reload,
//   - a marker POSTed while the page is open is pushed to it (Server-Sent Events): it appears in
//     the table and on the seek bar without a reload, and clicking it lands on its frame.
//
// Environment: BASE_URL (required), CHROMIUM (default /usr/bin/chromium), ARTIFACT_DIR (screenshots),
// EXPECT_END=1 to wait for the end of the stream, STREAM_DURATION (s, for that wait), BLOCK (px of
// the checkerboard's top-left block in the video, default 20 for 320x180).
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BASE = process.env.BASE_URL;
if (!BASE) {
  console.error('BASE_URL is required, e.g. BASE_URL=http://127.0.0.1:5000');
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.ARTIFACT_DIR || 'tests/artifacts';
const EXPECT_END = process.env.EXPECT_END === '1';
const STREAM_DURATION = Number(process.env.STREAM_DURATION || 90);
const BLOCK = Number(process.env.BLOCK || 20);
const PLAYLIST = process.env.PLAYLIST || '/video/chessboard.m3u8';
const MARKER_TOKEN = process.env.MARKER_TOKEN || '';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();
const stamp = () => `[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s]`;
const log = (...a) => console.log(stamp(), ...a);

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++;
  else failed++;
  console.log(`${stamp()} ${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`);
  return ok;
}

/** Mint is RGB(0,255,255); after BT.601 limited range, 4:2:0 and H.264, allow a wide margin. */
const isMint = ([r, g, b]) => r <= 90 && g >= 165 && b >= 165;

/**
 * The burnt-in timecode of the frame at stream time `time`, from the server's rate, written
 * independently of static/js/clock.js: frame = round(time * num / den) (a marker's time is its
 * slot's instant floored to the 90 kHz tick, far less than half a frame early); the seconds are
 * floor(frame * den / num), FF counts from the first frame of that second, ceil(s * num / den).
 */
function overlayTimecode(time, num, den) {
  const frame = BigInt(Math.round((time * num) / den));
  const [n, d] = [BigInt(num), BigInt(den)];
  const secs = (frame * d) / n;
  const ff = frame - (secs * n + d - 1n) / d;
  const two = (v) => String(v).padStart(2, '0');
  return { frame: Number(frame), text: `${two(secs / 3600n)}:${two((secs / 60n) % 60n)}:${two(secs % 60n)}:${two(ff)}` };
}

async function waitForPlaylist() {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(BASE + PLAYLIST);
      if (res.ok && (await res.text()).includes('#EXTINF')) return true;
    } catch (_) {
      // not listening yet
    }
    await sleep(250);
  }
  return false;
}

const profile = mkdtempSync(join(tmpdir(), 'hls-e2e-profile-'));
mkdirSync(ARTIFACTS, { recursive: true });
let context;

async function main() {
  check('playlist is served', await waitForPlaylist(), BASE + PLAYLIST);

  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  const page = context.pages()[0] || (await context.newPage());
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
  });

  await page.goto(BASE + '/', { waitUntil: 'load' });
  await page.evaluate(() => { window.__e2eLoadId = Math.random(); });
  const loadId = await page.evaluate(() => window.__e2eLoadId);

  const h264 = await page.evaluate(() =>
    window.MediaSource ? MediaSource.isTypeSupported('video/mp4; codecs="avc1.42E01E"') : false);
  if (!check('browser decodes H.264 through MediaSource', h264)) return;

  // ---- 1. it plays -------------------------------------------------------------------------
  await page.waitForFunction(() => {
    const v = document.getElementById('video');
    return v.currentTime > 0 && !v.paused && v.readyState >= 3;
  }, null, { timeout: 60_000 });
  const ct = () => page.evaluate(() => document.getElementById('video').currentTime);
  const t0 = await ct();
  await sleep(10_000);
  const t1 = await ct();
  check('video plays: currentTime advances over 10 s', t1 - t0 >= 8.5, `${t0.toFixed(3)} -> ${t1.toFixed(3)}`);
  const pill = () => page.evaluate(() => document.getElementById('state').textContent);
  check('state shows live while playing at the edge', (await pill()) === 'Live', await pill());

  // ---- 2. a marker row appears -------------------------------------------------------------
  const rowSel = '#markers tbody tr.marker:not(.pending):not(.out)';
  await page.waitForSelector(rowSel, { timeout: 60_000 });
  // Wait (up to a minute) for a playable marker well behind the live edge, so that jumping to
  // it is a real seek back into the DVR window.
  const farBack = () => page.evaluate(() => {
    const w = window.hlsPlayer.windowRange();
    return window.hlsPlayer.markers().filter((m) => {
      const t = window.hlsPlayer.markerPlayerTime(m.id);
      return m.state === 'in' && m.time > 0.5 && t !== null && w && w.end - t > 12;
    });
  });
  await page.waitForFunction(() => {
    const w = window.hlsPlayer.windowRange();
    return window.hlsPlayer.markers().some((m) => {
      const t = window.hlsPlayer.markerPlayerTime(m.id);
      return m.state === 'in' && m.time > 0.5 && t !== null && w && w.end - t > 12;
    });
  }, null, { timeout: 60_000 }).catch(() => {});
  const markers = await page.evaluate(() => window.hlsPlayer.markers());
  const playable = await farBack();
  check('a marker row appears and is playable', playable.length > 0, `${markers.length} markers`);
  const inWindow = markers.filter((m) => m.state === 'in').length;
  const ticks = await page.locator('#ticks .tick').count();
  check('markers are ticks on the seek bar', ticks > 0 && Math.abs(ticks - inWindow) <= 1, `${ticks} ticks, ${inWindow} in the window`);

  // ---- 2b. exact frame rate and timecodes --------------------------------------------------
  const stream = await (await fetch(BASE + '/stream')).json();
  const { num, den } = stream.frame_rate;
  const pageRate = await page.evaluate(() => window.hlsPlayer.frameRate);
  check('the page uses the exact frame rate of GET /stream', pageRate && pageRate.num === num && pageRate.den === den
    && stream.playlist === PLAYLIST, `${JSON.stringify(pageRate)} vs ${num}/${den}`);
  const rows = await page.$$eval('#markers tbody tr.marker', (trs) => trs.map((tr) => ({
    id: Number(tr.dataset.id), frame: Number(tr.dataset.frame), timecode: tr.querySelector('.time .cell').textContent,
  })));
  // The server's own marker times, read after the rows (so it has every one of them).
  const served = (await (await fetch(BASE + '/markers')).json()).markers;
  const byId = new Map(served.map((m) => [m.id, m]));
  const wrong = rows.filter((r) => {
    const m = byId.get(r.id);
    const want = m && overlayTimecode(m.time, num, den);
    return !want || r.timecode !== want.text || r.frame !== want.frame;
  });
  check('every row shows the burnt-in timecode of its marker frame', rows.length > 0 && wrong.length === 0,
    `${rows.length} rows at ${num}/${den}${wrong.length ? `; wrong: ${JSON.stringify(wrong.slice(0, 3))}` : ''}`);
  if (!playable.length) return;
  // The newest marker at least 12 s behind the live edge.
  const marker = playable[playable.length - 1];
  log(`marker ${marker.id} at stream time ${marker.time} (${marker.program_date_time})`);

  // ---- 2c. a marker from outside is pushed to the open page ----------------------------------
  // Five frames into the generator's event: still mint, and a frame of its own.
  let posted = null;
  if (MARKER_TOKEN) {
    const frame = overlayTimecode(marker.time, num, den).frame + 5;
    const eventsOpen = await page.evaluate(() => window.hlsPlayer.eventsOpen);
    check('the page holds the marker event stream open', eventsOpen === true);
    const res = await fetch(BASE + '/markers', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${MARKER_TOKEN}` },
      body: JSON.stringify({ text: 'posted from outside', time: (frame * den) / num, source: 'e2e', key: `e2e-${frame}` }),
    });
    posted = await res.json();
    check('POST /markers creates the marker', res.status === 201 && posted.source === 'e2e'
      && posted.timecode === overlayTimecode(posted.time, num, den).text, `${res.status} ${JSON.stringify(posted)}`);
    const t0 = Date.now();
    const shown = await page.waitForSelector(`#markers tbody tr[data-id="${posted.id}"]`, { timeout: 10_000 })
      .then(() => true, () => false);
    const ms = Date.now() - t0;
    // Pushed, not polled: the safety poll runs every 15 s.
    check('the posted marker appears in the table without a reload', shown && ms < 2000, `${ms} ms`);
    const tick = await page.waitForSelector(`#ticks .tick[data-id="${posted.id}"]`, { timeout: 5000 })
      .then(() => true, () => false);
    check('and on the seek bar', tick);
  }

  // ---- 3. clicking it seeks to its frame ---------------------------------------------------
  await page.evaluate(() => document.getElementById('video').pause());
  await page.click(`#markers tbody tr[data-id="${marker.id}"] .jump`);
  const settle = () => page.evaluate(() => new Promise((resolve) => {
    const v = document.getElementById('video');
    const done = () => {
      let fired = false;
      const finish = () => { if (!fired) { fired = true; setTimeout(resolve, 150); } };
      if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(finish);
      setTimeout(finish, 1500);
    };
    const poll = () => (!v.seeking && v.readyState >= 2 ? done() : setTimeout(poll, 50));
    poll();
  }));
  await settle();
  const sample = () => page.evaluate((block) => {
    const v = document.getElementById('video');
    const c = document.createElement('canvas');
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    const g = c.getContext('2d', { willReadFrequently: true });
    g.drawImage(v, 0, 0, c.width, c.height);
    // Average a 5x5 patch at the centre of the top-left block.
    const cx = Math.floor(block / 2);
    const d = g.getImageData(cx - 2, cx - 2, 5, 5).data;
    const sum = [0, 0, 0];
    for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; }
    return { rgb: sum.map((s) => Math.round(s / 25)), t: v.currentTime, w: c.width, h: c.height };
  }, BLOCK);
  const target = await page.evaluate((id) => window.hlsPlayer.markerPlayerTime(id), marker.id);
  const at = await sample();
  check('seek lands on the marker time (PDT mapping + half a frame)', Math.abs(at.t - target) < 0.002,
    `currentTime ${at.t.toFixed(4)}, mapped ${target.toFixed(4)}`);
  check('the marker frame shows the mint top-left block', isMint(at.rgb), `rgb(${at.rgb}) at ${at.w}x${at.h}`);
  const selected = await page.evaluate(() => window.hlsPlayer.selected);
  check('the clicked row is highlighted', selected === marker.id);
  await page.screenshot({ path: join(ARTIFACTS, 'player.png') });
  log(`screenshot ${join(ARTIFACTS, 'player.png')}`);

  const fps = await page.evaluate(() => window.hlsPlayer.fps);
  await page.evaluate((t) => { document.getElementById('video').currentTime = t; }, target - 1 / fps);
  await settle();
  const before = await sample();
  check('the frame just before the marker is not mint', !isMint(before.rgb),
    `rgb(${before.rgb}) at ${before.t.toFixed(4)}, fps ${fps.toFixed(2)}`);

  // Back on the marker frame once more: the mapping is stable after the fragment is buffered.
  await page.evaluate((id) => window.hlsPlayer.seekToMarker(id), marker.id);
  await settle();
  const again = await sample();
  check('seeking to the marker again shows the mint frame again', isMint(again.rgb), `rgb(${again.rgb})`);

  if (posted) {
    await page.click(`#markers tbody tr[data-id="${posted.id}"] .jump`);
    await settle();
    const p = await sample();
    const want = await page.evaluate((id) => window.hlsPlayer.markerPlayerTime(id), posted.id);
    check('clicking the posted marker lands on its frame', isMint(p.rgb) && Math.abs(p.t - want) < 0.002,
      `rgb(${p.rgb}) at ${p.t.toFixed(4)}, mapped ${want.toFixed(4)}`);
  }

  // ---- 4. the seek stays inside the window -------------------------------------------------
  const landed = await ct();
  await page.evaluate(() => document.getElementById('video').play());
  await sleep(4000);
  const later = await ct();
  check('playback continues from the marker; no jump back to live', later - landed > 1.5 && later - landed < 6,
    `${landed.toFixed(3)} -> ${later.toFixed(3)}`);
  const behind = await pill();
  check('state shows behind live after seeking back', behind.startsWith('Behind live'), behind);

  // ---- 5. go live --------------------------------------------------------------------------
  await page.click('#go-live', { timeout: 5000 });
  await sleep(3000);
  const latency = await page.evaluate(() => {
    const w = window.hlsPlayer.windowRange();
    return w.end - document.getElementById('video').currentTime;
  });
  check('"Go live" returns near the live edge', latency < 12 && (await pill()) === 'Live',
    `${latency.toFixed(2)} s from the edge, state ${await pill()}`);

  // ---- 6. phone width ----------------------------------------------------------------------
  await page.setViewportSize({ width: 390, height: 844 });
  await sleep(500);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check('phone width: no horizontal scrolling', overflow <= 0, `overflow ${overflow}px`);
  await page.screenshot({ path: join(ARTIFACTS, 'player-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });

  // ---- 7. the end of the stream ------------------------------------------------------------
  if (EXPECT_END) {
    const waitMs = Math.max(20_000, (STREAM_DURATION + 40) * 1000 - (Date.now() - started));
    let ended = true;
    await page.waitForFunction(() => window.hlsPlayer.ended, null, { timeout: waitMs }).catch(() => { ended = false; });
    check('the page notices EXT-X-ENDLIST without a reload', ended);
    if (ended) {
      const banner = await page.isVisible('#ended-banner');
      check('it says the stream ended', banner && (await pill()) === 'Stream ended', await pill());
      const e0 = await ct();
      await sleep(3000);
      const e1 = await ct();
      const finished = await page.evaluate(() => document.getElementById('video').ended);
      check('it keeps playing what remains', e1 - e0 > 2 || finished, `${e0.toFixed(3)} -> ${e1.toFixed(3)}`);
      check('the page was never reloaded', (await page.evaluate(() => window.__e2eLoadId)) === loadId);
      await page.screenshot({ path: join(ARTIFACTS, 'player-ended.png') });
    }
  }

  check('no script errors on the page', pageErrors.length === 0, pageErrors.slice(0, 3).join(' | '));
}

try {
  await main();
} catch (e) {
  check('test ran to completion', false, String(e && e.stack ? e.stack : e));
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
