// The tile page's pure parts (static/js/tiles.js): what a tile says of a stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ago, markerLine, detailLine } from '../../static/js/tiles.js';

test('ago rounds to seconds, minutes, hours', () => {
  assert.equal(ago(4.4), '4 s ago');
  assert.equal(ago(89), '89 s ago');
  assert.equal(ago(600), '10 min ago');
  assert.equal(ago(7200), '2 h ago');
  assert.equal(ago(-1), '');
  assert.equal(ago(NaN), '');
});

test('the marker line is the newest marker and its age, or says there is none', () => {
  const now = Date.parse('2026-12-08T01:00:30.000Z');
  const entry = { newest_marker: { text: 'gate opened', program_date_time: '2026-12-08T01:00:00.000Z' } };
  assert.equal(markerLine(entry, now), 'gate opened · 30 s ago');
  assert.equal(markerLine({}, now), 'No marker yet');
  assert.equal(markerLine({ newest_marker: { text: 'x', program_date_time: 'bad' } }, now), 'x');
});

test('the detail line shows what is known of the picture', () => {
  assert.equal(
    detailLine({ state: 'live', resolution: '1280x720', fps: 29.97002997, bitrate_bps: 2_391_000, latency_secs: 1.07 }),
    '1280x720 · 29.97 fps · 2.4 Mbit/s · 1.1 s behind live',
  );
  assert.equal(detailLine({ state: 'stalled', fps: 25, latency_secs: 1.5 }), '25 fps · 1.5 s behind live');
  // A stream that is down is behind nothing (GET /streams still reports its configured hold-back).
  for (const state of ['failed', 'starting', 'restarting', 'ended']) {
    assert.equal(detailLine({ state, fps: 30, latency_secs: 1 }), '30 fps', state);
  }
  assert.equal(detailLine({ resolution: '640x360' }), '640x360');
  assert.equal(detailLine({}), '');
});
