//! Fragmented MP4 (CMAF-style) writer for one H.264 video track: the `--segment-type fmp4`
//! counterpart of the TS muxer in [`crate::ts`], pure like it (appends to caller-owned buffers,
//! no I/O).
//!
//! Implements ISO/IEC 14496-12 (ISO base media file format) and ISO/IEC 14496-15 §5 (AVC
//! file format); every box writer in [`boxes`] names the section it implements. HLS side
//! (RFC 8216 §3.3, rfc8216bis §3.1.2; R49-R51 in `docs/spec.md`): an init segment named by
//! `EXT-X-MAP`, then media segments each of one or more movie fragments.
//!
//! ```text
//! init segment   ftyp | moov(mvhd, trak(tkhd, mdia(mdhd, hdlr, minf(vmhd, dinf(dref(url )),
//!                  stbl(stsd(avc1(avcC)), stts, stsc, stsz, stco))))), mvex(trex))
//! fragment       moof(mfhd, traf(tfhd, tfdt v1, trun v1)) | mdat(samples)
//! sample         [u32 length][NAL unit] ...  (AVCC framing, 14496-15 §5.3.2; no AUD, and no
//!                SPS/PPS: they are in the avcC)
//! LL-HLS part    one fragment
//! segment        its parts' fragments end to end (one fragment without low latency)
//! ```
//!
//! The media timescale is the stream clock's (90 kHz) and `tfdt` is the first sample's decode
//! time on it, 64 bits, never wrapped (unlike the TS's 33-bit PTS).
//!
//! Samples are collected by [`Fmp4Muxer::push`] and written as one fragment by
//! [`Fmp4Muxer::flush_fragment`], since a `trun` needs every sample's size and duration before
//! the data. Its buffers are reused: in steady state no push or flush allocates
//! (`tests/alloc.rs`).

pub mod avc;
pub mod boxes;

#[cfg(test)]
pub(crate) mod tests;

use crate::time::{Duration90k, Pts};
use crate::ts::AccessUnit;
use avc::{nal_type, nal_units, parse_sps, SpsError, SpsInfo, NAL_AUD, NAL_PPS, NAL_SPS};
use boxes::Sample;

/// Largest step between two samples' decode times, and largest PTS - DTS: 60 s, as the TS
/// muxer's `MAX_DTS_STEP` (a longer gap is a broken timeline: a discontinuity, R6).
pub const MAX_DTS_STEP: Duration90k = crate::ts::MAX_DTS_STEP;

/// Largest fragment payload (mdat) accepted: 256 MiB, far above any real part, well below the
/// 32-bit box size.
pub const MAX_FRAGMENT_BYTES: usize = 256 << 20;

