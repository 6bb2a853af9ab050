//! `--segment-type fmp4` end to end: a run's files read back by independent readers (m3u8-rs,
//! Python's `m3u8`, the test kit's strict playlist reader, the `mp4-atom` box reader, ffprobe
//! and ffmpeg's decoder), and the binary serving LL-HLS parts that make up their segments byte
//! for byte, with `video/mp4` answers.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mp4_atom::{Any, Codec, Decode};

use crate::util::Serving;

/// Every top-level box of `bytes`, read by mp4-atom (strict: no unknown box, no bytes left).
fn boxes(mut bytes: &[u8]) -> Vec<Any> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        out.push(Any::decode(&mut bytes).unwrap_or_else(|e| panic!("mp4-atom: {e}")));
    }
    out
}

/// (tfdt, sample count, first sample is sync) of every fragment in a segment; asserts each
/// moof is followed by its mdat, the data offset lands on it, and the samples fill it.
fn fragments(bytes: &[u8]) -> Vec<(u64, usize, bool)> {
    let atoms = boxes(bytes);
    assert!(!atoms.is_empty() && atoms.len() % 2 == 0, "{atoms:?}");
    atoms
        .chunks(2)
        .map(|pair| {
            let [Any::Moof(moof), Any::Mdat(mdat)] = pair else {
                panic!("moof + mdat expected: {pair:?}")
            };
            let traf = &moof.traf[0];
            let trun = &traf.trun[0];
            let total: u64 = trun
                .samples
                .iter()
                .map(|e| u64::from(e.size.unwrap()))
                .sum();
            assert_eq!(total, mdat.data.len() as u64, "the samples fill the mdat");
            let first = trun.samples.get(0).unwrap();
            (
                traf.tfdt
                    .as_ref()
                    .expect("R51: tfdt")
                    .base_media_decode_time,
                trun.samples.len(),
                first.flags.unwrap() & 0x1_0000 == 0,
            )
        })
        .collect()
}

fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs {tool} (apt-get install ffmpeg)"
        );
        eprintln!("skipping the {tool} check: apt-get install ffmpeg");
    }
    ok
}

/// Python's `m3u8` reading of `text`: (segment URIs, the init segment URI of each).
fn python_m3u8(text: &str) -> Option<(Vec<String>, Vec<Option<String>>)> {
    const SCRIPT: &str = r#"
import json, sys, m3u8
p = m3u8.loads(sys.stdin.read())
print(json.dumps({"uris": [s.uri for s in p.segments],
                  "maps": [s.init_section.uri if s.init_section else None for s in p.segments]}))
"#;
    let probe = Command::new("/usr/bin/python3")
        .args(["-c", "import m3u8"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs python3-m3u8 (apt-get install python3-m3u8)"
        );
        eprintln!("skipping the Python m3u8 check: apt-get install python3-m3u8");
        return None;
    }
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python m3u8 failed on\n{text}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let strings = |k: &str| -> Vec<Option<String>> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    Some((
        strings("uris").into_iter().map(Option::unwrap).collect(),
        strings("maps"),
    ))
}

