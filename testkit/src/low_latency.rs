//! A strict reading of the low-latency tags (rfc8216bis §4.4.3.7, §4.4.3.8, §4.4.4.9,
//! §4.4.5.2, §6.2.5; rules R40-R47 of `docs/spec.md`), composed with the classic checker: the
//! low-latency lines are read and checked here, taken out, and what is left must pass
//! [`check_playlist_text`] as an RFC 8216 playlist. So a low-latency playlist is held to every
//! classic rule plus its own.

use hls::playlist::attributes::{parse as attribute_list, AttrValue};

use crate::playlist_text::{check_playlist_text, RenderedPlaylist};

/// One `EXT-X-PART`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedPart {
    pub uri: String,
    pub duration_ms: u64,
    pub independent: bool,
}

/// What a low-latency playlist says beyond the classic one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LowLatencyRead {
    /// The classic reading of the text without the low-latency lines.
    pub classic: RenderedPlaylist,
    /// The text the classic reading was made of.
    pub classic_text: String,
    pub version: u64,
    /// `PART-TARGET` in ms.
    pub part_target_ms: u64,
    pub part_hold_back_ms: u64,
    pub can_skip_until_ms: Option<u64>,
    pub can_block_reload: bool,
    /// `EXT-X-SKIP:SKIPPED-SEGMENTS`.
    pub skipped: Option<u64>,
    /// Parts of each listed segment (index into `classic.segments`), oldest first.
    pub segment_parts: Vec<(usize, Vec<RenderedPart>)>,
    /// Parts of the open segment, after the last URI.
    pub open_parts: Vec<RenderedPart>,
    /// `EXT-X-PRELOAD-HINT` URI.
    pub preload_hint: Option<String>,
}

fn millis(v: &str) -> Option<u64> {
    let (s, ms) = v.split_once('.')?;
    if ms.len() != 3 || !ms.bytes().all(|b| b.is_ascii_digit()) || s.is_empty() {
        return None;
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse::<u64>().ok()? * 1000 + ms.parse::<u64>().ok()?)
}

fn attrs(list: &str) -> Result<Vec<(String, String, bool)>, String> {
    Ok(attribute_list(list)?
        .into_iter()
        .map(|(n, v)| match v {
            AttrValue::Quoted(v) => (n.to_owned(), v.to_owned(), true),
            AttrValue::Plain(v) => (n.to_owned(), v.to_owned(), false),
        })
        .collect())
}

