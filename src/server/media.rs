//! Which files of the media directory may be served, and how they are opened.
//!
//! A request names a file by its last path segment only. It is accepted if it is exactly
//! `NAME.m3u8` or `NAME<seq>.ts` ([`crate::name::StreamName::parse_file`]), and only then joined
//! to the media directory. The joined path is then
//! canonicalised (following symlinks) and must still be a regular file directly inside the
//! canonical media directory, so a symlink that points elsewhere is refused like a missing file.
//!
//! Everything here that touches the filesystem is blocking: call it through `web::block`.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;

use crate::error::{Error, ErrorKind};

/// Largest playlist the server reads into memory. A 60-segment window with a DATERANGE per
/// marker is a few kilobytes; anything near this is not a playlist we wrote.
pub(crate) const MAX_PLAYLIST_BYTES: u64 = 4 * 1024 * 1024;

/// An I/O error as the server reports it: a file that is missing or not ours to read is
/// [`ErrorKind::NotFound`] (answered with 404, indistinguishable on purpose), anything else
/// [`ErrorKind::Io`].
fn io_error(context: &str, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => {
            Error::new(ErrorKind::NotFound, "not found")
        }
        _ => Error::io(context, e),
    }
}

fn not_found() -> Error {
    Error::new(ErrorKind::NotFound, "not found")
}

/// An opened regular file directly inside the media directory.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) file: File,
    pub(crate) metadata: Metadata,
}

/// Opens `file_name` (already validated by the stream name) inside `dir`. Blocking.
pub(crate) fn open_inside(dir: &Path, file_name: &str) -> Result<Opened, Error> {
    let context = "opening a media file";
    let root = dir.canonicalize().map_err(|e| io_error(context, e))?;
    let real = root
        .join(file_name)
        .canonicalize()
        .map_err(|e| io_error(context, e))?;
    if real.parent() != Some(root.as_path()) {
        return Err(not_found());
    }
    let file = File::open(&real).map_err(|e| io_error(context, e))?;
    let metadata = file.metadata().map_err(|e| io_error(context, e))?;
    if !metadata.is_file() {
        return Err(not_found());
    }
    Ok(Opened { file, metadata })
}

/// Reads the whole playlist `file_name` inside `dir`. Blocking.
pub(crate) fn read_playlist(dir: &Path, file_name: &str) -> Result<Vec<u8>, Error> {
    let Opened { file, metadata } = open_inside(dir, file_name)?;
    let too_large = |n: u64| {
        crate::err!(
            ResourceExhausted,
            "playlist of {n} bytes exceeds the size limit of {MAX_PLAYLIST_BYTES}"
        )
    };
    if metadata.len() > MAX_PLAYLIST_BYTES {
        return Err(too_large(metadata.len()));
    }
    let mut buf = Vec::with_capacity(metadata.len() as usize);
    // `take` bounds the read even if the file grows after the metadata call.
    file.take(MAX_PLAYLIST_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_error("reading the playlist", e))?;
    if buf.len() as u64 > MAX_PLAYLIST_BYTES {
        return Err(too_large(buf.len() as u64));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Err(e) if e.kind() == ErrorKind::NotFound
        ));
        // A symlink that stays inside the directory resolves to the file it names.
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!(
            open_inside(media.path(), "s3.ts")
                .expect("inside")
                .metadata
                .ino(),
            ok.metadata.ino()
        );
        assert!(matches!(
            open_inside(media.path(), "s4.ts"),
            Err(e) if e.kind() == ErrorKind::NotFound
        ));
        assert!(matches!(
            open_inside(media.path(), "s5.ts"),
            Err(e) if e.kind() == ErrorKind::NotFound
        ));
        let gone = media.path().join("missing");
        assert!(matches!(
            open_inside(&gone, "s1.ts"),
            Err(e) if e.kind() == ErrorKind::NotFound
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
            Err(e) if e.kind() == ErrorKind::ResourceExhausted
        ));
    }
}
