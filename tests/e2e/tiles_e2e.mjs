// End-to-end test of the tile page (`/` on a server with several streams, issue 20) in Debian's
// headless Chromium driven by playwright-core, against `hls-streamer --config` (tests/e2e/tiles.sh
// starts one with three checkerboards and one stream whose input is missing).
//
// It proves, on the page a person opens:
//   - one tile per configured stream, in the configuration's order, each with its name;
//   - every live stream's tile plays: its muted <video> advances, has data to play
//     (readyState >= 3) and has decoded frames (getVideoPlaybackQuality), and says "Live";
//   - a stream that is down says so: its tile's state is "Failed", it shows the server's reason,
//     and its video loads nothing;
//   - the tiles fit a phone's width without horizontal scrolling;
//   - clicking a tile opens /watch/NAME, and that page plays THAT stream: hls.js loads
//     /video/NAME.m3u8, the frame rate is /streams/NAME's, markers come from
//     /streams/NAME/markers (and its event stream) and no other stream's route is asked;
//   - a marker row's timecode is the burnt-in one, and clicking the row lands on the marker's
//     frame (the mint top-left block, read from the video) with the frame before it not mint;
//   - a marker POSTed to another stream never shows on this stream's page, one POSTed to this
//     stream is pushed to it.
//
// Environment: BASE_URL (required), CHROMIUM, ARTIFACT_DIR (screenshots), MARKER_TOKEN (the
// server's), LIVE (the live streams' names, comma-separated, in the file's order), DOWN (the
// name of the stream that is down; it comes last), DOWN_REASON (text its reason contains), OPEN
// (the stream whose tile is clicked), BLOCK (px of the top-left block, 20 at 320x180).
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  check, log, results, launch, isMint, overlayTimecode, settle, sample, sleep,
} from './lib.mjs';

