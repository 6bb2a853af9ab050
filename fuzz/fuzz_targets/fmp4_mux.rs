#![no_main]
// The property is in testkit/src/fmp4_mux.rs; tests/corpus_replay.rs replays the corpus on stable.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hls_testkit::fmp4_mux_property(data));
