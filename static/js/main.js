// Player page: plays the live HLS playlist with the vendored hls.js (a classic script loaded
// before this module), lists timeline markers from /markers, draws them on the DVR seek bar and
// seeks to a marker's exact frame.
//
// This module wires the page and owns its one state object (`st`); clock.js (pure clock and
// timecode arithmetic), markers.js (the marker list), seekbar.js and table.js (views) get what
// they need as arguments. The stream's exact frame rate comes once from GET /stream, so the
// table's timecodes are the burnt-in ones and a seek lands half a frame into the marker's frame
// (a PDT has millisecond precision).

import {
  frameRate, frameRateOf, fpsOf, halfFrame, windowOfFragments, locateInFragments,
  locateFromStartDate, clampToWindow, fmtDuration,
} from './clock.js';
import { MarkerList, MARKERS_URL, markersQuery } from './markers.js';
import { SeekBar } from './seekbar.js';
import { MarkerTable, fmtWall } from './table.js';
import { LiveKeeper } from './livekeep.js';

const PLAYLIST = document.querySelector('meta[name="hls-playlist"]').content;
// The stream's routes, as the server filled them in: `/stream`, `/healthz` on a one-stream
// server, `/streams/NAME`, `/streams/NAME/healthz` on one with several.
const STREAM_URL = document.querySelector('meta[name="hls-stream"]').content;
const HEALTH_URL = document.querySelector('meta[name="hls-health"]').content;
const MARKER_POLL_MS = 2000;
// With the event stream open, polling is only a safety net.
const MARKER_SAFETY_POLL_MS = 15000;
const MARKER_EVENTS_URL = `${MARKERS_URL}/events`;
const HEALTH_POLL_MS = 5000;
/** How often the page steers its latency to the live target (livekeep.js). */
const KEEP_LIVE_MS = 250;
const MAX_ROWS = 500;
/** Used only if /stream cannot be read (an older server): then timecodes may be off. */
const FALLBACK_RATE = frameRate(30, 1);

const $ = (id) => document.getElementById(id);
const el = {
  video: $('video'),
  state: $('state'),
  play: $('play'),
  bigPlay: $('big-play'),
  overlay: $('overlay'),
  clock: $('clock'),
  goLive: $('go-live'),
  latency: $('latency'),
  ended: $('ended-banner'),
  health: $('health'),
};

/** The page's state: nothing else holds any. */
const st = {
  hls: null,
  native: false, // Safari's own HLS (no MediaSource): map through getStartDate()
  details: null, // hls.js LevelDetails of the playing level
  rate: null, // the stream's exact frame rate {num, den}, from /stream
  stream: null, // the /stream body
  ended: false, // the playlist carries EXT-X-ENDLIST
  markers: new MarkerList(MAX_ROWS),
  selected: null, // id of the marker last jumped to
  refine: null, // {dateMs, sn}: re-map once that fragment is buffered
  fatal: null,
  finalPollDone: false, // one last /markers poll after EXT-X-ENDLIST
  eventsOpen: false, // the /markers/events stream is connected
  keeper: new LiveKeeper(), // follows the live target until the user moves away
};

const rate = () => st.rate || FALLBACK_RATE;

// ---- the stream's window and the clock mapping ------------------------------------------------
function targetDuration() {
  return (st.details && st.details.targetduration) || (st.stream && st.stream.target_duration) || 2;
}

/** The seekable window on the media element's timeline: {start, end}, or null. */
function windowRange() {
  if (st.native) {
    const s = el.video.seekable;
    return s.length ? { start: s.start(0), end: s.end(s.length - 1) } : null;
  }
  return windowOfFragments(st.details && st.details.fragments);
}

/** Where a wall-clock instant (ms) is on the media timeline; see clock.js. */
function locate(dateMs) {
  if (st.native) {
    const start = el.video.getStartDate ? el.video.getStartDate().getTime() : NaN;
    return locateFromStartDate(dateMs, start, windowRange());
  }
  return locateInFragments(dateMs, st.details && st.details.fragments);
}

/** Player time of a marker's frame, or null when it is not in the playlist's window. */
function markerPlayerTime(m) {
  const loc = locate(m.pdtMs);
  return loc.where === 'in' ? loc.t + halfFrame(rate()) : null;
}

