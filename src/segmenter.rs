//! Cutting the access-unit stream into segments (pure: no I/O).
//!
//! Segments are cut by time, not by count: boundary `k` sits at stream time `k * segment`, and
//! the first frame at or after a boundary opens a new segment ([`SegmentClock`], asked once per
//! frame on the source thread). The encoder forces an IDR on those frames and the [`Segmenter`]
//! cuts exactly on them, so every segment starts with PAT, PMT, SPS, PPS and an IDR
//! (HLS R2, R3) and lasts `segment` at a steady frame rate (R4, R12).
//!
//! # Parts (low-latency HLS)
//! With a [`PartPlan`] every segment is also cut into parts of a whole number of frames, each
//! opening with its own PAT and PMT so it can be demultiplexed alone (R45). The segment's bytes
//! are exactly its parts' bytes end to end: one muxer writes both, so continuity counters run on
//! across parts and the segment is the same stream a part-by-part client receives. A part is
//! closed as soon as its *last* frame is muxed, not when the next frame arrives: the segmenter
//! mirrors the source's [`SegmentClock`] and the part grid, so it knows which frame is a part's
//! last one (at a steady rate; with frames dropped at the end of a part it closes when the next
//! frame comes). Part `j` of a segment starting on slot `s` spans the slots
//! `[s + j*frames, s + (j+1)*frames)`, and never runs past the next segment boundary, so the
//! last part of a segment may be shorter (allowed by rfc8216bis §4.4.4.9).

use bytes::Bytes;

use crate::fmp4::{Fmp4Error, Fmp4Muxer};
use crate::time::{Duration90k, FrameRate, Pts, SegmentClock, StreamTime};
use crate::ts::{AccessUnit, MuxError, TsMuxer};

/// How segments are cut into low-latency parts.
#[derive(Clone, Debug)]
pub(crate) struct PartPlan {
    /// Frames per part (the last part of a segment may have fewer); at least 1.
    pub(crate) frames: u64,
    pub(crate) rate: FrameRate,
    /// The source's segment clock (a copy, before its first frame), mirrored here to see a
    /// segment's last frame coming.
    pub(crate) segments: SegmentClock,
}

/// A finished part: its bytes are complete and may be published before its segment is.
#[derive(Clone, Debug)]
pub(crate) struct ClosedPart {
    /// Index within its segment, from 0, without gaps.
    pub(crate) index: u32,
    /// Stream time of its segment's first frame.
    pub(crate) segment_start: StreamTime,
    pub(crate) start: StreamTime,
    pub(crate) duration: Duration90k,
    /// Opens with an IDR (`INDEPENDENT=YES`).
    pub(crate) independent: bool,
    /// The next frame opens a new segment: the next part is part 0 of the next segment.
    pub(crate) last_in_segment: bool,
    /// Whole TS packets, starting with PAT and PMT.
    pub(crate) bytes: Bytes,
}

/// What a frame finished: parts and segments, in the order they must be published.
#[derive(Debug)]
pub(crate) enum Cut {
    /// fMP4 only: a new init segment (the first, or new parameter sets), before any part or
    /// segment that needs it; it initialises the segment being opened and those after it.
    Init(Bytes),
    Part(ClosedPart),
    Segment(ClosedSegment),
}

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
    #[error(transparent)]
    Fmp4(#[from] Fmp4Error),
}

impl From<SegmentError> for crate::error::Error {
    fn from(e: SegmentError) -> Self {
        use crate::error::{Error, ErrorKind};
        Error::new(ErrorKind::Internal, "segmenter").with_source(e)
    }
}

/// The container the segmenter writes (`--segment-type`).
enum Muxer {
    /// MPEG-TS: every byte is written as the frame is pushed; PTS = stream time + offset.
    Ts(TsMuxer),
    /// Fragmented MP4: frames wait for their fragment, written when the part (or, without
    /// parts, the segment) closes; decode times are the stream time itself (`tfdt`, 64-bit).
    Fmp4(Box<Fmp4Muxer>),
}

#[derive(Debug)]
struct Open {
    start: StreamTime,
    last: StreamTime,
    frames: u32,
}

#[derive(Debug)]
struct OpenPart {
    index: u32,
    start: StreamTime,
    /// Where its bytes begin in the segment buffer.
    offset: usize,
    independent: bool,
    /// The part may not last past this (the next part boundary).
    end: StreamTime,
}

