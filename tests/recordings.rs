//! Recording (issue 21): segments that outlive the live window under retention rules, the
//! index beside them, and the review routes over them.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use hls::recording::db::{Db, SegmentRow, DB_FILE};
use hls::recording::Recordings;

use crate::util;

/// Segment files of stream `chessboard` in `dir`, by sequence number.
fn segment_files(dir: &Path) -> BTreeSet<u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_prefix("chessboard")?
                .strip_suffix(".ts")?
                .parse()
                .ok()
        })
        .collect()
}

/// The index's rows of `chessboard`, read after the run (its database thread has stopped).
fn rows(dir: &Path) -> Vec<SegmentRow> {
    Db::open(&dir.join(DB_FILE))
        .unwrap()
        .segments_of("chessboard")
        .unwrap()
}

/// Runs the pipeline in-process with recording on (the output directory's index opened once,
/// as the binary does), until its frame limit; waits until the index has done every call.
fn record(dir: &Path, args: &[&str]) -> hls::pipeline::Summary {
    let cfg = util::config(dir, args);
    let (recordings, db_thread) =
        hls::pipeline::spawn_store(&cfg.server.out_dir, cfg.server.storage_max).unwrap();
    let summary = hls::pipeline::prepare(&cfg)
        .unwrap()
        .with_recording(recordings.clone())
        .start(Arc::default(), Arc::default(), || {})
        .unwrap()
        .join()
        .unwrap();
    settle(recordings);
    db_thread.join().unwrap();
    summary
}

/// Waits for the database thread to finish what is queued, then lets it end.
fn settle(r: Recordings) {
    r.db().call_blocking(|_| Ok(())).unwrap();
}

const SMALL: [&str; 6] = ["--size", "64x64", "--hls-time", "1", "--list-size", "3"];

/// Segments leave the live playlist but stay on disk under the default retention (1 h), one
/// row each; the playlist never lists them again; a restart keeps them (they are not the
/// previous run's leftovers to delete) and its playlist does not list them either.
#[test]
fn segments_outlive_the_window_and_a_restart_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = SMALL.iter().copied().chain(["--frames", "600"]).collect();
    let s = record(dir.path(), &args);
    assert_eq!(s.segments, 20);
    assert_eq!(segment_files(dir.path()), (0..20).collect());
    let pl = util::read_playlist(dir.path(), "chessboard");
    assert_eq!(pl.media_sequence, 17);
    assert_eq!(pl.segments.len(), 3);
    let r = rows(dir.path());
    assert_eq!(
        r.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        (0..20).collect::<Vec<_>>()
    );
    for w in r.windows(2) {
        assert_eq!(
            w[1].start.unix_millis() - w[0].start.unix_millis(),
            1000,
            "one-second segments back to back: {w:?}"
        );
        assert_eq!(
            w[0].bytes,
            std::fs::metadata(dir.path().join(&w[0].file))
                .unwrap()
                .len()
        );
    }

    // The restart: 20 more segments. Nothing of the first run is deleted, and the new
    // playlist lists its own window only.
    let s = record(dir.path(), &args);
    assert_eq!(s.segments, 20);
    assert_eq!(segment_files(dir.path()), (0..40).collect());
    let pl = util::read_playlist(dir.path(), "chessboard");
    let listed: Vec<&str> = pl.segments.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(
        listed,
        ["chessboard37.ts", "chessboard38.ts", "chessboard39.ts"]
    );
    let r = rows(dir.path());
    assert_eq!(r.len(), 40);
    assert!(
        r[20].discontinuity,
        "the restart's first segment follows a gap"
    );
}

