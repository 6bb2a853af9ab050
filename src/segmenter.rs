//! Cutting the access-unit stream into segments (pure: no I/O).
//!
//! Segments are cut by time, not by count: boundary `k` sits at stream time `k * segment`, and
//! the first frame at or after a boundary opens a new segment ([`SegmentClock`], asked once per
//! frame on the source thread). The encoder forces an IDR on those frames and the [`Segmenter`]
//! cuts exactly on them, so every segment starts with PAT, PMT, SPS, PPS and an IDR
//! (HLS R2, R3) and lasts `segment` at a steady frame rate (R4, R12).

#[cfg(doc)]
use crate::time::SegmentClock;
use crate::time::{Duration90k, Pts, StreamTime};
use crate::ts::{AccessUnit, MuxError, TsMuxer};

/// One encoded frame on its way into a segment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FrameAu<'a> {
    /// Annex B access unit as the encoder wrote it.
    pub(crate) data: &'a [u8],
    /// Stream time of the frame.
    pub(crate) at: StreamTime,
    pub(crate) keyframe: bool,
    /// The frame opens a segment (see [`SegmentClock`]); it must be a keyframe.
    pub(crate) opens_segment: bool,
}

/// A finished segment: its bytes are complete and may be published.
#[derive(Debug)]
pub(crate) struct ClosedSegment {
    /// Stream time of its first frame.
    pub(crate) start: StreamTime,
    /// From its first frame to the first frame of the next segment (or the end of the stream).
    pub(crate) duration: Duration90k,
    pub(crate) frames: u32,
    /// Whole TS packets, starting with PAT and PMT. Give the buffer back with
    /// [`Segmenter::recycle`] to avoid an allocation per segment.
    pub(crate) bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SegmentError {
    #[error("the frame at {at:?} opens a segment but is not a keyframe")]
    OpenWithoutKeyframe { at: StreamTime },
    #[error("the first frame (at {at:?}) must open a segment")]
    NoOpenSegment { at: StreamTime },
    #[error("frame at {at:?} is not after the previous one at {prev:?}")]
    NotIncreasing { at: StreamTime, prev: StreamTime },
    #[error(transparent)]
    Mux(#[from] MuxError),
}

#[derive(Debug)]
struct Open {
    start: StreamTime,
    last: StreamTime,
    frames: u32,
}

/// Wraps the TS muxer and cuts its output into segments.
pub(crate) struct Segmenter {
    muxer: TsMuxer,
    pts_offset: Pts,
    open: Option<Open>,
    buf: Vec<u8>,
    spare: Vec<u8>,
}

impl Segmenter {
    /// `pts_offset`: PTS of stream time zero, in 90 kHz ticks (may be near 2^33 to exercise
    /// the wrap; the muxer writes PTS modulo 2^33).
    pub(crate) fn new(pts_offset: Pts) -> Self {
        Segmenter {
            muxer: TsMuxer::new(),
            pts_offset,
            open: None,
            buf: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// Adds a frame. Returns the previous segment when this frame opens a new one.
    pub(crate) fn push(&mut self, au: &FrameAu<'_>) -> Result<Option<ClosedSegment>, SegmentError> {
        if let Some(open) = &self.open {
            if au.at <= open.last {
                return Err(SegmentError::NotIncreasing {
                    at: au.at,
                    prev: open.last,
                });
            }
        }
        let mut closed = None;
        if au.opens_segment {
            if !au.keyframe {
                return Err(SegmentError::OpenWithoutKeyframe { at: au.at });
            }
            closed = self.close(au.at);
            self.muxer.start_segment(&mut self.buf);
            self.open = Some(Open {
                start: au.at,
                last: au.at,
                frames: 0,
            });
        }
        let Some(open) = &mut self.open else {
            return Err(SegmentError::NoOpenSegment { at: au.at });
        };
        let unit = AccessUnit {
            data: au.data,
            pts: au.at.to_pts(self.pts_offset),
            dts: None,
            keyframe: au.keyframe,
        };
        self.muxer.push(&unit, &mut self.buf)?;
        open.frames += 1;
        open.last = au.at;
        Ok(closed)
    }

    /// Closes the last segment at the end of the stream; `end` is the stream time just after
    /// its last frame (last frame time + one frame duration).
    pub(crate) fn finish(&mut self, end: StreamTime) -> Option<ClosedSegment> {
        self.close(end)
    }

    /// Returns a segment's buffer for reuse.
    pub(crate) fn recycle(&mut self, mut bytes: Vec<u8>) {
        bytes.clear();
        if bytes.capacity() > self.spare.capacity() {
            self.spare = bytes;
        }
    }

    #[cfg(test)]
    fn check_invariants(&self) -> Result<(), String> {
        self.muxer.check_invariants()?;
        if self.buf.len() % 188 != 0 {
            return Err(format!(
                "open segment holds {} bytes, not whole packets",
                self.buf.len()
            ));
        }
        Ok(())
    }

    fn close(&mut self, end: StreamTime) -> Option<ClosedSegment> {
        let open = self.open.take()?;
        let mut bytes = std::mem::take(&mut self.spare);
        std::mem::swap(&mut bytes, &mut self.buf);
        Some(ClosedSegment {
            start: open.start,
            duration: end - open.start,
            frames: open.frames,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{FrameRate, SegmentClock};

    #[test]
    fn clock_cuts_by_time_not_count() {
        let rate = FrameRate::new(30, 1).unwrap();
        let mut c = SegmentClock::new(Duration90k::from_secs(2));
        let opens: Vec<u64> = (0..200)
            .filter(|&n| c.opens_segment(rate.time_of(n)))
            .collect();
        assert_eq!(opens, vec![0, 60, 120, 180]);
        // With dropped frames the first frame past the boundary opens the segment.
        let mut c = SegmentClock::new(Duration90k::from_secs(2));
        let frames = [0u64, 1, 58, 61, 62, 119, 125, 180];
        let opens: Vec<u64> = frames
            .iter()
            .copied()
            .filter(|&n| c.opens_segment(rate.time_of(n)))
            .collect();
        assert_eq!(opens, vec![0, 61, 125, 180]);
    }

    #[test]
    fn clock_at_29_97_never_exceeds_one_frame_over() {
        let rate = FrameRate::new(30_000, 1001).unwrap();
        let seg = Duration90k::from_secs(2);
        let mut c = SegmentClock::new(seg);
        let opens: Vec<u64> = (0..100_000)
            .filter(|&n| c.opens_segment(rate.time_of(n)))
            .collect();
        for w in opens.windows(2) {
            let d = rate.time_of(w[1]) - rate.time_of(w[0]);
            assert!(d <= seg + rate.frame_duration(), "{w:?} lasts {d:?}");
            assert!(d + rate.frame_duration() >= seg, "{w:?} lasts {d:?}");
        }
    }

    #[test]
    fn segmenter_cuts_on_opening_keyframes() {
        let mut s = Segmenter::new(Pts(126_000));
        let idr = [
            0u8, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 3,
        ];
        let p = [0u8, 0, 0, 1, 0x41, 4, 5];
        let mut closed = Vec::new();
        for n in 0..7u64 {
            let opens = n % 3 == 0;
            let au = FrameAu {
                data: if opens { &idr } else { &p },
                at: StreamTime(n * 3000),
                keyframe: opens,
                opens_segment: opens,
            };
            if let Some(c) = s.push(&au).unwrap() {
                closed.push(c);
            }
            s.check_invariants().unwrap();
        }
        closed.extend(s.finish(StreamTime(7 * 3000)));
        let summary: Vec<(u64, u64, u32)> = closed
            .iter()
            .map(|c| (c.start.as_u64(), c.duration.as_u64(), c.frames))
            .collect();
        assert_eq!(
            summary,
            vec![(0, 9000, 3), (9000, 9000, 3), (18000, 3000, 1)]
        );
        for c in &closed {
            assert_eq!(c.bytes.len() % 188, 0);
            assert_eq!(c.bytes[0], 0x47);
        }
    }

    #[test]
    fn segmenter_rejects_bad_streams() {
        let mut s = Segmenter::new(Pts(0));
        let p = [0u8, 0, 0, 1, 0x41, 4, 5];
        let au = FrameAu {
            data: &p,
            at: StreamTime(0),
            keyframe: false,
            opens_segment: false,
        };
        assert!(matches!(
            s.push(&au),
            Err(SegmentError::NoOpenSegment { .. })
        ));
        let au = FrameAu {
            data: &p,
            at: StreamTime(0),
            keyframe: false,
            opens_segment: true,
        };
        assert!(matches!(
            s.push(&au),
            Err(SegmentError::OpenWithoutKeyframe { .. })
        ));
    }
}
