//! The strict playlist reader (RFC 8216 §4 as we write it) and the version-to-version check.

use super::*;

/// A media playlist as [`check_playlist_text`] read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderedPlaylist {
    pub version: u64,
    pub target_duration: u64,
    pub media_sequence: u64,
    /// `None` when the tag is absent (clients then assume 0).
    pub discontinuity_sequence: Option<u64>,
    pub independent_segments: bool,
    pub date_ranges: Vec<RenderedRange>,
    pub segments: Vec<RenderedSegment>,
    pub endlist: bool,
}

/// One media segment's lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderedSegment {
    pub uri: String,
    /// EXTINF in milliseconds (we write exactly three decimals).
    pub extinf_ms: u64,
    pub program_date_time: String,
    pub discontinuity: bool,
}

/// One `EXT-X-DATERANGE` line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderedRange {
    pub id: String,
    pub start_date: String,
    pub duration_ms: u64,
    pub label: Option<String>,
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`: RFC 3339 in UTC with milliseconds (R32).
fn is_date_with_ms(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn decimal_integer(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// `<digits>.<three digits>` as milliseconds.
fn millis_decimal(v: &str) -> Option<u64> {
    let (s, ms) = v.split_once('.')?;
    if ms.len() != 3 || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    decimal_integer(s)?
        .checked_mul(1000)?
        .checked_add(ms.parse().ok()?)
}

/// Attribute lists are read with the product's one strict parser (RFC 8216 §4.2, R37): the
/// checks below are on what the attributes say.
use hls::playlist::attributes::{parse as attribute_list, AttrValue};

fn date_range(list: &str) -> Result<RenderedRange, String> {
    let mut r = RenderedRange::default();
    let (mut id, mut start, mut duration) = (false, false, false);
    for (name, value) in attribute_list(list)? {
        match (name, value) {
            ("ID", AttrValue::Quoted(v)) if !v.is_empty() => {
                r.id = v.to_owned();
                id = true;
            }
            ("START-DATE", AttrValue::Quoted(v)) if is_date_with_ms(v) => {
                r.start_date = v.to_owned();
                start = true;
            }
            ("DURATION", AttrValue::Plain(v)) => {
                r.duration_ms = millis_decimal(v)
                    .ok_or_else(|| format!("R35: DURATION {v:?} is not a non-negative decimal"))?;
                duration = true;
            }
            (DATERANGE_LABEL_ATTRIBUTE, AttrValue::Quoted(v)) => r.label = Some(v.to_owned()),
            (n, AttrValue::Quoted(_)) if n.starts_with("X-") => {}
            (n, v) => return Err(format!("R35: unexpected DATERANGE attribute {n}={v:?}")),
        }
    }
    if !(id && start && duration) {
        return Err(format!(
            "R35: DATERANGE needs ID, START-DATE and DURATION: {list:?}"
        ));
    }
    Ok(r)
}

/// `EXT-X-VERSION` of a playlist with `EXT-X-MAP` (R49).
const MAP_VERSION: u64 = 6;

/// A strict reading of a live media playlist as we write it: RFC 8216 §4 syntax (R9 no BOM, LF
/// line ends, no control characters, no whitespace outside quoted strings; R10 `#EXTM3U` first;
/// R37 attribute lists) and the rules R11, R13, R15-R18, R32, R34-R36 on its tags. m3u8-rs is
/// too lenient to check these.
pub fn check_playlist_text(text: &str) -> Result<RenderedPlaylist, String> {
    read_playlist_text(text, None).map(|r| r.parsed)
}

/// What [`check_playlist_text_after`] keeps of one text for the next: the reading, and where
/// the segments' lines are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StrictRead {
    pub parsed: RenderedPlaylist,
    /// Byte offset and line index of each segment's first line.
    segment_starts: Vec<(usize, usize)>,
    /// Byte offset and line index just after the last segment's URI line.
    segments_end: (usize, usize),
    /// DATERANGEs read before the first segment's first line, and before the last URI.
    ranges_at: (usize, usize),
    /// Byte range of each DATERANGE line (`parsed.date_ranges`, in order).
    range_lines: Vec<(usize, usize)>,
}

