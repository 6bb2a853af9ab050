//! One stream's plan: its validated flags ([`StreamSettings`], made by `config`'s
//! `StreamArgs::validate`; this module imports nothing of `config`) plus what
//! its input reports
//! ([`InputFormat`]: a Y4M header's size and rate, a camera's GOP), settled once, before
//! anything is published, and never changed after: frame size and rate, TARGETDURATION and a
//! segment's lifetime, the bitrate, the low-latency parts, the frame limit. Every field is
//! private; the pipeline, the publisher and the server read it through accessors.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind};
use crate::input::Input;
use crate::name::StreamName;
use crate::playlist::{planned_segment_lifetime, segment_bound, Cuts};
use crate::rtsp::RtspTransport;
use crate::source::CheckerboardConfig;
use crate::time::{Duration90k, FrameRate, Pts, StreamTime};

/// One stream's validated flags (`config`'s `StreamArgs::validate`): what is known
/// before its input is opened. With what the
/// input reports it becomes the stream's [`Plan`] ([`StreamSettings::plan`]).
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub(crate) input: Input,
    /// `--size`, or the default.
    pub(crate) width: usize,
    pub(crate) height: usize,
    /// `--size` was given.
    pub(crate) size_given: bool,
    /// `--fps`, which wins over an input's own rate.
    pub(crate) rate: Option<FrameRate>,
    /// `--fps`, else the default rate (the checkerboard's).
    pub(crate) flags_rate: FrameRate,
    /// Nominal segment duration.
    pub(crate) segment: Duration90k,
    pub(crate) list_size: usize,
    pub(crate) bitrate_bps: Option<u32>,
    pub(crate) name: StreamName,
    pub(crate) event_mean: Duration90k,
    pub(crate) event_duration: Duration90k,
    pub(crate) seed: Option<u64>,
    pub(crate) block_size: u32,
    pub(crate) roll: Duration90k,
    pub(crate) noise_sigma: f32,
    pub(crate) start_number: u64,
    pub(crate) fresh: bool,
    pub(crate) frames: Option<u64>,
    pub(crate) duration: Option<Duration90k>,
    pub(crate) pacing: bool,
    pub(crate) pts_offset: Pts,
    pub(crate) builtin_markers: bool,
    /// `--part-duration` as asked; `None` with `--no-low-latency`.
    pub(crate) part_duration: Option<Duration90k>,
    pub(crate) rtsp_transport: RtspTransport,
    pub(crate) transcode: bool,
    /// `--record-retention`, `--clip-retention`, `--thumbnail-width`.
    pub(crate) recording: crate::recording::RecordingSettings,
}

pub(crate) fn check_rate(rate: FrameRate) -> Result<(), Error> {
    if rate.as_f64() > 240.0 {
        return Err(invalid(format!(
            "frame rate {}/{} is above 240",
            rate.num, rate.den
        )));
    }
    Ok(())
}

impl StreamSettings {
    /// The stream's plan, once its input has said what it brings (`format`); its files go
    /// in `out_dir`. Made once per stream: see [`Plan::new`].
    pub fn plan(&self, out_dir: &Path, format: InputFormat) -> Result<Plan, Error> {
        Plan::new(self, out_dir, format)
    }

    pub fn input(&self) -> &Input {
        &self.input
    }

    /// `--fps`, else the default: the checkerboard's rate.
    pub(crate) fn flags_rate(&self) -> FrameRate {
        self.flags_rate
    }

    pub fn name(&self) -> &StreamName {
        &self.name
    }

    pub fn rtsp_transport(&self) -> RtspTransport {
        self.rtsp_transport
    }

    pub fn transcode(&self) -> bool {
        self.transcode
    }

    /// Nominal segment duration (`--hls-time`).
    pub fn segment(&self) -> Duration90k {
        self.segment
    }

    pub fn list_size(&self) -> usize {
        self.list_size
    }
}

/// What an input reports about its pictures, for [`Plan::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    /// The flags' own size and rate: the checkerboard.
    Flags,
    /// An input that brings its picture size and perhaps its rate (a Y4M stream's header, a
    /// transcoded camera's SPS); `--fps` wins over its rate, `--size` cannot be given.
    Picture {
        width: usize,
        height: usize,
        rate: Option<FrameRate>,
    },
    /// A camera passed through: perhaps its rate, and the GOP measured when it connected;
    /// segments are cut at its IDRs, so TARGETDURATION follows the GOP.
    CameraGop {
        rate: Option<FrameRate>,
        gop: Duration90k,
    },
}