/// Why the writer refused an access unit or a fragment. The muxer's state is unchanged when
/// it returns one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fmp4Error {
    #[error("fMP4 mux, access unit PTS {pts:?}: empty access unit")]
    EmptyAccessUnit { pts: Pts },
    #[error("fMP4 mux, access unit PTS {pts:?}: {len}-byte access unit does not start with an Annex B start code and a NAL header")]
    MissingStartCode { pts: Pts, len: usize },
    #[error(
        "fMP4 mux, access unit PTS {pts:?}: no picture data (only parameter sets or delimiters)"
    )]
    NoPictureData { pts: Pts },
    #[error("fMP4 mux, access unit PTS {pts:?}: no SPS and PPS seen yet (the first access unit must be a keyframe carrying both)")]
    NoParameterSets { pts: Pts },
    #[error("fMP4 mux, access unit PTS {pts:?}: more than one distinct {what} in one access unit")]
    SeveralParameterSets { pts: Pts, what: &'static str },
    #[error("fMP4 mux, access unit PTS {pts:?}: new parameter sets on a {where_}: they need a new init segment, which starts on a keyframe opening a fragment")]
    ParametersChangeOutsideKeyframe { pts: Pts, where_: &'static str },
    #[error("fMP4 mux, access unit PTS {pts:?}: unreadable SPS: {source}")]
    BadSps { pts: Pts, source: SpsError },
    #[error("fMP4 mux, access unit PTS {pts:?}: {len}-byte {what} does not fit the avcC's 16-bit length")]
    ParameterSetTooLong {
        pts: Pts,
        what: &'static str,
        len: usize,
    },
    #[error("fMP4 mux, access unit PTS {pts:?}: DTS {dts:?} is later than the PTS")]
    DtsAfterPts { pts: Pts, dts: Pts },
    #[error(
        "fMP4 mux, access unit PTS {pts:?}: PTS is more than {MAX_DTS_STEP:?} after DTS {dts:?}"
    )]
    PtsTooFarAfterDts { pts: Pts, dts: Pts },
    #[error("fMP4 mux, access unit PTS {pts:?}: DTS {dts:?} does not advance past the previous access unit's DTS {previous_dts:?}")]
    DtsNotIncreasing {
        pts: Pts,
        dts: Pts,
        previous_dts: Pts,
    },
    #[error("fMP4 mux, access unit PTS {pts:?}: DTS {dts:?} jumps more than {MAX_DTS_STEP:?} past the previous DTS {previous_dts:?}")]
    DtsJump {
        pts: Pts,
        dts: Pts,
        previous_dts: Pts,
    },
    #[error(
        "fMP4 mux, access unit PTS {pts:?}: the fragment would exceed {MAX_FRAGMENT_BYTES} bytes"
    )]
    FragmentTooLarge { pts: Pts },
    #[error("fMP4 mux: fragment end {end:?} is not after its last sample's decode time {last_dts:?} (or more than {MAX_DTS_STEP:?} after it)")]
    BadFragmentEnd { end: Pts, last_dts: Pts },
}

/// A sample waiting for its fragment.
#[derive(Clone, Copy, Debug)]
struct Pending {
    dts: u64,
    composition_offset: i32,
    size: u32,
    sync: bool,
}

/// The stream's parameter sets, as the init segment carries them.
#[derive(Clone, Debug, Default)]
struct ParameterSets {
    sps: Vec<u8>,
    pps: Vec<u8>,
    info: Option<SpsInfo>,
}

/// What [`Fmp4Muxer::push`] found in an access unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// The access unit brought the first or new parameter sets: the init segment changed
    /// ([`Fmp4Muxer::write_init`]); fragments from here on belong to the new one.
    pub new_init: bool,
}

/// One H.264 track's fragmented-MP4 writer. One lives for a run (an init segment's life):
/// fragment sequence numbers run on across segments.
#[derive(Debug)]
pub struct Fmp4Muxer {
    params: ParameterSets,
    /// Incremented every time the parameter sets change (0: none yet).
    init_generation: u32,
    pending: Vec<Pending>,
    /// The pending samples' AVCC bytes: the next mdat's payload.
    mdat: Vec<u8>,
    /// The trun's entries, rebuilt per fragment (kept for its capacity).
    samples: Vec<Sample>,
    /// mfhd sequence_number of the next fragment (§8.8.5: starts at 1, increases).
    next_sequence: u32,
    last_dts: Option<u64>,
}

impl Default for Fmp4Muxer {
    fn default() -> Self {
        Self::new()
    }
}

/// Where the parameter sets of an access unit are, and how many picture bytes it has.
struct Scan<'a> {
    sps: Option<&'a [u8]>,
    pps: Option<&'a [u8]>,
    /// AVCC bytes the sample will take.
    sample_len: usize,
    /// The SPS or PPS differs from the current one (or there is none yet).
    new_params: bool,
}

impl Fmp4Muxer {
    pub fn new() -> Self {
        Fmp4Muxer {
            params: ParameterSets::default(),
            init_generation: 0,
            pending: Vec::new(),
            mdat: Vec::new(),
            samples: Vec::new(),
            next_sequence: 1,
            last_dts: None,
        }
    }

