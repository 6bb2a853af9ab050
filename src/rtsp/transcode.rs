//! `--transcode`: the decoder thread between the RTSP client and our encoder.
//!
//! ```text
//!  rtsp thread ---- Event (bounded) ---> decoder thread ------ I420 (pool) ----> encoder -> segmenter
//!  camera H.264                          openh264 decode, slot, timecode         fixed GOP, our cuts
//! ```
//!
//! Every camera access unit is decoded (a decoder must see every reference picture); the
//! picture is copied into a pooled I420 buffer, stamped with a frame slot of our own rate, its
//! timecode is burnt straight into the planes, and it goes to the same encoder and segmenter
//! threads as the other inputs, so segments are cut on our fixed GOP (`--hls-time`), not the
//! camera's. Nothing is allocated per frame on our side once the pool is full (the camera's
//! access units themselves are retina's).
//!
//! - **Time.** [`Passthrough`] places each frame on the stream clock as for passthrough (a run
//!   anchored on the camera's wall clock, then its RTP timestamps); the frame takes the slot
//!   nearest to that time. A slot already taken (a camera faster than our rate) drops the frame,
//!   counted; a skipped slot (a slower camera, a lost frame) leaves a gap in time, never a wrong
//!   timestamp.
//! - **Drops.** When the encoder is behind, a frame that finds no free buffer is dropped
//!   (counted) unless it opens a segment; with `--no-pacing` none is dropped.
//! - **Faults.** The camera dropping or stalling sends [`Item::Gap`]: the segment in progress is
//!   published, the next frame (the next session's first IDR) opens a segment after
//!   `EXT-X-DISCONTINUITY`. A picture of another size than the first (the camera reconfigured)
//!   ends the stream with an error saying so. An access unit that does not decode (packet loss)
//!   is skipped and counted; the decoder recovers at the next IDR.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use tracing::{debug, warn};

use super::passthrough::Passthrough;
use super::{CameraFrame, Event};
use crate::error::{Error, ErrorKind};
use crate::frame::YuvFrame;
use crate::overlay::{Timecode, TimecodeOverlay};
use crate::pipeline::{count_drop, take_buffer, EncoderGone, Item, RawFrame, SourceEnd};
use crate::source::FrameInfo;
use crate::state::Shared;
use crate::time::{FrameRate, SegmentClock, StreamTime};

/// How often a wait for the camera looks at the stop flag.
const POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Everything the decoder thread needs.
pub(crate) struct TranscodeJob {
    /// The camera as shown in messages (no credentials).
    pub(crate) camera: String,
    pub(crate) events: Receiver<Event>,
    /// The frames the connection probe read (from the first IDR): decoded first.
    pub(crate) first_gop: Vec<CameraFrame>,
    /// Places frames on the stream clock (its cuts are not used: ours are the encoder's).
    pub(crate) pass: Passthrough,
    pub(crate) overlay: TimecodeOverlay,
    pub(crate) rate: FrameRate,
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) segments: SegmentClock,
    pub(crate) frame_limit: Option<u64>,
    /// `--no-pacing` (tests, benchmarks): never drop a frame for a busy encoder, wait for it
    /// (the camera's frames queue up meanwhile).
    pub(crate) pacing: bool,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) shared: Arc<Shared>,
}

/// The slot whose time is nearest to `at`.
fn nearest_slot(rate: FrameRate, at: StreamTime) -> u64 {
    let half = rate.frame_duration().as_u64() / 2;
    rate.first_frame_at_or_after(StreamTime(at.as_u64().saturating_sub(half)))
}

/// Copies a decoded picture into `dst` (same size), row by row over the decoder's strides.
pub(crate) fn copy_picture(pic: &impl YUVSource, dst: &mut YuvFrame) {
    let (y_stride, u_stride, v_stride) = pic.strides();
    let (w, h) = (dst.width, dst.height);
    let (cw, ch) = YuvFrame::chroma_size(w, h);
    for (row, out) in dst.y.chunks_exact_mut(w).enumerate().take(h) {
        out.copy_from_slice(&pic.y()[row * y_stride..][..w]);
    }
    for (row, out) in dst.u.chunks_exact_mut(cw).enumerate().take(ch) {
        out.copy_from_slice(&pic.u()[row * u_stride..][..cw]);
    }
    for (row, out) in dst.v.chunks_exact_mut(cw).enumerate().take(ch) {
        out.copy_from_slice(&pic.v()[row * v_stride..][..cw]);
    }
}

