// What the browser tests of our own pages share (player_e2e.mjs, tiles_e2e.mjs): the check
// log, Chromium's launch, the burnt-in timecode recomputed independently of the page, and
// reading the picture back from the <video> to tell the checkerboard's mint event frame.
import { chromium } from 'playwright-core';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** When this test process started (ms since the epoch). */
export const started = Date.now();
export const stamp = () => `[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s]`;
export const log = (...a) => console.log(stamp(), ...a);

/** Counts of the checks so far. */
export const results = { passed: 0, failed: 0 };

/** Logs a PASS or FAIL line for `name`; returns `ok`. */
export function check(name, ok, detail = '') {
  if (ok) results.passed++;
  else results.failed++;
  console.log(`${stamp()} ${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`);
  return ok;
}

/** Debian's headless Chromium with a fresh profile in `profile`, autoplay allowed. */
export function launch(executablePath, profile, viewport = { width: 1280, height: 800 }) {
  return chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/** Mint is RGB(0,255,255); after BT.601 limited range, 4:2:0 and H.264, allow a wide margin. */
export const isMint = ([r, g, b]) => r <= 90 && g >= 165 && b >= 165;

/**
 * The burnt-in timecode of the frame at stream time `time`, from the server's rate, written
 * independently of static/js/clock.js: frame = round(time * num / den) (a marker's time is its
 * slot's instant floored to the 90 kHz tick, far less than half a frame early); the seconds are
 * floor(frame * den / num), FF counts from the first frame of that second, ceil(s * num / den).
 */
export function overlayTimecode(time, num, den) {
  const frame = BigInt(Math.round((time * num) / den));
  const [n, d] = [BigInt(num), BigInt(den)];
  const secs = (frame * d) / n;
  const ff = frame - (secs * n + d - 1n) / d;
  const two = (v) => String(v).padStart(2, '0');
  return { frame: Number(frame), text: `${two(secs / 3600n)}:${two((secs / 60n) % 60n)}:${two(secs % 60n)}:${two(ff)}` };
}

/**
 * Waits until the page's `#video` has finished seeking and shows the frame it landed on: a
 * frame presented (requestVideoFrameCallback) whose media time is that of the frame holding
 * currentTime (at most a frame before it), then 150 ms; at most 1.5 s after the seek ended (a
 * paused video presents no new frame if the right one was already up). Resolves to the last
 * presented frame's media time, or null if none was seen.
 */
export function settle(page) {
  return page.evaluate(() => new Promise((resolve) => {
    const v = document.getElementById('video');
    let shown = null;
    const done = () => {
      let fired = false;
      const finish = () => { if (!fired) { fired = true; setTimeout(() => resolve(shown), 150); } };
      const onFrame = (_now, meta) => {
        shown = meta.mediaTime;
        const t = v.currentTime;
        if (meta.mediaTime <= t + 0.001 && t - meta.mediaTime < 0.035) finish();
        else if (!fired) v.requestVideoFrameCallback(onFrame);
      };
      if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(onFrame);
      setTimeout(finish, 1500);
    };
    const poll = () => (!v.seeking && v.readyState >= 2 ? done() : setTimeout(poll, 50));
    poll();
  }));
}

/**
 * The picture of the page's `#video` drawn into a canvas: the mean RGB of a 5x5 patch at the
 * centre of the checkerboard's top-left block (`block` px), with the time shown and the size.
 */
export function sample(page, block) {
  return page.evaluate((block) => {
    const v = document.getElementById('video');
    const c = document.createElement('canvas');
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    const g = c.getContext('2d', { willReadFrequently: true });
    g.drawImage(v, 0, 0, c.width, c.height);
    const cx = Math.floor(block / 2);
    const d = g.getImageData(cx - 2, cx - 2, 5, 5).data;
    const sum = [0, 0, 0];
    for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; }
    return { rgb: sum.map((s) => Math.round(s / 25)), t: v.currentTime, w: c.width, h: c.height };
  }, block);
}
