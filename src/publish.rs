//! Publishing: a closed segment becomes part of the live stream in one fixed order, over any
//! [`Storage`] (the media directory in the product, an in-memory store in tests):
//!
//! 1. the segment's bytes are written whole (R5: a segment is complete before it is listed);
//! 2. the playlist is rendered with it (and with the markers that start inside it, as
//!    `EXT-X-DATERANGE`, R34-R36) and written;
//! 3. only then are the files whose R25 grace ended deleted.
//!
//! A failed segment write leaves the segment out and marks the next one with
//! `EXT-X-DISCONTINUITY` (R6/R7); nothing here ever stops the encoder. A restart continues the
//! previous run's playlist ([`crate::playlist::resume`]).

use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info, warn};

use crate::clock::WallClock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::playlist::resume::{self, Previous};
use crate::playlist::{DateRange, Playlist, PlaylistConfig};
use crate::segmenter::ClosedSegment;
use crate::state::Shared;
use crate::store::Storage;
use crate::time::Duration90k;

/// The playlist configuration a run's settings give.
pub(crate) fn playlist_config(cfg: &Config) -> PlaylistConfig {
    PlaylistConfig {
        name: cfg.name.clone(),
        target_duration_secs: cfg.target_duration_secs,
        list_size: cfg.list_size,
        start_sequence: cfg.start_number,
        start_discontinuity_sequence: 0,
    }
}

/// Publishes closed segments: segment file, then playlist, then deletions (R5, R20, R25).
pub(crate) struct Publisher<'o, S: Storage> {
    store: S,
    playlist: Playlist,
    shared: Arc<Shared>,
    anchor: WallClock,
    /// The next segment follows a gap (restart or lost write): EXT-X-DISCONTINUITY (R6).
    discontinuity: bool,
    /// Markers already given to the playlist (by id).
    markers_added: u64,
    /// Files from a previous run, deleted once this much stream time has passed (R25).
    leftovers: Vec<String>,
    leftovers_due: Duration90k,
    published: Duration90k,
    segments: u64,
    last_sequence: Option<u64>,
    text: String,
    observer: &'o mut dyn FnMut(&str),
}

impl<'o, S: Storage> Publisher<'o, S> {
    /// Starts publishing into `store`, continuing the playlist a previous run left there.
    /// `observer` sees the text of every playlist version once it is in place.
    pub(crate) fn new(
        cfg: &Config,
        store: S,
        shared: Arc<Shared>,
        observer: &'o mut dyn FnMut(&str),
    ) -> Result<Self> {
        let previous = match store
            .read_playlist()
            .map_err(|e| Error::io("reading the previous playlist", e))?
        {
            None => None,
            Some(text) => match resume::read_previous(&text, &cfg.name) {
                Previous::Run(run) => Some(run),
                Previous::Exhausted => {
                    warn!("previous media sequence number is exhausted; not continuing it");
                    None
                }
                Previous::Unreadable(why) => {
                    warn!(error = %why, "previous playlist unreadable; numbering continues from the segment files");
                    let newest = store
                        .list_segments()
                        .map_err(|e| Error::io("listing old segments", e))?
                        .last()
                        .map(|(s, _)| *s);
                    resume::after_segment_files(newest)
                }
            },
        };
        let files = if previous.is_some() {
            store
                .list_segments()
                .map_err(|e| Error::io("listing old segments", e))?
        } else {
            Vec::new()
        };
        let r = resume::resume(
            playlist_config(cfg),
            previous,
            &files,
            WallClock::now(),
            cfg.segment,
        )?;
        Ok(Publisher {
            store,
            playlist: r.playlist,
            shared,
            anchor: r.anchor,
            discontinuity: r.discontinuity,
            markers_added: 0,
            leftovers: r.leftovers,
            leftovers_due: r.leftovers_due,
            published: Duration90k::ZERO,
            segments: 0,
            last_sequence: None,
            text: String::new(),
            observer,
        })
    }

    /// The wall-clock instant of the run's first frame (stream time zero).
    pub(crate) fn anchor(&self) -> WallClock {
        self.anchor
    }