impl TranscodeJob {
    /// Decodes, stamps and sends frames until `stop`, the frame limit, the client's end, an
    /// error the stream cannot go on from, or the encoder is gone.
    pub(crate) fn run(self, free: Receiver<YuvFrame>, out: Sender<Item<RawFrame>>) -> SourceEnd {
        let TranscodeJob {
            camera,
            events,
            first_gop,
            mut pass,
            overlay,
            rate,
            width,
            height,
            mut segments,
            frame_limit,
            pacing,
            stop,
            shared,
        } = self;
        let (mut sent, mut dropped, mut undecodable) = (0u64, 0u64, 0u64);
        let mut decoder = match Decoder::new() {
            Ok(d) => d,
            Err(e) => {
                return SourceEnd {
                    sent,
                    dropped,
                    input_error: Some(Error::new(
                        ErrorKind::Internal,
                        format!("starting the H.264 decoder: {e}"),
                    )),
                }
            }
        };
        let mut last_slot: Option<u64> = None;
        // The next frame opens a segment whatever the clock says (the first after a gap).
        let mut force_open = false;
        let mut error = None;
        // The probe's frames are two seconds old or so: all of them are encoded (the encoder
        // catches up while the camera's frames queue), none dropped.
        let mut probed = first_gop.into_iter();
        while frame_limit.is_none_or(|l| sent < l) && !stop.load(Ordering::Relaxed) {
            let replaying = probed.len() > 0;
            let event = match probed.next() {
                Some(f) => Event::Frame(f),
                None => match events.recv_timeout(POLL) {
                    Ok(e) => e,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            let f = match event {
                Event::Frame(f) => f,
                Event::Connected { .. } => continue,
                Event::Down { reason } => {
                    if pass.end_run().is_some() {
                        if let Some(last) = last_slot {
                            if out
                                .send(Item::Gap {
                                    end: rate.time_of(last + 1),
                                })
                                .is_err()
                            {
                                break;
                            }
                        }
                        force_open = true;
                    }
                    shared.update_status(|s| {
                        s.input_stalled = true;
                        s.input_down = Some(reason);
                    });
                    continue;
                }
            };
            let placed = match pass.push(&f) {
                Ok(Some(p)) => p,
                // Before the session's first IDR: nothing to decode from.
                Ok(None) => continue,
                Err(e) => {
                    error = Some(Error::new(
                        ErrorKind::InvalidArgument,
                        format!(
                            "camera {camera}: {}",
                            e.to_string().replace(
                                ", or use --transcode",
                                " (openh264 decodes no B-frames either)"
                            )
                        ),
                    ));
                    break;
                }
            };
            if placed.starts_run {
                shared.update_status(|s| {
                    s.input_stalled = false;
                    s.input_down = None;
                });
            }
            let pic = match decoder.decode(&f.data) {
                Ok(Some(pic)) => pic,
                Ok(None) => continue,
                Err(e) => {
                    undecodable += 1;
                    if undecodable.is_power_of_two() {
                        warn!(
                            camera = %camera,
                            undecodable,
                            "an access unit from the camera did not decode ({e}); skipped, the \
                             picture recovers at the next IDR"
                        );
                    }
                    continue;
                }
            };
            let (w, h) = pic.dimensions();
            if (w, h) != (width, height) {
                error = Some(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "camera {camera}: the picture size changed from {width}x{height} to \
                         {w}x{h}; restart hls-streamer to stream the new size"
                    ),
                ));
                break;
            }
            let slot = nearest_slot(rate, placed.at);
            if last_slot.is_some_and(|l| slot <= l) {
                dropped += 1;
                shared.update_status(|s| s.frames_dropped = dropped);
                if dropped.is_power_of_two() {
                    warn!(
                        camera = %camera,
                        dropped,
                        "the camera sends more frames than {:.3} fps: frames dropped (set --fps \
                         to the camera's rate)",
                        rate.as_f64()
                    );
                }
                continue;
            }
            let at = rate.time_of(slot);
            let must_deliver = !pacing || replaying || force_open || segments.would_open(at);
            let mut yuv = match take_buffer(&free, must_deliver) {
                Ok(Some(b)) => b,
                Ok(None) => {
                    dropped += 1;
                    count_drop(&shared, dropped, slot, "camera frames");
                    continue;
                }
                Err(EncoderGone) => break,
            };
            copy_picture(&pic, &mut yuv);
            let opens_segment = segments.opens_segment(at) || force_open;
            force_open = false;
            overlay.draw_i420(&mut yuv, Timecode::from_frame(slot, rate));
            let frame = RawFrame {
                slot,
                yuv,
                info: FrameInfo::default(),
                opens_segment,
            };
            if out.send(Item::Frame(frame)).is_err() {
                break;
            }
            last_slot = Some(slot);
            sent += 1;
        }
        debug!(sent, dropped, undecodable, "camera decoder stopped");
        SourceEnd {
            sent,
            dropped,
            input_error: error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_takes_the_nearest_slot() {
        let rate = FrameRate::new(30, 1).unwrap();
        assert_eq!(nearest_slot(rate, StreamTime(0)), 0);
        assert_eq!(nearest_slot(rate, StreamTime(1499)), 0);
        assert_eq!(nearest_slot(rate, StreamTime(1501)), 1);
        assert_eq!(nearest_slot(rate, StreamTime(3000 * 7 + 40)), 7);
        assert_eq!(nearest_slot(rate, StreamTime(3000 * 7 - 40)), 7);
        let ntsc = FrameRate::new(30000, 1001).unwrap();
        assert_eq!(nearest_slot(ntsc, ntsc.time_of(1000)), 1000);
    }

    /// A decoded picture with padded strides lands row by row in the frame.
    #[test]
    fn pictures_are_copied_over_their_strides() {
        struct Padded;
        impl YUVSource for Padded {
            fn dimensions(&self) -> (usize, usize) {
                (4, 2)
            }
            fn strides(&self) -> (usize, usize, usize) {
                (8, 6, 6)
            }
            fn y(&self) -> &[u8] {
                &[1, 2, 3, 4, 99, 99, 99, 99, 5, 6, 7, 8, 99, 99, 99, 99]
            }
            fn u(&self) -> &[u8] {
                &[10, 11, 99, 99, 99, 99]
            }
            fn v(&self) -> &[u8] {
                &[20, 21, 99, 99, 99, 99]
            }
        }
        let mut f = YuvFrame::new(4, 2);
        copy_picture(&Padded, &mut f);
        assert_eq!(f.y, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(f.u, [10, 11]);
        assert_eq!(f.v, [20, 21]);
    }
}