const BASE = process.env.BASE_URL;
if (!BASE) {
  console.error('BASE_URL is required, e.g. BASE_URL=http://127.0.0.1:5000');
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.ARTIFACT_DIR || 'tests/artifacts';
const MARKER_TOKEN = process.env.MARKER_TOKEN || '';
const LIVE = (process.env.LIVE || '').split(',').filter(Boolean);
const DOWN = process.env.DOWN || '';
const DOWN_REASON = process.env.DOWN_REASON || '';
const OPEN = process.env.OPEN || LIVE[LIVE.length - 1];
const BLOCK = Number(process.env.BLOCK || 20);
const ALL = DOWN ? [...LIVE, DOWN] : LIVE;
const OTHER = LIVE.find((n) => n !== OPEN);

const getJson = async (path) => (await fetch(BASE + path, { cache: 'no-store' })).json();

/** `GET /streams` once every live stream is live (and the one that is down has failed). */
async function waitForStreams() {
  const deadline = Date.now() + 30_000;
  let last = null;
  while (Date.now() < deadline) {
    try {
      last = (await getJson('/streams')).streams;
      const by = new Map(last.map((s) => [s.name, s]));
      if (LIVE.every((n) => by.get(n)?.state === 'live') && (!DOWN || by.get(DOWN)?.state === 'failed')) {
        return last;
      }
    } catch (_) {
      // not listening yet
    }
    await sleep(250);
  }
  return last;
}

const profile = mkdtempSync(join(tmpdir(), 'hls-tiles-profile-'));
mkdirSync(ARTIFACTS, { recursive: true });
let context;

async function main() {
  if (!check('a stream to open and another live one', LIVE.includes(OPEN) && OTHER, `LIVE=${LIVE} OPEN=${OPEN}`)) return;
  const listed = await waitForStreams();
  check('GET /streams lists every stream, live or failed', listed
    && JSON.stringify(listed.map((s) => s.name)) === JSON.stringify(ALL)
    && listed.every((s) => s.state === (s.name === DOWN ? 'failed' : 'live')),
  JSON.stringify(listed?.map((s) => [s.name, s.state])));
  const down = listed?.find((s) => s.name === DOWN);
  if (DOWN) check('and says why the stream that is down is down', down?.error?.includes(DOWN_REASON), down?.error);

  context = await launch(CHROMIUM, profile);
  const page = context.pages()[0] || (await context.newPage());
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e}`));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`${page.url()} console: ${m.text()}`);
  });
  // Every request's path, by the page that was showing when it was sent.
  const requests = [];
  page.on('request', (r) => requests.push({ path: new URL(r.url()).pathname, from: new URL(page.url()).pathname }));
  const askedFrom = (from) => requests.filter((r) => r.from === from).map((r) => r.path);

  // ---- 1. the tile page ----------------------------------------------------------------------
  await page.goto(BASE + '/', { waitUntil: 'load' });
  check('/ is the tile page', (await page.title()).startsWith('Streams'), await page.title());
  await page.waitForFunction((n) => document.querySelectorAll('a.tile').length === n, ALL.length, { timeout: 10_000 })
    .catch(() => {});
  const tiles = await page.$$eval('a.tile', (as) => as.map((a) => ({
    stream: a.dataset.stream, href: a.getAttribute('href'), name: a.querySelector('.tile-name').textContent,
  })));
  check('one tile per stream, in the file\'s order, each named', JSON.stringify(tiles.map((t) => t.stream)) === JSON.stringify(ALL)
    && tiles.every((t) => t.name === t.stream && t.href === `/watch/${t.stream}`), JSON.stringify(tiles));

  const tile = (name) => `a.tile[data-stream="${name}"]`;
  // Every live tile plays: wait for all of them, then watch them for 3 s.
  const playing = await page.waitForFunction((names) => names.every((n) => {
    const v = document.querySelector(`a.tile[data-stream="${n}"] video`);
    return v && v.currentTime > 0 && !v.paused && v.readyState >= 3;
  }), LIVE, { timeout: 20_000 }).then(() => true, () => false);
  check('every live tile starts playing', playing);
  const videos = () => page.evaluate((names) => names.map((n) => {
    const v = document.querySelector(`a.tile[data-stream="${n}"] video`);
    const q = v.getVideoPlaybackQuality();
    return {
      name: n, t: v.currentTime, ready: v.readyState, muted: v.muted, w: v.videoWidth,
      frames: q.totalVideoFrames, dropped: q.droppedVideoFrames,
    };
  }), LIVE);
  const v0 = await videos();
  await sleep(3000);
  const v1 = await videos();
  for (const [a, b] of v0.map((v, i) => [v, v1[i]])) {
    check(`tile ${a.name} plays: time advances, data to play, frames decoded, muted`,
      b.t - a.t > 2 && b.ready >= 3 && b.frames > a.frames && a.frames > 0 && b.muted && b.w === 320,
      `${a.t.toFixed(2)} -> ${b.t.toFixed(2)} s, readyState ${b.ready}, frames ${a.frames} -> ${b.frames} (${b.dropped} dropped), ${b.w} px`);
  }
  for (const name of LIVE) {
    check(`tile ${name} asked for its own playlist`, askedFrom('/').includes(`/video/${name}.m3u8`));
  }
  const shown = await page.evaluate((names) => names.map((n) => {
    const a = document.querySelector(`a.tile[data-stream="${n}"]`);
    const downBox = a.querySelector('.tile-down');
    return {
      name: n, state: a.dataset.state, pill: a.querySelector('.pill').textContent,
      detail: a.querySelector('.tile-detail').textContent, marker: a.querySelector('.tile-marker').textContent,
      down: downBox.hidden ? null : downBox.textContent, downVisible: downBox.offsetHeight > 0,
      src: a.querySelector('video').currentSrc, ready: a.querySelector('video').readyState,
    };
  }), ALL);
  const byName = new Map(listed.map((s) => [s.name, s]));
  for (const s of shown.filter((x) => x.name !== DOWN)) {
    const fps = byName.get(s.name).fps;
    check(`tile ${s.name} says Live, its size and its rate`, s.state === 'live' && s.pill === 'Live' && s.down === null
      && s.detail.includes('320x180') && s.detail.includes(`${Number(fps.toFixed(3))} fps`), `${s.pill}; ${s.detail}`);
  }
  if (DOWN) {
    const s = shown.find((x) => x.name === DOWN);
    check(`tile ${DOWN} (down) says Failed and why, and is behind nothing`, s.state === 'failed' && s.pill === 'Failed'
      && s.downVisible && s.down.includes(DOWN_REASON) && !s.detail.includes('behind live'),
    `${s.pill}; ${JSON.stringify(s.down)}; ${JSON.stringify(s.detail)}`);
    check(`tile ${DOWN} (down) plays nothing`, s.src === '' && s.ready === 0
      && !askedFrom('/').includes(`/video/${DOWN}.m3u8`), `src ${JSON.stringify(s.src)}, readyState ${s.ready}`);
  }
  // The newest marker of each stream, once it has one (events every couple of seconds).
  const withMarker = await page.waitForFunction((names) => names.every((n) => {
    const t = document.querySelector(`a.tile[data-stream="${n}"] .tile-marker`).textContent;
    return t && t !== 'No marker yet';
  }), LIVE, { timeout: 10_000 }).then(() => true, () => false);
  const markerLines = await page.$$eval('a.tile .tile-marker', (ms) => ms.map((m) => m.textContent));
  check('every live tile shows its newest marker', withMarker, JSON.stringify(markerLines));
  const overall = await page.textContent('#state');
  check('the page says how many streams are live', overall === `${LIVE.length} of ${ALL.length} live`, overall);
  await page.screenshot({ path: join(ARTIFACTS, 'tiles.png') });
  log(`screenshot ${join(ARTIFACTS, 'tiles.png')}`);
  await page.setViewportSize({ width: 390, height: 844 });
  await sleep(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check('phone width: no horizontal scrolling', overflow <= 0, `overflow ${overflow}px`);
  await page.screenshot({ path: join(ARTIFACTS, 'tiles-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });

  // ---- 2. a tile opens its stream's player ---------------------------------------------------
  const info = await getJson(`/streams/${OPEN}`);
  await Promise.all([page.waitForURL(`${BASE}/watch/${OPEN}`, { timeout: 10_000 }), page.click(tile(OPEN))]);
  check('a click on a tile opens /watch/NAME', new URL(page.url()).pathname === `/watch/${OPEN}`, page.url());
  const started = await page.waitForFunction(() => {
    const v = document.getElementById('video');
    return v && v.currentTime > 0 && !v.paused && v.readyState >= 3;
  }, null, { timeout: 20_000 }).then(() => true, () => false);
  check('the player plays', started);
  const meta = await page.evaluate(() => Object.fromEntries(['hls-playlist', 'hls-stream', 'hls-markers', 'hls-health']
    .map((n) => [n, document.querySelector(`meta[name="${n}"]`)?.content])));
  const hlsUrl = await page.evaluate(() => window.hlsPlayer.hls?.url ?? null);
  check('it plays that stream\'s playlist', hlsUrl && new URL(hlsUrl, BASE).pathname === `/video/${OPEN}.m3u8`
    && meta['hls-playlist'] === info.playlist, `${hlsUrl}; ${JSON.stringify(meta)}`);
  check('its routes are that stream\'s', meta['hls-stream'] === `/streams/${OPEN}`
    && meta['hls-markers'] === `/streams/${OPEN}/markers` && meta['hls-health'] === `/streams/${OPEN}/healthz`,
  JSON.stringify(meta));
  const rate = await page.evaluate(() => window.hlsPlayer.frameRate);
  const { num, den } = info.frame_rate;
  check('the page uses that stream\'s exact frame rate', rate && rate.num === num && rate.den === den,
    `${JSON.stringify(rate)} vs ${num}/${den}`);
  check('the page title names the stream', (await page.title()).includes(OPEN), await page.title());

  // ---- 3. its markers, and a click on one lands on its frame ---------------------------------
  // A marker in the window at least 2 s behind the live edge: a real seek back.
  const playableMarker = () => page.evaluate(() => {
    const w = window.hlsPlayer.windowRange();
    return window.hlsPlayer.markers().filter((m) => {
      const t = window.hlsPlayer.markerPlayerTime(m.id);
      return m.state === 'in' && m.time > 0.5 && t !== null && w && w.end - t > 2;
    }).pop() ?? null;
  });
  let marker = null;
  for (let i = 0; i < 60 && !marker; i++) {
    marker = await playableMarker();
    if (!marker) await sleep(250);
  }
  if (!check('a marker row appears and is playable', marker !== null)) return;
  log(`marker ${marker.id} at stream time ${marker.time} (${marker.program_date_time})`);
  const served = (await getJson(`/streams/${OPEN}/markers`)).markers;
  const servedById = new Map(served.map((m) => [m.id, m]));
  const onPage = await page.evaluate(() => window.hlsPlayer.markers());
  check('every marker on the page is one of this stream\'s', onPage.length > 0 && onPage.every((m) => {
    const s = servedById.get(m.id);
    return s && s.program_date_time === m.program_date_time && s.time === m.time;
  }), `${onPage.length} on the page, ${served.length} served`);
  const rows = await page.$$eval('#markers tbody tr.marker', (trs) => trs.map((tr) => ({
    id: Number(tr.dataset.id), frame: Number(tr.dataset.frame), timecode: tr.querySelector('.time .cell').textContent,
  })));
  const wrong = rows.filter((r) => {
    const m = servedById.get(r.id);
    const want = m && overlayTimecode(m.time, num, den);
    return !want || r.timecode !== want.text || r.frame !== want.frame;
  });
  check('every row shows the burnt-in timecode of its marker frame', rows.length > 0 && wrong.length === 0,
    `${rows.length} rows at ${num}/${den}${wrong.length ? `; wrong: ${JSON.stringify(wrong.slice(0, 3))}` : ''}`);

  await page.evaluate(() => document.getElementById('video').pause());
  await page.click(`#markers tbody tr[data-id="${marker.id}"] .jump`);
  await settle(page);
  const target = await page.evaluate((id) => window.hlsPlayer.markerPlayerTime(id), marker.id);
  const at = await sample(page, BLOCK);
  check('the click lands on the marker time', Math.abs(at.t - target) < 0.002,
    `currentTime ${at.t.toFixed(4)}, mapped ${target.toFixed(4)}`);
  check('the marker frame shows the mint top-left block', isMint(at.rgb), `rgb(${at.rgb}) at ${at.w}x${at.h}`);
  await page.screenshot({ path: join(ARTIFACTS, 'tiles-watch.png') });
  log(`screenshot ${join(ARTIFACTS, 'tiles-watch.png')}`);
  const fps = await page.evaluate(() => window.hlsPlayer.fps);
  await page.evaluate((t) => { document.getElementById('video').currentTime = t; }, target - 1 / fps);
  const shownAt = await settle(page);
  const before = await sample(page, BLOCK);
  check('the frame just before the marker is not mint', !isMint(before.rgb),
    `rgb(${before.rgb}) at ${before.t.toFixed(4)}, frame shown at ${shownAt}, fps ${fps.toFixed(3)}`);

  // ---- 4. another stream's markers stay on that stream ---------------------------------------
  if (MARKER_TOKEN) {
    const post = (name, body) => fetch(`${BASE}/streams/${name}/markers`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${MARKER_TOKEN}` },
      body: JSON.stringify(body),
    });
    const tag = `e2e-${Date.now()}`;
    const pdt = new Date(Date.now() - 3000).toISOString();
    const elsewhere = await post(OTHER, { text: `on ${OTHER} only`, program_date_time: pdt, source: 'e2e', key: `${tag}-other` });
    const here = await post(OPEN, { text: `on ${OPEN}`, program_date_time: pdt, source: 'e2e', key: `${tag}-here` });
    const mine = await here.json();
    check('markers POSTed to two streams', elsewhere.status === 201 && here.status === 201,
      `${elsewhere.status}, ${here.status}`);
    const pushed = await page.waitForSelector(`#markers tbody tr[data-id="${mine.id}"]`, { timeout: 5000 })
      .then(() => true, () => false);
    check('the one POSTed to this stream is pushed to its page', pushed
      && (await page.evaluate((id) => window.hlsPlayer.markers().find((m) => m.id === id)?.text ?? null, mine.id)) === `on ${OPEN}`);
    // The safety poll and the event stream have both had their chance by now.
    await sleep(2500);
    const texts = await page.evaluate(() => window.hlsPlayer.markers().map((m) => m.text));
    const tableText = await page.textContent('#markers');
    check(`the one POSTed to ${OTHER} never shows here`, !texts.includes(`on ${OTHER} only`)
      && !tableText.includes(`on ${OTHER} only`), `${texts.length} markers on the page`);
  }
  // Not those the tile page still sent while the click navigated away from it.
  const asked = [...new Set(askedFrom(`/watch/${OPEN}`))];
  const foreign = asked.filter((p) => /^\/(markers|stream|healthz)(\/|$)/.test(p)
    || (p.startsWith('/streams/') && !p.startsWith(`/streams/${OPEN}/`) && p !== `/streams/${OPEN}`)
    || (p.startsWith('/video/') && !p.startsWith(`/video/${OPEN}`)));
  check('the player asked for this stream\'s markers and events', asked.includes(`/streams/${OPEN}/markers`)
    && asked.includes(`/streams/${OPEN}/markers/events`), asked.filter((p) => p.includes('markers')).join(' '));
  check('and for no other stream\'s route', foreign.length === 0, foreign.join(' '));

  check('no script errors on either page', pageErrors.length === 0, pageErrors.slice(0, 3).join(' | '));
}

try {
  await main();
} catch (e) {
  check('test ran to completion', false, String(e && e.stack ? e.stack : e));
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
console.log(`tiles e2e: ${results.passed} passed, ${results.failed} failed`);
process.exit(results.failed === 0 && results.passed > 0 ? 0 : 1);