#[derive(Debug)]
struct Parts {
    plan: PartPlan,
    /// First slot of the open segment.
    segment_slot: u64,
    open: Option<OpenPart>,
    next_index: u32,
}

/// Wraps the TS muxer and cuts its output into segments (and, with a [`PartPlan`], parts).
pub(crate) struct Segmenter {
    muxer: Muxer,
    pts_offset: Pts,
    open: Option<Open>,
    buf: Vec<u8>,
    spare: Vec<u8>,
    parts: Option<Parts>,
    /// SPS and PPS (Annex B, 4-byte start codes) of the last keyframe: written in front of the
    /// first access unit of every part that does not open with an IDR (P7). Refilled once per
    /// keyframe; its capacity is kept, so steady state allocates nothing.
    parameter_sets: Vec<u8>,
}

impl Segmenter {
    /// `pts_offset`: PTS of stream time zero, in 90 kHz ticks (may be near 2^33 to exercise
    /// the wrap; the muxer writes PTS modulo 2^33).
    pub(crate) fn new(pts_offset: Pts) -> Self {
        Segmenter {
            muxer: Muxer::Ts(TsMuxer::new()),
            pts_offset,
            open: None,
            buf: Vec::new(),
            spare: Vec::new(),
            parts: None,
            parameter_sets: Vec::new(),
        }
    }

    /// A segmenter writing fragmented MP4 instead of MPEG-TS: one fragment per part (or per
    /// segment without parts), and a [`Cut::Init`] whenever the parameter sets are new.
    pub(crate) fn into_fmp4(mut self) -> Self {
        self.muxer = Muxer::Fmp4(Box::default());
        self
    }

    /// A segmenter that also cuts every segment into parts (see the module documentation).
    pub(crate) fn with_parts(pts_offset: Pts, plan: PartPlan) -> Self {
        assert!(plan.frames >= 1, "a part holds at least one frame");
        let mut s = Segmenter::new(pts_offset);
        s.parts = Some(Parts {
            plan,
            segment_slot: 0,
            open: None,
            next_index: 0,
        });
        s
    }

    /// Adds a frame. Returns the previous segment when this frame opens a new one. Only for a
    /// segmenter without parts (use [`Segmenter::push_cuts`] with parts).
    pub(crate) fn push(&mut self, au: &FrameAu<'_>) -> Result<Option<ClosedSegment>, SegmentError> {
        debug_assert!(self.parts.is_none(), "parts would be lost: use push_cuts");
        debug_assert!(
            matches!(self.muxer, Muxer::Ts(_)),
            "init segments would be lost: use push_cuts"
        );
        let mut closed = None;
        self.push_cuts(au, &mut |cut| {
            if let Cut::Segment(s) = cut {
                closed = Some(s);
            }
        })?;
        Ok(closed)
    }

