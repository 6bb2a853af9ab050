//! The `hls-detect` binary itself: its flags and its keeping the token out of logs. Its core is
//! tested in its modules and, over the streamer's own runs and live against the real streamer,
//! in the workspace root's tests/detect.rs.

use std::time::Duration;

fn hls_detect() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hls-detect"));
    c.env_remove("HLS_MARKER_TOKEN").env_remove("RUST_LOG");
    c
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every bad command line exits 2 with a message that names the problem.
#[test]
fn hls_detect_bad_flags_exit_2() {
    let base = format!("http://127.0.0.1:{}", closed_port());
    for (args, says) in [
        (vec![], "--base"),
        (vec!["--base", base.as_str()], "--token"),
        (
            vec!["--base", "https://127.0.0.1:1", "--token", "t"],
            "https",
        ),
        (vec!["--base", "127.0.0.1:5000", "--token", "t"], "http://"),
        (vec!["--base", base.as_str(), "--token", "a b"], "token"),
        (
            vec!["--base", base.as_str(), "--token", "t", "--name", "../x"],
            "--name",
        ),
        (
            vec!["--base", base.as_str(), "--token", "t", "--block-size", "0"],
            "--block-size",
        ),
        (
            vec!["--base", base.as_str(), "--token", "t", "--bogus"],
            "--bogus",
        ),
    ] {
        let out = hls_detect().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// The token, given through the environment, appears neither in `--help` nor in the logs of a
/// detector whose origin is down (debug level); SIGTERM stops it with status 0.
#[test]
fn hls_detect_keeps_the_token_out_of_logs() {
    let token = "s3cret-token-for-the-log-test";
    let help = hls_detect()
        .arg("--help")
        .env("HLS_MARKER_TOKEN", token)
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("HLS_MARKER_TOKEN") && !text.contains(token),
        "{text}"
    );

    let base = format!("http://127.0.0.1:{}", closed_port());
    let child = hls_detect()
        .args(["--base", &base])
        .env("HLS_MARKER_TOKEN", token)
        .env("RUST_LOG", "debug")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("playlist: unreachable"), "{log}");
    assert!(!log.contains(token), "{log}");
}
