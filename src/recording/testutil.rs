//! Segments made the way the product makes them (checkerboard with mint events, openh264, our
//! TS muxer), for the recording tests.

use crate::encode::{EncoderSettings, H264Encoder};
use crate::frame::YuvFrame;
use crate::source::{Checkerboard, CheckerboardConfig, Source};
use crate::time::{Duration90k, FrameRate, Pts};
use crate::ts::{AccessUnit, TsMuxer};

/// PTS of stream time 0 (above the PCR lead, as the pipeline starts it).
pub(crate) const PTS_OFFSET: u64 = crate::time::TICKS_PER_SEC;

/// A run of segments and what the source painted.
pub(crate) struct Made {
    /// One TS file per segment, in order.
    pub segments: Vec<Vec<u8>>,
    /// Per frame slot: (PTS, whether an event was visible).
    pub frames: Vec<(u64, bool)>,
}

/// `frames` frames at `rate`, `gop` frames per segment, events about every second.
pub(crate) fn make(width: usize, height: usize, rate: FrameRate, frames: u64, gop: u64) -> Made {
    make_from(width, height, rate, frames, gop, PTS_OFFSET)
}

/// [`make`] with the PTS of the first frame given (near 2^33 to cross the wrap).
pub(crate) fn make_from(
    width: usize,
    height: usize,
    rate: FrameRate,
    frames: u64,
    gop: u64,
    pts_offset: u64,
) -> Made {
    let mut board = Checkerboard::new(CheckerboardConfig {
        width,
        height,
        rate,
        block_size: 20,
        roll: Duration90k::from_secs(4),
        noise_sigma: 0.0,
        event_mean: Duration90k::from_millis(700),
        event_duration: Duration90k::from_millis(300),
        seed: Some(7),
    })
    .unwrap();
    let mut enc = H264Encoder::new(EncoderSettings {
        width,
        height,
        rate,
        bitrate_bps: 400_000,
        gop_frames: gop as u32,
    })
    .unwrap();
    let mut mux = TsMuxer::new();
    let mut frame = YuvFrame::new(width, height);
    let mut segments = Vec::new();
    let mut out = Vec::new();
    let mut au = Vec::new();
    let mut info = Vec::new();
    for n in 0..frames {
        let ev = board.render_i420(n, &mut frame).unwrap().event.is_some();
        let at = rate.time_of(n);
        au.clear();
        let idr = n % gop == 0;
        let e = enc.encode(&frame, at, idr, &mut au).unwrap();
        assert_eq!(e.keyframe, idr, "frame {n}");
        if idr {
            if n > 0 {
                segments.push(std::mem::take(&mut out));
            }
            mux.start_segment(&mut out);
        }
        let pts = Pts(pts_offset + at.as_u64());
        mux.push(
            &AccessUnit {
                data: &au,
                pts,
                dts: None,
                keyframe: idr,
            },
            &mut out,
        )
        .unwrap();
        info.push((pts.0 % (1 << 33), ev));
    }
    segments.push(out);
    Made {
        segments,
        frames: info,
    }
}
