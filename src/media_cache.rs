//! The newest media in memory, for the server: the publisher hands over each segment it has
//! written (as reference-counted, immutable bytes: no copy) and each playlist version (rendered
//! once, gzipped once), and the server answers from here without a path join, a `stat` or a file
//! open. The files on disk stay the durable copy: a request for a segment no longer held here
//! (an old DVR position, a previous run's leftovers) falls back to the file, under the media
//! directory's confinement rules ([`crate::server::media`]).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::RwLock;
use std::time::SystemTime;

use bytes::Bytes;

/// Segments held in memory: the live edge and a little behind it (20 s at 2 s segments). A player
/// at the live edge asks for the newest three or four; the rest of the DVR window is on disk.
pub(crate) const MEMORY_SEGMENTS: usize = 10;

/// One playlist version, ready to send.
#[derive(Clone, Debug)]
pub(crate) struct PlaylistBody {
    pub(crate) plain: Bytes,
    pub(crate) gzip: Bytes,
}

/// A published segment.
#[derive(Clone, Debug)]
pub(crate) struct CachedSegment {
    pub(crate) bytes: Bytes,
    /// When it was published (its `Expires` counts from here, as a file's modification time).
    pub(crate) published: SystemTime,
}

#[derive(Debug, Default)]
pub struct MediaCache {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    playlist: Option<PlaylistBody>,
    segments: BTreeMap<u64, CachedSegment>,
}

/// gzip of `text` at the default level (a playlist is a few kilobytes: well under a millisecond).
fn gzip(text: &[u8]) -> Bytes {
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(text.len() / 4 + 64),
        flate2::Compression::default(),
    );
    e.write_all(text).expect("writing to a Vec cannot fail");
    Bytes::from(e.finish().expect("writing to a Vec cannot fail"))
}

impl MediaCache {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().expect("media cache lock poisoned")
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().expect("media cache lock poisoned")
    }

    /// Holds segment `sequence` (just written); the oldest beyond [`MEMORY_SEGMENTS`] go.
    pub(crate) fn put_segment(&self, sequence: u64, bytes: Bytes, published: SystemTime) {
        let mut inner = self.write();
        inner
            .segments
            .insert(sequence, CachedSegment { bytes, published });
        while inner.segments.len() > MEMORY_SEGMENTS {
            inner.segments.pop_first();
        }
    }

    /// Forgets segment `sequence` (its file is being deleted).
    pub(crate) fn remove_segment(&self, sequence: u64) {
        self.write().segments.remove(&sequence);
    }

    /// The new playlist version (just renamed into place). Compressed before the lock is taken.
    pub(crate) fn put_playlist(&self, text: &str) {
        let body = PlaylistBody {
            plain: Bytes::copy_from_slice(text.as_bytes()),
            gzip: gzip(text.as_bytes()),
        };
        self.write().playlist = Some(body);
    }

    pub(crate) fn segment(&self, sequence: u64) -> Option<CachedSegment> {
        self.read().segments.get(&sequence).cloned()
    }

    pub(crate) fn playlist(&self) -> Option<PlaylistBody> {
        self.read().playlist.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn holds_the_newest_segments_and_the_playlist_twice() {
        let c = MediaCache::default();
        let t = SystemTime::UNIX_EPOCH;
        for s in 0..(MEMORY_SEGMENTS as u64 + 3) {
            c.put_segment(s, Bytes::from(vec![s as u8; 188]), t);
        }
        assert!(c.segment(2).is_none(), "the oldest went");
        assert_eq!(c.segment(3).unwrap().bytes[0], 3);
        c.remove_segment(3);
        assert!(c.segment(3).is_none());
        assert!(c.playlist().is_none());
        let text = "#EXTM3U\n".repeat(100);
        c.put_playlist(&text);
        let p = c.playlist().unwrap();
        assert_eq!(p.plain, text.as_bytes());
        let mut back = String::new();
        flate2::read::GzDecoder::new(&p.gzip[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, text);
        assert!(p.gzip.len() < p.plain.len() / 4);
    }
}
