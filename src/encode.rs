//! H.264 encoding with openh264, configured for live HLS.
//!
//! openh264 0.9.9's defaults are wrong for streaming (measured): 120 kbit/s, quality-mode rate
//! control, frame skipping on (frames vanish, so EXTINF and frame counts drift) and scene-change
//! detection on (IDRs appear where we did not ask). We set constant-bitrate rate control, turn
//! both off, fix the GOP to one segment and force an IDR on the first frame of every segment, so
//! every segment opens with SPS, PPS and an IDR (HLS R2, R18).
//!
//! Output is Annex B (start codes) with SPS/PPS before every IDR and no access unit delimiter:
//! the TS muxer adds the AUD.

use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate as H264FrameRate, FrameType,
    IntraFramePeriod, RateControlMode, SpsPpsStrategy, UsageType, VuiConfig,
};
use openh264::formats::YUVSlices;
use openh264::{OpenH264API, Timestamp};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::LazyLock;

use crate::frame::YuvFrame;
use crate::time::{FrameRate, StreamTime};

/// True when the openh264 linked into this binary has its x86 assembly kernels; without them
/// encoding is about 2.5-3x slower. Always true off x86, where nasm plays no part.
///
/// The answer comes from the linked library itself, not from the build environment:
/// openh264-sys2's build script assembles the kernels only if it finds nasm, and only then
/// compiles openh264 with `X86_ASM`, which selects the assembly CPU detection. Without it,
/// openh264's `WelsCPUFeatureDetect` is a stub that reports no CPU features (and the encoder
/// then uses its C code paths). Every x86 CPU this runs on has at least MMX/SSE2, so a real
/// detection never returns 0. Because it asks the code that is linked, the answer follows
/// `cargo clean -p openh264-sys2` and any rebuild without a build script of ours having to rerun.
pub static BUILT_WITH_NASM: LazyLock<bool> = LazyLock::new(|| {
    !cfg!(any(target_arch = "x86", target_arch = "x86_64")) || openh264_cpu_features() != 0
});

/// The one command that makes the encoder fast, for the start-up warning. `cargo clean -p`
/// cleans only the profile it is given (dev without `--release`), and openh264-sys2's build
/// script never reruns by itself when nasm appears, so the command names this build's profile.
pub const NASM_HINT: &str = if cfg!(debug_assertions) {
    "apt-get install nasm && cargo clean -p openh264-sys2 && cargo build"
} else {
    "apt-get install nasm && cargo clean --release -p openh264-sys2 && cargo build --release"
};

/// openh264's own CPU feature detection (`WELS_CPU_*` flags of `codec/common/inc/cpu_core.h`),
/// 0 when openh264 was built without assembly. The function is declared `extern "C"` in
/// openh264's `cpu.h` and is part of the static library openh264-sys2 links, whichever way it
/// was built; openh264-sys2 just does not bind it.
fn openh264_cpu_features() -> u32 {
    extern "C" {
        fn WelsCPUFeatureDetect(logical_processors: *mut c_int) -> u32;
    }
    let mut logical_processors: c_int = 0;
    // SAFETY: the function only executes CPUID and writes the processor count through the
    // pointer, which is valid for the call.
    unsafe { WelsCPUFeatureDetect(&mut logical_processors) }
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("openh264 could not be set up for {width}x{height}: {source}")]
    Init {
        width: usize,
        height: usize,
        #[source]
        source: openh264::Error,
    },
    #[error("openh264 failed on the frame at {at:?}: {source}")]
    Encode {
        at: StreamTime,
        #[source]
        source: openh264::Error,
    },
    #[error("openh264 skipped the frame at {at:?} although frame skipping is off")]
    Skipped { at: StreamTime },
    #[error("forced IDR at {at:?} came out as {got:?}")]
    NotIdr { at: StreamTime, got: String },
    #[error("frame size {width}x{height} is not supported by H.264 4:2:0 (even sizes from 16x16 to 3840x2160)")]
    Size { width: usize, height: usize },
}

impl From<EncodeError> for crate::error::Error {
    fn from(e: EncodeError) -> Self {
        use crate::error::{Error, ErrorKind};
        let kind = match e {
            EncodeError::Size { .. } => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        };
        Error::new(kind, "H.264 encoder").with_source(e)
    }
}

/// Encoder settings derived from the validated configuration.
#[derive(Clone, Debug)]
pub struct EncoderSettings {
    pub width: usize,
    pub height: usize,
    pub rate: FrameRate,
    pub bitrate_bps: u32,
    /// Frames per segment at a steady rate: the fixed GOP.
    pub gop_frames: u32,
}

/// One encoded picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// An IDR (with SPS and PPS in front of it).
    pub keyframe: bool,
}

/// openh264 wrapped for our use: I420 in, one Annex B access unit out.
pub struct H264Encoder {
    inner: Encoder,
}

