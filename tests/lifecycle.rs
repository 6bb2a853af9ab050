//! The playlist over a stream's life: sliding window, deletion only after the RFC 8216 §6.2.2
//! grace period, ENDLIST at the end, and media sequence numbers that survive a restart.

use std::collections::BTreeSet;

use crate::util;

fn files(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// R22, R23, R25, R29: a 20-segment run with a 3-segment window. Segment k leaves the playlist
/// when k+3 is published (stream time k+4 s) and must stay downloadable for its own duration
/// plus the longest playlist that held it (1 s + 3 s), i.e. until stream time k+8 s. At the end
/// (20 s) exactly the segments with k+8 > 20 remain besides the window: 13..=16, plus 17..=19.
#[test]
fn r25_expiry_keeps_exactly_the_grace_window() {
    let run = util::run(&[
        "--size",
        "64x64",
        "--hls-time",
        "1",
        "--list-size",
        "3",
        "--frames",
        "600",
    ]);
    let pl = run.playlist();
    assert!(pl.end_list, "R29: ENDLIST after a bounded run");
    assert_eq!(pl.media_sequence, 17, "R22: MSN = removed count");
    let uris: Vec<&str> = pl.segments.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(
        uris,
        ["chessboard17.ts", "chessboard18.ts", "chessboard19.ts"]
    );
    let expected: BTreeSet<String> = (13..=19)
        .map(|k| format!("chessboard{k}.ts"))
        .chain(
            [
                "chessboard.m3u8",
                "chessboard.index.m3u8",
                "chessboard.clock.json",
                "chessboard.markers.jsonl",
            ]
            .map(String::from),
        )
        .collect();
    assert_eq!(files(&run.path()), expected);
}

/// R22, R6, R26: a restart continues the media sequence after an EXT-X-DISCONTINUITY and keeps
/// the old window; `--fresh` starts over at --start-number.
#[test]
fn r22_restart_continues_media_sequence_with_discontinuity() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--size",
        "64x64",
        "--hls-time",
        "1",
        "--list-size",
        "5",
        "--frames",
        "90",
    ];
    let run_once = |extra: &[&str]| {
        let mut a: Vec<&str> = args.to_vec();
        a.extend_from_slice(extra);
        let cfg = util::config(dir.path(), &a);
        let shared = std::sync::Arc::new(hls::state::Shared::default());
        util::pipeline(
            &cfg,
            shared,
            std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        )
        .unwrap()
    };
    run_once(&[]);
    let first = util::read_playlist(dir.path(), "chessboard");
    assert_eq!((first.media_sequence, first.segments.len()), (0, 3));
    run_once(&[]);
    let second = util::read_playlist(dir.path(), "chessboard");
    assert_eq!(second.media_sequence, 1, "6 segments in a 5-window");
    let uris: Vec<&str> = second.segments.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "chessboard1.ts",
            "chessboard2.ts",
            "chessboard3.ts",
            "chessboard4.ts",
            "chessboard5.ts"
        ]
    );
    let disc: Vec<bool> = second.segments.iter().map(|s| s.discontinuity).collect();
    assert_eq!(
        disc,
        [false, false, true, false, false],
        "R6: the restart is a discontinuity"
    );
    // R33: program date times keep increasing across the restart.
    let pdts: Vec<_> = second
        .segments
        .iter()
        .map(|s| s.program_date_time.unwrap())
        .collect();
    assert!(pdts.windows(2).all(|w| w[0] < w[1]), "{pdts:?}");
    // Every listed segment is on disk.
    for s in &second.segments {
        assert!(dir.path().join(&s.uri).is_file(), "{}", s.uri);
    }
    run_once(&["--fresh", "--start-number", "100"]);
    let third = util::read_playlist(dir.path(), "chessboard");
    assert_eq!(third.media_sequence, 100);
    assert!(third.segments.iter().all(|s| !s.discontinuity));
    assert!(
        !dir.path().join("chessboard0.ts").exists(),
        "--fresh removed the old stream"
    );
}

/// A media directory that cannot be created is a clear error, not a panic.
#[test]
fn unwritable_out_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let cfg = util::config(&file, &["--size", "64x64", "--frames", "10"]);
    let err = util::pipeline(&cfg, Default::default(), Default::default()).unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

/// R29: SIGTERM finishes the segment in progress, writes EXT-X-ENDLIST and exits 0.
#[test]
fn r29_sigterm_ends_the_playlist() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
        .args([
            "--size",
            "64x64",
            "--no-server",
            "--hls-time",
            "1",
            "--list-size",
            "5",
            "--out-dir",
        ])
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let playlist = dir.path().join("chessboard.m3u8");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !playlist.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no playlist within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let pl = util::read_playlist(dir.path(), "chessboard");
    assert!(pl.end_list);
    assert!(
        pl.segments.len() >= 2,
        "the first segment and the one in progress"
    );
    for s in &pl.segments {
        assert!(dir.path().join(&s.uri).is_file());
    }
}

