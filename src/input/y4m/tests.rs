//! Header handling and frame reading on hand-built YUV4MPEG2 bytes.

use super::*;

/// A stream: `header` (without its end of line), then each frame as `FRAME\n` and its bytes.
fn stream(header: &str, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut s = header.as_bytes().to_vec();
    s.push(b'\n');
    for f in frames {
        s.extend_from_slice(b"FRAME\n");
        s.extend_from_slice(f);
    }
    s
}

fn open(bytes: &[u8]) -> Result<Y4mReader<&[u8]>, Y4mError> {
    Y4mReader::new(bytes, &mut Forever)
}

fn header(h: &str) -> Result<Y4mFormat, Y4mError> {
    parse_header(h.as_bytes())
}

/// A 16x16 4:2:0 frame: luma `y0 + i` (wrapping), U all `u`, V all `v`.
fn frame_420(y0: u8, u: u8, v: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..256).map(|i| y0.wrapping_add(i as u8)).collect();
    f.extend(std::iter::repeat_n(u, 64));
    f.extend(std::iter::repeat_n(v, 64));
    f
}

#[test]
fn header_gives_size_rate_and_chroma() {
    let f = header("YUV4MPEG2 W320 H240 F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG").unwrap();
    assert_eq!((f.width, f.height), (320, 240));
    assert_eq!(f.rate, Some(FrameRate::new(30_000, 1001).unwrap()));
    assert_eq!(f.chroma, Chroma::C420);
    assert_eq!(f.colour_space, "420jpeg");
    assert_eq!(f.interlace, Some('p'));
    assert_eq!(f.frame_len(), 320 * 240 * 3 / 2);
}

#[test]
fn every_420_siting_and_no_c_tag_are_420() {
    for (c, name) in [
        ("C420", "420"),
        ("C420jpeg", "420jpeg"),
        ("C420paldv", "420paldv"),
        ("C420mpeg2", "420mpeg2"),
        ("", "420jpeg"),
    ] {
        let f = header(&format!("YUV4MPEG2 W64 H32 F25:1 {c}")).unwrap();
        assert_eq!(f.chroma, Chroma::C420, "{c:?}");
        assert_eq!(f.colour_space, name, "{c:?}");
        assert_eq!(f.frame_len(), 64 * 32 * 3 / 2);
    }
}

#[test]
fn other_chroma_formats_and_their_frame_sizes() {
    let f = header("YUV4MPEG2 W64 H32 F25:1 C422").unwrap();
    assert_eq!((f.chroma, f.frame_len()), (Chroma::C422, 64 * 32 * 2));
    let f = header("YUV4MPEG2 W64 H32 F25:1 C444").unwrap();
    assert_eq!((f.chroma, f.frame_len()), (Chroma::C444, 64 * 32 * 3));
    let f = header("YUV4MPEG2 W64 H32 F25:1 Cmono").unwrap();
    assert_eq!((f.chroma, f.frame_len()), (Chroma::Mono, 64 * 32));
}

#[test]
fn frame_rate_is_exact_and_optional() {
    let f = header("YUV4MPEG2 W64 H32 F24000:1001").unwrap();
    assert_eq!(f.rate, Some(FrameRate::new(24_000, 1001).unwrap()));
    // No F: the crate would say 25; we say we do not know.
    assert_eq!(header("YUV4MPEG2 W64 H32 C420").unwrap().rate, None);
}

#[test]
fn unsupported_colour_spaces_are_named() {
    for (c, name) in [
        ("C420p10", "420p10"),
        ("C444p12", "444p12"),
        ("Cmono12", "mono12"),
        ("C411", "411"),
        ("Cyuyv", "yuyv"),
    ] {
        let e = header(&format!("YUV4MPEG2 W64 H32 F25:1 {c}")).unwrap_err();
        match &e {
            Y4mError::UnsupportedColourSpace { name: n } => assert_eq!(n, name),
            other => panic!("{c}: {other:?}"),
        }
        assert!(e.to_string().contains(&format!("C{name}")), "{e}");
    }
}

