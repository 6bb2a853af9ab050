// Unit tests of the player page's pure modules (static/js/clock.js, markers.js) with Node's
// built-in runner: node --test tests/js/
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  frameRate, frameRateOf, fpsOf, halfFrame, ticksOfFrame, firstFrameAtOrAfter, frameOfTime,
  timecodeOfFrame, formatTimecode, timecodeOfTime, windowOfFragments, locateInFragments,
  locateFromStartDate, clampToWindow, fmtStreamTime, fmtDuration,
} from '../../static/js/clock.js';
import { MarkerList, parseMarker, markersQuery } from '../../static/js/markers.js';

const R30 = frameRate(30, 1);
const NTSC = frameRate(30000, 1001);
const tc = (n, r) => formatTimecode(timecodeOfFrame(n, r));
/** A marker's `time` as the server writes it: the slot's whole ticks / 90000, as f64. */
const timeOf = (n, r) => Number(ticksOfFrame(n, r)) / 90000;

test('frame rates are exact fractions and bad ones are refused', () => {
  assert.equal(fpsOf(NTSC), 30000 / 1001);
  assert.equal(halfFrame(NTSC), 0.5 * 1001 / 30000);
  assert.equal(halfFrame(R30), 1 / 60);
  for (const [n, d] of [[0, 1], [30, 0], [-30, 1], [29.97, 1], [NaN, 1]]) {
    assert.throws(() => frameRate(n, d), RangeError, `${n}/${d}`);
  }
  assert.deepEqual(frameRateOf({ frame_rate: { num: 30000, den: 1001 } }), NTSC);
  assert.equal(frameRateOf({ fps: 29.97 }), null);
  assert.equal(frameRateOf({ frame_rate: { num: '30', den: 1 } }), null);
  assert.equal(frameRateOf(null), null);
});

test('ticks of a frame are floored like FrameRate::pts_of', () => {
  assert.equal(ticksOfFrame(1, NTSC), 3003n);
  assert.equal(ticksOfFrame(30000, NTSC), 1001n * 90000n);
  assert.equal(ticksOfFrame(1, frameRate(24000, 1001)), 3753n); // 3753.75 rounded down
  assert.equal(ticksOfFrame(7, R30), 21000n);
});

test('first frame at or after inverts ticks of a frame', () => {
  for (const r of [R30, NTSC, frameRate(25, 1), frameRate(24000, 1001), frameRate(60000, 1001)]) {
    for (let n = 0n; n < 3000n; n++) {
      const t = ticksOfFrame(n, r);
      assert.equal(firstFrameAtOrAfter(t, r), n);
      assert.equal(firstFrameAtOrAfter(t + 1n, r), n + 1n);
    }
  }
});

test('timecodes at 30 fps', () => {
  assert.equal(tc(0, R30), '00:00:00:00');
  assert.equal(tc(29, R30), '00:00:00:29');
  assert.equal(tc(30, R30), '00:00:01:00');
  assert.equal(tc(1799, R30), '00:00:59:29');
  assert.equal(tc(1800, R30), '00:01:00:00');
  assert.equal(tc(107999, R30), '00:59:59:29');
  assert.equal(tc(108000, R30), '01:00:00:00');
  assert.equal(tc(30 * 360000, R30), '100:00:00:00'); // hours never wrap, widen
});

test('timecodes at 30000/1001 count frames within each wall second, not drop-frame', () => {
  // Second 0 holds frames 0..29; second 1 starts at ceil(30000/1001) = 30.
  assert.equal(tc(29, NTSC), '00:00:00:29');
  assert.equal(tc(30, NTSC), '00:00:01:00');
  // Frame 1000 is at 33.3667 s; second 33 starts at frame ceil(33 * 29.97...) = 990.
  // (A rounded 30 fps would say :11 here: the old page's error.)
  assert.equal(tc(1000, NTSC), '00:00:33:10');
  // Frame 1799 is at 60.0267 s: it already opens minute 1 (second 59 started at frame 1769).
  assert.equal(tc(1798, NTSC), '00:00:59:29');
  // Second 33 holds only 29 frames (990..1018): FF never reaches 29 there.
  assert.equal(tc(1018, NTSC), '00:00:33:28');
  assert.equal(tc(1019, NTSC), '00:00:34:00');
  assert.equal(tc(1799, NTSC), '00:01:00:00');
  // 17982 frames are ten minutes of drop-frame timecode, but 599.9994 s of stream time.
  assert.equal(tc(17982, NTSC), '00:09:59:29');
  assert.equal(tc(17983, NTSC), '00:10:00:00');
  // One hour is 107892.1 frames.
  assert.equal(tc(107892, NTSC), '00:59:59:29');
  assert.equal(tc(107893, NTSC), '01:00:00:00');
  // Far out, BigInt keeps it exact: 1001 s is exactly 30000 frames.
  assert.equal(tc(30000 * 3600, NTSC), '1001:00:00:00');
});

