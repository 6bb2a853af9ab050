//! The newest media in memory, for the server: the publisher hands over each segment it has
//! written (as reference-counted, immutable bytes: no copy) and each playlist version (rendered
//! once, gzipped once), and the server answers from here without a path join, a `stat` or a file
//! open. The files on disk stay the durable copy: a request for a segment no longer held here
//! (an old DVR position, a previous run's leftovers) falls back to the file, under the media
//! directory's confinement rules ([`crate::server::media`]).
//!
//! With low latency it also holds the parts (only here: they are never written to disk), the
//! delta update beside the full playlist, and the live edge as a `watch` channel: a blocking
//! playlist request or a request for the hinted part awaits a change of it (no polling), and the
//! publisher sends it only after the playlist that contains the change is in place.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::watch;

use crate::playlist::LiveEdge;

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
    /// The file it was written to, open, when it has one (segments; parts are only here): the
    /// server sends it with `sendfile(2)` instead of copying `bytes` ([`crate::server::front`]).
    /// The publisher never writes a file twice, so its bytes are `bytes`; deleting the name
    /// leaves the open file readable.
    pub(crate) file: Option<Arc<std::fs::File>>,
}

/// The playlist forms of one version: the full one and, with low latency, the delta update.
#[derive(Clone, Debug)]
pub(crate) struct PlaylistBodies {
    pub(crate) full: PlaylistBody,
    /// `None` when a delta update would skip nothing (answer with the full one).
    pub(crate) delta: Option<PlaylistBody>,
}

#[derive(Debug)]
pub(crate) struct MediaCache {
    inner: RwLock<Inner>,
    /// Segments (and their parts) held: at least [`MEMORY_SEGMENTS`].
    keep: AtomicUsize,
    /// Low latency is on: parts, blocking reloads and delta updates are served.
    low_latency: AtomicBool,
    edge: watch::Sender<LiveEdge>,
}