    /// Adds a frame; `sink` gets what it finished, in publishing order: the previous segment's
    /// last part, the previous segment, then this frame's part if this frame is its last.
    pub(crate) fn push_cuts(
        &mut self,
        au: &FrameAu<'_>,
        sink: &mut dyn FnMut(Cut),
    ) -> Result<(), SegmentError> {
        if let Some(open) = &self.open {
            if au.at <= open.last {
                return Err(SegmentError::NotIncreasing {
                    at: au.at,
                    prev: open.last,
                });
            }
        }
        if au.opens_segment {
            if !au.keyframe {
                return Err(SegmentError::OpenWithoutKeyframe { at: au.at });
            }
        } else if self.open.is_none() {
            return Err(SegmentError::NoOpenSegment { at: au.at });
        }
        let unit = AccessUnit {
            data: au.data,
            pts: match self.muxer {
                Muxer::Ts(_) => au.at.to_pts(self.pts_offset),
                Muxer::Fmp4(_) => Pts(au.at.as_u64()),
            },
            dts: None,
            keyframe: au.keyframe,
        };
        if au.opens_segment {
            self.close_part(au.at, true, sink);
            if let Some(closed) = self.close(au.at) {
                sink(Cut::Segment(closed));
            }
            if let Muxer::Ts(ts) = &mut self.muxer {
                ts.start_segment(&mut self.buf);
            }
            self.open = Some(Open {
                start: au.at,
                last: au.at,
                frames: 0,
            });
            if let Some(p) = &mut self.parts {
                p.segment_slot = p.plan.rate.first_frame_at_or_after(au.at);
                p.next_index = 0;
                p.plan.segments.opens_segment(au.at);
            }
        } else if let Some(end) = self
            .parts
            .as_ref()
            .and_then(|p| p.open.as_ref())
            .map(|o| o.end)
        {
            // Frames at the end of the open part were dropped: it ends now.
            if au.at >= end {
                self.close_part(au.at, false, sink);
            }
        }
        if au.keyframe {
            copy_parameter_sets(au.data, &mut self.parameter_sets);
        }
        let opened = self.open_part(au);
        match &mut self.muxer {
            Muxer::Ts(ts) => {
                // A TS part that opens on a P-frame carries the stream's current SPS and PPS
                // (P7); an fMP4 part needs none (the init segment's `avcC` holds them).
                let parameter_sets: &[u8] = if opened && !au.keyframe {
                    &self.parameter_sets
                } else {
                    &[]
                };
                ts.push_with_parameter_sets(&unit, parameter_sets, &mut self.buf)?
            }
            Muxer::Fmp4(mp4) => {
                if mp4.push(&unit)?.new_init {
                    let mut init = Vec::with_capacity(1024);
                    mp4.write_init(&mut init);
                    sink(Cut::Init(Bytes::from(init)));
                }
            }
        }
        let open = self.open.as_mut().expect("a segment is open");
        open.frames += 1;
        open.last = au.at;
        // Is this frame the last of its part? Then the part is complete now.
        if let Some(p) = &self.parts {
            if let Some(part) = &p.open {
                let next = p
                    .plan
                    .rate
                    .time_of(p.plan.rate.first_frame_at_or_after(au.at) + 1);
                let segment_ends = p.plan.segments.would_open(next);
                if next >= part.end || segment_ends {
                    self.close_part(next, segment_ends, sink);
                }
            }
        }
        Ok(())
    }

    /// Opens a part for the frame `au` when none is open; true when it did.
    fn open_part(&mut self, au: &FrameAu<'_>) -> bool {
        let Some(p) = &mut self.parts else {
            return false;
        };
        if p.open.is_some() {
            return false;
        }
        let offset = if au.opens_segment {
            // The segment's own PAT and PMT open its first part.
            0
        } else {
            let offset = self.buf.len();
            if let Muxer::Ts(ts) = &mut self.muxer {
                ts.repeat_psi(&mut self.buf);
            }
            offset
        };
        let rate = p.plan.rate;
        let slot = rate.first_frame_at_or_after(au.at);
        let k = (slot - p.segment_slot) / p.plan.frames + 1;
        p.open = Some(OpenPart {
            index: p.next_index,
            start: au.at,
            offset,
            independent: au.keyframe,
            end: rate.time_of(p.segment_slot + k * p.plan.frames),
        });
        p.next_index += 1;
        true
    }

    /// Closes the open part, if any, at `end` (capped at its boundary, so a part never lasts
    /// longer than the part target even when the frames after it were dropped).
    fn close_part(&mut self, end: StreamTime, last_in_segment: bool, sink: &mut dyn FnMut(Cut)) {
        let Some(part) = self.parts.as_mut().and_then(|p| p.open.take()) else {
            return;
        };
        let end = end.min(part.end);
        self.flush_fragment(end);
        let segment_start = self.open.as_ref().map_or(part.start, |o| o.start);
        sink(Cut::Part(ClosedPart {
            index: part.index,
            segment_start,
            start: part.start,
            duration: end - part.start,
            independent: part.independent,
            last_in_segment,
            bytes: Bytes::copy_from_slice(&self.buf[part.offset..]),
        }));
    }

    /// Closes the last segment at the end of the stream; `end` is the stream time just after
    /// its last frame (last frame time + one frame duration).
    pub(crate) fn finish(&mut self, end: StreamTime) -> Option<ClosedSegment> {
        debug_assert!(self.parts.is_none(), "parts would be lost: use finish_cuts");
        self.close(end)
    }

    /// [`Segmenter::finish`] with parts: the open part, then the segment.
    pub(crate) fn finish_cuts(&mut self, end: StreamTime, sink: &mut dyn FnMut(Cut)) {
        self.close_part(end, true, sink);
        if let Some(closed) = self.close(end) {
            sink(Cut::Segment(closed));
        }
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
        let ts = match &self.muxer {
            Muxer::Ts(ts) => ts,
            Muxer::Fmp4(mp4) => return mp4.check_invariants(),
        };
        ts.check_invariants()?;
        if self.buf.len() % 188 != 0 {
            return Err(format!(
                "open segment holds {} bytes, not whole packets",
                self.buf.len()
            ));
        }
        Ok(())
    }