#[test]
fn r49_r51_fmp4_run_reads_back_with_ffprobe_and_m3u8_parsers() {
    // 150 frames at 30 fps in 1 s segments, without low latency: five segments of 30 frames.
    let run = crate::util::run(&[
        "--segment-type",
        "fmp4",
        "--size",
        "320x180",
        "--hls-time",
        "1",
        "--frames",
        "150",
        "--no-low-latency",
        "--seed",
        "7",
    ]);
    let dir = run.path();
    let text = std::fs::read_to_string(dir.join("chessboard.m3u8")).unwrap();
    hls_testkit::check_playlist_text(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let pl = run.playlist();
    assert_eq!(pl.version, Some(6), "R11/R49: EXT-X-MAP needs version 6");
    assert!(pl.end_list);
    let uris: Vec<String> = pl.segments.iter().map(|s| s.uri.clone()).collect();
    assert_eq!(
        uris,
        (0..5)
            .map(|i| format!("chessboard{i}.m4s"))
            .collect::<Vec<_>>()
    );
    let init_uri = pl.segments[0]
        .map
        .as_ref()
        .expect("R49: EXT-X-MAP")
        .uri
        .clone();
    assert_eq!(init_uri, "chessboard0.init.mp4");
    assert!(pl.segments[1..].iter().all(|s| s.map.is_none()), "one map");
    if let Some((py_uris, py_maps)) = python_m3u8(&text) {
        assert_eq!(py_uris, uris);
        assert!(py_maps
            .iter()
            .all(|m| m.as_deref() == Some(init_uri.as_str())));
    }

    // The init segment: ftyp + moov with the stream's own size and parameter sets.
    let init = std::fs::read(dir.join(&init_uri)).unwrap();
    let atoms = boxes(&init);
    let [Any::Ftyp(_), Any::Moov(moov)] = atoms.as_slice() else {
        panic!("{atoms:?}")
    };
    let Codec::Avc1(avc1) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
        panic!("avc1")
    };
    assert_eq!((avc1.visual.width, avc1.visual.height), (320, 180));
    let sps = &avc1.avcc.sequence_parameter_sets[0];
    let codec = hls::fmp4::avc::parse_sps(sps).unwrap().codec_string();
    assert!(codec.starts_with("avc1."), "{codec}");

    // Every segment: fragments with a tfdt that continues the previous one (R1 for fMP4).
    let mut all = init.clone();
    let mut next = 0u64;
    for (i, uri) in uris.iter().enumerate() {
        let bytes = std::fs::read(dir.join(uri)).unwrap();
        let frags = fragments(&bytes);
        assert_eq!(frags.len(), 1, "{uri}: one fragment without parts");
        let (tfdt, samples, sync) = frags[0];
        if i > 0 {
            assert_eq!(tfdt, next, "{uri} continues the previous segment");
        }
        assert_eq!(samples, 30, "{uri}");
        assert!(sync, "{uri} opens with a sync sample");
        next = tfdt + 30 * 3000;
        all.extend_from_slice(&bytes);
    }
    if !have("ffprobe") || !have("ffmpeg") {
        return;
    }
    // ffprobe: every frame of init + segments, its time and its key flag.
    let joined = dir.join("joined.mp4");
    std::fs::write(&joined, &all).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=codec_name,width,height:frame=pts_time,key_frame"])
        .args(["-of", "json"])
        .arg(&joined)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["streams"][0]["codec_name"], "h264");
    assert_eq!(v["streams"][0]["width"], 320);
    assert_eq!(v["streams"][0]["height"], 180);
    let frames = v["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 150, "ffprobe decodes every frame");
    let first: f64 = frames[0]["pts_time"].as_str().unwrap().parse().unwrap();
    for (n, f) in frames.iter().enumerate() {
        let t: f64 = f["pts_time"].as_str().unwrap().parse().unwrap();
        assert!(
            (t - first - n as f64 / 30.0).abs() < 1e-4,
            "frame {n} at {t} s, not {first} + n/30"
        );
        assert_eq!(f["key_frame"].as_i64() == Some(1), n % 30 == 0, "frame {n}");
    }
    // ffmpeg decodes them all without an error.
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&joined)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "ffmpeg decode errors: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(&joined)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "150");
}