#[test]
fn bad_sizes_and_rates_are_clear_errors() {
    let e = header("YUV4MPEG2 W321 H240 F30:1").unwrap_err();
    assert!(
        matches!(
            e,
            Y4mError::OddSize {
                width: 321,
                height: 240
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("odd frame size 321x240"), "{e}");
    assert!(matches!(
        header("YUV4MPEG2 W320 H241 F30:1").unwrap_err(),
        Y4mError::OddSize { .. }
    ));
    assert!(matches!(
        header("YUV4MPEG2 W8 H8 F30:1").unwrap_err(),
        Y4mError::SizeOutOfRange { .. }
    ));
    assert!(matches!(
        header("YUV4MPEG2 W4096 H2160 F30:1").unwrap_err(),
        Y4mError::SizeOutOfRange { .. }
    ));
    for (h, needle) in [
        ("YUV4MPEG2 H240 F30:1", "no W (width)"),
        ("YUV4MPEG2 W320 F30:1", "no H (height)"),
        ("YUV4MPEG2 Wabc H240 F30:1", "Wabc is not a width"),
        ("YUV4MPEG2 W320 H0 F30:1", "H0 is not a height"),
        ("YUV4MPEG2 W320 H240 F30", "F30 is not a frame rate"),
        ("YUV4MPEG2 W320 H240 F30:0", "F30:0 is not a frame rate"),
        ("YUV4MPEG2 W320 H240 F0:1", "F0:1 is not a frame rate"),
    ] {
        let e = header(h).unwrap_err();
        assert!(matches!(e, Y4mError::BadHeader { .. }), "{h}: {e:?}");
        assert!(e.to_string().contains(needle), "{h}: {e}");
    }
}

#[test]
fn streams_that_are_not_y4m_are_named_as_such() {
    assert!(matches!(open(b"").err(), Some(Y4mError::Empty)));
    let e = open(b"GIF89a\x01\x02 and so on\n").err().unwrap();
    assert!(matches!(e, Y4mError::NoMagic { .. }), "{e:?}");
    assert!(e.to_string().contains("\"GIF89a\\x01\\x02 and so"), "{e}");
    // Garbage without an end of line is still "not Y4M", not "header too long".
    let noise = vec![0xFFu8; 5000];
    assert!(matches!(open(&noise).err(), Some(Y4mError::NoMagic { .. })));
    // A short line that is not the magic.
    assert!(matches!(
        open(b"YUV\n").err(),
        Some(Y4mError::NoMagic { .. })
    ));
}

#[test]
fn truncated_and_overlong_headers() {
    for cut in [b"Y".as_slice(), b"YUV4MPEG2", b"YUV4MPEG2 W320 H2"] {
        let e = open(cut).err().unwrap();
        assert!(
            matches!(e, Y4mError::TruncatedHeader { len } if len == cut.len()),
            "{:?}: {e:?}",
            String::from_utf8_lossy(cut)
        );
        assert!(e.to_string().contains("truncated YUV4MPEG2 header"), "{e}");
    }
    let mut long = b"YUV4MPEG2 W16 H16 ".to_vec();
    long.extend(std::iter::repeat_n(b'X', 2000));
    long.push(b'\n');
    assert!(matches!(open(&long).err(), Some(Y4mError::HeaderTooLong)));
    // 1023 bytes and the end of line: the longest header accepted.
    let mut max = b"YUV4MPEG2 W16 H16 F30:1 X".to_vec();
    max.resize(MAX_HEADER - 1, b'x');
    max.push(b'\n');
    assert!(open(&max).is_ok());
    max.insert(30, b'x');
    assert!(matches!(open(&max).err(), Some(Y4mError::HeaderTooLong)));
}

#[test]
fn frames_are_read_exactly_then_the_end() {
    let bytes = stream(
        "YUV4MPEG2 W16 H16 F30:1 C420jpeg",
        &[frame_420(0, 100, 200), frame_420(7, 1, 2)],
    );
    let mut r = open(&bytes).unwrap();
    let mut f = YuvFrame::new(16, 16);
    assert_eq!(r.read_frame(&mut f, &mut Forever).unwrap(), Frame::Read);
    assert_eq!(f.y[..4], [0, 1, 2, 3]);
    assert_eq!(f.y[255], 255);
    assert!(f.u.iter().all(|&s| s == 100) && f.v.iter().all(|&s| s == 200));
    assert_eq!(r.next_frame(), 1);
    assert_eq!(r.read_frame(&mut f, &mut Forever).unwrap(), Frame::Read);
    assert_eq!(f.y[..2], [7, 8]);
    assert!(f.u.iter().all(|&s| s == 1) && f.v.iter().all(|&s| s == 2));
    assert_eq!(r.read_frame(&mut f, &mut Forever).unwrap(), Frame::End);
    assert_eq!(r.read_frame(&mut f, &mut Forever).unwrap(), Frame::End);
}

#[test]
fn frame_parameters_are_accepted_and_ignored() {
    let mut bytes = b"YUV4MPEG2 W16 H16 F30:1\nFRAME Ip XFOO=1\n".to_vec();
    bytes.extend(frame_420(5, 6, 7));
    let mut r = open(&bytes).unwrap();
    let mut f = YuvFrame::new(16, 16);
    assert_eq!(r.read_frame(&mut f, &mut Forever).unwrap(), Frame::Read);
    assert_eq!((f.y[0], f.u[0], f.v[0]), (5, 6, 7));
}

#[test]
fn chroma_422_and_444_become_420() {
    // 16x16 4:2:2: U rows alternate 10 and 21 (vertical mean 16 half up: (10+21+1)>>1 = 16),
    // V is a ramp by row, 2 * row (mean of rows 2j, 2j+1: 4j + 1).
    let mut f422: Vec<u8> = vec![50; 256];
    f422.extend((0..16).flat_map(|row| std::iter::repeat_n(if row % 2 == 0 { 10 } else { 21 }, 8)));
    f422.extend((0..16u8).flat_map(|row| std::iter::repeat_n(2 * row, 8)));
    let bytes = stream("YUV4MPEG2 W16 H16 F30:1 C422", &[f422]);
    let mut r = open(&bytes).unwrap();
    let mut f = YuvFrame::new(16, 16);
    assert_eq!(r.read_frame(&mut f, &mut Forever).unwrap(), Frame::Read);
    assert!(f.y.iter().all(|&s| s == 50));
    assert!(f.u.iter().all(|&s| s == 16), "{:?}", &f.u[..8]);
    for j in 0..8 {
        assert!(
            f.v[j * 8..(j + 1) * 8]
                .iter()
                .all(|&s| s == 4 * j as u8 + 1),
            "row {j}"
        );
    }
    // 16x16 4:4:4: U is a checker of 0 and 255 (every 2x2 block: (510+2)>>2 = 128), V is x.
    let mut f444: Vec<u8> = vec![60; 256];
    f444.extend((0..256).map(|i| if (i % 16 + i / 16) % 2 == 0 { 0 } else { 255 }));
    f444.extend((0..256).map(|i| (i % 16) as u8));
    let bytes = stream("YUV4MPEG2 W16 H16 F30:1 C444", &[f444]);
    let mut r = open(&bytes).unwrap();
    assert_eq!(r.read_frame(&mut f, &mut Forever).unwrap(), Frame::Read);
    assert!(f.y.iter().all(|&s| s == 60));
    assert!(f.u.iter().all(|&s| s == 128));
    // Columns 2i and 2i+1: (2i + 2i + 1) * 2 = 8i + 2, + 2, >> 2 = 2i + 1.
    for (i, &s) in f.v.iter().enumerate() {
        assert_eq!(s, 2 * (i % 8) as u8 + 1, "V at {i}");
    }
}

#[test]
fn mono_has_grey_chroma() {
    let bytes = stream("YUV4MPEG2 W16 H16 F30:1 Cmono", &[vec![77; 256]]);
    let mut r = open(&bytes).unwrap();
    let mut f = YuvFrame::new(16, 16);
    f.u.fill(3);
    f.v.fill(4);
    assert_eq!(r.read_frame(&mut f, &mut Forever).unwrap(), Frame::Read);
    assert!(f.y.iter().all(|&s| s == 77));
    assert!(f.u.iter().chain(&f.v).all(|&s| s == 128));
}

#[test]
fn a_short_frame_names_its_number_and_bytes() {
    let mut bytes = stream(
        "YUV4MPEG2 W16 H16 F30:1",
        &[frame_420(0, 1, 2), frame_420(0, 1, 2)],
    );
    bytes.extend_from_slice(b"FRAME\n");
    bytes.extend_from_slice(&[9; 300]);
    let mut r = open(&bytes).unwrap();
    let mut f = YuvFrame::new(16, 16);
    assert_eq!(r.read_frame(&mut f, &mut Forever).unwrap(), Frame::Read);
    assert_eq!(r.read_frame(&mut f, &mut Forever).unwrap(), Frame::Read);
    let e = r.read_frame(&mut f, &mut Forever).unwrap_err();
    assert!(
        matches!(
            e,
            Y4mError::ShortFrame {
                frame: 2,
                got: 300,
                len: 384
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.frame(), Some(2));
    assert_eq!(
        e.to_string(),
        "frame 2 (counting from 0) is short: the input ended after 300 of the 384 bytes the header promises"
    );
    // Short inside the chroma of a 4:4:4 frame, and with nothing after the FRAME line.
    let mut bytes = b"YUV4MPEG2 W16 H16 F30:1 C444\nFRAME\n".to_vec();
    bytes.extend_from_slice(&[1; 600]);
    let e = open(&bytes)
        .unwrap()
        .read_frame(&mut f, &mut Forever)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Y4mError::ShortFrame {
                frame: 0,
                got: 600,
                len: 768
            }
        ),
        "{e:?}"
    );
    let bytes = b"YUV4MPEG2 W16 H16 F30:1\nFRAME\n";
    let e = open(bytes)
        .unwrap()
        .read_frame(&mut f, &mut Forever)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Y4mError::ShortFrame {
                frame: 0,
                got: 0,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_missing_frame_marker_names_the_frame_and_what_was_found() {
    // Frame 1 has its planes but no FRAME line: the planes are found where the marker should be.
    let mut bytes = stream("YUV4MPEG2 W16 H16 F30:1", &[frame_420(0, 1, 2)]);
    bytes.extend(frame_420(65, 1, 2));
    let mut r = open(&bytes).unwrap();
    let mut f = YuvFrame::new(16, 16);
    assert_eq!(r.read_frame(&mut f, &mut Forever).unwrap(), Frame::Read);
    let e = r.read_frame(&mut f, &mut Forever).unwrap_err();
    assert!(
        matches!(e, Y4mError::NoFrameMarker { frame: 1, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().starts_with(
            "frame 1 (counting from 0): missing FRAME marker, found \"ABCDEFGHIJKLMNOP\"..."
        ),
        "{e}"
    );
    // A marker with something glued to it, a short line, another word.
    for bad in [&b"FRAMES\n"[..], b"FR\n", b"frame\n", b"\n"] {
        let mut bytes = b"YUV4MPEG2 W16 H16 F30:1\n".to_vec();
        bytes.extend_from_slice(bad);
        bytes.extend(frame_420(0, 0, 0));
        let e = open(&bytes)
            .unwrap()
            .read_frame(&mut f, &mut Forever)
            .unwrap_err();
        assert!(
            matches!(e, Y4mError::NoFrameMarker { frame: 0, .. }),
            "{:?}: {e:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn a_truncated_or_overlong_frame_header() {
    let mut f = YuvFrame::new(16, 16);
    for cut in [&b"F"[..], b"FRAM", b"FRAME", b"FRAME Ip"] {
        let mut bytes = b"YUV4MPEG2 W16 H16 F30:1\n".to_vec();
        bytes.extend_from_slice(cut);
        let e = open(&bytes)
            .unwrap()
            .read_frame(&mut f, &mut Forever)
            .unwrap_err();
        assert!(
            matches!(e, Y4mError::TruncatedFrameHeader { frame: 0 }),
            "{:?}: {e:?}",
            String::from_utf8_lossy(cut)
        );
    }
    let mut bytes = b"YUV4MPEG2 W16 H16 F30:1\nFRAME ".to_vec();
    bytes.extend(std::iter::repeat_n(b'X', 3000));
    let e = open(&bytes)
        .unwrap()
        .read_frame(&mut f, &mut Forever)
        .unwrap_err();
    assert!(
        matches!(e, Y4mError::FrameHeaderTooLong { frame: 0 }),
        "{e:?}"
    );
}

#[test]
fn skipped_frames_are_consumed_and_counted() {
    let bytes = stream(
        "YUV4MPEG2 W16 H16 F30:1",
        &[frame_420(1, 1, 1), frame_420(2, 2, 2), frame_420(3, 3, 3)],
    );
    let mut r = open(&bytes).unwrap();
    let mut f = YuvFrame::new(16, 16);
    assert_eq!(r.skip_frame(&mut Forever).unwrap(), Frame::Read);
    assert_eq!(r.skip_frame(&mut Forever).unwrap(), Frame::Read);
    assert_eq!(r.read_frame(&mut f, &mut Forever).unwrap(), Frame::Read);
    assert_eq!(f.y[0], 3);
    assert_eq!(r.next_frame(), 3);
    assert_eq!(r.skip_frame(&mut Forever).unwrap(), Frame::End);
    // A skipped frame that is short is an error like a read one.
    let mut bytes = stream("YUV4MPEG2 W16 H16 F30:1", &[]);
    bytes.extend_from_slice(b"FRAME\nxyz");
    let e = open(&bytes).unwrap().skip_frame(&mut Forever).unwrap_err();
    assert!(
        matches!(
            e,
            Y4mError::ShortFrame {
                frame: 0,
                got: 3,
                len: 384
            }
        ),
        "{e:?}"
    );
}

/// A pipe that has nothing to read now and then: a read fails with `WouldBlock` (as
/// [`Polled`] does after a slice) before each chunk of `chunk` bytes.
struct Stuttering {
    data: Vec<u8>,
    at: usize,
    chunk: usize,
    blocked: bool,
}

impl Read for Stuttering {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.blocked = !self.blocked;
        if self.blocked && self.at < self.data.len() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.chunk).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Counts the waits and gives up after `limit` of them.
struct Patience {
    waits: usize,
    limit: usize,
}

impl Waiting for Patience {
    fn still_waiting(&mut self) -> bool {
        self.waits += 1;
        self.waits < self.limit
    }
}

#[test]
fn waits_are_reported_and_reads_resume_where_they_were() {
    let bytes = stream(
        "YUV4MPEG2 W16 H16 F30:1",
        &[frame_420(10, 20, 30), frame_420(40, 50, 60)],
    );
    let total = bytes.len();
    let pipe = Stuttering {
        data: bytes,
        at: 0,
        chunk: 7,
        blocked: false,
    };
    let mut patience = Patience {
        waits: 0,
        limit: usize::MAX,
    };
    let mut r = Y4mReader::new(pipe, &mut patience).unwrap();
    let mut f = YuvFrame::new(16, 16);
    assert_eq!(r.read_frame(&mut f, &mut patience).unwrap(), Frame::Read);
    assert_eq!((f.y[0], f.y[255], f.u[63], f.v[0]), (10, 9, 20, 30));
    assert_eq!(r.read_frame(&mut f, &mut patience).unwrap(), Frame::Read);
    assert_eq!((f.y[0], f.u[0], f.v[63]), (40, 50, 60));
    assert_eq!(r.read_frame(&mut f, &mut patience).unwrap(), Frame::End);
    // One wait per chunk of 7 bytes, give or take the buffer's larger reads.
    assert!(
        patience.waits >= total / READ_BUFFER,
        "{} waits",
        patience.waits
    );
    assert!(patience.waits > 10, "{} waits", patience.waits);
}

#[test]
fn giving_up_a_wait_stops_the_read() {
    let bytes = stream("YUV4MPEG2 W16 H16 F30:1", &[frame_420(0, 0, 0)]);
    let pipe = Stuttering {
        data: bytes,
        at: 0,
        chunk: 100,
        blocked: false,
    };
    let mut r = Y4mReader::new(pipe, &mut Forever).unwrap();
    let mut f = YuvFrame::new(16, 16);
    // The header came in the first chunk; the frame needs more, and we give up at once.
    let mut impatient = Patience { waits: 0, limit: 1 };
    assert_eq!(
        r.read_frame(&mut f, &mut impatient).unwrap(),
        Frame::Stopped
    );
    assert_eq!(impatient.waits, 1);
}

#[test]
#[should_panic(expected = "a 16x16 Y4M frame read into a 32x16 buffer")]
fn reading_into_another_size_panics() {
    let bytes = stream("YUV4MPEG2 W16 H16 F30:1", &[frame_420(0, 0, 0)]);
    let _ = open(&bytes)
        .unwrap()
        .read_frame(&mut YuvFrame::new(32, 16), &mut Forever);
}
