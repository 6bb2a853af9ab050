//! Which files of the media directory may be served, and how they are opened.
//!
//! A request names a file by its last path segment only. It is accepted if it is exactly
//! `NAME.m3u8` or `NAME<seq>.ts` ([`crate::name::StreamName::parse_file`]), and only then opened,
//! relative to a handle on the media directory, as one path component, without following a
//! symlink (`O_NOFOLLOW`) and without blocking (`O_NONBLOCK`); what was opened is then checked
//! with `fstat`, and anything but a regular file is refused like a missing file. Nothing is
//! resolved by name and opened again later, so a symlink or a FIFO swapped in under a served
//! name is never followed and never blocks a worker: a symlink fails the open (`ELOOP`), a FIFO
//! opens without waiting for a writer and is refused by its type.
//!
//! Everything here that touches the filesystem is blocking: call it through `web::block`.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use crate::error::{Error, ErrorKind};

/// Largest playlist the server reads into memory. A 60-segment window with a DATERANGE per
/// marker is a few kilobytes; anything near this is not a playlist we wrote.
pub(crate) const MAX_PLAYLIST_BYTES: u64 = 4 * 1024 * 1024;

/// An I/O error as the server reports it: a file that is missing, not ours to read, or a
/// symlink (`ELOOP` under `O_NOFOLLOW`) is [`ErrorKind::NotFound`] (answered with 404,
/// indistinguishable on purpose), anything else [`ErrorKind::Io`].
fn io_error(context: &str, e: io::Error) -> Error {
    let symlink = e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error());
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => not_found(),
        _ if symlink => not_found(),
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
///
/// The name must be one path component; it is opened relative to the directory's handle with
/// `O_NOFOLLOW | O_NONBLOCK`, so the check is of the file that was opened, not of a path that
/// may change between a check and an open.
pub(crate) fn open_inside(dir: &Path, file_name: &str) -> Result<Opened, Error> {
    let context = "opening a media file";
    if file_name.is_empty() || file_name.contains(['/', '\0']) || file_name.starts_with('.') {
        return Err(not_found());
    }
    let dir = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_error(context, e.into()))?;
    let fd = rustix::fs::openat(
        &dir,
        file_name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_error(context, e.into()))?;
    let file = File::from(fd);
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

    fn is_not_found(r: Result<Opened, Error>) -> bool {
        matches!(r, Err(e) if e.kind() == ErrorKind::NotFound)
    }

    #[test]
    fn open_inside_refuses_symlinks_directories_and_odd_names() {
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
        assert!(is_not_found(open_inside(media.path(), "s2.ts")));
        // The program never writes a symlink: even one that stays inside is not followed.
        assert!(is_not_found(open_inside(media.path(), "s3.ts")));
        assert!(is_not_found(open_inside(media.path(), "s4.ts")));
        assert!(is_not_found(open_inside(media.path(), "s5.ts")));
        for odd in ["", ".", "..", "../s1.ts", "x/../s1.ts", "s1.ts\0"] {
            assert!(is_not_found(open_inside(media.path(), odd)), "{odd:?}");
        }
        let gone = media.path().join("missing");
        assert!(is_not_found(open_inside(&gone, "s1.ts")));
    }

    /// Issue 18, defect 5: a FIFO under a served name used to block `open(2)` (and its worker)
    /// until a writer came. It is refused at once, like any file that is not a regular one.
    #[test]
    fn a_fifo_under_a_served_name_is_refused_without_blocking() {
        let media = tempfile::tempdir().expect("temp dir");
        let fifo = media.path().join("s7.ts");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        let dir = media.path().to_owned();
        std::thread::spawn(move || {
            let _ = tx.send(is_not_found(open_inside(&dir, "s7.ts")));
        });
        let refused = rx.recv_timeout(std::time::Duration::from_secs(10));
        if refused.is_err() {
            // Unblock the stuck open so the test process can end, then fail.
            let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
        }
        assert_eq!(
            refused,
            Ok(true),
            "open of a FIFO must not block and must be refused"
        );
    }

    /// Issue 18, defect 2: with a symlink to a file outside swapped in and out under a served
    /// name as fast as a thread can, no open ever returns the outside file (the old
    /// resolve-then-open returned it 87 times in 6,000).
    #[test]
    fn a_symlink_swapped_in_under_a_served_name_is_never_followed() {
        use std::io::Read as _;
        let outside = tempfile::tempdir().expect("temp dir");
        let media = tempfile::tempdir().expect("temp dir");
        let secret = outside.path().join("secret.ts");
        std::fs::write(&secret, b"secret").expect("write");
        let (real, name) = (media.path().join("real"), media.path().join("s9.ts"));
        std::fs::write(&real, b"segment").expect("write");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut swaps = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && swaps < 2_000_000 {
                    // Atomically by rename: a symlink out, then a hard link to the real file.
                    let tmp = name.with_extension("tmp");
                    let _ = std::fs::remove_file(&tmp);
                    let made = if swaps % 2 == 0 {
                        std::os::unix::fs::symlink(&secret, &tmp)
                    } else {
                        std::fs::hard_link(&real, &tmp)
                    };
                    if made.is_ok() {
                        let _ = std::fs::rename(&tmp, &name);
                    }
                    swaps += 1;
                }
                swaps
            })
        };
        let (mut served, mut refused) = (0, 0);
        let started = std::time::Instant::now();
        for i in 0..200_000 {
            let both = served > 0 && refused > 0;
            if i >= 6_000 && (both || started.elapsed() > std::time::Duration::from_secs(20)) {
                break;
            }
            match open_inside(media.path(), "s9.ts") {
                Ok(mut o) => {
                    let mut body = Vec::new();
                    o.file.read_to_end(&mut body).expect("read");
                    assert_eq!(body, b"segment", "served a file outside the directory");
                    served += 1;
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::NotFound);
                    refused += 1;
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let swaps = swapper.join().expect("swapper");
        assert!(swaps > 100, "the swapper ran ({swaps} swaps)");
        assert!(
            served > 0 && refused > 0,
            "both states were seen: {served} served, {refused} refused"
        );
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
