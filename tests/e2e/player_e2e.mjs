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
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  check, log, results, started, launch, isMint, overlayTimecode, settle as settleFrame, sample as sampleBlock, sleep,
} from './lib.mjs';

const BASE = process.env.BASE_URL;
if (!BASE) {
  console.error('BASE_URL is required, e.g. BASE_URL=http://127.0.0.1:5000');
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.ARTIFACT_DIR || 'tests/artifacts';
const EXPECT_END = process.env.EXPECT_END === '1';
// The server publishes low-latency parts (EXPECT_LL=0 for a --no-low-latency run).
const EXPECT_LL = process.env.EXPECT_LL !== '0';
const STREAM_DURATION = Number(process.env.STREAM_DURATION || 90);
const BLOCK = Number(process.env.BLOCK || 20);
const PLAYLIST = process.env.PLAYLIST || '/video/chessboard.m3u8';
const MARKER_TOKEN = process.env.MARKER_TOKEN || '';

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

  context = await launch(CHROMIUM, profile);
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
  // Stalls: hls.js reports a buffer that ran dry while playing.
  await page.evaluate(() => {
    window.__stalls = 0;
    window.hlsPlayer.hls.on(Hls.Events.ERROR, (_e, d) => {
      if (d.details === 'bufferStalledError') window.__stalls += 1;
    });
  });
  const latencies = async (seconds) => {
    const out = [];
    for (let i = 0; i < seconds * 2; i++) {
      await sleep(500);
      const l = await page.evaluate(() => window.hlsPlayer.latency);
      if (l !== null) out.push(l);
    }
    return out.sort((a, b) => a - b);
  };
  const median = (xs) => (xs.length ? xs[Math.floor(xs.length / 2)] : Infinity);
  // Stalls are counted after the first two seconds of playback (start-up excluded).
  await sleep(2000);
  await page.evaluate(() => { window.__stalls = 0; });
  const t0 = await ct();
  const live = await latencies(10);
  const t1 = await ct();
  check('video plays: currentTime advances over 10 s', t1 - t0 >= 8.5, `${t0.toFixed(3)} -> ${t1.toFixed(3)}`);
  if (EXPECT_LL) {
    check('hls.js plays low-latency parts (EXT-X-PART-INF)', await page.evaluate(() => window.hlsPlayer.lowLatency));
    // From the start hls.js may sit up to a segment behind (it starts on the IDR); classic HLS
    // sits 3 target durations (6 s) behind. "Go live" below must reach the 1.5 s goal.
    check('glass-to-glass latency median under 3 s from the start (LL-HLS)', median(live) < 3,
      `median ${median(live).toFixed(3)} s, p90 ${live[Math.floor(live.length * 0.9)]?.toFixed(3)} s over ${live.length} samples`);
    check('no stall while playing live', (await page.evaluate(() => window.__stalls)) === 0,
      `${await page.evaluate(() => window.__stalls)} stalls`);
    check('the page shows the latency', /^Latency \d+\.\d s$/.test(
      await page.evaluate(() => document.getElementById('latency').textContent)));
  }
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
  const settle = () => settleFrame(page);
  await settle();
  const sample = () => sampleBlock(page, BLOCK);
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
  if (EXPECT_LL) {
    const back = await latencies(3);
    check('"Go live" returns to under 1.5 s glass to glass', median(back) < 1.5,
      `median ${median(back).toFixed(3)} s`);
  }

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
console.log(`e2e: ${results.passed} passed, ${results.failed} failed`);
process.exit(results.failed === 0 && results.passed > 0 ? 0 : 1);
