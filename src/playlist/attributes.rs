//! The attribute-list syntax of RFC 8216 §4.2, read strictly: the one parser for it. A restart
//! reads our own `EXT-X-DATERANGE` tags back with it ([`super::resume`]), and the test kit's
//! playlist checker reads every attribute list we render with it.
//!
//! Strict means R37 as we write it: names of `A-Z`, `0-9` and `-`, no name twice, quoted strings
//! without `"`, CR or LF, unquoted values non-empty and without `"`, nothing but a `,` between
//! attributes, no whitespace anywhere outside quotes (R9).

/// Whether `c` may not be written inside a quoted-string: `"`, and every character a common
/// client may read as the end of a line. RFC 8216 §4.2 forbids only `"`, CR and LF (R37), and
/// §4.1 every control character (R9); JavaScript's regular expressions, which hls.js and VHS
/// parse playlists with, also end a line at U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR
/// (ECMA-262 *LineTerminator*), and some readers at U+0085 NEXT LINE (a C1 control). A marker
/// text of `x` U+2028 `#EXT-X-ENDLIST` would otherwise end the live stream in hls.js (issue 18).
pub fn unsafe_in_quoted(c: char) -> bool {
    c == '"' || c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// An attribute's value: the content of a quoted-string (without the quotes) or the unquoted
/// text (a decimal-integer, decimal-floating-point, enumerated-string, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrValue<'a> {
    Quoted(&'a str),
    Plain(&'a str),
}

impl<'a> AttrValue<'a> {
    pub(crate) fn quoted(self) -> Option<&'a str> {
        match self {
            AttrValue::Quoted(v) => Some(v),
            AttrValue::Plain(_) => None,
        }
    }

    pub(crate) fn plain(self) -> Option<&'a str> {
        match self {
            AttrValue::Plain(v) => Some(v),
            AttrValue::Quoted(_) => None,
        }
    }
}

/// Parses `list` (the text after `#EXT-X-TAG:`) into `(name, value)` pairs in order; `Err` says
/// what is wrong, citing the rule.
pub fn parse(list: &str) -> Result<Vec<(&str, AttrValue<'_>)>, String> {
    let mut out: Vec<(&str, AttrValue<'_>)> = Vec::new();
    let mut rest = list;
    loop {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("attribute without '=' in {list:?}"))?;
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(format!("R37: attribute name {name:?}"));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("R37: attribute {name} twice"));
        }
        let (value, after) = if let Some(q) = after.strip_prefix('"') {
            let end = q
                .find('"')
                .ok_or_else(|| format!("unterminated quoted string in {list:?}"))?;
            let quoted = &q[..end];
            if quoted.contains(['\r', '\n']) {
                return Err(format!("R37: CR or LF in quoted string {quoted:?}"));
            }
            (AttrValue::Quoted(quoted), &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            let v = &after[..end];
            if v.is_empty() || v.contains('"') || v.contains(char::is_whitespace) {
                return Err(format!("bad unquoted value {v:?} in {list:?}"));
            }
            (AttrValue::Plain(v), &after[end..])
        };
        out.push((name, value));
        if after.is_empty() {
            return Ok(out);
        }
        rest = after.strip_prefix(',').ok_or_else(|| {
            format!("R37: {after:?} after attribute {name} (a quote in a quoted-string?)")
        })?;
    }
}

/// The value of attribute `name` in parsed `attrs`.
pub(crate) fn get<'a>(attrs: &[(&str, AttrValue<'a>)], name: &str) -> Option<AttrValue<'a>> {
    attrs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r37_reads_what_we_write() {
        let a = parse(
            "ID=\"marker-1\",START-DATE=\"2026-11-25T12:00:03.400Z\",DURATION=2.000,\
             X-COM-HLSSTREAMER-LABEL=\"Marker, 1\"",
        )
        .unwrap();
        assert_eq!(
            a,
            vec![
                ("ID", AttrValue::Quoted("marker-1")),
                ("START-DATE", AttrValue::Quoted("2026-11-25T12:00:03.400Z")),
                ("DURATION", AttrValue::Plain("2.000")),
                ("X-COM-HLSSTREAMER-LABEL", AttrValue::Quoted("Marker, 1")),
            ]
        );
        assert_eq!(
            get(&a, "DURATION").and_then(AttrValue::plain),
            Some("2.000")
        );
        assert_eq!(get(&a, "ID").and_then(AttrValue::quoted), Some("marker-1"));
        assert_eq!(get(&a, "ID").and_then(AttrValue::plain), None);
        assert_eq!(get(&a, "CLASS"), None);
    }

    #[test]
    fn r37_refuses_what_we_never_write() {
        for bad in [
            "",
            "garbage",
            "id=\"x\"",
            "ID=\"a\"b\"",
            "ID=\"b\",ID=\"c\"",
            "ID=\"unterminated",
            "ID=\"a\nb\"",
            "ID=",
            "ID=\"a\",",
            "ID=\"a\" ,X=1",
            "X=1 2",
            "X=a\"b",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
