//! Durations and sizes as people write them on a command line or in a configuration file:
//! `45s`, `30m`, `1h`, `7d` (`humantime`'s grammar, which also takes `1h 30m`, `2days`), and
//! `2GiB`, `500MB`, `1.5 GB`, `4096` (bytes). Each parser is a `fn(&str) -> Result<T, String>`,
//! so it is a clap `value_parser` as it is (`#[arg(value_parser = parse_size)]`) and serde's
//! `deserialize_with` can call it.
//!
//! Sizes: `k`/`M`/`G`/`T` with `B` are powers of 1000 (SI), with `iB` powers of 1024 (IEC);
//! the letters are read case-insensitively (`500mb` is 500 MB), a bare number is bytes.

use std::time::Duration;

/// Parses a duration: `45s`, `30m`, `1h`, `7d`, `1h 30m`, `0` (nothing; `--record-retention 0`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("{s:?} is not a duration such as 45s, 30m, 1h or 7d ({e})"))
}

/// Parses a size in bytes: `2GiB`, `500MB`, `1.5 GB`, `4096`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("{s:?} is not a size such as 500MB or 2GiB ({why})");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim_start());
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(bad("no number"));
    }
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(bad(
                "unknown unit; use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB",
            ))
        }
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if frac.contains('.') {
        return Err(bad("two decimal points"));
    }
    let too_large = || bad("too large");
    let whole: u64 = whole.parse().map_err(|_| too_large())?;
    let mut bytes = whole.checked_mul(multiplier).ok_or_else(too_large)?;
    // The fraction exactly, in integers: 1.5 GB is 1_500_000_000 bytes, never 1_499_999_999.
    if !frac.is_empty() {
        let digits = frac.len().min(18) as u32;
        let f: u128 = frac[..digits as usize]
            .parse()
            .map_err(|_| bad("fraction"))?;
        let part = f * u128::from(multiplier) / 10u128.pow(digits);
        bytes = bytes.checked_add(part as u64).ok_or_else(too_large)?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (s, secs) in [
            ("45s", 45),
            ("30m", 1800),
            ("1h", 3600),
            ("7d", 7 * 86_400),
            ("1h 30m", 5400),
            ("2days", 2 * 86_400),
            (" 10s ", 10),
            ("0", 0),
            ("0s", 0),
        ] {
            assert_eq!(parse_duration(s), Ok(Duration::from_secs(secs)), "{s}");
        }
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "10", "1x", "h", "-1s", "1.5.h"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("45s, 30m, 1h or 7d"), "{bad}: {e}");
        }
    }

    #[test]
    fn sizes() {
        for (s, bytes) in [
            ("2GiB", 2 << 30),
            ("500MB", 500_000_000),
            ("500mb", 500_000_000),
            ("1.5 GB", 1_500_000_000),
            ("0.5KiB", 512),
            ("4096", 4096),
            ("4096B", 4096),
            ("10k", 10_000),
            ("1TiB", 1 << 40),
            ("0", 0),
            (" 7 MiB ", 7 << 20),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(parse_size(s), Ok(bytes), "{s}");
        }
        for bad in [
            "",
            "GB",
            "1.GB",
            ".5GB",
            "1.2.3MB",
            "5 parsecs",
            "-1MB",
            "1e9",
            "20000000TB",
            "18446744073709551616",
        ] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("500MB or 2GiB"), "{bad}: {e}");
        }
    }

    /// Both work as clap value parsers, with clap's own error on bad input.
    #[test]
    fn as_clap_value_parsers() {
        use clap::Parser;
        #[derive(Parser, Debug)]
        struct Flags {
            #[arg(long, value_parser = parse_duration, default_value = "1h")]
            record_retention: Duration,
            #[arg(long, value_parser = parse_size, default_value = "2GiB")]
            storage_max: u64,
        }
        let f = Flags::try_parse_from(["x"]).unwrap();
        assert_eq!(
            (f.record_retention, f.storage_max),
            (Duration::from_secs(3600), 2 << 30)
        );
        let f = Flags::try_parse_from(["x", "--record-retention", "7d", "--storage-max", "500MB"])
            .unwrap();
        assert_eq!(
            (f.record_retention, f.storage_max),
            (Duration::from_secs(7 * 86_400), 500_000_000)
        );
        let e = Flags::try_parse_from(["x", "--storage-max", "lots"]).unwrap_err();
        assert!(e.to_string().contains("--storage-max"), "{e}");
    }
}
