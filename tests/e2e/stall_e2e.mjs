// The page through a stalled Y4M pipe (issue 9): the producer stops for 5 s and comes back.
// During the stall /healthz is 503; after it the playlist carries EXT-X-DISCONTINUITY and
// hls.js in Chromium plays on past it without a reload. Env: BASE_URL, CHROMIUM.
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let failed = 0;
const check = (name, ok, detail = '') => {
  if (!ok) failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`);
};

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true, args: ['--no-sandbox', '--disable-gpu', '--autoplay-policy=no-user-gesture-required'] });
try {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(BASE + '/');
  await page.evaluate(() => { window.__loadId = Math.random(); });
  const loadId = await page.evaluate(() => window.__loadId);
  await page.waitForFunction(() => document.getElementById('video').currentTime > 0.5, null, { timeout: 30000 });
  await page.evaluate(() => {
    window.__fatal = [];
    window.hlsPlayer.hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) window.__fatal.push(d.details); });
  });
  const ct = () => page.evaluate(() => document.getElementById('video').currentTime);
  // Wait for the stall (healthz 503), then for the stream to come back (200).
  let sawStall = false;
  let atStall = null;
  let back = false;
  for (let i = 0; i < 80 && !back; i++) {
    const s = (await fetch(BASE + '/healthz')).status;
    if (s === 503 && !sawStall) { sawStall = true; atStall = await ct(); }
    if (s === 200 && sawStall) back = true;
    await sleep(250);
  }
  check('healthz is 503 during the stall and 200 after it', sawStall && back);
  const playlist = await (await fetch(BASE + '/video/chessboard.m3u8')).text();
  check('the playlist resumes after EXT-X-DISCONTINUITY', playlist.includes('#EXT-X-DISCONTINUITY\n'));
  // Play on: past the point where the picture stopped, by several seconds.
  let now = 0;
  for (let i = 0; i < 40; i++) {
    await sleep(250);
    now = await ct();
    if (atStall !== null && now > atStall + 4) break;
  }
  check('hls.js plays on past the discontinuity', atStall !== null && now > atStall + 4,
    `${atStall === null ? '-' : atStall.toFixed(2)} s at the stall, ${now.toFixed(2)} s now`);
  check('without a reload', (await page.evaluate(() => window.__loadId)) === loadId);
  const fatal = await page.evaluate(() => window.__fatal);
  check('no fatal hls.js error, no script error', fatal.length === 0 && errors.length === 0,
    [...fatal, ...errors].slice(0, 3).join(' | '));
} finally {
  await browser.close();
}
console.log(`stall e2e: ${failed ? 'FAILED' : 'passed'}`);
process.exit(failed ? 1 : 0);