/// [`check_playlist_text`] of a text that follows `previous` (the reading of `previous_text`,
/// the render before): the same result, `Ok` or `Err` with the same message, without reading
/// again the segments the two texts share. The segment lines of `previous_text` that the new
/// text keeps right after its own header (the playlist slid by EXT-X-MEDIA-SEQUENCE minus the
/// previous one) are compared byte for byte. Every check on such a line depends only on the line,
/// on the other lines of its segment, on the segment tags being after the header, and on
/// EXT-X-ENDLIST being absent and EXT-X-DISCONTINUITY-SEQUENCE present (for EXT-X-DISCONTINUITY)
/// before it. The reader checks those conditions on the new header and otherwise reads every
/// line; the checks over all segments (R13 against the target duration) run on every reading.
/// `tests::incremental_strict_reader_agrees_with_the_full_one` holds it against
/// [`check_playlist_text`] on every render of the corpus and of mutated seeds.
pub fn check_playlist_text_after(
    text: &str,
    previous: Option<(&str, &StrictRead)>,
) -> Result<StrictRead, String> {
    read_playlist_text(text, previous)
}

fn read_playlist_text(
    text: &str,
    previous: Option<(&str, &StrictRead)>,
) -> Result<StrictRead, String> {
    if text.starts_with('\u{feff}') {
        return Err("R9: byte order mark".into());
    }
    if !text.starts_with("#EXTM3U\n") {
        return Err("R10: the first line must be #EXTM3U".into());
    }
    if !text.ends_with('\n') {
        return Err("R9: the last line does not end in LF".into());
    }
    let mut r = LineReader {
        previous,
        ..LineReader::default()
    };
    let mut reuse = previous;
    let (mut pos, mut n) = (0, 0);
    while pos < text.len() {
        let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
        let line = &text[pos..end];
        if r.version == Some(MAP_VERSION) {
            // fMP4 playlists (R49) are read whole: the incremental reader knows no EXT-X-MAP.
            reuse = None;
        }
        if let Some((prev_text, prev)) = reuse {
            if r.segment_is_fresh() && is_segment_tag(line) {
                reuse = None; // tried once: at the first segment tag
                if let Some((len, lines)) =
                    r.reuse_segments(&text[pos..], (pos, n), prev_text, prev)
                {
                    pos += len;
                    n += lines;
                    continue;
                }
            }
        }
        r.line(n, pos, line)?;
        pos = end + 1;
        n += 1;
    }
    r.finish()
}

/// Whether `line` is a tag that can open a media segment.
fn is_segment_tag(line: &str) -> bool {
    line.starts_with("#EXT-X-MAP:")
        || line == "#EXT-X-DISCONTINUITY"
        || line.starts_with("#EXT-X-PROGRAM-DATE-TIME:")
        || line.starts_with("#EXTINF:")
}

#[cfg(test)]
thread_local! {
    /// Segments [`check_playlist_text_after`] took from the previous text without reading.
    pub(crate) static REUSED_SEGMENTS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The state of [`check_playlist_text`] between lines.
#[derive(Default)]
struct LineReader<'p> {
    /// The previous text and its reading, for [`check_playlist_text_after`].
    previous: Option<(&'p str, &'p StrictRead)>,
    /// Where [`Self::known_range`] looks first among the previous text's DATERANGEs.
    range_cursor: Option<usize>,
    pl: RenderedPlaylist,
    version: Option<u64>,
    target: Option<u64>,
    msn: Option<u64>,
    segment: RenderedSegment,
    extinf_seen: bool,
    pdt_seen: bool,
    in_segment: bool,
    /// `EXT-X-MAP` tags read, and whether one came before the first segment's URI (R49).
    maps: usize,
    map_before_first_segment: bool,
    /// An `EXT-X-MAP` was read since the last URI.
    map_pending: bool,
    /// Byte offset and line index of the current segment's first line.
    segment_start: Option<(usize, usize)>,
    read: StrictRead,
}