/**
 * The live target, seconds from capture to screen: PART-HOLD-BACK with low latency (what the
 * playlist asks players to keep to), else hls.js's target (three target durations, R38).
 */
function liveTarget() {
  const holdBack = st.details && st.details.partHoldBack;
  if (holdBack > 0 && st.hls && st.hls.lowLatencyMode) return holdBack;
  const h = st.hls;
  return h && Number.isFinite(h.targetLatency) ? h.targetLatency : 3 * targetDuration();
}

/** Seconds from the capture of the frame at the playhead to now (paused or not); else null. */
function playheadLatency() {
  const d = st.hls ? st.hls.playingDate : null;
  if (!d || !Number.isFinite(d.getTime())) return null;
  return (Date.now() - d.getTime()) / 1000;
}

// ---- seeking ----------------------------------------------------------------------------------
function seekTo(t) {
  el.video.currentTime = clampToWindow(t, windowRange());
  render();
}

/** A seek the user asked for: the page stops following live unless it lands near the target. */
function userSeekTo(t) {
  const lat = playheadLatency();
  const to = clampToWindow(t, windowRange());
  st.keeper.userSeek(lat === null ? null : lat + (el.video.currentTime - to), liveTarget());
  seekTo(to);
}

function seekToMarker(id) {
  const m = st.markers.get(id);
  if (!m) return false;
  const loc = locate(m.pdtMs);
  if (loc.where !== 'in') return false;
  st.selected = id;
  st.refine = loc.sn === null ? null : { dateMs: m.pdtMs, sn: loc.sn };
  userSeekTo(loc.t + halfFrame(rate()));
  updateMarkers();
  return true;
}

function goLive() {
  const h = st.hls;
  const w = windowRange();
  // Back to the lowest latency the playlist allows: undo what stalls added to hls.js's target.
  const holdBack = st.details && st.details.partHoldBack;
  if (h && holdBack > 0 && h.lowLatencyMode) {
    try { h.targetLatency = holdBack; } catch (_e) { /* older hls.js: no setter */ }
  }
  st.keeper.goLive();
  // Where the target is, from the picture's own date when it is known (the truth), else from
  // hls.js's estimate of the live edge.
  const lat = playheadLatency();
  let t = lat !== null ? el.video.currentTime + lat - liveTarget() : null;
  if (t === null && h && Number.isFinite(h.liveSyncPosition)) t = h.liveSyncPosition;
  if (t === null && w) t = w.end - 3 * targetDuration();
  if (t !== null) seekTo(t);
  el.video.play().catch(() => {});
}

/**
 * Seconds behind the live target (0 when at it or ahead): from the date of the picture at the
 * playhead when known, paused or not; else from the playlist's end plus its age (what hls.js
 * estimates too).
 */
function behindLive() {
  const lat = playheadLatency();
  if (lat !== null) return Math.max(0, lat - liveTarget());
  const w = windowRange();
  if (!w) return 0;
  const age = st.details && Number.isFinite(st.details.age) ? st.details.age : 0;
  return Math.max(0, w.end + age - el.video.currentTime - liveTarget());
}

/** Steers the latency to the live target while the page follows live (livekeep.js). */
function keepLive() {
  const v = el.video;
  const { rate: r, jumpBy } = st.keeper.step({
    latency: playheadLatency(),
    target: liveTarget(),
    playing: !v.paused && !v.seeking && v.readyState >= 3,
    ended: st.ended,
  });
  if (jumpBy > 0) seekTo(v.currentTime + jumpBy);
  if (v.playbackRate !== r) v.playbackRate = r;
}

// ---- views ------------------------------------------------------------------------------------
const seekbar = new SeekBar({
  seek: $('seekbar'),
  buffered: $('buffered'),
  played: $('played'),
  thumb: $('thumb'),
  ticks: $('ticks'),
  hover: $('hover'),
  windowStart: $('window-start'),
  windowEnd: $('window-end'),
}, {
  window: windowRange,
  currentTime: () => el.video.currentTime,
  seek: userSeekTo,
  goLive,
  jump: seekToMarker,
  changed: () => render(),
});

