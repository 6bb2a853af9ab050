//! A stream's name and the names of its files: the one place that formats and parses them.
//!
//! Stream `cam` has the playlist `cam.m3u8` and the segments `cam0.ts`, `cam1.ts`, ... (the
//! media sequence number in canonical decimal: no sign, no leading zero). A name is 1 to
//! [`StreamName::MAX_LEN`] ASCII letters, digits, `_` or `-` and does not end in a digit, so
//!
//! - a file name splits back into name and number in exactly one way (`cam1` + `2.ts` could
//!   otherwise be `cam12.ts`),
//! - it can never form a path separator, a `..` or a percent-escape, and
//! - it is a URI without escaping (RFC 3986 unreserved characters, RFC 8216 §4.1).
//!
//! The command line, the playlist writer, the media directory and the HTTP server all take a
//! [`StreamName`], so a name that one of them would refuse is refused when the flags are read.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A validated stream name (see the module documentation).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StreamName {
    name: String,
    segment_type: SegmentType,
}

/// The container of the media segments (`--segment-type`, ffmpeg's names): it decides the
/// segment and part file names and their content type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum SegmentType {
    /// MPEG-2 transport stream (ISO/IEC 13818-1): `NAME<seq>.ts`, `video/mp2t`.
    #[default]
    Mpegts,
    /// Fragmented MP4 (ISO/IEC 14496-12, CMAF-style): `NAME<seq>.m4s` after the init segment
    /// `NAME<seq>.init.mp4` named by `EXT-X-MAP`, all `video/mp4`.
    Fmp4,
}

impl SegmentType {
    /// The extension of segment and part files, dot included.
    pub fn extension(self) -> &'static str {
        match self {
            SegmentType::Mpegts => ".ts",
            SegmentType::Fmp4 => ".m4s",
        }
    }

    /// The `Content-Type` of segments and parts (and of the init segment for fMP4).
    pub fn content_type(self) -> &'static str {
        match self {
            SegmentType::Mpegts => "video/mp2t",
            SegmentType::Fmp4 => "video/mp4",
        }
    }
}

/// A file of a stream, as a request or a directory listing names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MediaFile {
    /// `NAME.m3u8`
    Playlist,
    /// `NAME.index.m3u8`: the multivariant playlist that names `NAME.m3u8` (one variant).
    Multivariant,
    /// `NAME<seq>.ts`
    Segment(u64),
    /// `NAME<seq>.<part>.ts`: part `part` (from 0) of segment `seq`, for low-latency HLS.
    Part { sequence: u64, index: u32 },
    /// The fMP4 init segment that `EXT-X-MAP` names, numbered by the media sequence number of
    /// the first segment it initialises: `NAME<seq>.init.mp4`.
    Init(u64),
}

/// Suffix of the multivariant playlist's file name (a name holds no `.`, so it is no segment's).
const MULTIVARIANT_SUFFIX: &str = ".index.m3u8";

/// Suffix of the init segment's file name.
const INIT_SUFFIX: &str = ".init.mp4";

impl StreamName {
    /// Longest accepted name, in bytes.
    pub(crate) const MAX_LEN: usize = 64;

    pub fn new(name: &str) -> Result<Self, Error> {
        let alphabet = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if name.is_empty()
            || name.len() > Self::MAX_LEN
            || !alphabet
            || name.ends_with(|c: char| c.is_ascii_digit())
        {
            let shown: String = name.chars().take(Self::MAX_LEN + 8).collect();
            return Err(crate::err!(
                InvalidArgument,
                "stream name {shown:?}: use 1 to {} letters, digits, '_' and '-', not ending in a \
                 digit (segments are NAME<seq>.ts)",
                Self::MAX_LEN
            ));
        }
        Ok(StreamName {
            name: name.to_owned(),
            segment_type: SegmentType::Mpegts,
        })
    }

    /// The same name with segments of `segment_type`.
    pub fn with_segment_type(mut self, segment_type: SegmentType) -> Self {
        self.segment_type = segment_type;
        self
    }

