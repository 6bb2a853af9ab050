//! Helpers shared by the integration tests: run the pipeline in-process without pacing and
//! read back what it wrote with independent readers (m3u8-rs, mpeg2ts, openh264's decoder).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use hls::config::Config;
use hls::pipeline::Summary;
use hls::state::Shared;

pub struct Run {
    pub dir: tempfile::TempDir,
    pub cfg: Config,
    pub shared: Arc<Shared>,
    pub summary: Summary,
}

impl Run {
    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn playlist(&self) -> m3u8_rs::MediaPlaylist {
        read_playlist(self.dir.path(), self.cfg.stream.name().as_str())
    }
}

/// Runs the whole pipeline as fast as it can into a fresh temporary directory.
pub fn run(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(dir.path(), args);
    let shared = Arc::new(Shared::default());
    let summary = pipeline(&cfg, shared.clone(), Arc::default())
        .unwrap_or_else(|e| panic!("pipeline failed: {e}"));
    Run {
        dir,
        cfg,
        shared,
        summary,
    }
}

/// The pipeline's one way in: [`hls::pipeline::prepare`], then start it on its threads and
/// wait for it to end (the frame limit, `stop`, or an error).
pub fn pipeline(
    cfg: &Config,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> Result<Summary, hls::error::Error> {
    hls::pipeline::prepare(cfg)?
        .start(shared, stop, || {})?
        .join()
}

/// [`pipeline`], with `observer` called with the text of every playlist version once it is in
/// place.
pub fn run_observed(
    cfg: &Config,
    shared: Arc<Shared>,
    observer: impl FnMut(&str) + Send + 'static,
) -> Result<Summary, hls::error::Error> {
    hls::pipeline::prepare(cfg)?
        .observe_playlists(observer)
        .start(shared, Arc::default(), || {})?
        .join()
}

pub fn config(dir: &Path, args: &[&str]) -> Config {
    let out = dir.to_str().expect("utf-8 temp path").to_string();
    let mut argv: Vec<String> = vec![
        "hls-streamer".into(),
        "--no-pacing".into(),
        "--no-server".into(),
        "--out-dir".into(),
        out,
    ];
    argv.extend(args.iter().map(|s| s.to_string()));
    Config::from_args(argv).unwrap_or_else(|e| panic!("bad test args {args:?}: {e}"))
}

pub fn read_playlist(dir: &Path, name: &str) -> m3u8_rs::MediaPlaylist {
    let bytes = std::fs::read(dir.join(format!("{name}.m3u8"))).expect("playlist written");
    m3u8_rs::parse_media_playlist_res(&bytes).unwrap_or_else(|e| {
        panic!(
            "m3u8-rs rejects our playlist: {e:?}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// The 90 kHz duration of one frame slot at 30 fps.
pub const FRAME_30: u64 = 3000;

/// Splits an Annex B stream into NAL units (without start codes).
pub fn nal_types(annexb: &[u8]) -> Vec<u8> {
    hls::encode::annexb_nals(annexb)
        .filter_map(hls::encode::nal_type)
        .collect()
}

/// Asserts `a` and `b` are equal, printing both in full when they are not.
#[macro_export]
macro_rules! eqnice {
    ($expected:expr, $got:expr) => {{
        let (expected, got) = (&$expected, &$got);
        if expected != got {
            panic!("\n--- expected ---\n{expected}\n--- got ---\n{got}\n----------------");
        }
    }};
}

/// The one HTTP/1.1 request a test needs: status and body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// The address the binary's HTTP server listens on, read from its log lines as they arrive on
/// `lines` ("player at http://ADDR/..."), waiting at most `within`.
pub fn listen_address(
    lines: &std::sync::mpsc::Receiver<String>,
    within: std::time::Duration,
) -> SocketAddr {
    let deadline = std::time::Instant::now() + within;
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("the server says where it listens");
        if let Some(rest) = line.split("player at http://").nth(1) {
            return rest.split('/').next().unwrap().parse().unwrap();
        }
    }
}

/// The binary serving over HTTP on 127.0.0.1 (a port the system picks) into a temporary
/// directory; killed when dropped.
pub struct Serving {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    agent: ureq::Agent,
    _dir: tempfile::TempDir,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serving {
    /// Starts the binary with `args` and waits (at most 30 s) until it says where it listens.
    pub fn start(args: &[&str]) -> Serving {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
            .args(["--bind", "127.0.0.1:0", "--out-dir"])
            .arg(dir.path())
            .args(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let addr = listen_address(&rx, std::time::Duration::from_secs(30));
        Serving::adopt(child, addr, dir)
    }

    /// A binary the caller started, listening at `addr`, writing into `dir`: killed, and `dir`
    /// removed, when dropped.
    pub fn adopt(
        child: std::process::Child,
        addr: std::net::SocketAddr,
        dir: tempfile::TempDir,
    ) -> Serving {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(20)))
            .build()
            .into();
        Serving {
            child,
            addr,
            agent,
            _dir: dir,
        }
    }

    /// The media directory.
    #[allow(dead_code)]
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// `GET path`: the status and the body.
    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let (status, _, body) = self.get_header(path, "date");
        (status, body)
    }

    /// `GET path`: the status, the value of response header `header`, and the body.
    pub fn get_header(&self, path: &str, header: &str) -> (u16, Option<String>, Vec<u8>) {
        let mut resp = self
            .agent
            .get(&format!("http://{}{path}", self.addr))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let value = resp
            .headers()
            .get(header)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap();
        (resp.status().as_u16(), value, body)
    }
}