impl LineReader<'_> {
    /// No segment tag read since the last URI (or the header).
    fn segment_is_fresh(&self) -> bool {
        !self.extinf_seen && !self.pdt_seen && !self.segment.discontinuity && !self.map_pending
    }

    /// Takes the segment lines that `text` (from a segment tag right after the header, no
    /// segment read yet) shares with the previous text: the segments from this header's media
    /// sequence on. Returns the bytes and lines taken; `None` if the texts differ there or the
    /// conditions of [`check_playlist_text_after`] do not hold (then every line is read).
    fn reuse_segments(
        &mut self,
        text: &str,
        (pos, n): (usize, usize),
        prev_text: &str,
        prev: &StrictRead,
    ) -> Option<(usize, usize)> {
        if !self.pl.segments.is_empty() || self.pl.endlist {
            return None;
        }
        let removed = usize::try_from(self.msn?.checked_sub(prev.parsed.media_sequence)?).ok()?;
        let kept = prev.parsed.segments.get(removed..)?;
        let &(from, from_line) = prev.segment_starts.get(removed)?;
        let (to, to_line) = prev.segments_end;
        let (before, after) = prev.ranges_at;
        // DATERANGE lines among the segment lines, or EXT-X-DISCONTINUITY without the
        // sequence in this header: read every line.
        if after != before
            || (self.pl.discontinuity_sequence.is_none() && kept.iter().any(|s| s.discontinuity))
        {
            return None;
        }
        let shared = prev_text.get(from..to)?;
        if !text.starts_with(shared) {
            return None;
        }
        for &(offset, line) in &prev.segment_starts[removed..] {
            self.read
                .segment_starts
                .push((pos + offset - from, n + line - from_line));
        }
        self.pl.segments.extend_from_slice(kept);
        #[cfg(test)]
        REUSED_SEGMENTS.set(REUSED_SEGMENTS.get() + kept.len());
        self.in_segment = true;
        let ranges = self.pl.date_ranges.len();
        self.read.ranges_at = (ranges, ranges);
        let lines = to_line - from_line;
        self.read.segments_end = (pos + shared.len(), n + lines);
        Some((shared.len(), lines))
    }

    /// The reading of `line` if the previous text has the same DATERANGE line (the previous
    /// text's DATERANGEs are in the same order: looked for from after the last one found).
    fn known_range(&mut self, line: &str) -> Option<RenderedRange> {
        let (text, prev) = self.previous?;
        if !line.starts_with("#EXT-X-DATERANGE:") {
            return None;
        }
        let same = |k: usize| {
            let &(from, to) = prev.range_lines.get(k)?;
            (text.get(from..to) == Some(line)).then_some(k)
        };
        let k = match self.range_cursor {
            Some(k) => same(k)?,
            None => (0..prev.range_lines.len()).find_map(same)?,
        };
        self.range_cursor = Some(k + 1);
        prev.parsed.date_ranges.get(k).cloned()
    }

    /// A DATERANGE line's reading, held against the other DATERANGEs.
    fn add_range(&mut self, r: RenderedRange, pos: usize, line: &str) -> Result<(), String> {
        if self.pl.date_ranges.iter().any(|o| o.id == r.id) {
            return Err("R35/R36: DATERANGE ID twice".into());
        }
        self.pl.date_ranges.push(r);
        self.read.range_lines.push((pos, pos + line.len()));
        Ok(())
    }

    /// Reads line `n` (0-based), which starts at byte `pos`.
    fn line(&mut self, n: usize, pos: usize, line: &str) -> Result<(), String> {
        let at = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
        let fresh = self.segment_is_fresh();
        let pl = &mut self.pl;
        if line.is_empty() {
            return Err(at("empty line"));
        }
        if pl.endlist {
            return Err(at("a line after EXT-X-ENDLIST"));
        }
        if let Some(r) = self.known_range(line) {
            // A DATERANGE line the previous text had: its characters and attributes were
            // read there (n > 0, as line 0 is #EXTM3U); what depends on the other lines is
            // checked here as below.
            return self.add_range(r, pos, line).map_err(|e| at(&e));
        }
        let pl = &mut self.pl;
        // Printable ASCII without spaces has no control character and no whitespace; this
        // test is one traced comparison per byte in the fuzz build, the loop below five.
        let plain = line.bytes().all(|b| (0x21..=0x7E).contains(&b));
        let scan = if plain { "" } else { line };
        let mut quoted = false;
        for c in scan.chars() {
            if c == '"' {
                quoted = !quoted;
            } else if c.is_control() {
                return Err(at("R9: control character (or CR)"));
            } else if c == '\u{2028}' || c == '\u{2029}' {
                return Err(at(
                    "R37: U+2028/U+2029, a line break to JavaScript readers (hls.js)",
                ));
            } else if c.is_whitespace() && !quoted {
                return Err(at("R9: whitespace outside a quoted string"));
            }
        }
        if n == 0 {
            return Ok(()); // #EXTM3U, checked above
        }
        let Some(tag) = line.strip_prefix('#') else {
            // A URI line closes the segment.
            if !self.extinf_seen || line.contains('"') {
                return Err(at("URI without EXTINF, or with a quote"));
            }
            if !self.pdt_seen {
                return Err(at("R32/R33: segment without EXT-X-PROGRAM-DATE-TIME"));
            }
            self.segment.uri = line.to_owned();
            pl.segments.push(std::mem::take(&mut self.segment));
            let start = self.segment_start.take().unwrap_or((pos, n));
            self.read.segment_starts.push(start);
            self.read.segments_end = (pos + line.len() + 1, n + 1);
            self.read.ranges_at.1 = pl.date_ranges.len();
            (self.extinf_seen, self.pdt_seen) = (false, false);
            self.map_pending = false;
            return Ok(());
        };
        if fresh && is_segment_tag(line) {
            self.segment_start = Some((pos, n));
            if pl.segments.is_empty() {
                self.read.ranges_at.0 = pl.date_ranges.len();
            }
        }
        let (name, value) = match tag.split_once(':') {
            Some((name, value)) => (name, Some(value)),
            None => (tag, None),
        };
        let integer = || {
            value
                .and_then(decimal_integer)
                .ok_or_else(|| at("decimal-integer"))
        };
        let in_segment = self.in_segment;
        let header = |seen: bool| {
            if in_segment {
                Err(at("R15/R16: playlist tag after the first media segment"))
            } else if seen {
                Err(at("R11/R18: tag repeated"))
            } else {
                Ok(())
            }
        };
        match (name, value) {
            ("EXT-X-VERSION", Some(_)) => {
                header(self.version.is_some())?;
                self.version = Some(integer()?);
            }
            ("EXT-X-TARGETDURATION", Some(_)) => {
                header(self.target.is_some())?;
                self.target = Some(integer()?);
            }
            ("EXT-X-MEDIA-SEQUENCE", Some(_)) => {
                header(self.msn.is_some())?;
                self.msn = Some(integer()?);
            }
            ("EXT-X-DISCONTINUITY-SEQUENCE", Some(_)) => {
                header(pl.discontinuity_sequence.is_some())?;
                pl.discontinuity_sequence = Some(integer()?);
            }
            ("EXT-X-INDEPENDENT-SEGMENTS", None) => {
                header(pl.independent_segments)?;
                pl.independent_segments = true;
            }
            ("EXT-X-DATERANGE", Some(list)) => {
                let r = date_range(list).map_err(|e| at(&e))?;
                self.add_range(r, pos, line).map_err(|e| at(&e))?;
            }
            ("EXT-X-DISCONTINUITY", None) => {
                if pl.discontinuity_sequence.is_none() {
                    return Err(at(
                        "R16: EXT-X-DISCONTINUITY before EXT-X-DISCONTINUITY-SEQUENCE",
                    ));
                }
                self.in_segment = true;
                self.segment.discontinuity = true;
            }
            ("EXT-X-PROGRAM-DATE-TIME", Some(v)) => {
                if !is_date_with_ms(v) || self.pdt_seen {
                    return Err(at(
                        "R32: PDT must be UTC with milliseconds, once per segment",
                    ));
                }
                self.in_segment = true;
                self.pdt_seen = true;
                self.segment.program_date_time = v.to_owned();
            }
            ("EXTINF", Some(v)) => {
                let ms = v
                    .strip_suffix(',')
                    .and_then(millis_decimal)
                    .ok_or_else(|| at("R12: EXTINF must be <seconds>.<3 decimals>,"))?;
                if self.extinf_seen {
                    return Err(at("two EXTINF for one segment"));
                }
                self.in_segment = true;
                self.extinf_seen = true;
                self.segment.extinf_ms = ms;
            }
            ("EXT-X-MAP", Some(list)) => {
                // R49: the init segment of the fMP4 segments from here on; URI only (no
                // BYTERANGE: we write whole files).
                let ok = list
                    .strip_prefix("URI=\"")
                    .and_then(|v| v.strip_suffix('"'))
                    .is_some_and(|v| !v.is_empty() && !v.contains(['"', ',']));
                if !ok || self.map_pending {
                    return Err(at("R49: EXT-X-MAP must be URI=\"...\", once per segment"));
                }
                if pl.segments.is_empty() {
                    self.map_before_first_segment = true;
                }
                self.in_segment = true;
                self.map_pending = true;
                self.maps += 1;
            }
            ("EXT-X-ENDLIST", None) => pl.endlist = true,
            _ => {
                return Err(at(
                    "unexpected tag (R17: no EXT-X-PLAYLIST-TYPE in a live playlist)",
                ))
            }
        }
        Ok(())
    }

    /// The checks at the end of the text.
    fn finish(self) -> Result<StrictRead, String> {
        if !self.segment_is_fresh() {
            return Err("segment tags without a URI at the end".into());
        }
        let LineReader {
            mut pl,
            version,
            target,
            msn,
            mut read,
            maps,
            map_before_first_segment,
            ..
        } = self;
        pl.version = version.ok_or("R11: no EXT-X-VERSION")?;
        pl.target_duration = target.ok_or("R13: no EXT-X-TARGETDURATION")?;
        pl.media_sequence = msn.ok_or("R15/R22: no EXT-X-MEDIA-SEQUENCE")?;
        if maps > 0 {
            if pl.version != MAP_VERSION {
                return Err(format!(
                    "R11/R49: EXT-X-VERSION {} with EXT-X-MAP (it needs 6, nothing needs more)",
                    pl.version
                ));
            }
            if !pl.segments.is_empty() && !map_before_first_segment {
                return Err("R49: the first segment has no EXT-X-MAP before it".into());
            }
        } else if pl.version != u64::from(PROTOCOL_VERSION) {
            return Err(format!(
                "R11: EXT-X-VERSION {} (decimal EXTINF needs 3, nothing needs more)",
                pl.version
            ));
        }
        if pl.target_duration == 0 {
            return Err("R13: EXT-X-TARGETDURATION 0".into());
        }
        for s in &pl.segments {
            if (s.extinf_ms + 500) / 1000 > pl.target_duration {
                return Err(format!(
                    "R13: EXTINF {}.{:03} rounds above EXT-X-TARGETDURATION {}",
                    s.extinf_ms / 1000,
                    s.extinf_ms % 1000,
                    pl.target_duration
                ));
            }
        }
        if !pl.date_ranges.is_empty() && pl.segments.is_empty() {
            return Err("R34: DATERANGE without EXT-X-PROGRAM-DATE-TIME".into());
        }
        read.parsed = pl;
        Ok(read)
    }
}

