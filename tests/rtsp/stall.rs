//! A TCP stall: the camera's connection stays open but goes silent, the way a dead network path
//! or a hung camera looks from the client (no FIN, no RST, nothing). A proxy between the stream
//! and GStreamer's RTSP server black-holes every connection open at that moment, in both
//! directions, while new connections still get through. The client must notice within
//! [`hls::rtsp::STALL`], report the input down, close the dead connection, reconnect, and go on
//! after an `EXT-X-DISCONTINUITY` with segments that decode.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hls::state::Shared;

use super::{
    check_pdt_goes_forward, check_restarted, check_timing, decode_all, gstreamer_available,
    playlist_text, start_server, util, wait_for,
};

/// One proxied connection: `frozen` stops forwarding in both directions (what arrives is read
/// and dropped, so neither peer sees back-pressure or a close).
struct Link {
    frozen: Arc<AtomicBool>,
}

/// A TCP proxy on 127.0.0.1 to `upstream`, on threads; each connection ends when either side
/// closes it. Runs until the test process ends (its listener is non-blocking and polled).
struct StallingProxy {
    port: u16,
    links: Arc<Mutex<Vec<Link>>>,
    /// Connections whose client closed its side (read end of file or an error).
    closed_by_client: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl StallingProxy {
    fn start(upstream: u16) -> StallingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let links = Arc::new(Mutex::new(Vec::new()));
        let closed_by_client = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, c, s) = (links.clone(), closed_by_client.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                        let frozen = Arc::new(AtomicBool::new(false));
                        l.lock().unwrap().push(Link {
                            frozen: frozen.clone(),
                        });
                        pump(&client, &server, frozen.clone(), Some(c.clone()));
                        pump(&server, &client, frozen, None);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => panic!("proxy accept: {e}"),
                }
            }
        });
        StallingProxy {
            port,
            links,
            closed_by_client,
            stop,
        }
    }

    /// Black-holes every connection open now; later ones pass.
    fn freeze_open_connections(&self) -> usize {
        let links = self.links.lock().unwrap();
        for link in links.iter() {
            link.frozen.store(true, Ordering::SeqCst);
        }
        links.len()
    }

    fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/test", self.port)
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` on a thread until `from` ends; then shuts both down. Data read while
/// `frozen` is dropped. `closed` counts an end of `from` (set for the client side only).
fn pump(
    from: &TcpStream,
    to: &TcpStream,
    frozen: Arc<AtomicBool>,
    closed: Option<Arc<AtomicUsize>>,
) {
    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !frozen.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        if let Some(closed) = closed {
            closed.fetch_add(1, Ordering::SeqCst);
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

#[test]
fn a_silent_connection_is_dropped_and_the_stream_goes_on_after_a_discontinuity() {
    if !gstreamer_available() {
        return;
    }
    let server = start_server(&[]);
    let proxy = StallingProxy::start(server.port);
    let dir = tempfile::tempdir().unwrap();
    let url = proxy.url();
    let cfg = util::config(dir.path(), &["--input", &url]);
    let shared = Arc::new(Shared::default());
    let stop = Arc::new(AtomicBool::new(false));
    let pipeline = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::spawn(move || util::pipeline(&cfg, shared, stop))
    };
    let segments = |d: &std::path::Path| playlist_text(d).matches("#EXTINF").count();
    assert!(
        wait_for(Duration::from_secs(20), || segments(dir.path()) >= 2),
        "two segments within 20 s"
    );
    let frozen = proxy.freeze_open_connections();
    assert!(
        frozen >= 1,
        "the stream's connection goes through the proxy"
    );
    let stalled_at = Instant::now();
    let before = segments(dir.path());

    // Noticed: the input is reported down after STALL of silence, not long after.
    assert!(
        wait_for(hls::rtsp::STALL + Duration::from_secs(4), || shared
            .input_down()
            .is_some()),
        "the silent camera is reported down within {:?} + 4 s",
        hls::rtsp::STALL
    );
    let noticed = stalled_at.elapsed();
    assert!(
        noticed + Duration::from_millis(500) >= hls::rtsp::STALL,
        "reported down after {noticed:?}, before {:?} of silence",
        hls::rtsp::STALL
    );
    let reason = shared.input_down().unwrap_or_default();
    assert!(
        reason.contains("stall"),
        "the reason names the stall: {reason}"
    );

    // Back: a new connection, new segments after one discontinuity.
    let noticed_at = Instant::now();
    let resumed = wait_for(Duration::from_secs(15), || {
        let t = playlist_text(dir.path());
        t.contains("#EXT-X-DISCONTINUITY\n") && t.matches("#EXTINF").count() >= before + 2
    });
    let took = noticed_at.elapsed();
    eprintln!(
        "stall: noticed after {noticed:?}, new segments {:?} after the connection went silent",
        stalled_at.elapsed()
    );
    // The dead connection was closed by the client, not left open.
    assert!(
        wait_for(Duration::from_secs(5), || proxy
            .closed_by_client
            .load(Ordering::SeqCst)
            >= frozen),
        "the client closed its {frozen} silent connection(s); closed {}",
        proxy.closed_by_client.load(Ordering::SeqCst)
    );

    stop.store(true, Ordering::SeqCst);
    pipeline.join().unwrap().unwrap();
    let (pl, segs, _) = check_restarted(dir.path(), &shared, resumed, took);
    check_timing(&segs);
    decode_all(&segs, 320, 240);
    check_pdt_goes_forward(&pl);
    drop(server);
}
