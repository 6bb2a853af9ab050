//! Replacing a whole file: written under a temporary name in the same directory, then renamed
//! over the final name, so a reader sees the old file or the new one, never half of one (HLS R5,
//! R20). Durably on request: the bytes are synced before the rename (else a crash may leave an
//! empty file under the final name) and the directory entry after it. The one such write of the
//! crate: the media directory ([`crate::store`]) and the marker log ([`crate::markers::log`])
//! both go through it. Imports nothing of the crate's (the bottom floor, docs/architecture.md).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Whether a [`replace`] must survive a power cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Atomic for readers only (a segment of a live stream: not worth a disk flush each).
    Atomic,
    /// Atomic, and on disk before this returns: the bytes, then the rename.
    Durable,
}

/// Writes `bytes` to `tmp`, then renames it to `path` (both in the same directory); returns the
/// file, open for reading and writing, positioned at its end. On failure the temporary file is
/// removed and the error returned as it came (the caller says what it was writing).
pub(crate) fn replace(
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
    durability: Durability,
) -> io::Result<File> {
    let durable = durability == Durability::Durable;
    let result = (|| -> io::Result<File> {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        fs::rename(tmp, path)?;
        if durable {
            sync_parent(path)?;
        }
        Ok(f)
    })();
    result.inspect_err(|_| {
        let _ = fs::remove_file(tmp);
    })
}

/// Makes a new or renamed directory entry for `path` durable: syncs the directory it is in.
pub(crate) fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, path) = (dir.path().join(".a.tmp"), dir.path().join("a"));
        for (bytes, durability) in [
            (&b"first"[..], Durability::Atomic),
            (b"second, longer", Durability::Durable),
        ] {
            let mut f = replace(&tmp, &path, bytes, durability).unwrap();
            assert_eq!(fs::read(&path).unwrap(), bytes);
            assert!(!tmp.exists());
            // Open at its end: what is written next goes after the bytes.
            f.write_all(b"+").unwrap();
            assert_eq!(fs::read(&path).unwrap(), [bytes, b"+"].concat());
        }
        // A failed rename (the target is a directory) removes the temporary file.
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        fs::write(sub.join("x"), b"x").unwrap();
        assert!(replace(&tmp, &sub, b"z", Durability::Durable).is_err());
        assert!(!tmp.exists());
    }
}