/// One stream's settled plan (see the module docs).
#[derive(Debug, Clone)]
pub struct Plan {
    input: Input,
    out_dir: PathBuf,
    name: StreamName,
    width: usize,
    height: usize,
    rate: FrameRate,
    segment: Duration90k,
    /// The longest segment this plan can produce.
    longest_segment: Duration90k,
    target_duration_secs: u64,
    segment_lifetime: Duration90k,
    list_size: usize,
    bitrate_bps: u32,
    checkerboard: CheckerboardConfig,
    start_number: u64,
    fresh: bool,
    frame_limit: Option<u64>,
    pacing: bool,
    pts_offset: Pts,
    builtin_markers: bool,
    event_duration: Duration90k,
    part_frames: Option<u64>,
    rtsp_transport: RtspTransport,
    transcode: bool,
    fps_given: bool,
    recording: crate::recording::RecordingSettings,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

impl Plan {
    /// Settles the plan of the stream `settings` describes, whose input reported `format`.
    /// An [`ErrorKind::InvalidArgument`] error when the two do not fit (a rate missing or out
    /// of range, `--size` with an input that brings its own, a segment or a part that does not
    /// fit the frame rate).
    pub fn new(
        settings: &StreamSettings,
        out_dir: &Path,
        format: InputFormat,
    ) -> Result<Plan, Error> {
        let s = settings;
        let (width, height, rate, gop) = match format {
            InputFormat::Flags => {
                return Plan::settle(s, out_dir, s.width, s.height, s.flags_rate(), None);
            }
            InputFormat::Picture {
                width,
                height,
                rate,
            } => (width, height, rate, None),
            InputFormat::CameraGop { rate, gop } => (s.width, s.height, rate, Some(gop)),
        };
        if s.size_given {
            return Err(invalid(format!(
                "--size cannot be used with {}: the frame size is the input's ({width}x{height})",
                s.input
            )));
        }
        let rate = s.rate.or(rate).ok_or_else(|| {
            invalid(format!(
                "{} gives no frame rate (no F in its header): give one with --fps",
                s.input
            ))
        })?;
        Plan::settle(s, out_dir, width, height, rate, gop).map_err(|e| {
            invalid(format!(
                "{} at {}/{} fps: {}",
                s.input,
                rate.num,
                rate.den,
                e.message()
            ))
        })
    }

    /// The frame size and rate and everything that follows from them: the bitrate's default,
    /// TARGETDURATION, a segment's lifetime, the parts, the frame limit of `--duration`.
    fn settle(
        s: &StreamSettings,
        out_dir: &Path,
        width: usize,
        height: usize,
        rate: FrameRate,
        gop: Option<Duration90k>,
    ) -> Result<Plan, Error> {
        check_rate(rate)?;
        if s.segment < rate.frame_duration() {
            return Err(invalid("--hls-time is shorter than one frame"));
        }
        let part_frames = match s.part_duration {
            None => None,
            Some(part) => {
                let frames = (part.as_secs_f64() * rate.as_f64()).round().max(1.0) as u64;
                if rate.time_of(frames).since_start() >= s.segment {
                    return Err(invalid(format!(
                        "--part-duration {:.3} s ({frames} frames) must be shorter than --hls-time {:.3} s \
                         (or turn parts off with --no-low-latency)",
                        part.as_secs_f64(),
                        s.segment.as_secs_f64()
                    )));
                }
                Some(frames)
            }
        };
        let cuts = match gop {
            None => Cuts::FrameGrid(rate),
            Some(gop) => Cuts::CameraGop(gop),
        };
        let (longest_segment, target_duration_secs) = segment_bound(s.segment, cuts);
        let frame_limit = match (s.frames, s.duration) {
            (Some(n), _) => Some(n),
            (None, Some(d)) => Some(rate.first_frame_at_or_after(StreamTime::ZERO + d).max(1)),
            (None, None) => None,
        };
        let bitrate_bps = s.bitrate_bps.unwrap_or_else(|| {
            // About 0.09 bit per pixel per frame: 2.5 Mbit/s at 720p30, 5.6 Mbit/s at 1080p30.
            let bpp = width as f64 * height as f64 * rate.as_f64() * 0.09;
            bpp.clamp(100_000.0, 50_000_000.0) as u32
        });
        Ok(Plan {
            input: s.input.clone(),
            out_dir: out_dir.to_path_buf(),
            name: s.name.clone(),
            width,
            height,
            rate,
            segment: s.segment,
            longest_segment,
            target_duration_secs,
            segment_lifetime: planned_segment_lifetime(longest_segment, s.list_size),
            list_size: s.list_size,
            bitrate_bps,
            checkerboard: CheckerboardConfig {
                width,
                height,
                rate,
                block_size: s.block_size,
                roll: s.roll,
                noise_sigma: s.noise_sigma,
                event_mean: s.event_mean,
                event_duration: s.event_duration,
                seed: s.seed,
            },
            start_number: s.start_number,
            fresh: s.fresh,
            frame_limit,
            pacing: s.pacing,
            pts_offset: s.pts_offset,
            builtin_markers: s.builtin_markers,
            event_duration: s.event_duration,
            part_frames,
            rtsp_transport: s.rtsp_transport,
            transcode: s.transcode,
            fps_given: s.rate.is_some(),
            recording: s.recording,
        })
    }