    pub fn segment_type(&self) -> SegmentType {
        self.segment_type
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// `NAME.m3u8`
    pub(crate) fn playlist_file(&self) -> String {
        self.file(MediaFile::Playlist)
    }

    /// `NAME.index.m3u8`
    pub(crate) fn multivariant_file(&self) -> String {
        self.file(MediaFile::Multivariant)
    }

    /// `NAME.clock.json`: the stream's epoch, kept across restarts.
    pub(crate) fn clock_file(&self) -> String {
        format!("{}.clock.json", self.name)
    }

    /// `NAME.markers.jsonl`: the marker log.
    pub(crate) fn markers_file(&self) -> String {
        format!("{}.markers.jsonl", self.name)
    }

    /// `NAME<seq>.ts`
    pub(crate) fn segment_file(&self, sequence: u64) -> String {
        self.file(MediaFile::Segment(sequence))
    }

    pub(crate) fn file(&self, file: MediaFile) -> String {
        let mut s = String::with_capacity(self.name.len() + 26);
        self.write_file(&mut s, file);
        s
    }

    /// Appends the file name to `out` (the playlist writer renders without allocating).
    pub(crate) fn write_file(&self, out: &mut String, file: MediaFile) {
        out.push_str(&self.name);
        let ext = self.segment_type.extension();
        match file {
            MediaFile::Playlist => out.push_str(".m3u8"),
            MediaFile::Multivariant => out.push_str(MULTIVARIANT_SUFFIX),
            MediaFile::Segment(seq) => {
                push_decimal(out, seq);
                out.push_str(ext);
            }
            MediaFile::Part { sequence, index } => {
                push_decimal(out, sequence);
                out.push('.');
                push_decimal(out, u64::from(index));
                out.push_str(ext);
            }
            MediaFile::Init(seq) => {
                push_decimal(out, seq);
                out.push_str(INIT_SUFFIX);
            }
        }
    }

    /// Which of this stream's files `file` names, if any: exactly `NAME.m3u8`, `NAME<seq>.ts`
    /// or `NAME<seq>.<part>.ts`, each number canonical decimal that fits (`u64`, `u32`).
    pub(crate) fn parse_file(&self, file: &str) -> Option<MediaFile> {
        let rest = file.strip_prefix(self.name.as_str())?;
        if rest == ".m3u8" {
            return Some(MediaFile::Playlist);
        }
        if rest == MULTIVARIANT_SUFFIX {
            return Some(MediaFile::Multivariant);
        }
        if self.segment_type == SegmentType::Fmp4 {
            if let Some(seq) = rest.strip_suffix(INIT_SUFFIX) {
                return canonical(seq)?.parse().ok().map(MediaFile::Init);
            }
        }
        let numbers = rest.strip_suffix(self.segment_type.extension())?;
        match numbers.split_once('.') {
            None => canonical(numbers)?.parse().ok().map(MediaFile::Segment),
            Some((seq, part)) => Some(MediaFile::Part {
                sequence: canonical(seq)?.parse().ok()?,
                index: canonical(part)?.parse().ok()?,
            }),
        }
    }

    /// The sequence number if `file` is one of this stream's segments.
    pub(crate) fn parse_segment_file(&self, file: &str) -> Option<u64> {
        match self.parse_file(file) {
            Some(MediaFile::Segment(seq)) => Some(seq),
            _ => None,
        }
    }
}

/// `digits` if it is a number in canonical decimal: ASCII digits only, no leading zero.
fn canonical(digits: &str) -> Option<&str> {
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    ok.then_some(digits)
}

impl FromStr for StreamName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        StreamName::new(s)
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.name, f)
    }
}