#[test]
fn fmp4_ll_parts_are_served_as_mp4_and_make_up_their_segments() {
    let s = Serving::start(&[
        "--segment-type",
        "fmp4",
        "--size",
        "320x180",
        "--hls-time",
        "1",
        "--duration",
        "5",
        "--linger",
        "30",
    ]);
    let deadline = Instant::now() + Duration::from_secs(40);
    let text = loop {
        let (status, body) = s.get("/video/chessboard.m3u8");
        if status == 200 {
            let text = String::from_utf8(body).unwrap();
            if text.contains("#EXT-X-ENDLIST") {
                break text;
            }
        }
        assert!(Instant::now() < deadline, "the stream did not end");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(text.contains("#EXT-X-VERSION:6\n"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let map_at = lines
        .iter()
        .position(|l| *l == "#EXT-X-MAP:URI=\"chessboard0.init.mp4\"")
        .unwrap_or_else(|| panic!("{text}"));
    let first_part = lines
        .iter()
        .position(|l| l.starts_with("#EXT-X-PART:"))
        .unwrap();
    assert!(map_at < first_part, "R41/R49: MAP before the first part");
    let (status, ctype, init) = s.get_header("/video/chessboard0.init.mp4", "content-type");
    assert_eq!((status, ctype.as_deref()), (200, Some("video/mp4")));
    assert!(matches!(
        boxes(&init).as_slice(),
        [Any::Ftyp(_), Any::Moov(_)]
    ));
    assert_eq!(s.get("/video/chessboard0.ts").0, 404, "no TS names in fMP4");
    assert_eq!(s.get("/video/chessboard.init.mp4").0, 404);

    // Each segment's parts (as listed) are fragments; end to end they are the segment.
    let pl = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
    let mut parts: Vec<(String, bool)> = Vec::new();
    let mut checked = 0;
    for line in &lines {
        if let Some(attrs) = line.strip_prefix("#EXT-X-PART:") {
            let uri = attrs
                .split("URI=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            parts.push((uri.to_owned(), attrs.contains("INDEPENDENT=YES")));
        } else if line.ends_with(".m4s") && !line.starts_with('#') {
            if !parts.is_empty() {
                let (status, ctype, segment) =
                    s.get_header(&format!("/video/{line}"), "content-type");
                assert_eq!((status, ctype.as_deref()), (200, Some("video/mp4")));
                let mut joined = Vec::new();
                for (k, (uri, independent)) in parts.iter().enumerate() {
                    let (status, ctype, bytes) =
                        s.get_header(&format!("/video/{uri}"), "content-type");
                    assert_eq!(
                        (status, ctype.as_deref()),
                        (200, Some("video/mp4")),
                        "{uri}"
                    );
                    let frags = fragments(&bytes);
                    assert_eq!(frags.len(), 1, "{uri}: a part is one fragment");
                    assert_eq!(
                        *independent, frags[0].2,
                        "{uri}: INDEPENDENT iff it opens with an IDR"
                    );
                    assert_eq!(*independent, k == 0, "{uri}");
                    joined.extend_from_slice(&bytes);
                }
                assert_eq!(joined, segment, "{line} is its parts end to end");
                checked += 1;
            }
            parts.clear();
        }
    }
    assert!(checked >= 2, "{text}");
    assert!(pl.segments.iter().all(|s| s.uri.ends_with(".m4s")));
}

/// R6, R49, R50 across a restart: the second run gets its own init segment, named by
/// EXT-X-MAP after an EXT-X-DISCONTINUITY; the first run's init stays while its segments are
/// listed, and both read back with mp4-atom; the fragments' tfdt goes on with the stream clock.
#[test]
fn r49_r50_restart_gets_a_new_init_after_a_discontinuity() {
    let dir = tempfile::tempdir().unwrap();
    let run_once = || {
        let cfg = crate::util::config(
            dir.path(),
            &[
                "--segment-type",
                "fmp4",
                "--size",
                "64x64",
                "--hls-time",
                "1",
                "--list-size",
                "5",
                "--frames",
                "90",
            ],
        );
        crate::util::pipeline(
            &cfg,
            std::sync::Arc::new(hls::state::Shared::default()),
            std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        )
        .unwrap()
    };
    run_once();
    run_once();
    let text = std::fs::read_to_string(dir.path().join("chessboard.m3u8")).unwrap();
    hls_testkit::check_playlist_text(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let pl = crate::util::read_playlist(dir.path(), "chessboard");
    assert_eq!(pl.version, Some(6));
    let uris: Vec<&str> = pl.segments.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "chessboard1.m4s",
            "chessboard2.m4s",
            "chessboard3.m4s",
            "chessboard4.m4s",
            "chessboard5.m4s"
        ]
    );
    let maps: Vec<(usize, &str)> = pl
        .segments
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map.as_ref().map(|m| (i, m.uri.as_str())))
        .collect();
    assert_eq!(
        maps,
        [(0, "chessboard0.init.mp4"), (2, "chessboard3.init.mp4")],
        "{text}"
    );
    assert!(
        pl.segments[2].discontinuity,
        "R6: the restart is marked\n{text}"
    );
    let mut last_tfdt = 0;
    for (i, s) in pl.segments.iter().enumerate() {
        let bytes = std::fs::read(dir.path().join(&s.uri)).unwrap();
        let frags = fragments(&bytes);
        assert!(frags[0].0 > last_tfdt || i == 0, "tfdt goes on: {frags:?}");
        last_tfdt = frags[0].0;
    }
    for init in ["chessboard0.init.mp4", "chessboard3.init.mp4"] {
        let bytes = std::fs::read(dir.path().join(init)).unwrap();
        assert!(matches!(
            boxes(&bytes).as_slice(),
            [Any::Ftyp(_), Any::Moov(_)]
        ));
    }
}
