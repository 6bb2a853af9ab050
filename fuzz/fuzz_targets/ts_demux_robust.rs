#![no_main]
// The properties are in testkit/src/ (one module per target); tests/corpus_replay.rs replays the corpus on stable.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hls_testkit::ts_demux_property(data));