test('the closed form agrees with counting frame by frame', () => {
  for (const r of [NTSC, R30, frameRate(24000, 1001), frameRate(60000, 1001), frameRate(25, 1)]) {
    let second = -1n;
    let ff = 0;
    for (let n = 0; n < 120000; n++) {
      const s = ticksOfFrame(n, r) / 90000n;
      if (s !== second) { second = s; ff = 0; } else ff++;
      const got = timecodeOfFrame(n, r);
      const secs = got.hours * 3600 + got.minutes * 60 + got.seconds;
      if (secs !== Number(s) || got.frames !== ff) {
        assert.fail(`${r.num}/${r.den} frame ${n}: got ${formatTimecode(got)}, want ${s} s + ${ff}`);
      }
    }
  }
});

test('a marker time maps back to its exact frame slot', () => {
  for (const r of [NTSC, R30, frameRate(24000, 1001), frameRate(60000, 1001)]) {
    for (let n = 0; n < 200000; n += 7) {
      const got = frameOfTime(timeOf(n, r), r);
      if (got !== n) assert.fail(`${r.num}/${r.den}: frame ${n} came back as ${got}`);
    }
  }
  // As the JSON carries them.
  assert.equal(frameOfTime(33.36666666666667, NTSC), 1000);
  assert.equal(frameOfTime(599.9994, NTSC), 17982);
  assert.equal(timecodeOfTime(33.36666666666667, NTSC), '00:00:33:10');
  assert.equal(timecodeOfTime(12.5, frameRate(30, 1)), '00:00:12:15');
  assert.throws(() => frameOfTime(-1, R30), RangeError);
  assert.throws(() => frameOfTime(NaN, R30), RangeError);
});

// ---- the wall-clock mapping -------------------------------------------------------------------

const T0 = Date.parse('2025-11-25T12:00:00.000Z');
const frags = [
  { sn: 10, start: 100, duration: 2, programDateTime: T0 },
  { sn: 11, start: 102, duration: 2, programDateTime: T0 + 2000 },
  // After a discontinuity: a gap of 5 s of wall clock.
  { sn: 12, start: 104, duration: 2.002, programDateTime: T0 + 9000 },
];

test('a PDT maps into the fragment that holds it', () => {
  assert.deepEqual(windowOfFragments(frags), { start: 100, end: 106.002 });
  assert.equal(windowOfFragments([]), null);
  assert.deepEqual(locateInFragments(T0, frags), { where: 'in', t: 100, sn: 10 });
  assert.deepEqual(locateInFragments(T0 + 3500, frags), { where: 'in', t: 103.5, sn: 11 });
  assert.deepEqual(locateInFragments(T0 + 10001, frags), { where: 'in', t: 105.001, sn: 12 });
  assert.deepEqual(locateInFragments(T0 - 1, frags), { where: 'before' });
  assert.deepEqual(locateInFragments(T0 + 5000, frags), { where: 'before' }); // in the gap
  assert.deepEqual(locateInFragments(T0 + 11002, frags), { where: 'after' });
  assert.deepEqual(locateInFragments(T0, []), { where: 'unknown' });
  assert.deepEqual(locateInFragments(T0, null), { where: 'unknown' });
  const noPdt = [{ sn: 1, start: 0, duration: 2, programDateTime: null }, ...frags];
  assert.deepEqual(locateInFragments(T0 + 1000, noPdt), { where: 'in', t: 101, sn: 10 });
});

test('a seek to a marker lands half a frame into its frame, inside the window', () => {
  const n = 1000;
  const pdt = T0 + 2000 + 1234; // inside sn 11
  const t = locateInFragments(pdt, frags).t + halfFrame(NTSC);
  assert.ok(Math.abs(t - (103.234 + 0.5 * 1001 / 30000)) < 1e-9);
  // The picture shown at t belongs to frame n: its slot is within (t - 1 frame, t].
  const slot = timeOf(n, NTSC);
  assert.ok(slot + halfFrame(NTSC) - slot < 1001 / 30000);
  const win = windowOfFragments(frags);
  assert.equal(clampToWindow(50, win), 100);
  assert.equal(clampToWindow(500, win), 106.002 - 0.05);
  assert.equal(clampToWindow(104, win), 104);
  assert.equal(clampToWindow(7, null), 7);
});

