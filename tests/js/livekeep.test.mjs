// The live keeper (static/js/livekeep.js): follows the target until the user moves away.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { LiveKeeper, DEADBAND, MAX_RATE, SLOW_RATE, JUMP_BEYOND } from '../../static/js/livekeep.js';

const T = 1.002;
const at = (k, latency, extra = {}) => k.step({ latency, target: T, playing: true, ended: false, ...extra });

test('drift is steered back to the target: faster, slower, or a jump when far', () => {
  const k = new LiveKeeper();
  assert.deepEqual(at(k, T), { rate: 1, jumpBy: 0 });
  assert.deepEqual(at(k, T + DEADBAND / 2), { rate: 1, jumpBy: 0 });
  assert.equal(at(k, T + 0.3).rate, 1.3);
  assert.equal(at(k, T + 2).rate, MAX_RATE);
  assert.equal(at(k, T - 0.2).rate, SLOW_RATE);
  // 12.3 s behind (issue 19's fifth run): one jump, not minutes of faster playback.
  const far = at(k, 12.3);
  assert.equal(far.rate, 1);
  assert.ok(Math.abs(far.jumpBy - (12.3 - T)) < 1e-9);
  assert.equal(at(k, T + JUMP_BEYOND - 0.01).jumpBy, 0);
});

test('simulated: a start 2.5 s behind is within 0.3 s of the target well before 10 s', () => {
  const k = new LiveKeeper();
  let latency = T + 2.5;
  const dt = 0.25;
  for (let t = 0; t < 10; t += dt) {
    const { rate, jumpBy } = at(k, latency);
    latency -= jumpBy + (rate - 1) * dt;
    if (t >= 6) assert.ok(Math.abs(latency - T) <= 0.3, `at ${t} s: ${latency}`);
  }
});

test('a pause or a seek away stops following; Go live or a seek near live follows again', () => {
  const k = new LiveKeeper();
  k.userPause();
  assert.equal(k.following, false);
  assert.deepEqual(at(k, 30), { rate: 1, jumpBy: 0 }, 'a paused-then-resumed viewer stays put');
  k.goLive();
  assert.equal(k.following, true);
  k.userSeek(T + 60, T);
  assert.equal(k.following, false, 'a DVR seek stays where it was put');
  assert.deepEqual(at(k, T + 60), { rate: 1, jumpBy: 0 });
  k.userSeek(T + 0.5, T);
  assert.equal(k.following, true, 'a seek to the live end follows again');
  k.userSeek(null, T);
  assert.equal(k.following, false, 'a seek whose latency is unknown is the user moving away');
});

test('nothing is steered while paused, stalled, ended or without a date', () => {
  const k = new LiveKeeper();
  for (const extra of [{ playing: false }, { ended: true }, { latency: null }, { target: NaN }]) {
    assert.deepEqual(at(k, T + 3, extra), { rate: 1, jumpBy: 0 }, JSON.stringify(extra));
  }
});