    /// fMP4: writes the frames waiting since the last fragment as one fragment ending at `end`.
    fn flush_fragment(&mut self, end: StreamTime) {
        if let Muxer::Fmp4(mp4) = &mut self.muxer {
            let Some(last) = mp4.last_pending_decode_time() else {
                return;
            };
            // `end` is after the last frame (frames only go forward, and a part ends after its
            // last frame); after a stall of over a minute the last frame lasts one minute (the
            // next segment carries a discontinuity and its own tfdt).
            let end = Pts(end.as_u64()).min(last + crate::fmp4::MAX_DTS_STEP);
            mp4.flush_fragment(end, &mut self.buf)
                .expect("a fragment ends after its last frame, within MAX_DTS_STEP");
        }
    }

    fn close(&mut self, end: StreamTime) -> Option<ClosedSegment> {
        self.open.as_ref()?;
        self.flush_fragment(end);
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

/// Replaces `out` with the SPS (NAL type 7) and PPS (type 8) NAL units of the Annex B access
/// unit `au`, each behind a 4-byte start code, in their order in `au`. Leaves `out` as it was
/// when `au` has neither (a keyframe without parameter sets keeps the previous ones).
fn copy_parameter_sets(au: &[u8], out: &mut Vec<u8>) {
    let mut found = false;
    for nal in annex_b_nal_units(au) {
        if matches!(nal.first().map(|h| h & 0x1F), Some(7 | 8)) {
            if !found {
                out.clear();
                found = true;
            }
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
    }
}

/// The NAL units of an Annex B byte stream (H.264 Annex B.1), without their start codes and
/// without the zero bytes that may trail them.
fn annex_b_nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || loop {
        let start = rest.windows(3).position(|w| w == [0, 0, 1])? + 3;
        rest = &rest[start..];
        let end = rest
            .windows(3)
            .position(|w| w == [0, 0, 1])
            .unwrap_or(rest.len());
        let mut nal = &rest[..end];
        rest = &rest[end..];
        while let [head @ .., 0] = nal {
            nal = head;
        }
        if !nal.is_empty() {
            return Some(nal);
        }
    })
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

    /// Pushes `slots` (30 fps unless `rate` says otherwise) through a segmenter with parts of
    /// `part_frames`, segments every 2 s; returns every cut with the slot whose push made it.
    fn cut_with_parts(rate: FrameRate, part_frames: u64, slots: &[u64]) -> Vec<(u64, Cut)> {
        let segment = Duration90k::from_secs(2);
        let mut source_clock = SegmentClock::new(segment);
        let mut s = Segmenter::with_parts(
            Pts(0),
            PartPlan {
                frames: part_frames,
                rate,
                segments: SegmentClock::new(segment),
            },
        );
        let idr = [0u8, 0, 0, 1, 0x65, 3, 3, 3];
        let p = [0u8, 0, 0, 1, 0x41, 4, 5];
        let mut cuts = Vec::new();
        for &n in slots {
            let at = rate.time_of(n);
            let opens = source_clock.opens_segment(at);
            let au = FrameAu {
                data: if opens { &idr } else { &p },
                at,
                keyframe: opens,
                opens_segment: opens,
            };
            s.push_cuts(&au, &mut |c| cuts.push((n, c))).unwrap();
            s.check_invariants().unwrap();
        }
        let end = rate.time_of(slots.last().unwrap() + 1);
        s.finish_cuts(end, &mut |c| cuts.push((u64::MAX, c)));
        cuts
    }

    fn pid(packet: &[u8]) -> u16 {
        (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2])
    }

