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
//!   (counted) unless it opens a segment; with `--no-pacing` none is dropped (the one rule,
//!   [`crate::slots`]').
//! - **Faults.** The camera dropping or stalling sends [`crate::slots::Item::Gap`]: the segment in progress is
//!   published, the next frame (the next session's first IDR) opens a segment after
//!   `EXT-X-DISCONTINUITY`. A picture of another size than the first (the camera reconfigured)
//!   ends the stream with an error saying so. An access unit that does not decode (packet loss)
//!   is skipped and counted; the decoder recovers at the next IDR.

use std::sync::Arc;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use tracing::{debug, warn};

use super::passthrough::Passthrough;
use super::{CameraFrame, Event};
use crate::error::{Error, ErrorKind};
use crate::frame::{FrameInfo, YuvFrame};
use crate::slots::{EncoderGone, Feed, FrameSource, Next};
use crate::state::Shared;
use crate::time::{FrameRate, StreamTime};

/// How often a wait for the camera looks at the stop flag.
const POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// The camera's pictures as the source thread's [`FrameSource`] (the decoder thread).
pub(crate) struct TranscodeSource {
    /// The camera as shown in messages (no credentials).
    camera: String,
    events: Receiver<Event>,
    /// The frames the connection probe read (from the first IDR): decoded first.
    probed: std::vec::IntoIter<CameraFrame>,
    /// Places frames on the stream clock (its cuts are not used: ours are the encoder's).
    pass: Passthrough,
    decoder: Decoder,
    rate: FrameRate,
    width: usize,
    height: usize,
    undecodable: u64,
    shared: Arc<Shared>,
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

impl TranscodeSource {
    /// The camera's frames, `first_gop` (the connection probe's) first; an error when the
    /// decoder cannot start.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        camera: String,
        events: Receiver<Event>,
        first_gop: Vec<CameraFrame>,
        pass: Passthrough,
        rate: FrameRate,
        width: usize,
        height: usize,
        shared: Arc<Shared>,
    ) -> Result<Self, Error> {
        let decoder = Decoder::new().map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("starting the H.264 decoder: {e}"),
            )
        })?;
        Ok(TranscodeSource {
            camera,
            events,
            probed: first_gop.into_iter(),
            pass,
            decoder,
            rate,
            width,
            height,
            undecodable: 0,
            shared,
        })
    }
}

impl FrameSource for TranscodeSource {
    const DROPPED: &'static str = "camera frames";

    /// A camera's frames take the slots of their times: the frame limit counts frames sent.
    fn next_slot(&self) -> Option<u64> {
        None
    }

    /// Decodes the next access unit and stamps its picture with a slot; the client's end, or
    /// an error the stream cannot go on from, ends the loop.
    fn next(&mut self, feed: &mut Feed<'_>) -> Next {
        // The probe's frames are two seconds old or so: all of them are encoded (the encoder
        // catches up while the camera's frames queue), none dropped.
        let replaying = self.probed.len() > 0;
        let event = match self.probed.next() {
            Some(f) => Event::Frame(f),
            None => match self.events.recv_timeout(POLL) {
                Ok(e) => e,
                Err(RecvTimeoutError::Timeout) => return Next::Idle,
                Err(RecvTimeoutError::Disconnected) => return Next::End(None),
            },
        };
        let f = match event {
            Event::Frame(f) => f,
            Event::Connected { .. } => return Next::Idle,
            Event::Down { reason } => {
                if self.pass.end_run().is_some() && !feed.gap() {
                    return Next::Closed;
                }
                self.shared.update_status(|s| {
                    s.input_stalled = true;
                    s.input_down = Some(reason);
                });
                return Next::Idle;
            }
        };
        let camera = &self.camera;
        let placed = match self.pass.push(&f) {
            Ok(Some(p)) => p,
            // Before the session's first IDR: nothing to decode from.
            Ok(None) => return Next::Idle,
            Err(e) => {
                return Next::End(Some(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "camera {camera}: {}",
                        e.to_string().replace(
                            ", or use --transcode",
                            " (openh264 decodes no B-frames either)"
                        )
                    ),
                )))
            }
        };
        if placed.starts_run {
            self.shared.update_status(|s| {
                s.input_stalled = false;
                s.input_down = None;
            });
        }
        let pic = match self.decoder.decode(&f.data) {
            Ok(Some(pic)) => pic,
            Ok(None) => return Next::Idle,
            Err(e) => {
                self.undecodable += 1;
                if self.undecodable.is_power_of_two() {
                    warn!(
                        camera = %camera,
                        undecodable = self.undecodable,
                        "an access unit from the camera did not decode ({e}); skipped, the \
                         picture recovers at the next IDR"
                    );
                }
                return Next::Idle;
            }
        };
        let (w, h) = pic.dimensions();
        let (width, height, rate) = (self.width, self.height, self.rate);
        if (w, h) != (width, height) {
            return Next::End(Some(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "camera {camera}: the picture size changed from {width}x{height} to \
                     {w}x{h}; restart hls-streamer to stream the new size"
                ),
            )));
        }
        let slot = nearest_slot(rate, placed.at);
        if feed.last_sent().is_some_and(|l| slot <= l) {
            let dropped = feed.count_drop();
            if dropped.is_power_of_two() {
                warn!(
                    camera = %camera,
                    dropped,
                    "the camera sends more frames than {:.3} fps: frames dropped (set --fps \
                     to the camera's rate)",
                    rate.as_f64()
                );
            }
            return Next::Idle;
        }
        match feed.take_buffer(slot, replaying) {
            Ok(Some(mut yuv)) => {
                copy_picture(&pic, &mut yuv);
                Next::Frame {
                    slot,
                    yuv: Some(yuv),
                    info: FrameInfo::default(),
                }
            }
            Ok(None) => Next::Frame {
                slot,
                yuv: None,
                info: FrameInfo::default(),
            },
            Err(EncoderGone) => Next::Closed,
        }
    }

    fn finish(&mut self) {
        debug!(undecodable = self.undecodable, "camera decoder stopped");
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
