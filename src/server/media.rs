//! Which files of the media directory may be served, and how they are opened.
//!
//! A request names a file by its last path segment only. It is accepted if it is exactly
//! `NAME.m3u8` or `NAME<seq>.ts` (`seq` a decimal media sequence number without leading zeros,
//! RFC 8216 §4.3.3.2), and only then joined to the media directory. The joined path is then
//! canonicalised (following symlinks) and must still be a regular file directly inside the
//! canonical media directory, so a symlink that points elsewhere is refused like a missing file.
//!
//! Everything here that touches the filesystem is blocking: call it through `web::block`.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Longest accepted stream name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Largest playlist the server reads into memory. A 60-segment window with a DATERANGE per
/// marker is a few kilobytes; anything near this is not a playlist we wrote.
pub const MAX_PLAYLIST_BYTES: u64 = 4 * 1024 * 1024;

/// A file of the stream, as named in a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaFile {
    /// `NAME.m3u8`
    Playlist,
    /// `NAME<seq>.ts`
    Segment(u64),
}

/// Whether `name` may be a stream name: 1 to [`MAX_NAME_LEN`] ASCII letters, digits, `_` or `-`.
/// Such a name can never form a path separator, a `..` or a percent-escape.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parses the last path segment of a `/video/...` request against the stream name.
///
/// Returns `None` for anything that is not exactly `NAME.m3u8` or `NAME<seq>.ts` with a canonical
/// decimal `seq` (no sign, no leading zero, fits in `u64`).
pub fn parse_media_file(file: &str, name: &str) -> Option<MediaFile> {
    let rest = file.strip_prefix(name)?;
    if rest == ".m3u8" {
        return Some(MediaFile::Playlist);
    }
    let digits = rest.strip_suffix(".ts")?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return None;
    }
    digits.parse().ok().map(MediaFile::Segment)
}

/// The on-disk file name of a media file.
pub fn file_name(name: &str, file: MediaFile) -> String {
    match file {
        MediaFile::Playlist => format!("{name}.m3u8"),
        MediaFile::Segment(seq) => format!("{name}{seq}.ts"),
    }
}

/// Why a media file could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// No such regular file inside the media directory (missing, a directory, or a symlink that
    /// leads outside). Answered with 404, indistinguishable on purpose.
    NotFound,
    /// The playlist is larger than [`MAX_PLAYLIST_BYTES`].
    TooLarge(u64),
    /// Any other I/O failure.
    Io(io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::NotFound => f.write_str("not found"),
            OpenError::TooLarge(n) => write!(f, "playlist of {n} bytes exceeds the size limit"),
            OpenError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => OpenError::NotFound,
            _ => OpenError::Io(e),
        }
    }
}

/// An opened regular file directly inside the media directory.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    /// The canonical path that was opened.
    pub path: PathBuf,
    pub metadata: Metadata,
}

/// Opens `file_name` (already validated by [`parse_media_file`]) inside `dir`. Blocking.
pub fn open_inside(dir: &Path, file_name: &str) -> Result<Opened, OpenError> {
    let root = dir.canonicalize()?;
    let real = root.join(file_name).canonicalize()?;
    if real.parent() != Some(root.as_path()) {
        return Err(OpenError::NotFound);
    }
    let file = File::open(&real)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(OpenError::NotFound);
    }
    Ok(Opened {
        file,
        path: real,
        metadata,
    })
}