    #[test]
    fn parts_are_cut_on_their_last_frame_and_make_up_the_segment() {
        let rate = FrameRate::new(30, 1).unwrap();
        let slots: Vec<u64> = (0..120).collect();
        let cuts = cut_with_parts(rate, 6, &slots);
        let mut parts: Vec<&ClosedPart> = Vec::new();
        let mut segments = 0;
        for (slot, cut) in &cuts {
            match cut {
                Cut::Init(_) => unreachable!("TS has no init segment"),
                Cut::Part(p) => {
                    // Published on its own last frame: no waiting for the next one.
                    let last = rate.first_frame_at_or_after(p.start + p.duration) - 1;
                    assert_eq!(*slot, last, "part {} of segment {segments}", p.index);
                    parts.push(p);
                }
                Cut::Segment(seg) => {
                    assert_eq!(parts.len(), 10, "segment {segments} has 10 parts");
                    for (i, p) in parts.iter().enumerate() {
                        assert_eq!(p.index, i as u32);
                        assert_eq!(p.duration, Duration90k(6 * 3000));
                        assert_eq!(p.start, seg.start + Duration90k(i as u64 * 18_000));
                        assert_eq!(p.independent, i == 0, "INDEPENDENT only on the IDR part");
                        assert_eq!(p.last_in_segment, i == 9);
                        assert_eq!(pid(&p.bytes[..188]), 0, "a part opens with its own PAT");
                        assert_eq!(p.bytes.len() % 188, 0);
                    }
                    let joined: Vec<u8> = parts.iter().flat_map(|p| p.bytes.to_vec()).collect();
                    assert_eq!(joined, seg.bytes, "the parts end to end are the segment");
                    parts.clear();
                    segments += 1;
                }
            }
        }
        assert_eq!(segments, 2);
        assert!(parts.is_empty());
    }

    /// The video elementary stream carried by whole TS packets (PES headers removed).
    fn video_es(ts: &[u8]) -> Vec<u8> {
        let mut es = Vec::new();
        for packet in ts.chunks(188) {
            if pid(packet) != crate::ts::VIDEO_PID || packet[3] & 0x10 == 0 {
                continue;
            }
            let mut at = 4;
            if packet[3] & 0x20 != 0 {
                at += 1 + usize::from(packet[4]);
            }
            if packet[1] & 0x40 != 0 {
                at += 9 + usize::from(packet[at + 8]);
            }
            es.extend_from_slice(&packet[at..]);
        }
        es
    }