/// A bounded run with the server on exits 0 by itself, server included.
#[test]
fn bounded_run_with_server_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
        .args([
            "--size",
            "64x64",
            "--no-pacing",
            "--frames",
            "90",
            "--bind",
            "127.0.0.1:0",
            "--out-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(util::read_playlist(dir.path(), "chessboard").end_list);
}

/// A corrupt or hostile playlist left in the media directory never crashes a restart: dates past
/// 9999, absurd EXTINFs and sequence numbers at the top of u64 are not continued.
#[test]
fn r22_hostile_previous_playlist_is_not_continued() {
    for bad in [
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PROGRAM-DATE-TIME:9999-12-31T23:59:59.000Z\n#EXTINF:2.000,\nchessboard0.ts\n",
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z\n#EXTINF:10000000000000000,\nchessboard0.ts\n",
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n#EXTINF:2.000,\nchessboard0.ts\n",
        "#EXTM3U\n#EXT-X-DATERANGE:ID=\"x\",START-DATE=\"2026-01-01T00:00:00.000Z\",DURATION=1e300\n",
        "not a playlist at all",
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("chessboard.m3u8"), bad).unwrap();
        let cfg = util::config(dir.path(), &["--size", "64x64", "--hls-time", "1", "--frames", "60"]);
        let summary = util::pipeline(&cfg, Default::default(), Default::default())
            .unwrap_or_else(|e| panic!("{bad:?}: {e}"));
        assert_eq!(summary.segments, 2, "{bad:?}");
        let pl = util::read_playlist(dir.path(), "chessboard");
        assert!(pl.end_list && pl.segments.len() == 2, "{bad:?}");
    }
}

/// `--help` and `--version` print on stdout and exit 0, so `hls-streamer --help | less` works.
#[test]
fn help_and_version_go_to_stdout_and_exit_zero() {
    for flag in ["--help", "-h", "--version", "-V"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
            .arg(flag)
            .output()
            .unwrap();
        assert!(out.status.success(), "{flag}: {:?}", out.status);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.stderr.is_empty(), "{flag}: nothing on stderr");
        if flag.contains('h') {
            assert!(stdout.contains("--hls-time"), "{flag}: {stdout}");
        } else {
            assert!(stdout.starts_with("hls-streamer "), "{flag}: {stdout}");
        }
    }
}

/// Every flag is checked before any side effect: a bad flag exits 2 with a clear message on
/// stderr, and `--fresh` has not deleted the previous stream, nor has `--out-dir` been created,
/// whatever `--no-server` says.
#[test]
fn a_bad_flag_exits_2_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("chessboard.m3u8"), b"#EXTM3U\n").unwrap();
    std::fs::write(dir.path().join("chessboard0.ts"), b"old").unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let missing = dir.path().join("new-dir");
    let long_name = "a".repeat(100);
    for (args, says) in [
        (
            vec!["--fresh", "--cors-origin", "https://x.example/path"],
            "no path",
        ),
        (
            vec!["--fresh", "--no-server", "--cors-origin", "*"],
            "wildcard",
        ),
        (
            vec!["--fresh", "--no-server", "--name", &long_name],
            "--name",
        ),
        (vec!["--fresh", "--list-size", "2"], "--list-size"),
        (vec!["--fresh", "--bogus-flag"], "--bogus-flag"),
    ] {
        for target in [out_dir, missing.to_str().unwrap()] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
                .args(["--out-dir", target, "--frames", "10"])
                .args(&args)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(says), "{args:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{args:?}");
        }
        assert_eq!(
            std::fs::read(dir.path().join("chessboard0.ts")).unwrap(),
            b"old",
            "{args:?} deleted the previous stream"
        );
        assert!(dir.path().join("chessboard.m3u8").exists(), "{args:?}");
        assert!(!missing.exists(), "{args:?} created --out-dir");
    }
}

/// A taken port fails before the stream starts: `--fresh` has deleted nothing.
#[test]
fn a_taken_port_fails_before_any_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("chessboard0.ts"), b"old").unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
        .args(["--out-dir", dir.path().to_str().unwrap(), "--fresh"])
        .args(["--frames", "10", "--bind", &bind])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&bind), "{stderr}");
    assert_eq!(
        std::fs::read(dir.path().join("chessboard0.ts")).unwrap(),
        b"old"
    );
}