const table = new MarkerTable({
  tbody: document.querySelector('#markers tbody'),
  empty: $('markers-empty'),
  count: $('marker-count'),
}, seekToMarker);

/** Table rows and seek-bar ticks, from where each marker is now. */
function updateMarkers() {
  const w = windowRange();
  const span = w ? w.end - w.start : 0;
  const where = new Map();
  const ticks = [];
  for (const m of st.markers.items) {
    const loc = locate(m.pdtMs);
    where.set(m.id, loc.where);
    if (loc.where === 'in' && span > 0) {
      ticks.push({
        id: m.id,
        left: (loc.t - w.start) / span,
        title: `${m.text} · ${m.timecode}`,
        selected: m.id === st.selected,
      });
    }
  }
  table.render(st.markers.items, (m) => where.get(m.id), st.selected);
  seekbar.syncTicks(ticks);
}

function setPill(cls, text) {
  if (el.state.dataset.cls !== cls) {
    el.state.className = `pill pill-${cls}`;
    el.state.dataset.cls = cls;
  }
  if (el.state.textContent !== text) el.state.textContent = text;
}

function render() {
  const v = el.video;
  const w = windowRange();
  // State pill and "Go live".
  if (st.fatal) setPill('error', 'Error');
  else if (st.ended) setPill('ended', 'Stream ended');
  else if (!w) setPill('connecting', 'Connecting…');
  else {
    const behind = behindLive();
    const live = behind < 0.5 && !v.paused;
    setPill(live ? 'live' : 'behind', live ? 'Live' : `Behind live · ${fmtDuration(behind)}`);
    el.goLive.disabled = live;
  }
  el.goLive.hidden = st.ended;
  el.ended.hidden = !st.ended;
  el.play.classList.toggle('paused', v.paused);
  el.play.setAttribute('aria-label', v.paused ? 'Play' : 'Pause');

  seekbar.render(w, seekbar.position(w, v.currentTime), v.buffered, st.ended);

  // Wall clock of the picture.
  const date = st.hls ? st.hls.playingDate : (v.getStartDate && Number.isFinite(v.getStartDate().getTime())
    ? new Date(v.getStartDate().getTime() + v.currentTime * 1000) : null);
  el.clock.textContent = date ? fmtWall(date.getTime()) : '--:--:--';
  // Glass-to-glass: now minus the wall clock of the picture on screen.
  const lat = latency();
  el.latency.textContent = lat === null ? '' : `Latency ${lat.toFixed(1)} s`;
  el.latency.hidden = lat === null;
}

/** Seconds from the capture of the frame on screen to now, while playing live; else null. */
function latency() {
  const d = st.hls ? st.hls.playingDate : null;
  if (!d || st.ended || el.video.paused || !Number.isFinite(d.getTime())) return null;
  return Math.max(0, (Date.now() - d.getTime()) / 1000);
}

function showOverlay(text) {
  el.overlay.textContent = text || '';
  el.overlay.hidden = !text;
}

function markEnded() {
  if (st.ended) return;
  st.ended = true;
  updateMarkers();
  render();
}

// ---- the server: stream description, markers, health -----------------------------------------
/**
 * Reads GET /stream (a few tries, and as long as it answers 503: a camera that has not played
 * yet, whose rate is not known); null if it cannot be had.
 */