/// Reads the whole playlist `file_name` inside `dir`. Blocking.
pub fn read_playlist(dir: &Path, file_name: &str) -> Result<Vec<u8>, OpenError> {
    let Opened { file, metadata, .. } = open_inside(dir, file_name)?;
    if metadata.len() > MAX_PLAYLIST_BYTES {
        return Err(OpenError::TooLarge(metadata.len()));
    }
    let mut buf = Vec::with_capacity(metadata.len() as usize);
    // `take` bounds the read even if the file grows after the metadata call.
    file.take(MAX_PLAYLIST_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_PLAYLIST_BYTES {
        return Err(OpenError::TooLarge(buf.len() as u64));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_restricted_to_a_safe_alphabet() {
        for good in ["chessboard", "cam-1", "a_b", "X", &"a".repeat(MAX_NAME_LEN)] {
            assert!(is_valid_name(good), "{good:?}");
        }
        for bad in [
            "",
            "..",
            "a/b",
            "a\\b",
            "a.b",
            "a%2e",
            "ä",
            " a",
            &"a".repeat(MAX_NAME_LEN + 1),
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn parse_accepts_only_canonical_names() {
        let n = "chessboard";
        assert_eq!(
            parse_media_file("chessboard.m3u8", n),
            Some(MediaFile::Playlist)
        );
        assert_eq!(
            parse_media_file("chessboard0.ts", n),
            Some(MediaFile::Segment(0))
        );
        assert_eq!(
            parse_media_file("chessboard12.ts", n),
            Some(MediaFile::Segment(12))
        );
        assert_eq!(
            parse_media_file("chessboard18446744073709551615.ts", n),
            Some(MediaFile::Segment(u64::MAX))
        );
        for bad in [
            "chessboard.ts",
            "chessboard012.ts",
            "chessboard+1.ts",
            "chessboard-1.ts",
            "chessboard1.TS",
            "chessboard1.ts.bak",
            "chessboard1.m3u8",
            "chessboard.M3U8",
            "chessboard18446744073709551616.ts",
            "other1.ts",
            "Chessboard1.ts",
            "chessboard1.ts/",
            "../chessboard1.ts",
            "chessboard/../1.ts",
            "chessboard1%2ets",
            "chessboard 1.ts",
            "chessboard1.ts\0",
            "",
        ] {
            assert_eq!(parse_media_file(bad, n), None, "{bad:?}");
        }
    }

    #[test]
    fn file_name_round_trips() {
        for f in [
            MediaFile::Playlist,
            MediaFile::Segment(0),
            MediaFile::Segment(907),
        ] {
            assert_eq!(parse_media_file(&file_name("cam", f), "cam"), Some(f));
        }
    }

    #[test]
    fn open_inside_refuses_symlinks_out_and_directories() {
        let outside = tempfile::tempdir().expect("temp dir");
        let media = tempfile::tempdir().expect("temp dir");
        std::fs::write(outside.path().join("secret.ts"), b"secret").expect("write");
        std::fs::write(media.path().join("s1.ts"), b"segment").expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret.ts"), media.path().join("s2.ts"))
            .expect("symlink");
        std::os::unix::fs::symlink(media.path().join("s1.ts"), media.path().join("s3.ts"))
            .expect("symlink");
        std::fs::create_dir(media.path().join("s4.ts")).expect("mkdir");

        let ok = open_inside(media.path(), "s1.ts").expect("regular file inside");
        assert_eq!(ok.metadata.len(), 7);
        assert!(matches!(
            open_inside(media.path(), "s2.ts"),
            Err(OpenError::NotFound)
        ));
        // A symlink that stays inside the directory resolves to the file it names.
        assert_eq!(
            open_inside(media.path(), "s3.ts").expect("inside").path,
            ok.path
        );
        assert!(matches!(
            open_inside(media.path(), "s4.ts"),
            Err(OpenError::NotFound)
        ));
        assert!(matches!(
            open_inside(media.path(), "s5.ts"),
            Err(OpenError::NotFound)
        ));
        let gone = media.path().join("missing");
        assert!(matches!(
            open_inside(&gone, "s1.ts"),
            Err(OpenError::NotFound)
        ));
    }

    #[test]
    fn read_playlist_bounds_its_size() {
        let media = tempfile::tempdir().expect("temp dir");
        std::fs::write(media.path().join("p.m3u8"), b"#EXTM3U\n").expect("write");
        assert_eq!(
            read_playlist(media.path(), "p.m3u8").expect("small"),
            b"#EXTM3U\n"
        );
        let big = File::create(media.path().join("q.m3u8")).expect("create");
        big.set_len(MAX_PLAYLIST_BYTES + 1).expect("sparse file");
        assert!(matches!(
            read_playlist(media.path(), "q.m3u8"),
            Err(OpenError::TooLarge(_))
        ));
    }
}