    /// Adds an access unit (Annex B, as for the TS muxer) to the open fragment. Its SPS and PPS
    /// go into the init segment, not the sample; a keyframe with parameter sets that differ
    /// from the current ones starts a new init segment (`Pushed::new_init`), and must be the
    /// first sample of a fragment.
    pub fn push(&mut self, au: &AccessUnit<'_>) -> Result<Pushed, Fmp4Error> {
        let pts = au.pts;
        let scan = self.check(au)?;
        if scan.new_params {
            if let Some(sps) = scan.sps {
                self.params.sps.clear();
                self.params.sps.extend_from_slice(sps);
            }
            if let Some(pps) = scan.pps {
                self.params.pps.clear();
                self.params.pps.extend_from_slice(pps);
            }
            let info = parse_sps(&self.params.sps).expect("checked by check()");
            self.params.info = Some(info);
            self.init_generation += 1;
        }
        let dts = au.dts.unwrap_or(pts);
        let before = self.mdat.len();
        for nal in nal_units(au.data) {
            if matches!(nal_type(nal), NAL_AUD | NAL_SPS | NAL_PPS) {
                continue;
            }
            self.mdat
                .extend_from_slice(&(nal.len() as u32).to_be_bytes());
            self.mdat.extend_from_slice(nal);
        }
        debug_assert_eq!(self.mdat.len() - before, scan.sample_len);
        self.pending.push(Pending {
            dts: dts.0,
            composition_offset: (pts.0 - dts.0) as i32,
            size: scan.sample_len as u32,
            sync: au.keyframe,
        });
        self.last_dts = Some(dts.0);
        Ok(Pushed {
            new_init: scan.new_params,
        })
    }

