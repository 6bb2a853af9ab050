// The page's clocks, as pure functions (no DOM, no globals): tested by tests/js/.
//
// Stream time and timecodes follow the server exactly (src/time.rs, src/overlay.rs):
//   - frame slot n is at floor(n * 90000 * den / num) ticks of the 90 kHz stream clock,
//   - its timecode HH:MM:SS:FF has the whole seconds of that instant and FF = n minus the first
//     slot of that second (not drop-frame: at 30000/1001 a second holds 29 or 30 frames).
// Integer arithmetic is done in BigInt so no rate or stream length can round it.
//
// The mapping from a wall-clock instant (a marker's program_date_time) to the media element's
// timeline goes through the playlist's fragments (README "Clocks", docs/spec.md P1):
//     currentTime = frag.start + (date - frag.programDateTime) / 1000
// never sequence x duration.

export const TICKS_PER_SEC = 90000;
const TICKS = 90000n;

/** An exact frame rate {num, den} (positive integers), e.g. {num: 30000, den: 1001}. */
export function frameRate(num, den) {
  if (!Number.isSafeInteger(num) || !Number.isSafeInteger(den) || num <= 0 || den <= 0) {
    throw new RangeError(`bad frame rate ${num}/${den}`);
  }
  return Object.freeze({ num, den });
}

/** The rate of a `/stream` body's `frame_rate`, or null when it is missing or malformed. */
export function frameRateOf(json) {
  try {
    return json && json.frame_rate ? frameRate(json.frame_rate.num, json.frame_rate.den) : null;
  } catch (_) {
    return null;
  }
}

export const fpsOf = (rate) => rate.num / rate.den;

/** Seconds of one frame. */
export const frameDuration = (rate) => rate.den / rate.num;

/** Half a frame in seconds: added to a frame's start so a seek lands inside it. */
export const halfFrame = (rate) => 0.5 * frameDuration(rate);

const big = (n) => BigInt(n);
const ceilDiv = (a, b) => (a + b - 1n) / b;

/** 90 kHz ticks of frame slot `n` (a BigInt), rounded down like FrameRate::pts_of. */
export function ticksOfFrame(n, rate) {
  return (big(n) * TICKS * big(rate.den)) / big(rate.num);
}

/** The first frame slot whose instant is at or after `ticks` (FrameRate::first_frame_at_or_after). */
export function firstFrameAtOrAfter(ticks, rate) {
  const t = big(ticks);
  // pts(m) = floor(m * 90000 * den / num) >= t  <=>  m * 90000 * den >= t * num (t is whole).
  let n = ceilDiv(t * big(rate.num), TICKS * big(rate.den));
  while (n > 0n && ticksOfFrame(n - 1n, rate) >= t) n -= 1n;
  while (ticksOfFrame(n, rate) < t) n += 1n;
  return n;
}

/**
 * The frame slot of a marker's `time` (stream seconds). The server sends the slot's instant in
 * whole ticks divided by 90000, so rounding back to ticks is exact, and slots are at least one
 * tick apart at any rate up to 90 kHz.
 */
export function frameOfTime(sec, rate) {
  if (!Number.isFinite(sec) || sec < 0) throw new RangeError(`bad stream time ${sec}`);
  return Number(firstFrameAtOrAfter(BigInt(Math.round(sec * TICKS_PER_SEC)), rate));
}

/** The timecode of frame slot `n`: {hours, minutes, seconds, frames} as Timecode::from_frame. */
export function timecodeOfFrame(n, rate) {
  const secs = ticksOfFrame(n, rate) / TICKS;
  const first = firstFrameAtOrAfter(secs * TICKS, rate);
  return {
    hours: Number(secs / 3600n),
    minutes: Number((secs / 60n) % 60n),
    seconds: Number(secs % 60n),
    frames: Number(big(n) - first),
  };
}

/** `HH:MM:SS:FF`: each field at least two digits, more when it needs them (hours never wrap). */
export function formatTimecode(tc) {
  return [tc.hours, tc.minutes, tc.seconds, tc.frames].map((v) => String(v).padStart(2, '0')).join(':');
}

/** The timecode text of the frame at stream time `sec`. */
export const timecodeOfTime = (sec, rate) => formatTimecode(timecodeOfFrame(frameOfTime(sec, rate), rate));

// ---- the playlist window and the wall-clock mapping -------------------------------------------

/**
 * The seekable window {start, end} on the media timeline of hls.js fragments
 * ([{start, duration, programDateTime, sn}], oldest first), or null without any.
 */
export function windowOfFragments(frags) {
  if (!frags || !frags.length) return null;
  const last = frags[frags.length - 1];
  return { start: frags[0].start, end: last.start + last.duration };
}

/**
 * Where a wall-clock instant (ms since the epoch) is on the media timeline of `frags`:
 * {where: 'in', t, sn} inside a fragment, 'before' the window (expired), 'after' it (not
 * published yet), or 'unknown' (no playlist yet).
 */
export function locateInFragments(dateMs, frags) {
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

/**
 * The same for a browser's own HLS (Safari): the element's start date (ms, from
 * getStartDate()) is the wall clock of currentTime 0; `win` is its seekable window.
 */
export function locateFromStartDate(dateMs, startDateMs, win) {
  if (!Number.isFinite(startDateMs) || !win) return { where: 'unknown' };
  const t = (dateMs - startDateMs) / 1000;
  if (t < win.start) return { where: 'before' };
  if (t >= win.end) return { where: 'after' };
  return { where: 'in', t, sn: null };
}

/** `t` kept inside the window (just short of its end, where there is no frame yet). */
export function clampToWindow(t, win) {
  return win ? Math.min(Math.max(t, win.start), win.end - 0.05) : t;
}

// ---- formatting -------------------------------------------------------------------------------

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** `HH:MM:SS.mmm` of stream seconds. */
export function fmtStreamTime(sec) {
  const ms = Math.max(0, Math.round(sec * 1000));
  const h = Math.floor(ms / 3600000);
  const m = Math.floor(ms / 60000) % 60;
  const s = Math.floor(ms / 1000) % 60;
  return `${pad(h)}:${pad(m)}:${pad(s)}.${pad(ms % 1000, 3)}`;
}

/** `M:SS`, or `H:MM:SS` from an hour on. */
export function fmtDuration(sec) {
  const s = Math.max(0, Math.round(sec));
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}:${pad(m % 60)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}
