//! `--config FILE` refused before anything is touched: exit 2, an error naming the file, the
//! line and the key, no media directory created. And a file's streams, once accepted, run.

use std::path::Path;
use std::process::Command;

/// Runs the binary with `--config` on `text` (plus `extra` flags): its exit code and stderr.
fn refused(dir: &Path, text: &str, extra: &[&str]) -> (Option<i32>, String) {
    let file = dir.join("streams.toml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
        .arg("--config")
        .arg(&file)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_configuration_exits_2_naming_the_line_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("media");
    let server = format!(
        "[server]\nbind = \"127.0.0.1:0\"\nout_dir = {:?}\n",
        out.display().to_string()
    );
    let cases: &[(&str, &str, &[&str])] = &[
        // (the file after [server], what the error must say, extra flags)
        (
            "[[stream]]\nname = \"a\"\nframe_rate = 30\n",
            ":6: unknown key `frame_rate`",
            &[],
        ),
        (
            "[[stream]]\nname = \"cam\"\n[[stream]]\nname = \"Cam\"\n",
            ":7: key `name`: stream \"Cam\" would write the same files as stream \"cam\"",
            &[],
        ),
        (
            "[[stream]]\nname = \"a\"\nfps = \"fast\"\n",
            ":6: [[stream]] \"a\": key `fps`",
            &[],
        ),
        (
            "[[stream]]\nname = \"a\"\nlist_size = 1\n",
            ":6: [[stream]] \"a\": key `list_size`: --list-size 1 is too small",
            &[],
        ),
        (
            "[[stream]]\nname = \"cam1\"\n",
            "not ending in a digit",
            &[],
        ),
        (
            "[[stream]]\nname = \"a\"\ninput = \"-\"\n[[stream]]\nname = \"b\"\ninput = \"-\"\n",
            "standard input",
            &[],
        ),
        ("", "no [[stream]] table", &[]),
        (
            "[[stream]]\nname = \"a\"\n",
            "--config cannot be combined with --fps: put them in the file",
            &["--fps", "25"],
        ),
        (
            "[[stream]]\nname = \"a\"\nmarker_token = \"short\"\n",
            "key `marker_token`",
            &[],
        ),
        ("[[stream]\nname = \"a\"\n", "streams.toml:4", &[]),
    ];
    for (streams, says, extra) in cases {
        let (code, stderr) = refused(dir.path(), &format!("{server}{streams}"), extra);
        eprintln!("{streams:?} -> {}", stderr.lines().next().unwrap_or(""));
        assert_eq!(code, Some(2), "{streams:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{streams:?}: expected {says:?} in {stderr}"
        );
        if extra.is_empty() {
            assert!(stderr.contains("streams.toml"), "names the file: {stderr}");
        }
        assert!(!out.exists(), "{streams:?}: nothing touched");
    }
    // A file that is not there.
    let out2 = Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
        .args(["--config", "/nonexistent/streams.toml"])
        .output()
        .unwrap();
    assert_eq!(out2.status.code(), Some(2));
}