async function loadStream() {
  for (let attempt = 0, waits = 0; attempt < 5 && waits < 600; ) {
    try {
      const res = await fetch(STREAM_URL, { cache: 'no-store' });
      if (res.ok) {
        const body = await res.json();
        if (frameRateOf(body)) return body;
      }
      if (res.status === 503) waits++;
      else attempt++;
    } catch (_) {
      // not reachable yet
      attempt++;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return null;
}

/** Shows markers from the API (a poll's list or one pushed event). */
function addMarkers(raw) {
  const change = st.markers.merge(raw, rate());
  if (change.added.length || change.removed.length) {
    table.update(change);
    updateMarkers();
  }
}

async function pollMarkers() {
  try {
    const res = await fetch(MARKERS_URL + markersQuery(st.markers.lastId), { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = await res.json();
    addMarkers(body.markers);
  } catch (_) {
    // The server may be restarting; the next poll tries again.
  }
  // After the stream ended one last poll collects any final marker.
  if (!st.ended || !st.finalPollDone) {
    if (st.ended) st.finalPollDone = true;
    setTimeout(pollMarkers, st.eventsOpen ? MARKER_SAFETY_POLL_MS : MARKER_POLL_MS);
  }
}

/**
 * New markers pushed by the server (Server-Sent Events), from the newest id already held; the
 * browser reconnects by itself with Last-Event-ID and is given what it missed. While the stream
 * is not open (an older server, a proxy that buffers) the page polls every MARKER_POLL_MS.
 */
function subscribeMarkers() {
  if (typeof EventSource !== 'function') return;
  const es = new EventSource(`${MARKER_EVENTS_URL}?last_event_id=${st.markers.lastId ?? 0}`);
  es.onopen = () => { st.eventsOpen = true; };
  es.onmessage = (e) => {
    try {
      addMarkers([JSON.parse(e.data)]);
    } catch (_) {
      // not a marker: ignore
    }
  };
  es.onerror = () => { st.eventsOpen = false; };
}

async function pollHealth() {
  try {
    const res = await fetch(HEALTH_URL, { cache: 'no-store' });
    const h = await res.json();
    const parts = [`Stream ${h.status}`];
    if (h.newest_sequence !== null && h.newest_sequence !== undefined) parts.push(`segment #${h.newest_sequence}`);
    parts.push(`${Number(h.frames_encoded).toLocaleString()} frames`, `${Number(h.frames_dropped).toLocaleString()} dropped`);
    el.health.textContent = parts.join(' · ');
    el.health.classList.toggle('bad', h.status === 'stalled' || h.status === 'starting');
  } catch (_) {
    el.health.textContent = 'Server unreachable';
    el.health.classList.add('bad');
  }
  if (!st.ended) setTimeout(pollHealth, HEALTH_POLL_MS);
}

// ---- controls ---------------------------------------------------------------------------------
const togglePlay = () => {
  if (el.video.paused) el.video.play().catch(() => { el.bigPlay.hidden = false; });
  else {
    st.keeper.userPause();
    el.video.pause();
  }
};
el.play.addEventListener('click', togglePlay);
el.bigPlay.addEventListener('click', () => { el.bigPlay.hidden = true; togglePlay(); });
el.video.addEventListener('click', togglePlay);
el.goLive.addEventListener('click', goLive);
for (const ev of ['play', 'pause', 'seeking', 'seeked', 'timeupdate', 'progress']) {
  el.video.addEventListener(ev, render);
}
el.video.addEventListener('playing', () => { el.bigPlay.hidden = true; showOverlay(''); });
el.video.addEventListener('ended', () => { showOverlay('End of stream.'); render(); });

// ---- playback ---------------------------------------------------------------------------------
function startHlsJs(Hls) {
  const hls = new Hls({
    // The seekable range is the DVR window (hls.js #4870); keep liveMaxLatencyDurationCount at
    // its default (Infinity): a finite value makes hls.js jump back to live after a seek into
    // the window (hls.js #6934).
    liveDurationInfinity: true,
    backBufferLength: 150,
    // Low-latency HLS when the playlist advertises parts (EXT-X-PART-INF): blocking reloads,
    // parts, PART-HOLD-BACK from the edge. A classic playlist plays as before.
    lowLatencyMode: true,
    // Live catch-up is the page's (keepLive, livekeep.js): from the picture's date, at any
    // distance, and only until the user pauses or seeks away. hls.js's own would act only
    // within a target duration of its target and fight the page's.
    maxLiveSyncPlaybackRate: 1,
    // A stall moves the live target back by half a second (hls.js default: a whole one), up to
    // a target duration; "Go live" resets it to PART-HOLD-BACK.
    liveSyncOnStallIncrease: 0.5,
    enableWorker: true,
  });
  st.hls = hls;
  const E = Hls.Events;
  hls.on(E.MANIFEST_PARSED, () => {
    showOverlay('');
    el.video.play().catch(() => { el.bigPlay.hidden = false; });
  });
  const onDetails = (_e, data) => {
    st.details = data.details;
    if (data.details.live === false) markEnded();
    updateMarkers();
    render();
  };
  hls.on(E.LEVEL_LOADED, onDetails);
  hls.on(E.LEVEL_UPDATED, onDetails);
  hls.on(E.FRAG_BUFFERED, (_e, data) => {
    // The fragment's start is now its parsed PTS: re-map the marker if it moved.
    const r = st.refine;
    if (!r || data.frag.sn !== r.sn) return;
    st.refine = null;
    const loc = locate(r.dateMs);
    if (loc.where !== 'in') return;
    const t = loc.t + halfFrame(rate());
    if (Math.abs(el.video.currentTime - t) > 0.0005) el.video.currentTime = t;
  });
  hls.on(E.ERROR, (_e, data) => {
    if (!data.fatal) return;
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
      const manifest = data.details === Hls.ErrorDetails.MANIFEST_LOAD_ERROR
        || data.details === Hls.ErrorDetails.MANIFEST_LOAD_TIMEOUT
        || data.details === Hls.ErrorDetails.MANIFEST_PARSING_ERROR;
      showOverlay(manifest ? 'Waiting for the stream to start…' : 'Connection lost. Retrying…');
      setTimeout(() => (manifest ? hls.loadSource(PLAYLIST) : hls.startLoad()), 2000);
    } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      hls.recoverMediaError();
    } else {
      st.fatal = data.details;
      showOverlay(`Playback failed (${data.details}). Reload the page to try again.`);
      render();
    }
  });
  hls.loadSource(PLAYLIST);
  hls.attachMedia(el.video);
}

function startNative() {
  st.native = true;
  el.video.src = PLAYLIST;
  el.video.addEventListener('loadedmetadata', () => { updateMarkers(); render(); });
  el.video.addEventListener('durationchange', () => {
    if (Number.isFinite(el.video.duration)) markEnded();
  });
  setInterval(updateMarkers, 2000);
}

// A small API for the end-to-end test and for debugging from the console.
window.hlsPlayer = {
  get hls() { return st.hls; },
  /** Frames per second, exact: num / den of the stream's rate. */
  get fps() { return fpsOf(rate()); },
  get frameRate() { return st.rate; },
  get ended() { return st.ended; },
  get selected() { return st.selected; },
  /** Seconds from capture to screen of the frame shown (null unless playing). */
  get latency() { return latency(); },
  /** The live target the page keeps to (seconds from capture to screen). */
  get target() { return liveTarget(); },
  /** The page follows the live target (the user has not paused or seeked away). */
  get following() { return st.keeper.following; },
  /** The playlist advertises low-latency parts and hls.js plays them. */
  get lowLatency() { return Boolean(st.details && st.details.partTarget); },
  /** The /markers/events stream is connected (markers are pushed, not polled). */
  get eventsOpen() { return st.eventsOpen; },
  windowRange,
  markers: () => st.markers.items.map((m) => ({
    id: m.id,
    time: m.time,
    text: m.text,
    program_date_time: m.pdt,
    frame: m.frame,
    timecode: m.timecode,
    source: m.source,
    state: locate(m.pdtMs).where,
  })),
  markerPlayerTime: (id) => (st.markers.get(id) ? markerPlayerTime(st.markers.get(id)) : null),
  locate,
  seekToMarker,
  goLive,
};

async function start() {
  const Hls = window.Hls;
  if (Hls && Hls.isSupported()) startHlsJs(Hls);
  else if (el.video.canPlayType('application/vnd.apple.mpegurl')) startNative();
  else {
    st.fatal = 'unsupported';
    showOverlay('This browser cannot play HLS (no Media Source Extensions).');
  }
  pollHealth();
  render();
  // Paused, the video fires no events while the live edge moves on: refresh the state anyway.
  setInterval(render, 1000);
  setInterval(keepLive, KEEP_LIVE_MS);
  // Markers need the rate for their timecodes: read it first (once; it is fixed for the run).
  st.stream = await loadStream();
  st.rate = frameRateOf(st.stream);
  if (!st.rate) console.warn(`${STREAM_URL} unavailable: timecodes assume ${FALLBACK_RATE.num} fps`);
  await pollMarkers();
  subscribeMarkers();
}

start();