/// Appends `n` in decimal, as `write!(out, "{n}")` would, without the formatting machinery: the
/// playlist writer calls it for every file name and duration of every render.
pub(crate) fn push_decimal(out: &mut String, mut n: u64) {
    // u64::MAX has 20 digits.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn name(s: &str) -> StreamName {
        StreamName::new(s).unwrap()
    }

    /// `push_decimal` writes what `Display` writes, at every digit count, and appends.
    #[test]
    fn push_decimal_is_the_displayed_number() {
        let powers = (0..20).flat_map(|k| {
            let p = 10u64.pow(k);
            [p - 1, p, p + 1]
        });
        for n in powers
            .chain((0..3000).map(|k| k * 7919))
            .chain([u64::MAX - 1, u64::MAX])
        {
            let mut s = String::from("seg");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("seg{n}"));
        }
    }

    #[test]
    fn names_are_restricted_to_a_safe_alphabet() {
        for good in ["chessboard", "cam_a", "Cam-B", "x", &"a".repeat(64)] {
            assert_eq!(name(good).as_str(), good);
        }
        for bad in [
            "",
            "cam1",
            "../x",
            "a/b",
            "a.b",
            "a b",
            "caf\u{e9}",
            "a%2e",
            "a\0",
            "..",
            "a\\b",
            " a",
            "\u{e4}",
            "%2e",
            &"a".repeat(65),
        ] {
            let e = StreamName::new(bad).expect_err(bad);
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            assert!(e.to_string().contains("NAME<seq>.ts"), "{e}");
        }
    }

    #[test]
    fn parse_accepts_only_canonical_names() {
        let n = name("chessboard");
        assert_eq!(n.parse_file("chessboard.m3u8"), Some(MediaFile::Playlist));
        assert_eq!(n.parse_file("chessboard0.ts"), Some(MediaFile::Segment(0)));
        assert_eq!(n.parse_segment_file("chessboard12.ts"), Some(12));
        assert_eq!(
            n.parse_file("chessboard18446744073709551615.ts"),
            Some(MediaFile::Segment(u64::MAX))
        );
        for bad in [
            "chessboard.ts",
            "chessboard012.ts",
            "chessboard00.ts",
            "chessboard+1.ts",
            "chessboard-1.ts",
            "chessboard1.ts.tmp",
            "chessboard1.m3u8",
            "chessboard18446744073709551616.ts",
            "other1.ts",
            "../chessboard1.ts",
            "chessboard1.TS",
            "chessboard.m3u8x",
            "chessboard1.ts.bak",
            "chessboard.M3U8",
            "Chessboard1.ts",
            "chessboard1.ts/",
            "chessboard/../1.ts",
            "chessboard1%2ets",
            "chessboard 1.ts",
            "chessboard1.ts\0",
            "chessboard1.01.ts",
            "chessboard01.1.ts",
            "chessboard1..ts",
            "chessboard.1.ts",
            "chessboard1.2.3.ts",
            "chessboard1.4294967296.ts",
            "chessboard1.-1.ts",
            "chessboard1.+1.ts",
            "",
        ] {
            assert_eq!(n.parse_file(bad), None, "{bad}");
        }
    }

    #[test]
    fn file_names_round_trip() {
        let n = name("cam");
        for f in [
            MediaFile::Playlist,
            MediaFile::Multivariant,
            MediaFile::Segment(0),
            MediaFile::Segment(7),
            MediaFile::Segment(907),
            MediaFile::Segment(u64::MAX),
            MediaFile::Part {
                sequence: 0,
                index: 0,
            },
            MediaFile::Part {
                sequence: 907,
                index: 11,
            },
            MediaFile::Part {
                sequence: u64::MAX,
                index: u32::MAX,
            },
        ] {
            assert_eq!(n.parse_file(&n.file(f)), Some(f));
        }
        assert_eq!(n.segment_file(12), "cam12.ts");
        assert_eq!(
            n.file(MediaFile::Part {
                sequence: 12,
                index: 3
            }),
            "cam12.3.ts"
        );
        assert_eq!(n.playlist_file(), "cam.m3u8");
        assert_eq!("cam".parse::<StreamName>().unwrap(), n);
    }

    #[test]
    fn fmp4_names_are_m4s_and_init_mp4_and_nothing_else() {
        let n = name("cam").with_segment_type(SegmentType::Fmp4);
        assert_eq!(n.segment_file(12), "cam12.m4s");
        assert_eq!(
            n.file(MediaFile::Part {
                sequence: 12,
                index: 3
            }),
            "cam12.3.m4s"
        );
        assert_eq!(n.file(MediaFile::Init(40)), "cam40.init.mp4");
        assert_eq!(n.multivariant_file(), "cam.index.m3u8");
        assert_eq!(
            n.parse_file("cam.index.m3u8"),
            Some(MediaFile::Multivariant)
        );
        assert_eq!(n.parse_file("cam.Index.m3u8"), None);
        assert_eq!(n.parse_file("cam.index.m3u8.tmp"), None);
        for f in [
            MediaFile::Playlist,
            MediaFile::Multivariant,
            MediaFile::Segment(0),
            MediaFile::Segment(u64::MAX),
            MediaFile::Part {
                sequence: 907,
                index: 11,
            },
            MediaFile::Init(0),
            MediaFile::Init(u64::MAX),
        ] {
            assert_eq!(n.parse_file(&n.file(f)), Some(f));
        }
        for bad in [
            "cam12.ts",
            "cam12.1.ts",
            "cam.init.mp4",
            "cam01.init.mp4",
            "cam1.init.mp4.tmp",
            "cam1.INIT.mp4",
            "cam1.init.m4s",
            "cam1.2.init.mp4",
            "cam1.mp4",
            "cam-1.init.mp4",
            "../cam1.init.mp4",
            "cam18446744073709551616.init.mp4",
        ] {
            assert_eq!(n.parse_file(bad), None, "{bad}");
        }
        // The TS stream recognises no fMP4 name.
        let ts = name("cam");
        for f in ["cam12.m4s", "cam12.3.m4s", "cam4.init.mp4"] {
            assert_eq!(ts.parse_file(f), None, "{f}");
        }
        assert_eq!(SegmentType::Fmp4.content_type(), "video/mp4");
        assert_eq!(SegmentType::Mpegts.content_type(), "video/mp2t");
    }
}