    /// Segments published so far.
    pub(crate) fn segments(&self) -> u64 {
        self.segments
    }

    /// Media sequence number of the newest published segment.
    pub(crate) fn last_sequence(&self) -> Option<u64> {
        self.last_sequence
    }

    /// Publishes one segment; returns its buffer for reuse. Write errors are logged and never
    /// stop the encoder: the lost segment is left out and the next one carries a discontinuity.
    pub(crate) fn publish(&mut self, seg: ClosedSegment, frames_encoded: u64) -> Vec<u8> {
        let seq = self.playlist.next_sequence();
        if let Err(e) = self.store.write_segment(seq, &seg.bytes) {
            warn!(sequence = seq, error = %e, "segment not written; it is left out of the playlist");
            self.discontinuity = true;
            return seg.bytes;
        }
        let pdt = self.anchor.at(seg.start);
        let outcome = match self.playlist.push(seg.duration, pdt, self.discontinuity) {
            Ok(o) => o,
            Err(e) => {
                warn!(sequence = seq, error = %e, "segment refused by the playlist");
                self.discontinuity = true;
                return seg.bytes;
            }
        };
        self.discontinuity = false;
        let end = seg.start + seg.duration;
        for m in self.shared.markers.after_id(self.markers_added) {
            if m.at >= end {
                // Later markers start later still: they wait for their segment.
                break;
            }
            let range = DateRange {
                // Unique across restarts too (R36): a resumed playlist's player may still hold
                // the previous run's "Marker 1".
                id: format!("marker-{}-{}", self.anchor.unix_millis(), m.id),
                start: self.anchor.at(m.at),
                duration: m.duration,
                label: m.text.clone(),
            };
            if let Err(e) = self.playlist.add_date_range(range) {
                warn!(marker = m.id, error = %e, "marker not added to the playlist");
            }
            self.markers_added = m.id;
        }
        self.write_playlist();
        for f in &outcome.delete_now {
            if let Err(e) = self.store.delete_segment(f) {
                warn!(file = %f, error = %e, "could not delete an expired segment");
            }
        }
        self.published = self.published + seg.duration;
        if self.published >= self.leftovers_due && !self.leftovers.is_empty() {
            let n = self.leftovers.len();
            for f in std::mem::take(&mut self.leftovers) {
                if let Err(e) = self.store.delete_segment(&f) {
                    warn!(file = %f, error = %e, "could not delete a previous run's segment");
                }
            }
            info!(
                files = n,
                "the previous run's unlisted segments passed their grace period"
            );
        }
        self.segments += 1;
        self.last_sequence = Some(outcome.sequence);
        debug!(
            sequence = outcome.sequence,
            duration = seg.duration.as_secs_f64(),
            frames = seg.frames,
            bytes = seg.bytes.len(),
            deleted = outcome.delete_now.len(),
            "segment"
        );
        self.shared.update_status(|s| {
            s.newest_segment_at = Some(Instant::now());
            s.newest_sequence = Some(outcome.sequence);
            s.segments_written += 1;
            s.frames_encoded = frames_encoded;
        });
        seg.bytes
    }

    fn write_playlist(&mut self) {
        self.text.clear();
        self.playlist.render_into(&mut self.text);
        match self.store.write_playlist(&self.text) {
            Ok(()) => (self.observer)(&self.text),
            Err(e) => warn!(error = %e, "playlist not updated"),
        }
    }

    /// The input stalled: the next segment follows a gap in stream time and carries
    /// `EXT-X-DISCONTINUITY` (R6), with its own program date time.
    pub(crate) fn discontinue(&mut self) {
        self.discontinuity = true;
    }

    /// Writes the playlist with `EXT-X-ENDLIST` (R29): the stream is over.
    pub(crate) fn end(&mut self, frames_encoded: u64) {
        self.playlist.end();
        self.write_playlist();
        self.shared.update_status(|s| {
            s.ended = true;
            s.frames_encoded = frames_encoded;
        });
    }
}

#[cfg(test)]
mod tests;