impl H264Encoder {
    pub fn new(settings: EncoderSettings) -> Result<Self, EncodeError> {
        let (w, h) = (settings.width, settings.height);
        if w % 2 != 0 || h % 2 != 0 || w < 16 || h < 16 || w.max(h) > 3840 || w.min(h) > 2160 {
            return Err(EncodeError::Size {
                width: w,
                height: h,
            });
        }
        let config = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(settings.bitrate_bps))
            .max_frame_rate(H264FrameRate::from_hz(settings.rate.as_f64() as f32))
            .skip_frames(false)
            .scene_change_detect(false)
            .background_detection(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(settings.gop_frames))
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            .complexity(Complexity::Low)
            // Our conversion is BT.601 limited range; say so in the SPS so players agree.
            .vui(VuiConfig::bt601());
        let mut inner =
            Encoder::with_api_config(OpenH264API::from_source(), config).map_err(|source| {
                EncodeError::Init {
                    width: w,
                    height: h,
                    source,
                }
            })?;
        route_log_to_tracing(&mut inner);
        Ok(H264Encoder { inner })
    }

    /// Encodes `frame` (stream time `at`), appending the access unit to `out`.
    /// `force_idr` asks for an IDR; it is the caller's segment-boundary decision.
    pub fn encode(
        &mut self,
        frame: &YuvFrame,
        at: StreamTime,
        force_idr: bool,
        out: &mut Vec<u8>,
    ) -> Result<Encoded, EncodeError> {
        let src = YUVSlices::new(
            (&frame.y, &frame.u, &frame.v),
            (frame.width, frame.height),
            (frame.y_stride(), frame.uv_stride(), frame.uv_stride()),
        );
        if force_idr {
            // Before the first frame the encoder is not initialised yet; its first frame is an
            // IDR anyway. openh264 applies the request to the next encoded frame.
            self.inner.force_intra_frame();
        }
        let bs = self
            .inner
            .encode_at(&src, Timestamp::from_millis(at.since_start().as_millis()))
            .map_err(|source| EncodeError::Encode { at, source })?;
        let frame_type = bs.frame_type();
        match frame_type {
            FrameType::Skip | FrameType::Invalid => return Err(EncodeError::Skipped { at }),
            FrameType::IDR => {}
            other if force_idr => {
                return Err(EncodeError::NotIdr {
                    at,
                    got: format!("{other:?}"),
                });
            }
            _ => {}
        }
        bs.write_vec(out);
        Ok(Encoded {
            keyframe: frame_type == FrameType::IDR,
        })
    }
}

/// Sends openh264's own messages to `tracing` (target `openh264`) instead of raw stderr.
///
/// The encoder initialises lazily on the first frame and warns then that "bitrate can't be
/// controlled ... without enabling skip frame": true, and deliberate (a live stream must not lose
/// frames; the rate control undershoots instead on simple content), so it is logged at debug.
fn route_log_to_tracing(encoder: &mut Encoder) {
    let mut callback: openh264_sys2::WelsTraceCallback = Some(openh264_log);
    let mut level: c_int = openh264_sys2::WELS_LOG_WARNING as c_int;
    // SAFETY: both options are accepted before initialisation (welsEncoderExt.cpp SetOption);
    // the encoder copies the callback pointer and the level out of the pointed-to values during
    // the call, so pointers to these locals need not outlive it. The callback is a plain
    // `extern "C"` function with the WelsTraceCallback signature.
    unsafe {
        let api = encoder.raw_api();
        api.set_option(
            openh264_sys2::ENCODER_OPTION_TRACE_CALLBACK,
            (&raw mut callback).cast::<c_void>(),
        );
        api.set_option(
            openh264_sys2::ENCODER_OPTION_TRACE_LEVEL,
            (&raw mut level).cast::<c_void>(),
        );
    }
}

unsafe extern "C" fn openh264_log(_ctx: *mut c_void, level: c_int, message: *const c_char) {
    if message.is_null() {
        return;
    }
    // SAFETY: openh264 passes a NUL-terminated string valid for the duration of the call.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    let text = text.trim_end();
    if level <= openh264_sys2::WELS_LOG_ERROR as c_int {
        tracing::error!(target: "openh264", "{text}");
    } else if level <= openh264_sys2::WELS_LOG_WARNING as c_int
        && !text.contains("bEnableFrameSkip")
    {
        tracing::warn!(target: "openh264", "{text}");
    } else {
        tracing::debug!(target: "openh264", "{text}");
    }
}

/// Iterates over the NAL units of an Annex B byte stream: yields each NAL's bytes without its
/// start code. Used by tests and by the muxer's input checks.
pub fn annexb_nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let start = find_start_code(data, pos)?;
        let body = start.1;
        let end = find_start_code(data, body)
            .map(|(s, _)| s)
            .unwrap_or(data.len());
        pos = end;
        // Trailing zero bytes belong to the next start code (00 00 00 01).
        let mut e = end;
        while e > body && data[e - 1] == 0 && end != data.len() {
            e -= 1;
        }
        Some(&data[body..e])
    })
}

/// Finds the next `00 00 01` at or after `from`; returns (index of the first 0, index after 01).
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            return Some((i, i + 3));
        }
        i += 1;
    }
    None
}

