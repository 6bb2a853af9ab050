// Markers from `GET /markers`: parsing and merging into one bounded list (pure: no DOM).

import { frameOfTime, timecodeOfFrame, formatTimecode } from './clock.js';

/** `/markers` on a one-stream server, `/streams/NAME/markers` on one with several (the page's
 * meta tag; `/markers` where there is no page, as in the unit tests). */
export const MARKERS_URL =
  (typeof document !== 'undefined' && document.querySelector('meta[name="hls-markers"]')?.content) ||
  '/markers';

/**
 * One marker of the API as the page keeps it: {id, time, text, pdt, pdtMs, frame, timecode}, or
 * null when it is unusable. `timecode` is the server's own when the JSON carries one, otherwise
 * it is computed from the frame slot with the stream's exact rate, as the burnt-in overlay does.
 */
export function parseMarker(raw, rate) {
  if (!raw || typeof raw !== 'object') return null;
  const pdtMs = Date.parse(raw.program_date_time);
  if (!Number.isSafeInteger(raw.id) || !Number.isFinite(raw.time) || raw.time < 0 || !Number.isFinite(pdtMs)) {
    return null;
  }
  const frame = frameOfTime(raw.time, rate);
  const timecode = typeof raw.timecode === 'string' && raw.timecode
    ? raw.timecode
    : formatTimecode(timecodeOfFrame(frame, rate));
  return {
    id: raw.id,
    time: raw.time,
    text: String(raw.text),
    pdt: raw.program_date_time,
    pdtMs,
    frame,
    timecode,
    source: typeof raw.source === 'string' ? raw.source : '',
    duration: Number.isFinite(raw.duration) && raw.duration >= 0 ? raw.duration : 0,
  };
}

/**
 * Query of the next poll: only markers accepted after the newest one held. By id, not by time:
 * a detector may post a marker for a frame older than the newest marker.
 */
export function markersQuery(lastId) {
  return lastId === null ? '' : `?after_id=${lastId}`;
}

/** The markers the page holds, oldest first, at most `max` of them. */
export class MarkerList {
  constructor(max = 500) {
    this.max = max;
    this.items = [];
    this.byId = new Map();
    /** Highest marker id seen (also of markers since dropped): the next poll's after_id. */
    this.lastId = null;
  }

  get length() {
    return this.items.length;
  }

  get(id) {
    return this.byId.get(id);
  }

  /**
   * Merges a poll's markers: unknown ids are added in id order, known ones and malformed ones
   * are ignored, and the oldest are dropped beyond `max`. Returns {added, removed}: the
   * markers to show and those to take away.
   */
  merge(rawMarkers, rate) {
    const added = [];
    for (const raw of Array.isArray(rawMarkers) ? rawMarkers : []) {
      const m = parseMarker(raw, rate);
      if (!m || this.byId.has(m.id)) continue;
      let i = this.items.length;
      while (i > 0 && this.items[i - 1].id > m.id) i--;
      this.items.splice(i, 0, m);
      this.byId.set(m.id, m);
      added.push(m);
      if (this.lastId === null || m.id > this.lastId) this.lastId = m.id;
    }
    const removed = this.items.length > this.max ? this.items.splice(0, this.items.length - this.max) : [];
    for (const m of removed) this.byId.delete(m.id);
    // A marker both added and dropped by this merge was never shown: report it in neither.
    const fresh = new Set(added);
    return {
      added: added.filter((m) => this.byId.has(m.id)),
      removed: removed.filter((m) => !fresh.has(m)),
    };
  }
}
