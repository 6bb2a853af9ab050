//! The crate's error type: what went wrong, with enough context to act on it.

use std::io;

use crate::encode::EncodeError;
use crate::playlist::PlaylistError;
use crate::segmenter::SegmentError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line or a setting is invalid.
    #[error("{0}")]
    Config(String),
    /// Reading or writing the media directory failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Segment(#[from] SegmentError),
    #[error(transparent)]
    Playlist(#[from] PlaylistError),
    /// A pipeline thread died.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
