// What hls.js makes of a media playlist: reads the playlist on stdin, runs it through the
// vendored hls.js (path in argv[2]) via its public API (a custom loader hands it the text), and
// prints the level details it parsed as JSON. Used by tests/hostile.rs to check that no marker
// text changes how hls.js reads our playlist (hls.js parses with regular expressions, which end a
// line at U+2028 and U+2029 as well as CR and LF). Not a test file of its own.
'use strict';
const fs = require('fs');
const vm = require('vm');

const source = fs.readFileSync(process.argv[2], 'utf8');
const playlist = fs.readFileSync(0, 'utf8');

// hls.js needs a browser-like global; it never touches media here.
const sandbox = {
  console, setTimeout, clearTimeout, setInterval, clearInterval, performance, URL,
  TextDecoder, TextEncoder, Uint8Array, ArrayBuffer, DataView,
  navigator: { userAgent: 'node' },
  location: { href: 'http://127.0.0.1/' },
};
sandbox.self = sandbox;
sandbox.window = sandbox;
vm.createContext(sandbox);
vm.runInContext(source, sandbox);
const Hls = sandbox.Hls;

class TextLoader {
  constructor() {
    this.context = null;
    this.stats = {
      aborted: false, loaded: 0, retry: 0, total: 0, chunkCount: 0, bwEstimate: 0,
      loading: { start: 0, first: 0, end: 0 },
      parsing: { start: 0, end: 0 },
      buffering: { start: 0, first: 0, end: 0 },
    };
  }
  load(context, _config, callbacks) {
    this.context = context;
    const now = performance.now();
    Object.assign(this.stats.loading, { start: now, first: now, end: now });
    this.stats.loaded = this.stats.total = playlist.length;
    setTimeout(() => callbacks.onSuccess({ url: context.url, data: playlist }, this.stats, context, null), 0);
  }
  abort() {}
  destroy() {}
}

const fail = (why, code) => {
  console.log(JSON.stringify({ error: why }));
  process.exit(code);
};
const hls = new Hls({ pLoader: TextLoader, loader: TextLoader, autoStartLoad: false });
hls.on(Hls.Events.LEVEL_LOADED, (_event, data) => {
  const d = data.details;
  console.log(JSON.stringify({
    live: d.live,
    startSN: d.startSN,
    endSN: d.endSN,
    fragments: d.fragments.map((f) => ({ sn: f.sn, url: f.relurl, duration: f.duration })),
    dateRanges: Object.fromEntries(
      Object.entries(d.dateRanges || {}).map(([id, range]) => [id, range.attr]),
    ),
  }));
  process.exit(0);
});
hls.on(Hls.Events.ERROR, (_event, data) => fail(String(data.details), 1));
hls.loadSource('http://127.0.0.1/video/chessboard.m3u8');
setTimeout(() => fail('timeout', 2), 5000);
