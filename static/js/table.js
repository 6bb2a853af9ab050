// The marker table: one row per marker, newest first. Holds only its DOM; the page tells it
// which markers exist and where each one is (in the window, expired, pending).

import { fmtStreamTime } from './clock.js';

const fmtWall = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });

export class MarkerTable {
  /** `el`: {tbody, empty, count}; `jump(id)` is called when a row is clicked. */
  constructor(el, jump) {
    this.el = el;
    this.jump = jump;
    this.rows = new Map(); // marker id -> <tr>
  }

  /** Adds rows for `added` (oldest first) on top and removes those of `removed`. */
  update({ added, removed }) {
    for (const m of removed) {
      const tr = this.rows.get(m.id);
      if (tr) tr.remove();
      this.rows.delete(m.id);
    }
    for (const m of added) {
      const tr = this.buildRow(m);
      this.rows.set(m.id, tr);
      // Newest first: before the first row with a smaller id.
      let next = null;
      for (const row of this.el.tbody.children) {
        if (Number(row.dataset.id) < m.id) { next = row; break; }
      }
      this.el.tbody.insertBefore(tr, next);
    }
  }

  buildRow(m) {
    const tr = document.createElement('tr');
    tr.className = 'marker';
    tr.dataset.id = String(m.id);
    tr.dataset.frame = String(m.frame);
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
    if (m.source) btn.title = `from ${m.source}`;
    textTd.append(btn);
    const time = cell('time', m.timecode);
    time.title = `frame ${m.frame}, ${fmtStreamTime(m.time)} of stream time`;
    tr.append(cell('num', String(m.id)), time, textTd, cell('wall', fmtWall(m.pdtMs)));
    tr.addEventListener('click', () => this.jump(m.id));
    return tr;
  }

  /** Row classes and buttons: `where(m)` is 'in', 'before', 'after' or 'unknown'. */
  render(markers, where, selected) {
    for (const m of markers) {
      const tr = this.rows.get(m.id);
      if (!tr) continue;
      const w = where(m);
      tr.classList.toggle('out', w === 'before');
      tr.classList.toggle('pending', w === 'after' || w === 'unknown');
      tr.classList.toggle('selected', m.id === selected);
      const btn = tr.querySelector('.jump');
      btn.disabled = w !== 'in';
      btn.title = w === 'in' ? `Jump to ${m.text}` : w === 'before'
        ? 'Outside the window: this part of the stream is no longer available'
        : 'Not published yet: available in a few seconds';
    }
    this.el.count.textContent = String(markers.length);
    this.el.empty.hidden = markers.length > 0;
  }
}

export { fmtWall };
