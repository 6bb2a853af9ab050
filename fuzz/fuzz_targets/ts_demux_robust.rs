#![no_main]
// The properties are in src/testutil.rs; tests/corpus_replay.rs replays the corpus on stable.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hls::testutil::ts_demux_property(data));