/// Reads `text` as a low-latency playlist: the classic rules on what is left without the
/// low-latency lines, and R40-R47 on those lines.
pub fn check_low_latency_text(text: &str) -> Result<LowLatencyRead, String> {
    let mut r = LowLatencyRead::default();
    let mut classic = String::with_capacity(text.len());
    let mut target_s: Option<u64> = None;
    let mut part_target: Option<u64> = None;
    let mut server_control = false;
    // Lines of the segment being read that are held back until we know it has a URI.
    let mut pending: Vec<&str> = Vec::new();
    let mut parts: Vec<RenderedPart> = Vec::new();
    let mut segment_pdt = false;
    let mut segments = 0usize;
    let mut in_segments = false;
    let fail = |n: usize, line: &str, what: &str| format!("line {}: {what}: {line:?}", n + 1);
    for (n, line) in text.lines().enumerate() {
        if r.preload_hint.is_some() && !line.starts_with("#EXT-X-ENDLIST") {
            return Err(fail(n, line, "R44: a line after EXT-X-PRELOAD-HINT"));
        }
        if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
            r.version = v.parse().map_err(|_| fail(n, line, "version"))?;
            classic.push_str("#EXT-X-VERSION:3\n");
            continue;
        }
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            target_s = v.parse().ok();
        }
        if let Some(list) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
            if server_control || in_segments {
                return Err(fail(
                    n,
                    line,
                    "R40: EXT-X-SERVER-CONTROL once, in the header",
                ));
            }
            server_control = true;
            for (name, v, quoted) in attrs(list)? {
                match (name.as_str(), quoted) {
                    ("CAN-BLOCK-RELOAD", false) if v == "YES" => r.can_block_reload = true,
                    ("CAN-SKIP-UNTIL", false) => {
                        r.can_skip_until_ms =
                            Some(millis(&v).ok_or_else(|| fail(n, line, "decimal"))?)
                    }
                    ("PART-HOLD-BACK", false) => {
                        r.part_hold_back_ms = millis(&v).ok_or_else(|| fail(n, line, "decimal"))?
                    }
                    _ => return Err(fail(n, line, "R40: unknown server control attribute")),
                }
            }
            continue;
        }
        if let Some(list) = line.strip_prefix("#EXT-X-PART-INF:") {
            if part_target.is_some() || in_segments {
                return Err(fail(n, line, "R41: EXT-X-PART-INF once, in the header"));
            }
            let a = attrs(list)?;
            match a.as_slice() {
                [(name, v, false)] if name == "PART-TARGET" => {
                    part_target = Some(millis(v).ok_or_else(|| fail(n, line, "decimal"))?)
                }
                _ => return Err(fail(n, line, "R41: PART-INF holds PART-TARGET only")),
            }
            continue;
        }
        if let Some(list) = line.strip_prefix("#EXT-X-SKIP:") {
            if r.skipped.is_some() || segments > 0 || !pending.is_empty() {
                return Err(fail(
                    n,
                    line,
                    "R47: EXT-X-SKIP once, before the first segment",
                ));
            }
            let a = attrs(list)?;
            match a.as_slice() {
                [(name, v, false)] if name == "SKIPPED-SEGMENTS" => {
                    r.skipped = Some(v.parse().map_err(|_| fail(n, line, "integer"))?)
                }
                _ => return Err(fail(n, line, "R47: SKIP holds SKIPPED-SEGMENTS only")),
            }
            in_segments = true;
            continue;
        }
        if let Some(list) = line.strip_prefix("#EXT-X-PART:") {
            let pt =
                part_target.ok_or_else(|| fail(n, line, "R41: EXT-X-PART without PART-INF"))?;
            if !segment_pdt {
                return Err(fail(n, line, "R41: EXT-X-PART before its segment's PDT"));
            }
            let mut part = RenderedPart {
                uri: String::new(),
                duration_ms: 0,
                independent: false,
            };
            for (name, v, quoted) in attrs(list)? {
                match (name.as_str(), quoted) {
                    ("DURATION", false) => {
                        part.duration_ms = millis(&v).ok_or_else(|| fail(n, line, "decimal"))?
                    }
                    ("URI", true) => part.uri = v,
                    ("INDEPENDENT", false) if v == "YES" => part.independent = true,
                    _ => return Err(fail(n, line, "R41: unexpected EXT-X-PART attribute")),
                }
            }
            if part.uri.is_empty() || part.duration_ms == 0 || part.duration_ms > pt {
                return Err(fail(
                    n,
                    line,
                    "R41: part without URI or longer than PART-TARGET",
                ));
            }
            parts.push(part);
            continue;
        }
        if let Some(list) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            let a = attrs(list)?;
            let mut uri = None;
            let mut part_type = false;
            for (name, v, quoted) in a {
                match (name.as_str(), quoted) {
                    ("TYPE", false) if v == "PART" => part_type = true,
                    ("URI", true) => uri = Some(v),
                    _ => return Err(fail(n, line, "R44: unexpected PRELOAD-HINT attribute")),
                }
            }
            if !part_type || uri.is_none() {
                return Err(fail(n, line, "R44: PRELOAD-HINT needs TYPE=PART and URI"));
            }
            r.preload_hint = uri;
            continue;
        }
        // A classic line.
        let segment_tag = line == "#EXT-X-DISCONTINUITY"
            || line.starts_with("#EXT-X-PROGRAM-DATE-TIME:")
            || line.starts_with("#EXTINF:");
        if segment_tag {
            in_segments = true;
            if line.starts_with("#EXT-X-PROGRAM-DATE-TIME:") {
                segment_pdt = true;
            }
            pending.push(line);
            continue;
        }
        if !line.starts_with('#') && !pending.is_empty() {
            for l in pending.drain(..) {
                classic.push_str(l);
                classic.push('\n');
            }
            classic.push_str(line);
            classic.push('\n');
            if !parts.is_empty() {
                r.segment_parts.push((segments, std::mem::take(&mut parts)));
            }
            segments += 1;
            segment_pdt = false;
            continue;
        }
        classic.push_str(line);
        classic.push('\n');
    }
    // What follows the last URI is the open segment: its PDT (and discontinuity) and parts.
    if pending.iter().any(|l| l.starts_with("#EXTINF:")) {
        return Err("an EXTINF without a URI at the end".into());
    }
    if !pending.is_empty() && parts.is_empty() {
        return Err("segment tags without parts or URI at the end".into());
    }
    r.open_parts = parts;
    r.classic_text = classic;
    r.classic = check_playlist_text(&r.classic_text)?;

    // The rules across lines.
    let td = target_s.ok_or("no target duration")?;
    match (r.skipped.is_some(), r.version) {
        (true, 9..) | (false, 3) => {}
        (true, v) => return Err(format!("R47: EXT-X-SKIP needs EXT-X-VERSION 9, not {v}")),
        (false, v) => return Err(format!("R11: EXT-X-VERSION {v} without EXT-X-SKIP")),
    }
    if let Some(pt) = part_target {
        r.part_target_ms = pt;
        if !server_control || !r.can_block_reload {
            return Err("R43: parts without CAN-BLOCK-RELOAD=YES".into());
        }
        if r.part_hold_back_ms < 3 * pt {
            return Err(format!(
                "R40: PART-HOLD-BACK {} ms under three part targets ({pt} ms)",
                r.part_hold_back_ms
            ));
        }
        if pt > td * 1000 {
            return Err("R41: PART-TARGET above the target duration".into());
        }
        if r.preload_hint.is_none() && !r.classic.endlist {
            return Err("R44: a live low-latency playlist without EXT-X-PRELOAD-HINT".into());
        }
    } else if !r.segment_parts.is_empty() || !r.open_parts.is_empty() {
        return Err("R41: parts without EXT-X-PART-INF".into());
    }
    if let Some(skip_until) = r.can_skip_until_ms {
        if skip_until < 6 * td * 1000 {
            return Err(format!(
                "R40: CAN-SKIP-UNTIL {skip_until} ms under six target durations"
            ));
        }
    } else if r.skipped.is_some() {
        return Err("R47: EXT-X-SKIP without CAN-SKIP-UNTIL".into());
    }
    // Each listed segment's parts: they make up its EXTINF (within a millisecond of rounding
    // per part), all but the last at least 85 % of the part target unless independent.
    let all = r
        .segment_parts
        .iter()
        .map(|(i, p)| (Some(*i), p))
        .chain(std::iter::once((None, &r.open_parts)));
    for (i, parts) in all {
        for (k, p) in parts.iter().enumerate() {
            let last = k + 1 == parts.len();
            if !last && !p.independent && p.duration_ms * 100 < r.part_target_ms * 85 {
                return Err(format!(
                    "R41: part {} of {} ms is under 85 % of PART-TARGET",
                    p.uri, p.duration_ms
                ));
            }
        }
        if let Some(i) = i {
            let sum: u64 = parts.iter().map(|p| p.duration_ms).sum();
            let extinf = r.classic.segments[i].extinf_ms;
            if sum > extinf + parts.len() as u64 {
                return Err(format!(
                    "R41: parts of {sum} ms in a segment of {extinf} ms"
                ));
            }
        }
    }
    Ok(r)
}
