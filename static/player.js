// Player page: plays the live HLS playlist with the vendored hls.js, lists timeline markers
// from /markers, draws them on a DVR seek bar and seeks to a marker's exact frame.
//
// Clock mapping (README "Clocks", docs/spec.md P1): a marker carries its frame's wall-clock instant
// (program_date_time). hls.js knows, for every fragment of the playlist, its EXT-X-PROGRAM-DATE-TIME
// and where it sits on the media element's timeline, so
//     currentTime = frag.start + (date - frag.programDateTime) / 1000
// (hls.js #171/#5356). Never sequence x duration. Half a frame is added so the decoder shows the
// marker's frame and not the one before it (a PDT has millisecond precision).
(() => {
  'use strict';

  const PLAYLIST = document.querySelector('meta[name="hls-playlist"]').content;
  const MARKERS_URL = '/markers';
  const HEALTH_URL = '/healthz';
  const MARKER_POLL_MS = 2000;
  const HEALTH_POLL_MS = 5000;
  const MAX_ROWS = 500;
  const DEFAULT_FPS = 30;

  const $ = (id) => document.getElementById(id);
  const el = {
    video: $('video'),
    state: $('state'),
    play: $('play'),
    bigPlay: $('big-play'),
    overlay: $('overlay'),
    seek: $('seekbar'),
    buffered: $('buffered'),
    played: $('played'),
    thumb: $('thumb'),
    ticks: $('ticks'),
    hover: $('hover'),
    windowStart: $('window-start'),
    windowEnd: $('window-end'),
    clock: $('clock'),
    goLive: $('go-live'),
    ended: $('ended-banner'),
    tbody: document.querySelector('#markers tbody'),
    empty: $('markers-empty'),
    count: $('marker-count'),
    health: $('health'),
  };

  const st = {
    hls: null,
    native: false,          // Safari's own HLS (no MediaSource): map through getStartDate()
    details: null,          // hls.js LevelDetails of the playing level
    ended: false,           // the playlist carries EXT-X-ENDLIST
    markers: [],            // oldest first: {id, time, text, pdt, pdtMs, row, tick}
    byId: new Map(),
    lastTime: null,         // newest marker time seen: the next poll's ts_start
    selected: null,         // id of the marker last jumped to
    refine: null,           // {dateMs, sn}: re-map once that fragment is buffered
    scrub: null,            // fraction of the window while the user drags the seek bar
    frameDeltas: [],        // recent presented-frame intervals, for the frame rate
    fps: DEFAULT_FPS,
    fatal: null,
    finalPollDone: false,   // one last /markers poll after EXT-X-ENDLIST
  };

  // ---- formatting ----------------------------------------------------------------------------
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  function fmtStreamTime(sec) {
    const ms = Math.max(0, Math.round(sec * 1000));
    const h = Math.floor(ms / 3600000);
    const m = Math.floor(ms / 60000) % 60;
    const s = Math.floor(ms / 1000) % 60;
    return `${pad(h)}:${pad(m)}:${pad(s)}.${pad(ms % 1000, 3)}`;
  }
  function fmtDuration(sec) {
    const s = Math.max(0, Math.round(sec));
    const m = Math.floor(s / 60);
    return m >= 60 ? `${Math.floor(m / 60)}:${pad(m % 60)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
  }
  const fmtWall = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
  /**
   * HH:MM:SS:FF like the picture's own timecode overlay: FF is the frame within the second. A
   * marker's time is exactly frame/fps, so the epsilon only absorbs floating-point error.
   */
  function fmtTimecode(sec, fps) {
    const whole = Math.floor(sec + 1e-9);
    const ff = Math.min(Math.ceil(fps) - 1, Math.floor((sec - whole) * fps + 1e-6));
    const h = Math.floor(whole / 3600);
    return `${pad(h)}:${pad(Math.floor(whole / 60) % 60)}:${pad(whole % 60)}:${pad(Math.max(0, ff))}`;
  }
  /** The measured frame rate, snapped to an integer when it is one. */
  const displayFps = () => (Math.abs(st.fps - Math.round(st.fps)) < 0.05 ? Math.round(st.fps) : st.fps);

  // ---- the stream's window and the clock mapping ----------------------------------------------
  function targetDuration() {
    return (st.details && st.details.targetduration) || 2;
  }

  /** The seekable window on the media element's timeline: {start, end}, or null. */
  function windowRange() {
    if (st.native) {
      const s = el.video.seekable;
      return s.length ? { start: s.start(0), end: s.end(s.length - 1) } : null;
    }
    const frags = st.details && st.details.fragments;
    if (!frags || !frags.length) return null;
    const last = frags[frags.length - 1];
    return { start: frags[0].start, end: last.start + last.duration };
  }

  /**
   * Where a wall-clock instant (ms since the epoch) is on the media timeline:
   * {where: 'in', t, sn} inside a fragment of the playlist, 'before' the window (expired),
   * 'after' it (not published yet), or 'unknown' (no playlist yet).
   */
  function locate(dateMs) {
    if (st.native) {
      const start = el.video.getStartDate ? el.video.getStartDate().getTime() : NaN;
      const w = windowRange();
      if (!Number.isFinite(start) || !w) return { where: 'unknown' };
      const t = (dateMs - start) / 1000;
      if (t < w.start) return { where: 'before' };
      if (t >= w.end) return { where: 'after' };
      return { where: 'in', t, sn: null };
    }
    const frags = st.details && st.details.fragments;
    if (!frags || !frags.length) return { where: 'unknown' };
    for (let i = frags.length - 1; i >= 0; i--) {
      const f = frags[i];
      if (f.programDateTime === null || f.programDateTime === undefined) continue;
      if (dateMs < f.programDateTime) continue;
      const offset = (dateMs - f.programDateTime) / 1000;
      if (offset < f.duration) return { where: 'in', t: f.start + offset, sn: f.sn };
      return { where: i === frags.length - 1 ? 'after' : 'before' };
    }
    return { where: 'before' };
  }

  /** Half a frame: lands inside the marker's frame, never on the one before. */
  const halfFrame = () => 0.5 / st.fps;

  /** Player time of a marker's frame, or null when it is not in the playlist's window. */
  function markerPlayerTime(m) {
    const loc = locate(m.pdtMs);
    return loc.where === 'in' ? loc.t + halfFrame() : null;
  }

  // ---- frame rate, from the frames the browser actually presents ------------------------------
  function watchFrames() {
    const v = el.video;
    if (!('requestVideoFrameCallback' in HTMLVideoElement.prototype)) return;
    let last = null;
    const onFrame = (_now, meta) => {
      if (last && meta.presentedFrames === last.presentedFrames + 1) {
        const d = meta.mediaTime - last.mediaTime;
        if (d > 1 / 250 && d < 0.25) {
          st.frameDeltas.push(d);
          if (st.frameDeltas.length > 31) st.frameDeltas.shift();
          const sorted = [...st.frameDeltas].sort((a, b) => a - b);
          const before = displayFps();
          st.fps = 1 / sorted[sorted.length >> 1];
          if (displayFps() !== before) refreshTimecodes();
        }
      }
      last = meta;
      v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
  }

  // ---- seeking --------------------------------------------------------------------------------
  function seekTo(t) {
    const w = windowRange();
    if (w) t = Math.min(Math.max(t, w.start), w.end - 0.05);
    el.video.currentTime = t;
    render();
  }

  function seekToMarker(id) {
    const m = st.byId.get(id);
    if (!m) return false;
    const loc = locate(m.pdtMs);
    if (loc.where !== 'in') return false;
    st.selected = id;
    st.refine = loc.sn === null ? null : { dateMs: m.pdtMs, sn: loc.sn };
    seekTo(loc.t + halfFrame());
    updateMarkerClasses();
    return true;
  }

  function goLive() {
    const h = st.hls;
    const w = windowRange();
    let t = h && Number.isFinite(h.liveSyncPosition) ? h.liveSyncPosition : null;
    if (t === null && w) t = w.end - 3 * targetDuration();
    if (t !== null) seekTo(t);
    el.video.play().catch(() => {});
  }

  /**
   * Seconds behind the target live position (0 when at it). The live edge is the playlist's end
   * plus the time since that playlist was loaded (what hls.js estimates too), computed here
   * because hls.latency only updates while playing.
   */
  function behindLive() {
    const h = st.hls;
    const w = windowRange();
    if (!w) return 0;
    const age = st.details && Number.isFinite(st.details.age) ? st.details.age : 0;
    const latency = w.end + age - el.video.currentTime;
    const target = h && Number.isFinite(h.targetLatency) ? h.targetLatency : 3 * targetDuration();
    return Math.max(0, latency - target);
  }

  // ---- markers --------------------------------------------------------------------------------
  function addMarker(raw) {
    if (st.byId.has(raw.id)) return;
    const pdtMs = Date.parse(raw.program_date_time);
    if (!Number.isFinite(pdtMs) || !Number.isFinite(raw.time)) return;
    const m = { id: raw.id, time: raw.time, text: String(raw.text), pdt: raw.program_date_time, pdtMs };
    m.row = buildRow(m);
    st.markers.push(m);
    st.byId.set(m.id, m);
    el.tbody.prepend(m.row);  // newest first
    while (st.markers.length > MAX_ROWS) {
      const old = st.markers.shift();
      st.byId.delete(old.id);
      old.row.remove();
      if (old.tick) old.tick.remove();
    }
    if (st.lastTime === null || m.time > st.lastTime) st.lastTime = m.time;
  }

  function buildRow(m) {
    const tr = document.createElement('tr');
    tr.className = 'marker';
    tr.dataset.id = String(m.id);
    const cell = (cls, text) => {
      const td = document.createElement('td');
      td.className = cls;
      const span = document.createElement('span');
      span.className = 'cell';
      span.textContent = text;
      td.append(span);
      return td;
    };
    const textTd = document.createElement('td');
    textTd.className = 'text';
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'jump';
    btn.textContent = m.text;
    textTd.append(btn);
    const time = cell('time', fmtTimecode(m.time, displayFps()));
    time.title = `${fmtStreamTime(m.time)} of stream time`;
    tr.append(cell('num', String(m.id)), time, textTd, cell('wall', fmtWall(m.pdtMs)));
    tr.addEventListener('click', () => seekToMarker(m.id));
    return tr;
  }

  function refreshTimecodes() {
    for (const m of st.markers) {
      m.row.querySelector('.time .cell').textContent = fmtTimecode(m.time, displayFps());
    }
  }

  function markerState(m) {
    return locate(m.pdtMs).where;
  }

  /** Classes of table rows and the seek bar's ticks, from where each marker is now. */
  function updateMarkerClasses() {
    const w = windowRange();
    const span = w ? w.end - w.start : 0;
    for (const m of st.markers) {
      const loc = locate(m.pdtMs);
      const where = loc.where;
      m.row.classList.toggle('out', where === 'before');
      m.row.classList.toggle('pending', where === 'after' || where === 'unknown');
      m.row.classList.toggle('selected', m.id === st.selected);
      const btn = m.row.querySelector('.jump');
      btn.disabled = where !== 'in';
      btn.title = where === 'in' ? `Jump to ${m.text}` : where === 'before'
        ? 'Outside the window: this part of the stream is no longer available'
        : 'Not published yet: available in a few seconds';
      if (where === 'in' && span > 0) {
        if (!m.tick) {
          m.tick = document.createElement('div');
          m.tick.className = 'tick';
          m.tick.title = `${m.text} · ${fmtTimecode(m.time, displayFps())}`;
          m.tick.addEventListener('pointerdown', (e) => { e.stopPropagation(); });
          m.tick.addEventListener('click', (e) => { e.stopPropagation(); seekToMarker(m.id); });
          el.ticks.append(m.tick);
        }
        m.tick.style.left = `${((loc.t - w.start) / span) * 100}%`;
        m.tick.classList.toggle('selected', m.id === st.selected);
      } else if (m.tick) {
        m.tick.remove();
        m.tick = null;
      }
    }
    el.count.textContent = String(st.markers.length);
    el.empty.hidden = st.markers.length > 0;
  }

  async function pollMarkers() {
    try {
      const q = st.lastTime === null ? '' : `?ts_start=${encodeURIComponent(String(st.lastTime))}`;
      const res = await fetch(MARKERS_URL + q, { cache: 'no-store' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = await res.json();
      if (Array.isArray(body.markers) && body.markers.length) {
        body.markers.forEach(addMarker);
        updateMarkerClasses();
      }
    } catch (_) {
      // The server may be restarting; the next poll tries again.
    }
    // After the stream ended one last poll collects any final marker.
    if (!st.ended || !st.finalPollDone) {
      if (st.ended) st.finalPollDone = true;
      setTimeout(pollMarkers, MARKER_POLL_MS);
    }
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

  // ---- rendering ------------------------------------------------------------------------------
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
      const live = behind < Math.max(1.5, targetDuration()) && !v.paused;
      setPill(live ? 'live' : 'behind', live ? 'Live' : `Behind live · ${fmtDuration(behind)}`);
      el.goLive.disabled = live;
    }
    el.goLive.hidden = st.ended;
    el.ended.hidden = !st.ended;
    el.play.classList.toggle('paused', v.paused);
    el.play.setAttribute('aria-label', v.paused ? 'Play' : 'Pause');

    // Seek bar.
    if (w && w.end > w.start) {
      const span = w.end - w.start;
      const pos = st.scrub !== null ? w.start + st.scrub * span : v.currentTime;
      const frac = Math.min(1, Math.max(0, (pos - w.start) / span));
      el.played.style.width = `${frac * 100}%`;
      el.thumb.style.left = `${frac * 100}%`;
      let bufEnd = pos;
      for (let i = 0; i < v.buffered.length; i++) {
        if (v.buffered.start(i) <= pos + 0.1 && v.buffered.end(i) >= pos) bufEnd = v.buffered.end(i);
      }
      el.buffered.style.width = `${Math.min(1, Math.max(0, (bufEnd - w.start) / span)) * 100}%`;
      el.seek.setAttribute('aria-valuemin', w.start.toFixed(3));
      el.seek.setAttribute('aria-valuemax', w.end.toFixed(3));
      el.seek.setAttribute('aria-valuenow', pos.toFixed(3));
      el.seek.setAttribute('aria-valuetext', `${fmtDuration(w.end - pos)} behind the live edge`);
      el.windowStart.textContent = `−${fmtDuration(span)}`;
      el.windowEnd.textContent = st.ended ? 'end of stream' : 'live edge';
    }

    // Wall clock of the picture.
    const date = st.hls ? st.hls.playingDate : (v.getStartDate && Number.isFinite(v.getStartDate().getTime())
      ? new Date(v.getStartDate().getTime() + v.currentTime * 1000) : null);
    el.clock.textContent = date ? fmtWall(date.getTime()) : '--:--:--';
  }

  function showOverlay(text) {
    el.overlay.textContent = text || '';
    el.overlay.hidden = !text;
  }

  function markEnded() {
    if (st.ended) return;
    st.ended = true;
    updateMarkerClasses();
    render();
  }

  // ---- seek bar interaction -------------------------------------------------------------------
  function fractionAt(clientX) {
    const r = el.seek.getBoundingClientRect();
    return r.width > 0 ? Math.min(1, Math.max(0, (clientX - r.left) / r.width)) : 0;
  }
  el.seek.addEventListener('pointerdown', (e) => {
    if (!windowRange()) return;
    el.seek.setPointerCapture(e.pointerId);
    st.scrub = fractionAt(e.clientX);
    render();
  });
  el.seek.addEventListener('pointermove', (e) => {
    const w = windowRange();
    if (!w) return;
    const f = fractionAt(e.clientX);
    if (st.scrub !== null) st.scrub = f;
    const t = w.start + f * (w.end - w.start);
    el.hover.hidden = false;
    el.hover.style.left = `${f * 100}%`;
    el.hover.textContent = `−${fmtDuration(w.end - t)}`;
    if (st.scrub !== null) render();
  });
  el.seek.addEventListener('pointerleave', () => { el.hover.hidden = true; });
  const endScrub = () => {
    const w = windowRange();
    if (st.scrub === null) return;
    const f = st.scrub;
    st.scrub = null;
    if (w) seekTo(w.start + f * (w.end - w.start));
  };
  el.seek.addEventListener('pointerup', endScrub);
  el.seek.addEventListener('pointercancel', () => { st.scrub = null; render(); });
  el.seek.addEventListener('keydown', (e) => {
    const w = windowRange();
    if (!w) return;
    const step = e.shiftKey ? 30 : 5;
    const keys = {
      ArrowLeft: () => seekTo(el.video.currentTime - step),
      ArrowRight: () => seekTo(el.video.currentTime + step),
      Home: () => seekTo(w.start),
      End: () => goLive(),
    };
    if (keys[e.key]) {
      e.preventDefault();
      keys[e.key]();
    }
  });

  const togglePlay = () => {
    if (el.video.paused) el.video.play().catch(() => { el.bigPlay.hidden = false; });
    else el.video.pause();
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

  // ---- hls.js ---------------------------------------------------------------------------------
  function startHlsJs() {
    const hls = new Hls({
      // The seekable range is the DVR window (hls.js #4870); keep liveMaxLatencyDurationCount at
      // its default (Infinity): a finite value makes hls.js jump back to live after a seek into
      // the window (hls.js #6934).
      liveDurationInfinity: true,
      backBufferLength: 150,
      lowLatencyMode: false,
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
      updateMarkerClasses();
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
      const t = loc.t + halfFrame();
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
    el.video.addEventListener('loadedmetadata', () => { updateMarkerClasses(); render(); });
    el.video.addEventListener('durationchange', () => {
      if (Number.isFinite(el.video.duration)) markEnded();
    });
    setInterval(updateMarkerClasses, 2000);
  }

  if (window.Hls && Hls.isSupported()) startHlsJs();
  else if (el.video.canPlayType('application/vnd.apple.mpegurl')) startNative();
  else {
    st.fatal = 'unsupported';
    showOverlay('This browser cannot play HLS (no Media Source Extensions).');
  }
  watchFrames();
  pollMarkers();
  pollHealth();
  render();
  // Paused, the video fires no events while the live edge moves on: refresh the state anyway.
  setInterval(render, 1000);

  // A small API for the end-to-end test and for debugging from the console.
  window.hlsPlayer = {
    get hls() { return st.hls; },
    get fps() { return st.fps; },
    get ended() { return st.ended; },
    get selected() { return st.selected; },
    windowRange,
    markers: () => st.markers.map((m) => ({ id: m.id, time: m.time, text: m.text, program_date_time: m.pdt, state: markerState(m) })),
    markerPlayerTime: (id) => (st.byId.has(id) ? markerPlayerTime(st.byId.get(id)) : null),
    locate,
    seekToMarker,
    goLive,
  };
})();