    #[test]
    fn p7_every_part_that_opens_on_a_p_frame_carries_the_current_sps_and_pps() {
        let rate = FrameRate::new(30, 1).unwrap();
        let segment = Duration90k::from_secs(2);
        let mut source_clock = SegmentClock::new(segment);
        let mut s = Segmenter::with_parts(
            Pts(0),
            PartPlan {
                frames: 10,
                rate,
                segments: SegmentClock::new(segment),
            },
        );
        // The second segment's IDR brings other parameter sets (and a 3-byte start code).
        let sps_a = [0x67u8, 0x42, 0xC0, 0x1F, 0xDA];
        let sps_b = [0x67u8, 0x42, 0xC0, 0x28, 0xDB];
        let pps = [0x68u8, 0xCE, 0x3C, 0x80];
        let idr = |sps: &[u8]| -> Vec<u8> {
            let mut v = vec![0, 0, 0, 1];
            v.extend_from_slice(sps);
            v.extend_from_slice(&[0, 0, 1]);
            v.extend_from_slice(&pps);
            v.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x84]);
            v
        };
        let (idr_a, idr_b) = (idr(&sps_a), idr(&sps_b));
        let p = [0u8, 0, 0, 1, 0x41, 0x9A, 0x02];
        let mut parts = Vec::new();
        let mut segments = Vec::new();
        for n in 0..120u64 {
            let at = rate.time_of(n);
            let opens = source_clock.opens_segment(at);
            let data: &[u8] = match (opens, n) {
                (false, _) => &p,
                (true, 0) => &idr_a,
                (true, _) => &idr_b,
            };
            let au = FrameAu {
                data,
                at,
                keyframe: opens,
                opens_segment: opens,
            };
            s.push_cuts(&au, &mut |c| match c {
                Cut::Part(part) => parts.push(part),
                Cut::Segment(seg) => segments.push(seg),
                Cut::Init(_) => unreachable!("TS has no init segment"),
            })
            .unwrap();
            s.check_invariants().unwrap();
        }
        s.finish_cuts(rate.time_of(120), &mut |c| match c {
            Cut::Part(part) => parts.push(part),
            Cut::Segment(seg) => segments.push(seg),
            Cut::Init(_) => unreachable!("TS has no init segment"),
        });
        assert_eq!(parts.len(), 12);
        for (i, part) in parts.iter().enumerate() {
            let es = video_es(&part.bytes);
            let mut expected = crate::ts::AUD.to_vec();
            if part.independent {
                expected.extend_from_slice(if i < 6 { &idr_a } else { &idr_b });
            } else {
                for nal in [if i < 6 { &sps_a[..] } else { &sps_b[..] }, &pps[..]] {
                    expected.extend_from_slice(&[0, 0, 0, 1]);
                    expected.extend_from_slice(nal);
                }
                expected.extend_from_slice(&p);
            }
            assert!(
                es.starts_with(&expected),
                "part {i} opens with {:02x?}",
                &es[..expected.len().min(es.len())]
            );
            // Only its first access unit carries them: ten frames, one SPS.
            let sps_count = annex_b_nal_units(&es).filter(|n| n[0] & 0x1F == 7).count();
            assert_eq!(sps_count, 1, "part {i}");
        }
        // The segments are still exactly their parts.
        let joined: Vec<u8> = parts[..6].iter().flat_map(|p| p.bytes.to_vec()).collect();
        assert_eq!(joined, segments[0].bytes);
    }

    #[test]
    fn parameter_sets_keep_their_order_and_survive_a_keyframe_without_them() {
        let mut out = Vec::new();
        copy_parameter_sets(
            &[
                0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4,
            ],
            &mut out,
        );
        assert_eq!(out, [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3]);
        copy_parameter_sets(&[0, 0, 0, 1, 0x65, 9], &mut out);
        assert_eq!(out, [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3]);
    }

    #[test]
    fn the_last_part_of_a_segment_is_shorter_and_never_crosses_a_boundary() {
        // 29.97 fps: 2 s segments of 60 frames; parts of 7 frames: 8 x 7 + 4.
        let rate = FrameRate::new(30_000, 1001).unwrap();
        let slots: Vec<u64> = (0..180).collect();
        let cuts = cut_with_parts(rate, 7, &slots);
        let mut frames_per_part = Vec::new();
        for (_, cut) in &cuts {
            match cut {
                Cut::Init(_) => unreachable!("TS has no init segment"),
                Cut::Part(p) => frames_per_part.push(p.duration.as_u64() / 3003),
                Cut::Segment(seg) => {
                    assert_eq!(frames_per_part, vec![7, 7, 7, 7, 7, 7, 7, 7, 4]);
                    assert_eq!(seg.frames, 60);
                    frames_per_part.clear();
                }
            }
        }
    }

    #[test]
    fn dropped_frames_close_a_part_late_but_never_stretch_it() {
        let rate = FrameRate::new(30, 1).unwrap();
        // Slots 10 and 11, the end of part 1 (slots 6..12), are dropped: part 1 ends when slot 12
        // arrives. Slots 13..19 are dropped too: part 2 (12..18) holds one frame and ends at its
        // boundary when slot 19 arrives, not at 19; part 3 starts late, at 19.
        let slots: Vec<u64> = (0..60)
            .filter(|n| !(10..12).contains(n) && !(13..19).contains(n))
            .chain([60])
            .collect();
        let cuts = cut_with_parts(rate, 6, &slots);
        let parts: Vec<(u64, u32, u64, u64)> = cuts
            .iter()
            .filter_map(|(slot, c)| match c {
                Cut::Part(p) => Some((
                    *slot,
                    p.index,
                    p.start.as_u64() / 3000,
                    p.duration.as_u64() / 3000,
                )),
                Cut::Segment(_) | Cut::Init(_) => None,
            })
            .take(4)
            .collect();
        assert_eq!(
            parts,
            vec![(5, 0, 0, 6), (12, 1, 6, 6), (19, 2, 12, 6), (23, 3, 19, 5)]
        );
    }

    #[test]
    fn fmp4_parts_are_fragments_that_make_up_the_segment() {
        use crate::fmp4::tests::{annex_b, decode_all, make_sps, PPS};
        use mp4_atom::Any;
        let rate = FrameRate::new(30, 1).unwrap();
        let segment = Duration90k::from_secs(2);
        let mut source_clock = SegmentClock::new(segment);
        let mut s = Segmenter::with_parts(
            Pts(126_000),
            PartPlan {
                frames: 6,
                rate,
                segments: SegmentClock::new(segment),
            },
        )
        .into_fmp4();
        let sps = make_sps(66, 31, 1280, 720, false);
        let idr = annex_b(&[&sps, &PPS, &[0x65, 3, 3, 3]]);
        let p = annex_b(&[&[0x41, 4, 5]]);
        let mut cuts = Vec::new();
        let first = 1_000u64; // a restarted run: the stream clock does not start at 0
        for n in first..first + 120 {
            let at = rate.time_of(n);
            let opens = source_clock.opens_segment(at) || n == first;
            let au = FrameAu {
                data: if opens { &idr } else { &p },
                at,
                keyframe: opens,
                opens_segment: opens,
            };
            s.push_cuts(&au, &mut |c| cuts.push(c)).unwrap();
            s.check_invariants().unwrap();
        }
        s.finish_cuts(rate.time_of(first + 120), &mut |c| cuts.push(c));
        assert!(
            matches!(cuts[0], Cut::Init(_)),
            "the init segment comes before anything that needs it"
        );
        let inits = cuts.iter().filter(|c| matches!(c, Cut::Init(_))).count();
        assert_eq!(inits, 1, "the same SPS and PPS make no new init");
        let mut parts: Vec<&ClosedPart> = Vec::new();
        let mut segments = 0;
        let mut next_tfdt = rate.time_of(first).as_u64();
        for cut in &cuts {
            match cut {
                Cut::Init(bytes) => {
                    let atoms = decode_all(bytes);
                    assert!(matches!(atoms.as_slice(), [Any::Ftyp(_), Any::Moov(_)]));
                }
                Cut::Part(part) => {
                    let atoms = decode_all(&part.bytes);
                    let [Any::Moof(moof), Any::Mdat(_)] = atoms.as_slice() else {
                        panic!("a part is one fragment: {atoms:?}")
                    };
                    let traf = &moof.traf[0];
                    let tfdt = traf.tfdt.as_ref().unwrap().base_media_decode_time;
                    assert_eq!(tfdt, part.start.as_u64(), "tfdt is the stream time");
                    assert_eq!(tfdt, next_tfdt, "fragments follow each other");
                    let total: u64 = traf.trun[0]
                        .samples
                        .iter()
                        .map(|e| u64::from(e.duration.unwrap()))
                        .sum();
                    assert_eq!(total, part.duration.as_u64());
                    next_tfdt += total;
                    let sync = traf.trun[0].samples.get(0).unwrap().flags.unwrap() & 0x1_0000 == 0;
                    assert_eq!(sync, part.independent);
                    parts.push(part);
                }
                Cut::Segment(seg) => {
                    assert!(!parts.is_empty());
                    let joined: Vec<u8> = parts.iter().flat_map(|p| p.bytes.to_vec()).collect();
                    assert_eq!(joined, seg.bytes, "the parts end to end are the segment");
                    parts.clear();
                    segments += 1;
                }
            }
        }
        assert_eq!(
            segments, 3,
            "a short first segment, one whole one, and the rest"
        );
    }

    #[test]
    fn fmp4_without_parts_is_one_fragment_per_segment() {
        use crate::fmp4::tests::{annex_b, decode_all, make_sps, PPS};
        use mp4_atom::Any;
        let sps = make_sps(66, 31, 640, 360, false);
        let idr = annex_b(&[&sps, &PPS, &[0x65, 3, 3, 3]]);
        let p = annex_b(&[&[0x41, 4, 5]]);
        let mut s = Segmenter::new(Pts(0)).into_fmp4();
        let mut cuts = Vec::new();
        for n in 0..7u64 {
            let opens = n % 3 == 0;
            let au = FrameAu {
                data: if opens { &idr } else { &p },
                at: StreamTime(n * 3000),
                keyframe: opens,
                opens_segment: opens,
            };
            s.push_cuts(&au, &mut |c| cuts.push(c)).unwrap();
        }
        s.finish_cuts(StreamTime(7 * 3000), &mut |c| cuts.push(c));
        let segs: Vec<&ClosedSegment> = cuts
            .iter()
            .filter_map(|c| match c {
                Cut::Segment(s) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(segs.len(), 3);
        for (k, seg) in segs.iter().enumerate() {
            let atoms = decode_all(&seg.bytes);
            let [Any::Moof(moof), Any::Mdat(_)] = atoms.as_slice() else {
                panic!("{atoms:?}")
            };
            assert_eq!(moof.mfhd.sequence_number, k as u32 + 1);
            assert_eq!(
                moof.traf[0].tfdt.as_ref().unwrap().base_media_decode_time,
                seg.start.as_u64()
            );
            assert_eq!(moof.traf[0].trun[0].samples.len(), seg.frames as usize);
        }
    }
}
