// One integration binary (see Cargo.toml `autotests = false`), ripgrep style.

#[macro_use]
mod util;

// Whole runs decoded back: TS structure, H.264, frame counts, continuity (R1-R4, R12).
mod decode_back;
// Markers land on the exact frame that first shows the event.
mod markers;
// Markers from outside and across restarts: the log, the clock, the token.
mod marker_store;
// Sliding window, grace-period deletion, ENDLIST, restart (R22-R29).
mod lifecycle;
// Thirty minutes of stream with restarts: window, sequences, files, DATERANGEs over time.
mod long_run;
// The committed fuzz corpus, replayed through the fuzzers' property checks.
mod corpus_replay;
// An RTSP camera (GStreamer's RTSP server): passthrough, reconnects, errors.
mod rtsp;
// hls-detect: its core over a run's files (onsets equal the generator's markers), and live.
mod detect;
// Every rule cited in the code (R1...) is defined in docs/spec.md.
mod spec_refs;
// Rules about the source itself: the 90 kHz literal lives in src/time.rs, threads in src/pipeline/,
// and every import looks down a floor of docs/architecture.md.
mod source_rules;
// YUV4MPEG2 input (ffmpeg, GStreamer, files, stdin, a stalling FIFO) decoded back frame by frame.
mod y4m;
// --config: a bad file exits 2 naming its line; nothing touched.
mod streams_config;
// The multivariant playlist: CODECS from the SPS, RESOLUTION, FRAME-RATE, measured bit rates.
mod multivariant;
// Low-latency HLS over HTTP from the binary: parts, blocking reload, hints, delta updates.
mod low_latency;
// The hostile-client probes of issue 18: defects fixed, and what held up, kept so.
mod hostile;
// ffmpeg and GStreamer join the live stream at its first instant and later (R52).
mod players;
// --segment-type fmp4: init, fragments, parts, ffprobe and ffmpeg on a whole run (R49-R51).
mod fmp4_stream;
// GET /metrics from a live stream: every series of issue 22, its labels, counts that agree.
mod metrics;
// Recording (issue 21): retention, the storage budget, restarts, the index, the review routes.
mod recordings;
// Fan-out through nginx with the README's cache snippet: what reaches the origin, what players see.
mod fanout;
// A full disk on a real tmpfs: the encoder goes on, failures counted, only whole files listed.
mod full_disk;
