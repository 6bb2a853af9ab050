#![forbid(clippy::print_stdout, clippy::print_stderr)]
pub mod clock;
pub mod encode;
pub mod frame;
pub mod markers;
pub mod source;
pub mod state;
pub mod time;
