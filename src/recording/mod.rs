//! Recordings and event review (issue 21): the leaf modules, not wired in yet.
pub mod clip;
pub mod db;
#[cfg(test)]
pub(crate) mod testutil;
pub mod thumbnail;
pub mod vod;