/// The `nal_unit_type` of a NAL (its first byte's low five bits).
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openh264::decoder::Decoder;
    use openh264::formats::YUVSource;

    fn settings(w: usize, h: usize) -> EncoderSettings {
        EncoderSettings {
            width: w,
            height: h,
            rate: FrameRate::new(30, 1).unwrap(),
            bitrate_bps: 500_000,
            gop_frames: 60,
        }
    }

    fn gray_frame(w: usize, h: usize, shade: u8) -> YuvFrame {
        let mut f = YuvFrame::new(w, h);
        f.y.fill(shade);
        f
    }

    #[test]
    fn annexb_split_finds_nals() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 9, 9,
        ];
        let nals: Vec<&[u8]> = annexb_nals(&data).collect();
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 9, 9][..]]
        );
    }

    /// The nasm probe reads openh264's CPU detection: either the stub (0, built without
    /// assembly) or real `WELS_CPU_*` flags, which on x86-64 always include MMX (0x1) and SSE2
    /// (0x8). Set `HLS_EXPECT_NASM=1` or `=0` to also assert which build this is.
    #[test]
    fn nasm_probe_reads_the_linked_openh264() {
        let flags = openh264_cpu_features();
        if cfg!(target_arch = "x86_64") {
            assert!(flags == 0 || flags & 0x9 == 0x9, "flags {flags:#x}");
            assert_eq!(*BUILT_WITH_NASM, flags != 0);
        }
        match std::env::var("HLS_EXPECT_NASM").as_deref() {
            Ok("1") => assert!(*BUILT_WITH_NASM, "openh264 linked without assembly"),
            Ok("0") => assert!(!*BUILT_WITH_NASM, "openh264 linked with assembly"),
            _ => {}
        }
    }

    /// R2: every forced boundary is an IDR preceded by SPS and PPS; frames in between are not
    /// IDRs (scene-change detection is off), and nothing is skipped at a low bitrate.
    #[test]
    fn r2_fixed_gop_idr_with_sps_pps_at_every_boundary() {
        let mut enc = H264Encoder::new(settings(160, 96)).unwrap();
        let mut out = Vec::new();
        let rate = settings(16, 16).rate;
        for n in 0..200u64 {
            // A scene cut every 7 frames would trigger scene-change IDRs if detection were on.
            let frame = gray_frame(160, 96, if (n / 7) % 2 == 0 { 20 } else { 230 });
            out.clear();
            let boundary = n % 60 == 0;
            let e = enc
                .encode(&frame, rate.time_of(n), boundary, &mut out)
                .unwrap();
            assert_eq!(e.keyframe, boundary, "frame {n}");
            let types: Vec<u8> = annexb_nals(&out).filter_map(nal_type).collect();
            assert!(!out.is_empty(), "frame {n} produced no bytes");
            if boundary {
                assert_eq!(&types[..3], &[7, 8, 5], "frame {n}: SPS, PPS, IDR");
            } else {
                assert!(
                    !types.contains(&5) && !types.contains(&7),
                    "frame {n}: {types:?}"
                );
            }
            assert!(
                !types.contains(&9),
                "openh264 must not emit AUDs (the muxer adds them)"
            );
        }
    }

    #[test]
    fn forced_idr_off_period_works() {
        // A dropped frame moves the boundary: an IDR forced mid-GOP must still be honoured.
        let mut enc = H264Encoder::new(settings(64, 64)).unwrap();
        let mut out = Vec::new();
        let rate = settings(16, 16).rate;
        for n in 0..100u64 {
            out.clear();
            let force = n == 0 || n == 37;
            let e = enc
                .encode(
                    &gray_frame(64, 64, (n % 200) as u8),
                    rate.time_of(n),
                    force,
                    &mut out,
                )
                .unwrap();
            assert_eq!(e.keyframe, force || n == 97, "frame {n}");
        }
    }

    #[test]
    fn decodes_back_to_the_picture() {
        let mut enc = H264Encoder::new(settings(64, 48)).unwrap();
        let mut dec = Decoder::new().unwrap();
        let mut out = Vec::new();
        let mut f = YuvFrame::new(64, 48);
        for (i, v) in f.y.iter_mut().enumerate() {
            *v = if (i % 64) < 32 { 40 } else { 200 };
        }
        let rate = settings(16, 16).rate;
        let mut decoded = 0;
        for n in 0..10u64 {
            out.clear();
            enc.encode(&f, rate.time_of(n), n == 0, &mut out).unwrap();
            if let Some(yuv) = dec.decode(&out).unwrap() {
                decoded += 1;
                let (ys, _, _) = yuv.strides();
                let y = yuv.y();
                let left = i32::from(y[10 * ys + 5]);
                let right = i32::from(y[10 * ys + 60]);
                assert!(
                    (left - 40).abs() <= 6 && (right - 200).abs() <= 6,
                    "{left} {right}"
                );
            }
        }
        assert_eq!(decoded, 10);
    }

    #[test]
    fn rejects_odd_sizes() {
        assert!(matches!(
            H264Encoder::new(settings(321, 180)),
            Err(EncodeError::Size { .. })
        ));
    }
}