impl Default for MediaCache {
    fn default() -> Self {
        MediaCache {
            inner: RwLock::default(),
            keep: AtomicUsize::new(MEMORY_SEGMENTS),
            low_latency: AtomicBool::new(false),
            edge: watch::Sender::new(LiveEdge::default()),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    playlist: Option<PlaylistBodies>,
    /// `NAME.index.m3u8`, once the first segment gave its bit rate.
    multivariant: Option<PlaylistBody>,
    segments: BTreeMap<u64, CachedSegment>,
    /// Parts by (media sequence number, index).
    parts: BTreeMap<(u64, u32), CachedSegment>,
    /// Where each part lies in its segment (offset, length), kept as long as the segment's file
    /// (until `remove_segment`), at most [`PART_RANGE_SEGMENTS`] segments: a part no longer held
    /// is answered from its segment. A player that remembers the parts of a segment it saw at
    /// the live edge asks for them again after a seek back into the window (Shaka does).
    part_ranges: BTreeMap<u64, Vec<(u32, u32)>>,
    /// fMP4 init segments by the number in their name, while the playlist needs them (a few
    /// hundred bytes each; removed with their file).
    inits: BTreeMap<u64, CachedSegment>,
}

/// Segments whose part byte ranges are remembered at most (a 60-segment window is 360 ranges).
const PART_RANGE_SEGMENTS: usize = 4096;

/// gzip of `text` at the default level (a playlist is a few kilobytes: well under a millisecond).
pub(crate) fn gzip(text: &[u8]) -> Bytes {
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

    /// Holds at least `segments` segments and their parts (for parts to stay downloadable three
    /// target durations after they leave the playlist, R42); never fewer than
    /// [`MEMORY_SEGMENTS`].
    pub(crate) fn keep_segments(&self, segments: usize) {
        self.keep
            .store(segments.max(MEMORY_SEGMENTS), Ordering::Relaxed);
    }

    /// Says that the stream publishes parts (blocking reloads and delta updates are served).
    pub(crate) fn set_low_latency(&self, on: bool) {
        self.low_latency.store(on, Ordering::Relaxed);
    }

    pub(crate) fn is_low_latency(&self) -> bool {
        self.low_latency.load(Ordering::Relaxed)
    }

    /// Holds segment `sequence` (just written, to `file` when the store is a directory); the
    /// oldest beyond the kept count go, with the parts of segments that old.
    pub(crate) fn put_segment(
        &self,
        sequence: u64,
        bytes: Bytes,
        published: SystemTime,
        file: Option<std::fs::File>,
    ) {
        let keep = self.keep.load(Ordering::Relaxed);
        let segment = CachedSegment {
            bytes,
            published,
            file: file.map(Arc::new),
        };
        let mut inner = self.write();
        inner.segments.insert(sequence, segment);
        while inner.segments.len() > keep {
            inner.segments.pop_first();
        }
        let oldest = sequence.saturating_sub(keep as u64 - 1);
        while inner
            .parts
            .first_key_value()
            .is_some_and(|(k, _)| k.0 < oldest)
        {
            inner.parts.pop_first();
        }
    }

    /// Holds part `index` of segment `sequence` (complete).
    pub(crate) fn put_part(&self, sequence: u64, index: u32, bytes: Bytes, published: SystemTime) {
        let mut inner = self.write();
        let ranges = inner.part_ranges.entry(sequence).or_default();
        if ranges.len() == index as usize {
            let offset = ranges.last().map_or(0, |&(o, l)| o + l);
            ranges.push((offset, bytes.len() as u32));
        }
        while inner.part_ranges.len() > PART_RANGE_SEGMENTS {
            inner.part_ranges.pop_first();
        }
        inner.parts.insert(
            (sequence, index),
            CachedSegment {
                bytes,
                published,
                file: None,
            },
        );
    }

    pub(crate) fn part(&self, sequence: u64, index: u32) -> Option<CachedSegment> {
        self.read().parts.get(&(sequence, index)).cloned()
    }

    /// Where part `index` of segment `sequence` lies in the segment: (offset, length) in bytes.
    pub(crate) fn part_range(&self, sequence: u64, index: u32) -> Option<(u64, u64)> {
        let inner = self.read();
        let &(offset, len) = inner.part_ranges.get(&sequence)?.get(index as usize)?;
        Some((u64::from(offset), u64::from(len)))
    }

    /// Holds the fMP4 init segment `NAME<init>.init.mp4` (just written to `file`).
    pub(crate) fn put_init(
        &self,
        init: u64,
        bytes: Bytes,
        published: SystemTime,
        file: Option<std::fs::File>,
    ) {
        self.write().inits.insert(
            init,
            CachedSegment {
                bytes,
                published,
                file: file.map(Arc::new),
            },
        );
    }

    pub(crate) fn init(&self, init: u64) -> Option<CachedSegment> {
        self.read().inits.get(&init).cloned()
    }

    /// Forgets init segment `init` (its file is being deleted).
    pub(crate) fn remove_init(&self, init: u64) {
        self.write().inits.remove(&init);
    }

    /// Forgets segment `sequence` (its file is being deleted), and where its parts were.
    pub(crate) fn remove_segment(&self, sequence: u64) {
        let mut inner = self.write();
        inner.segments.remove(&sequence);
        inner.part_ranges.remove(&sequence);
    }

    /// The new playlist version (just renamed into place). Compressed before the lock is taken.
    pub(crate) fn put_playlist(&self, text: &str) {
        self.put_playlists(text, None);
    }

    /// The new playlist version, full and (with low latency) delta. Compressed before the lock
    /// is taken.
    pub(crate) fn put_playlists(&self, full: &str, delta: Option<&str>) {
        let body = |text: &str| PlaylistBody {
            plain: Bytes::copy_from_slice(text.as_bytes()),
            gzip: gzip(text.as_bytes()),
        };
        let bodies = PlaylistBodies {
            full: body(full),
            delta: delta.map(body),
        };
        self.write().playlist = Some(bodies);
    }

    /// The new multivariant playlist (the bit rates change with every segment).
    pub(crate) fn put_multivariant(&self, text: &str) {
        let body = PlaylistBody {
            plain: Bytes::copy_from_slice(text.as_bytes()),
            gzip: gzip(text.as_bytes()),
        };
        self.write().multivariant = Some(body);
    }

    /// The multivariant playlist, once there is one.
    pub(crate) fn multivariant(&self) -> Option<PlaylistBody> {
        self.read().multivariant.clone()
    }

    /// Announces a new live edge: call after the playlist that shows it is in place.
    pub(crate) fn set_edge(&self, edge: LiveEdge) {
        self.edge.send_replace(edge);
    }

    /// Requests waiting on the live edge now.
    #[cfg(test)]
    pub(crate) fn edge_watchers(&self) -> usize {
        self.edge.receiver_count()
    }

    /// The live edge, to await a change of it.
    pub(crate) fn watch_edge(&self) -> watch::Receiver<LiveEdge> {
        self.edge.subscribe()
    }

    pub(crate) fn segment(&self, sequence: u64) -> Option<CachedSegment> {
        self.read().segments.get(&sequence).cloned()
    }

    /// Both forms of the newest playlist version.
    pub(crate) fn playlists(&self) -> Option<PlaylistBodies> {
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
            c.put_segment(s, Bytes::from(vec![s as u8; 188]), t, None);
        }
        assert!(c.segment(2).is_none(), "the oldest went");
        assert_eq!(c.segment(3).unwrap().bytes[0], 3);
        c.remove_segment(3);
        assert!(c.segment(3).is_none());
        assert!(c.playlists().is_none());
        let text = "#EXTM3U\n".repeat(100);
        c.put_playlist(&text);
        let p = c.playlists().unwrap().full;
        assert_eq!(p.plain, text.as_bytes());
        let mut back = String::new();
        flate2::read::GzDecoder::new(&p.gzip[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, text);
        assert!(p.gzip.len() < p.plain.len() / 4);
    }

    #[test]
    fn part_ranges_outlive_the_parts_and_go_with_the_segment() {
        let c = MediaCache::default();
        let t = SystemTime::UNIX_EPOCH;
        for (index, len) in [(0u32, 188 * 4), (1, 188 * 2), (2, 188)] {
            c.put_part(7, index, Bytes::from(vec![index as u8; len]), t);
        }
        assert_eq!(c.part_range(7, 0), Some((0, 188 * 4)));
        assert_eq!(c.part_range(7, 2), Some((188 * 6, 188)));
        assert_eq!(c.part_range(7, 3), None);
        // Old segments push the parts out of memory; their ranges stay.
        for s in 8..(8 + MEMORY_SEGMENTS as u64 + 2) {
            c.put_segment(s, Bytes::from(vec![0; 188]), t, None);
        }
        assert!(c.part(7, 1).is_none());
        assert_eq!(c.part_range(7, 1), Some((188 * 4, 188 * 2)));
        c.remove_segment(7);
        assert_eq!(c.part_range(7, 1), None);
    }
}
