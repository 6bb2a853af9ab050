//! Other clients join the live stream from the real binary over HTTP on 127.0.0.1: ffmpeg, and
//! GStreamer through `hlsdemux` and through `urisourcebin` (which picks its own adaptive
//! demuxer), each the instant the origin starts (before the first segment is complete: R52) and
//! again seconds later, with low latency on and off. Each must read a given number of frames and
//! exit cleanly. Without ffmpeg or GStreamer the test skips loudly; with `CI` set it fails.

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::Serving;

/// Frames each client must read (two seconds and a bit at 30 fps: more than one segment).
const FRAMES: u32 = 75;
/// How long a client may take (joining, buffering, reading the frames): generous, only a bound.
const CLIENT_LIMIT: Duration = Duration::from_secs(40);

fn have(tool: &str, probe: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs {tool} {probe:?} (apt-get install ffmpeg gstreamer1.0-plugins-bad \
             gstreamer1.0-plugins-good gstreamer1.0-tools)"
        );
        eprintln!("skipping: {tool} {probe:?} is not available");
    }
    ok
}

/// A client reading the live playlist at `url`.
struct Client {
    name: &'static str,
    child: Child,
}

fn ffmpeg(url: &str) -> Client {
    // framecrc: one line per decoded frame, so the frames read can be counted.
    let child = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error"])
        .args(["-rw_timeout", "15000000", "-i", url])
        .args(["-map", "0:v:0", "-frames:v", &FRAMES.to_string()])
        .args(["-f", "framecrc", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg starts");
    Client {
        name: "ffmpeg",
        child,
    }
}

/// `gst-launch-1.0 <source> ! h264parse ! ... ! identity eos-after=FRAMES ! fakesink`: exits 0
/// on EOS after that many H.264 access units went through the parser.
fn gstreamer(name: &'static str, source: &[String]) -> Client {
    let mut args: Vec<String> = vec!["-q".into()];
    args.extend(source.iter().cloned());
    for s in [
        "!",
        "h264parse",
        "!",
        "video/x-h264,alignment=au",
        "!",
        "identity",
        &format!("eos-after={FRAMES}"),
        "!",
        "fakesink",
        "sync=false",
    ] {
        args.push(s.to_owned());
    }
    let child = Command::new("gst-launch-1.0")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gst-launch-1.0 starts");
    Client { name, child }
}

fn hlsdemux(url: &str) -> Client {
    gstreamer(
        "gstreamer hlsdemux",
        &[
            "souphttpsrc".into(),
            format!("location={url}"),
            "!".into(),
            "hlsdemux".into(),
            "!".into(),
            "tsdemux".into(),
        ],
    )
}

/// `urisourcebin` picks the adaptive demuxer itself (`hlsdemux2` where installed, which hands
/// out elementary streams rather than TS): `parsebin` takes whichever comes.
fn urisourcebin(url: &str) -> Client {
    gstreamer(
        "gstreamer urisourcebin",
        &[
            "urisourcebin".into(),
            format!("uri={url}"),
            "!".into(),
            "parsebin".into(),
        ],
    )
}

/// Waits for every client (at most [`CLIENT_LIMIT`] each, then killed) and checks each read its
/// frames and exited 0. `when` names the moment they joined, for the messages.
fn finish(clients: Vec<Client>, when: &str) {
    let deadline = Instant::now() + CLIENT_LIMIT;
    let mut failures = Vec::new();
    for mut c in clients {
        let status = loop {
            if let Some(status) = c.child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = c.child.kill();
                let _ = c.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        let mut err = String::new();
        c.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        c.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let frames = out.lines().filter(|l| !l.starts_with('#')).count();
        match status {
            None => failures.push(format!(
                "{} ({when}): still running after {CLIENT_LIMIT:?}\n{err}",
                c.name
            )),
            Some(s) if !s.success() => {
                failures.push(format!("{} ({when}): exited {s}\n{err}", c.name));
            }
            Some(_) if c.name == "ffmpeg" && frames < FRAMES as usize => failures.push(format!(
                "ffmpeg ({when}): {frames} frames decoded, {FRAMES} asked for\n{err}"
            )),
            Some(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn join_at_start_and_later(low_latency: bool) {
    let mut args = vec![
        "--size",
        "320x180",
        "--hls-time",
        "1",
        "--duration",
        "20",
        "--linger",
        "30",
    ];
    if !low_latency {
        args.push("--no-low-latency");
    }
    let s = Serving::start(&args);
    let url = format!("http://{}/video/chessboard.m3u8", s.addr);
    // The instant the origin listens: no segment exists yet.
    let first = vec![ffmpeg(&url), hlsdemux(&url), urisourcebin(&url)];
    let started = Instant::now();
    // Later: the stream is a few segments old.
    std::thread::sleep(Duration::from_secs(5).saturating_sub(started.elapsed()));
    let later = vec![ffmpeg(&url), hlsdemux(&url), urisourcebin(&url)];
    let mode = if low_latency { "LL" } else { "classic" };
    finish(first, &format!("{mode}, at start"));
    finish(later, &format!("{mode}, 5 s later"));
}

#[test]
fn r52_ffmpeg_and_gstreamer_join_the_instant_the_origin_starts() {
    if !have("ffmpeg", &["-version"])
        || !have("gst-inspect-1.0", &["hlsdemux"])
        || !have("gst-inspect-1.0", &["urisourcebin"])
        || !have("gst-inspect-1.0", &["tsdemux"])
    {
        return;
    }
    join_at_start_and_later(true);
    join_at_start_and_later(false);
}