/// R21: between two versions of a live playlist the server may only append lines, remove
/// segments from the front (with their tags), raise the media and discontinuity sequences,
/// add EXT-X-ENDLIST and drop DATERANGEs that no longer apply; nothing changes after ENDLIST,
/// and a DATERANGE keeps its attribute values (R35).
pub fn check_update(before: &RenderedPlaylist, after: &RenderedPlaylist) -> Result<(), String> {
    if before.endlist {
        return if after == before {
            Ok(())
        } else {
            Err("R21: the playlist changed after EXT-X-ENDLIST".into())
        };
    }
    if (
        after.version,
        after.target_duration,
        after.independent_segments,
    ) != (
        before.version,
        before.target_duration,
        before.independent_segments,
    ) {
        return Err("R14/R21: a header tag changed".into());
    }
    let removed = after
        .media_sequence
        .checked_sub(before.media_sequence)
        .ok_or("R22: EXT-X-MEDIA-SEQUENCE went down")?;
    let removed = usize::try_from(removed)
        .ok()
        .filter(|&k| k <= before.segments.len())
        .ok_or_else(|| {
            format!(
                "R22: {removed} segments removed, {} listed",
                before.segments.len()
            )
        })?;
    let kept = &before.segments[removed..];
    if after.segments.get(..kept.len()) != Some(kept) {
        return Err("R20/R21: a segment that stays in the playlist changed or moved".into());
    }
    let left = before.segments[..removed]
        .iter()
        .filter(|s| s.discontinuity)
        .count() as u64;
    let (b, a) = (
        before.discontinuity_sequence.unwrap_or(0),
        after.discontinuity_sequence.unwrap_or(0),
    );
    if a != b + left
        || (before.discontinuity_sequence.is_some() && after.discontinuity_sequence.is_none())
    {
        return Err(format!(
            "R26: discontinuity sequence {b} -> {a} although {left} EXT-X-DISCONTINUITY left"
        ));
    }
    for r in &after.date_ranges {
        if let Some(old) = before.date_ranges.iter().find(|o| o.id == r.id) {
            if old != r {
                return Err(format!("R35: DATERANGE {:?} changed its attributes", r.id));
            }
        }
    }
    Ok(())
}

