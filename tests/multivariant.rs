//! `/video/NAME.index.m3u8` from the binary: one `EXT-X-STREAM-INF` whose CODECS is read here
//! from the stream's own SPS, whose RESOLUTION and FRAME-RATE are the stream's, and whose
//! AVERAGE-BANDWIDTH and BANDWIDTH agree with the segment files the media playlist lists, for
//! both segment types; and a player (ffprobe, when present) opens the stream through it.

use std::time::{Duration, Instant};

use crate::util::Serving;

/// `avc1.PPCCLL` from the first SPS (NAL type 7 behind a start code) in `bytes`: the three
/// bytes after its header, profile_idc, the constraint flags and level_idc (ISO/IEC 14496-15
/// Annex E, RFC 6381 §3.3), read straight from the segment, not through the product's parser.
fn codecs_in(bytes: &[u8]) -> String {
    let at = bytes
        .windows(4)
        .position(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 7)
        .map(|i| i + 4)
        .or_else(|| {
            // fMP4: the avcC box holds the SPS after its 8-byte header, 5 bytes and a length.
            let i = bytes.windows(4).position(|w| w == b"avcC")? + 4;
            Some(i + 1)
        })
        .expect("an SPS");
    format!(
        "avc1.{:02x}{:02x}{:02x}",
        bytes[at],
        bytes[at + 1],
        bytes[at + 2]
    )
}

fn variant_of(s: &Serving) -> (m3u8_rs::VariantStream, String) {
    let (status, ctype, body) = s.get_header("/video/chessboard.index.m3u8", "content-type");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ctype.as_deref(), Some("application/vnd.apple.mpegurl"));
    let text = String::from_utf8(body).unwrap();
    let m3u8_rs::Playlist::MasterPlaylist(p) =
        m3u8_rs::parse_playlist_res(text.as_bytes()).expect("m3u8-rs parses it")
    else {
        panic!("not a multivariant playlist:\n{text}")
    };
    assert!(p.independent_segments, "{text}");
    let [v] = &p.variants[..] else {
        panic!("one variant:\n{text}")
    };
    (v.clone(), text)
}

fn check(segment_type: &str) {
    let s = Serving::start(&[
        "--size",
        "640x360",
        "--fps",
        "30000/1001",
        "--hls-time",
        "1",
        "--segment-type",
        segment_type,
    ]);
    // Six segments in the window.
    let deadline = Instant::now() + Duration::from_secs(40);
    let playlist = loop {
        let (status, body) = s.get("/video/chessboard.m3u8");
        if status == 200 {
            if let Ok(m3u8_rs::Playlist::MediaPlaylist(p)) = m3u8_rs::parse_playlist_res(&body) {
                if p.segments.len() >= 6 {
                    break p;
                }
            }
        }
        assert!(Instant::now() < deadline, "no six segments in 40 s");
        std::thread::sleep(Duration::from_millis(300));
    };
    let (v, text) = variant_of(&s);
    assert_eq!(v.uri, "chessboard.m3u8", "{text}");
    let res = v.resolution.expect("RESOLUTION");
    assert_eq!((res.width, res.height), (640, 360), "{text}");
    assert_eq!(v.frame_rate, Some(29.97), "{text}");
    assert!(
        text.contains("FRAME-RATE=29.970\n"),
        "three decimals: {text}"
    );
    // CODECS from the stream's own parameter sets: a TS segment carries its SPS, an fMP4
    // stream's init segment its avcC.
    let first = &playlist.segments[0];
    let carrier = match &first.map {
        Some(map) => map.uri.clone(),
        None => first.uri.clone(),
    };
    let (status, bytes) = s.get(&format!("/video/{carrier}"));
    assert_eq!(status, 200);
    assert_eq!(
        v.codecs.as_deref(),
        Some(codecs_in(&bytes).as_str()),
        "{text}"
    );
    // The bit rates: what the listed segment files weigh over what they last. The variant
    // may have been written a segment earlier or later than this playlist: within 25 %.
    let (mut bytes_total, mut secs) = (0u64, 0f64);
    for seg in &playlist.segments {
        let (status, body) = s.get(&format!("/video/{}", seg.uri));
        assert_eq!(status, 200, "{}", seg.uri);
        bytes_total += body.len() as u64;
        secs += f64::from(seg.duration);
    }
    let measured = bytes_total as f64 * 8.0 / secs;
    let average = v.average_bandwidth.expect("AVERAGE-BANDWIDTH") as f64;
    assert!(
        (average / measured - 1.0).abs() < 0.25,
        "AVERAGE-BANDWIDTH {average} against {measured:.0} bit/s measured here\n{text}"
    );
    assert!(
        v.bandwidth as f64 >= average,
        "BANDWIDTH is the peak: {text}"
    );
    // A player opens the stream through it.
    if std::process::Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let out = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,width,height",
            ])
            .args(["-of", "csv=p=0"])
            .arg(format!("http://{}/video/chessboard.index.m3u8", s.addr))
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && shown.contains("h264,640,360"),
            "ffprobe through the multivariant playlist: {shown} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        assert!(std::env::var_os("CI").is_none(), "CI needs ffprobe");
        eprintln!("skipping the ffprobe check: apt-get install ffmpeg");
    }
}

#[test]
fn multivariant_playlist_of_a_ts_stream() {
    check("mpegts");
}

#[test]
fn multivariant_playlist_of_an_fmp4_stream() {
    check("fmp4");
}