/// Expiry by bytes (`--storage-max` far below one segment): once a segment's R25 grace ends
/// it goes at once; what is left is exactly what the live path alone keeps (the window and
/// the grace), and each file left has its row. A restart with room again keeps what is left.
#[test]
fn a_tiny_storage_budget_keeps_exactly_the_live_window_and_its_grace() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = SMALL
        .iter()
        .copied()
        .chain(["--frames", "600", "--storage-max", "1"])
        .collect();
    record(dir.path(), &args);
    // As `lifecycle::r25_expiry_keeps_exactly_the_grace_window`: 13..=16 in their grace,
    // 17..=19 listed.
    assert_eq!(segment_files(dir.path()), (13..20).collect());
    let seqs: BTreeSet<u64> = rows(dir.path()).iter().map(|r| r.sequence).collect();
    assert_eq!(seqs, (13..20).collect());

    let args: Vec<&str> = SMALL.iter().copied().chain(["--frames", "60"]).collect();
    record(dir.path(), &args);
    assert_eq!(segment_files(dir.path()), (13..22).collect());
}

/// Expiry by time on the wall clock (a paced run): with `--record-retention 0` and no
/// markers, a segment goes when its R25 grace ends, as without recording.
#[test]
fn record_retention_zero_deletes_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let cfg = hls::config::Config::from_args([
        "hls-streamer",
        "--no-server",
        "--out-dir",
        out,
        "--size",
        "64x64",
        "--hls-time",
        "0.5",
        "--list-size",
        "3",
        "--frames",
        "240",
        "--record-retention",
        "0",
        "--no-builtin-markers",
    ])
    .unwrap();
    let (recordings, db_thread) =
        hls::pipeline::spawn_store(&cfg.server.out_dir, cfg.server.storage_max).unwrap();
    hls::pipeline::prepare(&cfg)
        .unwrap()
        .with_recording(recordings.clone())
        .start(Arc::default(), Arc::default(), || {})
        .unwrap()
        .join()
        .unwrap();
    settle(recordings);
    db_thread.join().unwrap();
    // Sixteen half-second segments: the first few passed their grace (their own duration
    // plus the longest playlist, at least 3 target durations of 1 s) by the end, 8 s; where
    // exactly depends on the paced run's segment lengths (the budget test above pins it).
    let files = segment_files(dir.path());
    let first = *files.first().unwrap();
    assert!((2..=4).contains(&first), "{files:?}");
    assert_eq!(files, (first..16).collect(), "a contiguous tail is left");
    let seqs: BTreeSet<u64> = rows(dir.path()).iter().map(|r| r.sequence).collect();
    assert_eq!(seqs, files, "a row per file, none for the deleted ones");
}

/// The binary refuses a bad retention flag before touching anything (exit 2), and a
/// database it cannot use at start (exit 1, naming the file), never starting with an empty
/// index.
#[test]
fn bad_flags_and_bad_databases_are_errors_at_start() {
    let bin = env!("CARGO_BIN_EXE_hls-streamer");
    for bad in [
        ["--record-retention", "soon"],
        ["--clip-retention", "-1h"],
        ["--storage-max", "2 parsecs"],
        ["--thumbnail-width", "8"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(bin)
            .args(["--no-server", "--frames", "10", "--out-dir"])
            .arg(dir.path().join("out"))
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(!dir.path().join("out").exists(), "{bad:?}: nothing created");
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![0x5a; 4096]).unwrap();
    let out = std::process::Command::new(bin)
        .args([
            "--no-server",
            "--size",
            "64x64",
            "--frames",
            "10",
            "--out-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("hls.db") && stderr.contains("not a usable SQLite database"),
        "{stderr}"
    );
    assert!(segment_files(dir.path()).is_empty(), "no stream ran");

    // Read-only: the file write-protected (root ignores modes: then the check is moot).
    let dir = tempfile::tempdir().unwrap();
    Db::open(&dir.path().join(DB_FILE)).unwrap();
    let db = dir.path().join(DB_FILE);
    let mut perms = std::fs::metadata(&db).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o444);
    std::fs::set_permissions(&db, perms).unwrap();
    if std::fs::OpenOptions::new().write(true).open(&db).is_err() {
        let out = std::process::Command::new(bin)
            .args([
                "--no-server",
                "--size",
                "64x64",
                "--frames",
                "10",
                "--out-dir",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("cannot be written"), "{stderr}");
    }
}