/// Parses `text` with m3u8-rs (an independent parser) and compares it with the strict reading,
/// the segments' PDTs and the last shown DATERANGE's START-DATE (Unix milliseconds).
pub(crate) fn check_with_m3u8_rs(
    text: &str,
    ours: &RenderedPlaylist,
    pdt_ms: &[i64],
    last_range_ms: Option<i64>,
) -> Result<(), String> {
    let m = m3u8_rs::parse_media_playlist_res(text.as_bytes())
        .map_err(|e| format!("m3u8-rs refuses the playlist: {e:?}"))?;
    let header_ok = m.version == Some(PROTOCOL_VERSION as usize)
        && m.target_duration == ours.target_duration
        && m.media_sequence == ours.media_sequence
        && m.discontinuity_sequence == ours.discontinuity_sequence.unwrap_or(0)
        && m.end_list == ours.endlist
        && m.playlist_type.is_none()
        && m.independent_segments == ours.independent_segments
        && m.unknown_tags.is_empty()
        && m.segments.len() == ours.segments.len();
    if !header_ok {
        return Err(format!(
            "m3u8-rs reads the header or segment count differently: {m:?}"
        ));
    }
    for (i, (p, s)) in m.segments.iter().zip(&ours.segments).enumerate() {
        let ok = p.uri == s.uri
            && (f64::from(p.duration) * 1000.0).round() as u64 == s.extinf_ms
            && p.discontinuity == s.discontinuity
            && p.program_date_time.map(|d| d.timestamp_millis()) == pdt_ms.get(i).copied()
            && p.unknown_tags.is_empty();
        if !ok {
            return Err(format!(
                "m3u8-rs reads segment {i} as {p:?}, we wrote {s:?}"
            ));
        }
    }
    // m3u8-rs keeps one DATERANGE per segment: the last one before the first segment.
    if let Some(last) = ours.date_ranges.last() {
        let d = m.segments[0]
            .daterange
            .as_ref()
            .ok_or("m3u8-rs lost the DATERANGE")?;
        // m3u8-rs 6.0.1 reads an empty quoted-string as the unquoted text `""` (its `quoted`
        // parser wants at least one character); RFC 8216 §4.2 allows the empty string.
        let label = match d
            .x_prefixed
            .as_ref()
            .and_then(|x| x.get(DATERANGE_LABEL_ATTRIBUTE))
        {
            Some(m3u8_rs::QuotedOrUnquoted::Unquoted(v)) if v == "\"\"" => Some(""),
            Some(v) => v.as_quoted(),
            None => None,
        };
        // DURATION is compared in f64 seconds: huge durations exceed f64's exact integers.
        let want_secs = last.duration_ms as f64 / 1000.0;
        let ok = d.id == last.id
            && Some(d.start_date.timestamp_millis()) == last_range_ms
            && d.duration
                .is_some_and(|s| (s - want_secs).abs() <= 1e-9 * want_secs.max(1.0))
            && label == last.label.as_deref();
        if !ok {
            return Err(format!("m3u8-rs reads DATERANGE {d:?}, we wrote {last:?}"));
        }
    }
    Ok(())
}