    pub fn input(&self) -> &Input {
        &self.input
    }

    /// The media directory (`--out-dir`).
    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    pub fn name(&self) -> &StreamName {
        &self.name
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// The stream clock's frame rate.
    pub fn rate(&self) -> FrameRate {
        self.rate
    }

    /// Nominal segment duration (`--hls-time`).
    pub fn segment(&self) -> Duration90k {
        self.segment
    }

    /// The longest segment this plan can produce (frame grid or camera GOP).
    pub fn longest_segment(&self) -> Duration90k {
        self.longest_segment
    }

    /// EXT-X-TARGETDURATION: fixed for the playlist's life (R14).
    pub fn target_duration_secs(&self) -> u64 {
        self.target_duration_secs
    }

    /// How long a segment stays on the server from its publication, listed and then in its R25
    /// grace: its `Expires` ([`planned_segment_lifetime`]).
    pub fn segment_lifetime(&self) -> Duration90k {
        self.segment_lifetime
    }

    pub fn list_size(&self) -> usize {
        self.list_size
    }

    pub fn bitrate_bps(&self) -> u32 {
        self.bitrate_bps
    }

    /// The checkerboard this plan paints (the binary's source; the bench paints the same
    /// frames).
    pub fn checkerboard(&self) -> CheckerboardConfig {
        self.checkerboard.clone()
    }

    pub fn event_duration(&self) -> Duration90k {
        self.event_duration
    }

    pub(crate) fn start_number(&self) -> u64 {
        self.start_number
    }

    pub(crate) fn fresh(&self) -> bool {
        self.fresh
    }

    /// The stream's recording settings (used when the output directory records).
    pub fn recording(&self) -> crate::recording::RecordingSettings {
        self.recording
    }

    /// Frames to produce; `None` runs until stopped.
    pub fn frame_limit(&self) -> Option<u64> {
        self.frame_limit
    }

    pub(crate) fn pacing(&self) -> bool {
        self.pacing
    }

    pub(crate) fn pts_offset(&self) -> Pts {
        self.pts_offset
    }

    /// Make markers for the generator's events.
    pub fn builtin_markers(&self) -> bool {
        self.builtin_markers
    }

    /// Frames per low-latency part; `None` with `--no-low-latency`.
    pub fn part_frames(&self) -> Option<u64> {
        self.part_frames
    }

    pub fn rtsp_transport(&self) -> RtspTransport {
        self.rtsp_transport
    }

    /// `--transcode`: an RTSP camera decoded and re-encoded (fixed GOP, timecode).
    pub fn transcode(&self) -> bool {
        self.transcode
    }

    /// `--fps` was given: it wins over an input's own rate.
    pub(crate) fn fps_given(&self) -> bool {
        self.fps_given
    }

    /// The longest part (`PART-TARGET`): `part_frames` frames on the frame grid.
    pub fn part_target(&self) -> Option<Duration90k> {
        self.part_frames.map(|n| self.rate.longest_span(n))
    }

    /// How far behind the live edge a conforming player plays: `PART-HOLD-BACK` (three part
    /// targets) with low latency, three target durations without (RFC 8216 §6.3.3).
    pub fn hold_back_secs(&self) -> f64 {
        match self.part_target() {
            Some(part) => 3.0 * part.as_secs_f64(),
            None => 3.0 * self.target_duration_secs() as f64,
        }
    }

    /// Frames per segment at a steady rate (the GOP length).
    pub fn gop_frames(&self) -> u32 {
        self.rate.frames_covering(self.segment).max(1) as u32
    }
}
