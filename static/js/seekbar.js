// The DVR seek bar: position, buffered range, window labels, marker ticks, and the pointer and
// keyboard gestures on it. It holds only its own DOM and the fraction under a drag in progress;
// everything it shows comes from the page (main.js) through render() and syncTicks().

import { fmtDuration } from './clock.js';

export class SeekBar {
  /**
   * `el`: {seek, buffered, played, thumb, ticks, hover, windowStart, windowEnd};
   * `on`: {window() -> {start, end} | null, currentTime() -> s, seek(t), goLive(), jump(id),
   * changed()} (changed: a drag moved, render again).
   */
  constructor(el, on) {
    this.el = el;
    this.on = on;
    this.scrub = null; // fraction of the window while the user drags
    this.ticks = new Map(); // marker id -> tick element
    this.listen();
  }

  /** The position to show: under the pointer while dragging, else the video's. */
  position(win, currentTime) {
    return this.scrub !== null && win ? win.start + this.scrub * (win.end - win.start) : currentTime;
  }

  /** Draws the bar for window `win`, the picture at `pos` and the `buffered` TimeRanges. */
  render(win, pos, buffered, ended) {
    const el = this.el;
    if (!win || !(win.end > win.start)) return;
    const span = win.end - win.start;
    const frac = Math.min(1, Math.max(0, (pos - win.start) / span));
    el.played.style.width = `${frac * 100}%`;
    el.thumb.style.left = `${frac * 100}%`;
    let bufEnd = pos;
    for (let i = 0; i < buffered.length; i++) {
      if (buffered.start(i) <= pos + 0.1 && buffered.end(i) >= pos) bufEnd = buffered.end(i);
    }
    el.buffered.style.width = `${Math.min(1, Math.max(0, (bufEnd - win.start) / span)) * 100}%`;
    el.seek.setAttribute('aria-valuemin', win.start.toFixed(3));
    el.seek.setAttribute('aria-valuemax', win.end.toFixed(3));
    el.seek.setAttribute('aria-valuenow', pos.toFixed(3));
    el.seek.setAttribute('aria-valuetext', `${fmtDuration(win.end - pos)} behind the live edge`);
    el.windowStart.textContent = `−${fmtDuration(span)}`;
    el.windowEnd.textContent = ended ? 'end of stream' : 'live edge';
  }

  /**
   * Makes the ticks exactly `entries`: [{id, left (fraction of the window), title, selected}].
   * Ticks of markers not listed are removed.
   */
  syncTicks(entries) {
    const keep = new Set();
    for (const e of entries) {
      keep.add(e.id);
      let tick = this.ticks.get(e.id);
      if (!tick) {
        tick = document.createElement('div');
        tick.className = 'tick';
        tick.dataset.id = String(e.id);
        tick.addEventListener('pointerdown', (ev) => { ev.stopPropagation(); });
        tick.addEventListener('click', (ev) => { ev.stopPropagation(); this.on.jump(e.id); });
        this.el.ticks.append(tick);
        this.ticks.set(e.id, tick);
      }
      if (tick.title !== e.title) tick.title = e.title;
      tick.style.left = `${e.left * 100}%`;
      tick.classList.toggle('selected', e.selected);
    }
    for (const [id, tick] of this.ticks) {
      if (!keep.has(id)) {
        tick.remove();
        this.ticks.delete(id);
      }
    }
  }

  fractionAt(clientX) {
    const r = this.el.seek.getBoundingClientRect();
    return r.width > 0 ? Math.min(1, Math.max(0, (clientX - r.left) / r.width)) : 0;
  }

  listen() {
    const { seek, hover } = this.el;
    const on = this.on;
    seek.addEventListener('pointerdown', (e) => {
      if (!on.window()) return;
      seek.setPointerCapture(e.pointerId);
      this.scrub = this.fractionAt(e.clientX);
      on.changed();
    });
    seek.addEventListener('pointermove', (e) => {
      const w = on.window();
      if (!w) return;
      const f = this.fractionAt(e.clientX);
      if (this.scrub !== null) this.scrub = f;
      const t = w.start + f * (w.end - w.start);
      hover.hidden = false;
      hover.style.left = `${f * 100}%`;
      hover.textContent = `−${fmtDuration(w.end - t)}`;
      if (this.scrub !== null) on.changed();
    });
    seek.addEventListener('pointerleave', () => { hover.hidden = true; });
    seek.addEventListener('pointerup', () => {
      if (this.scrub === null) return;
      const w = on.window();
      const f = this.scrub;
      this.scrub = null;
      if (w) on.seek(w.start + f * (w.end - w.start));
      else on.changed();
    });
    seek.addEventListener('pointercancel', () => { this.scrub = null; on.changed(); });
    seek.addEventListener('keydown', (e) => {
      const w = on.window();
      if (!w) return;
      const step = e.shiftKey ? 30 : 5;
      const keys = {
        ArrowLeft: () => on.seek(on.currentTime() - step),
        ArrowRight: () => on.seek(on.currentTime() + step),
        Home: () => on.seek(w.start),
        End: () => on.goLive(),
      };
      if (keys[e.key]) {
        e.preventDefault();
        keys[e.key]();
      }
    });
  }
}