    /// Every check of [`Fmp4Muxer::push`], before anything changes.
    fn check<'a>(&self, au: &AccessUnit<'a>) -> Result<Scan<'a>, Fmp4Error> {
        let pts = au.pts;
        let data = au.data;
        if data.is_empty() {
            return Err(Fmp4Error::EmptyAccessUnit { pts });
        }
        let starts = data.starts_with(&[0, 0, 1]) && data.len() > 3
            || data.starts_with(&[0, 0, 0, 1]) && data.len() > 4;
        if !starts {
            return Err(Fmp4Error::MissingStartCode {
                pts,
                len: data.len(),
            });
        }
        let dts = au.dts.unwrap_or(pts);
        if dts > pts {
            return Err(Fmp4Error::DtsAfterPts { pts, dts });
        }
        if pts - dts > MAX_DTS_STEP {
            return Err(Fmp4Error::PtsTooFarAfterDts { pts, dts });
        }
        if let Some(prev) = self.last_dts {
            let previous_dts = Pts(prev);
            if dts <= previous_dts {
                return Err(Fmp4Error::DtsNotIncreasing {
                    pts,
                    dts,
                    previous_dts,
                });
            }
            if dts - previous_dts > MAX_DTS_STEP {
                return Err(Fmp4Error::DtsJump {
                    pts,
                    dts,
                    previous_dts,
                });
            }
        }
        let mut scan = Scan {
            sps: None,
            pps: None,
            sample_len: 0,
            new_params: false,
        };
        for nal in nal_units(data) {
            let (slot, what) = match nal_type(nal) {
                NAL_SPS => (&mut scan.sps, "SPS"),
                NAL_PPS => (&mut scan.pps, "PPS"),
                NAL_AUD => continue,
                _ => {
                    scan.sample_len += 4 + nal.len();
                    continue;
                }
            };
            if nal.len() > usize::from(u16::MAX) {
                return Err(Fmp4Error::ParameterSetTooLong {
                    pts,
                    what,
                    len: nal.len(),
                });
            }
            match slot {
                Some(seen) if *seen != nal => {
                    return Err(Fmp4Error::SeveralParameterSets { pts, what })
                }
                _ => *slot = Some(nal),
            }
        }
        if scan.sample_len == 0 {
            return Err(Fmp4Error::NoPictureData { pts });
        }
        let changes = |new: Option<&[u8]>, current: &[u8]| new.is_some_and(|n| n != current);
        let new_params = changes(scan.sps, &self.params.sps) || changes(scan.pps, &self.params.pps);
        if self.params.info.is_none() && (scan.sps.is_none() || scan.pps.is_none()) {
            return Err(Fmp4Error::NoParameterSets { pts });
        }
        if new_params {
            if !au.keyframe {
                return Err(Fmp4Error::ParametersChangeOutsideKeyframe {
                    pts,
                    where_: "non-keyframe",
                });
            }
            if !self.pending.is_empty() {
                return Err(Fmp4Error::ParametersChangeOutsideKeyframe {
                    pts,
                    where_: "keyframe in the middle of a fragment",
                });
            }
            // Both are needed for the new avcC; a lone new one pairs with the current other.
            let sps = scan.sps.unwrap_or(&self.params.sps);
            parse_sps(sps).map_err(|source| Fmp4Error::BadSps { pts, source })?;
        }
        if self.mdat.len() + scan.sample_len > MAX_FRAGMENT_BYTES {
            return Err(Fmp4Error::FragmentTooLarge { pts });
        }
        scan.new_params = new_params;
        Ok(scan)
    }

    /// Writes the pending samples as one fragment (`moof` + `mdat`) to `out` and empties the
    /// fragment. `end` is the decode time just after the last sample (it gives that sample's
    /// duration). Returns `false`, writing nothing, when no sample is pending.
    pub fn flush_fragment(&mut self, end: Pts, out: &mut Vec<u8>) -> Result<bool, Fmp4Error> {
        let Some(last) = self.pending.last() else {
            return Ok(false);
        };
        let last_dts = Pts(last.dts);
        if end <= last_dts || end - last_dts > MAX_DTS_STEP {
            return Err(Fmp4Error::BadFragmentEnd { end, last_dts });
        }
        self.samples.clear();
        for (i, p) in self.pending.iter().enumerate() {
            let next = self.pending.get(i + 1).map_or(end.0, |n| n.dts);
            self.samples.push(Sample {
                duration: (next - p.dts) as u32,
                size: p.size,
                sync: p.sync,
                composition_offset: p.composition_offset,
            });
        }
        out.reserve(boxes::moof_len(self.samples.len()) + 8 + self.mdat.len());
        boxes::moof(out, self.next_sequence, self.pending[0].dts, &self.samples);
        boxes::mdat_header(out, self.mdat.len());
        out.extend_from_slice(&self.mdat);
        self.next_sequence = self.next_sequence.wrapping_add(1).max(1);
        self.pending.clear();
        self.mdat.clear();
        Ok(true)
    }

    /// Writes the init segment for the current parameter sets; `false` (nothing written) before
    /// the first keyframe.
    pub fn write_init(&self, out: &mut Vec<u8>) -> bool {
        let Some(info) = &self.params.info else {
            return false;
        };
        boxes::init_segment(out, info, &self.params.sps, &self.params.pps);
        true
    }

    /// The current SPS's fields (`None` before the first keyframe).
    pub fn sps_info(&self) -> Option<SpsInfo> {
        self.params.info
    }

    /// How many times the parameter sets were set or changed: each value is one init segment.
    pub fn init_generation(&self) -> u32 {
        self.init_generation
    }

    /// Decode time of the newest sample waiting for its fragment.
    pub fn last_pending_decode_time(&self) -> Option<Pts> {
        self.pending.last().map(|p| Pts(p.dts))
    }

    /// Samples waiting for [`Fmp4Muxer::flush_fragment`].
    pub fn pending_samples(&self) -> usize {
        self.pending.len()
    }

    /// Fragments written so far.
    pub fn fragments(&self) -> u32 {
        self.next_sequence - 1
    }

    /// The writer's own rules: pending samples in increasing decode order with their bytes all
    /// in the mdat buffer, parameter sets present once a sample is.
    pub fn check_invariants(&self) -> Result<(), String> {
        let bytes: usize = self.pending.iter().map(|p| p.size as usize).sum();
        if bytes != self.mdat.len() {
            return Err(format!(
                "pending samples hold {bytes} bytes, the mdat buffer {}",
                self.mdat.len()
            ));
        }
        if self.pending.windows(2).any(|w| w[1].dts <= w[0].dts) {
            return Err("pending samples out of decode order".into());
        }
        if !self.pending.is_empty() && self.params.info.is_none() {
            return Err("samples without parameter sets".into());
        }
        if self.next_sequence == 0 {
            return Err("mfhd sequence_number 0".into());
        }
        Ok(())
    }
}
