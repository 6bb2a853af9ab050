//! Recordings and event review (issue 21): segments that outlive the live window, indexed with
//! the markers in one SQLite database per output directory, and the views over them.
//!
//! ```text
//! db         the index: segments (retention, spans, ranges) and markers (ids, keys, pages);
//!            DbHandle runs it on its own thread for the server and the pipeline
//! vod        index rows + markers -> a VOD playlist (EXT-X-PLAYLIST-TYPE:VOD, gaps as
//!            DISCONTINUITY, markers as DATERANGE)
//! clip       TS segments -> one MP4 (moov first) or one TS, streamed and byte-ranged
//! thumbnail  a TS segment + a PTS -> the marker's frame as a JPEG
//! units      `45s`/`7d` durations and `2GiB`/`500MB` sizes for flags and configuration
//! recorder   the wiring: the directory's database opened once ([`open_store`]), and per
//!            stream the publisher's side (insert, release after the R25 grace, retention,
//!            the storage budget, clips kept for their markers)
//! ```

pub mod clip;
pub mod db;
pub mod recorder;
#[cfg(test)]
pub(crate) mod testutil;
pub mod thumbnail;
pub mod units;
pub mod vod;

pub use recorder::{open_store, Recorder, RecordingSettings, Recordings};
