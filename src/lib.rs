//! A live HLS streamer: synthetic source -> timecode overlay -> RGB to I420 -> H.264 (openh264)
//! -> MPEG-TS -> segments and a sliding-window playlist on disk, served over HTTP.
//!
//! Every media stage is a plain value-in/value-out module so tests and fuzzers call it directly;
//! only [`pipeline`] spawns threads, [`publish`] decides the order in which files appear and go,
//! and only [`store`] touches the media directory.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub(crate) mod atomic_write;
pub(crate) mod chroma;
pub mod clock;
pub mod config;
pub mod config_file;
pub mod encode;
pub mod error;
pub mod fmp4;
pub mod frame;
pub mod input;
pub mod markers;
pub(crate) mod media_cache;
pub mod name;
pub mod origin;
pub mod overlay;
pub mod pipeline;
pub mod plan;
pub mod playlist;
pub mod procstat;
pub(crate) mod publish;
pub mod recording;
pub mod rtsp;
pub mod segmenter;
pub mod server;
pub(crate) mod slots;
pub mod source;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod ts;
pub mod yuv;