test('the native mapping goes through the start date', () => {
  const win = { start: 10, end: 40 };
  assert.deepEqual(locateFromStartDate(T0 + 20000, T0, win), { where: 'in', t: 20, sn: null });
  assert.deepEqual(locateFromStartDate(T0 + 5000, T0, win), { where: 'before' });
  assert.deepEqual(locateFromStartDate(T0 + 40000, T0, win), { where: 'after' });
  assert.deepEqual(locateFromStartDate(T0, NaN, win), { where: 'unknown' });
  assert.deepEqual(locateFromStartDate(T0, T0, null), { where: 'unknown' });
});

test('formatting', () => {
  assert.equal(fmtStreamTime(3723.0456), '01:02:03.046');
  assert.equal(fmtStreamTime(-1), '00:00:00.000');
  assert.equal(fmtDuration(59.4), '0:59');
  assert.equal(fmtDuration(125), '2:05');
  assert.equal(fmtDuration(3725), '1:02:05');
});

// ---- markers ----------------------------------------------------------------------------------

const raw = (id, n, r = NTSC, extra = {}) => ({
  id,
  time: timeOf(n, r),
  text: `Marker ${id}`,
  program_date_time: new Date(T0 + Math.round(timeOf(n, r) * 1000)).toISOString(),
  ...extra,
});

test('a marker gets its frame and the overlay timecode, or the server one when given', () => {
  const m = parseMarker(raw(3, 1000), NTSC);
  assert.equal(m.frame, 1000);
  assert.equal(m.timecode, '00:00:33:10');
  assert.equal(m.pdtMs, T0 + 33367);
  const given = parseMarker(raw(4, 1000, NTSC, { timecode: '00:00:33:10' }), R30);
  assert.equal(given.timecode, '00:00:33:10', 'the JSON timecode wins over a wrong rate');
  assert.equal(parseMarker(raw(4, 1000, NTSC, { timecode: '' }), NTSC).timecode, '00:00:33:10');
  for (const bad of [null, 7, {}, raw(1.5, 3), raw(5, 3, NTSC, { time: -1 }), raw(5, 3, NTSC, { time: 'x' }),
    raw(5, 3, NTSC, { program_date_time: 'yesterday' })]) {
    assert.equal(parseMarker(bad, NTSC), null, JSON.stringify(bad));
  }
});

test('merging markers: new ids in order, duplicates and junk ignored, bounded', () => {
  const list = new MarkerList(3);
  assert.equal(markersQuery(list.lastId), '');
  let c = list.merge([raw(1, 30), raw(2, 60)], NTSC);
  assert.deepEqual(c.added.map((m) => m.id), [1, 2]);
  assert.deepEqual(c.removed, []);
  assert.equal(list.lastId, 2);
  assert.equal(markersQuery(list.lastId), '?after_id=2');
  // A repeated poll (same ts_start race) and a malformed entry change nothing.
  c = list.merge([raw(2, 60), { id: 9 }], NTSC);
  assert.deepEqual(c, { added: [], removed: [] });
  // Out of order in one answer: kept in id order.
  c = list.merge([raw(4, 120), raw(3, 90)], NTSC);
  assert.deepEqual(c.added.map((m) => m.id), [4, 3]);
  assert.deepEqual(c.removed.map((m) => m.id), [1]);
  assert.deepEqual(list.items.map((m) => m.id), [2, 3, 4]);
  assert.equal(list.get(1), undefined);
  assert.equal(list.get(3).frame, 90);
  assert.equal(list.lastId, 4);
  // More new ones than fit: those added and dropped at once are in neither list.
  c = list.merge([5, 6, 7, 8].map((id) => raw(id, id * 30)), NTSC);
  assert.deepEqual(c.added.map((m) => m.id), [6, 7, 8]);
  assert.deepEqual(c.removed.map((m) => m.id), [2, 3, 4]);
  assert.equal(list.length, 3);
  assert.equal(list.lastId, 8);
  assert.deepEqual(list.merge(undefined, NTSC), { added: [], removed: [] });
});
