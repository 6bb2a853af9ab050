// The tile page (`/` on a server with several streams): every stream of `GET /streams` as a
// live, muted, low-latency tile with its name, state and newest marker; a click opens the
// stream's own player (`/watch/NAME`). A stream that is down says why, and its tile starts
// playing again by itself once the stream is live.

const STREAMS_URL = '/streams';
const POLL_MS = 2000;

/** State names of `GET /streams` as the tiles show them. */
const STATES = {
  live: ['Live', 'pill-live'],
  starting: ['Starting', 'pill-connecting'],
  stalled: ['Stalled', 'pill-error'],
  ended: ['Ended', 'pill-ended'],
  restarting: ['Restarting', 'pill-error'],
  failed: ['Failed', 'pill-error'],
};

/** One tile per stream name. */
const tiles = new Map();

/** `s` seconds as "12 s", "4 min", "2 h" ago. */
export function ago(secs) {
  if (!(secs >= 0)) return '';
  if (secs < 90) return `${Math.round(secs)} s ago`;
  if (secs < 5400) return `${Math.round(secs / 60)} min ago`;
  return `${Math.round(secs / 3600)} h ago`;
}

/** The text of a tile's marker line for `entry` (a `GET /streams` element). */
export function markerLine(entry, nowMs) {
  const m = entry.newest_marker;
  if (!m) return 'No marker yet';
  const at = Date.parse(m.program_date_time);
  const when = Number.isFinite(at) ? ` · ${ago((nowMs - at) / 1000)}` : '';
  return `${m.text}${when}`;
}

/** Whether a stream in this state has a live edge to play (and to be behind). */
const isPlayable = (state) => state === 'live' || state === 'stalled';

/** The tile's one-line description of the picture: "1280x720 · 30 fps · 2.4 Mbit/s", and how
 * far behind live a viewer is while the stream plays (a stream that is down is behind nothing). */
export function detailLine(entry) {
  const parts = [];
  if (entry.resolution) parts.push(entry.resolution);
  if (entry.fps) parts.push(`${Number(entry.fps.toFixed(3))} fps`);
  if (entry.bitrate_bps) parts.push(`${(entry.bitrate_bps / 1e6).toFixed(1)} Mbit/s`);
  if (entry.latency_secs && isPlayable(entry.state)) parts.push(`${entry.latency_secs.toFixed(1)} s behind live`);
  return parts.join(' · ');
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function makeTile(entry) {
  const a = el('a', 'tile');
  a.href = entry.player;
  a.dataset.stream = entry.name;
  const wrap = el('div', 'tile-video');
  const video = el('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  video.setAttribute('aria-label', `${entry.name}, live`);
  const down = el('div', 'tile-down');
  down.hidden = true;
  wrap.append(video, down);
  const head = el('div', 'tile-head');
  const name = el('span', 'tile-name', entry.name);
  const pill = el('span', 'pill pill-connecting', 'Connecting…');
  head.append(name, pill);
  const detail = el('div', 'tile-detail');
  const marker = el('div', 'tile-marker');
  a.append(wrap, head, detail, marker);
  const tile = { a, video, down, pill, detail, marker, hls: null, entry };
  tiles.set(entry.name, tile);
  return tile;
}

/** Plays the tile's stream (again), low latency, muted. */
function attach(tile) {
  detach(tile);
  const url = tile.entry.playlist;
  const Hls = window.Hls;
  if (Hls && Hls.isSupported()) {
    const hls = new Hls({ lowLatencyMode: true, backBufferLength: 10, maxBufferLength: 6 });
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (data.fatal) {
        // Tried again at the next poll that finds the stream live.
        detach(tile);
      }
    });
    hls.loadSource(url);
    hls.attachMedia(tile.video);
    tile.hls = hls;
  } else if (tile.video.canPlayType('application/vnd.apple.mpegurl')) {
    tile.video.src = url;
    tile.hls = { destroy() { tile.video.removeAttribute('src'); tile.video.load(); } };
  }
  tile.video.play().catch(() => {});
}

function detach(tile) {
  if (tile.hls) {
    tile.hls.destroy();
    tile.hls = null;
  }
}

function update(tile, entry, nowMs) {
  tile.entry = entry;
  tile.a.href = entry.player;
  const [label, cls] = STATES[entry.state] ?? [entry.state, 'pill-connecting'];
  tile.pill.textContent = label;
  tile.pill.className = `pill ${cls}`;
  tile.a.dataset.state = entry.state;
  tile.detail.textContent = detailLine(entry);
  tile.marker.textContent = markerLine(entry, nowMs);
  const playable = isPlayable(entry.state);
  const why = entry.error ?? (entry.state === 'starting' ? 'Starting…' : label);
  tile.down.hidden = playable;
  tile.down.textContent = playable ? '' : why;
  if (playable && !tile.hls) attach(tile);
  if (!playable && entry.state !== 'ended') detach(tile);
}

async function poll() {
  const state = document.getElementById('state');
  try {
    const res = await fetch(STREAMS_URL, { cache: 'no-store' });
    if (!res.ok) throw new Error(`${STREAMS_URL}: HTTP ${res.status}`);
    const { streams } = await res.json();
    const now = Date.now();
    const grid = document.getElementById('tiles');
    const names = new Set(streams.map((s) => s.name));
    for (const [name, tile] of tiles) {
      if (!names.has(name)) {
        detach(tile);
        tile.a.remove();
        tiles.delete(name);
      }
    }
    for (const entry of streams) {
      const tile = tiles.get(entry.name) ?? makeTile(entry);
      grid.append(tile.a); // keeps the configuration's order
      update(tile, entry, now);
    }
    document.getElementById('tiles-empty').hidden = streams.length > 0;
    const live = streams.filter((s) => s.state === 'live').length;
    document.getElementById('count').textContent = `${streams.length} streams`;
    state.textContent = `${live} of ${streams.length} live`;
    state.className = `pill ${live === streams.length ? 'pill-live' : 'pill-behind'}`;
  } catch (e) {
    state.textContent = 'Server unreachable';
    state.className = 'pill pill-error';
    console.warn(e);
  }
}

if (typeof document !== 'undefined' && document.getElementById('tiles')) {
  poll();
  setInterval(poll, POLL_MS);
}
