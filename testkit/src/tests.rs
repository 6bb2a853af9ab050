use super::*;

#[test]
fn seeds_fit_the_budgets() {
    // The work budgets end long fuzz inputs early; no hand-written scenario may be cut.
    for (name, seed) in ts_mux_seeds() {
        assert!(
            !ts_mux_run(&seed),
            "ts_mux seed {name} exceeds MUX_MAX_OUTPUT"
        );
    }
    for (name, seed) in playlist_window_seeds() {
        assert!(
            !playlist_window_run(&seed),
            "playlist_window seed {name} exceeds PL_MAX_RENDERED"
        );
    }
}

#[test]
fn budgets_end_long_inputs() {
    // 600 steps of 59 s: ~600 PCR-only packets each, far past MUX_MAX_OUTPUT.
    let mut w = InputWriter::new();
    w.u8(MUX_START_PIPELINE);
    for _ in 0..600 {
        w.u8(MUX_STEP_VARINT | MUX_KEYFRAME)
            .varint(59 * TICKS_PER_SEC);
        w.u8(1).u8(0x65);
    }
    assert!(ts_mux_run(&w.finish()));
    // 1 ms segments at a 7 s target: the window grows to thousands of lines.
    let mut w = InputWriter::new();
    w.u8(0x70 | 5).varint(0).u8(0).u32(0);
    for _ in 0..PL_MAX_OPS {
        w.u8(PL_PUSH | PL_DUR_MS).u16(1).u8(0);
    }
    assert!(playlist_window_run(&w.finish()));
}

#[test]
fn ts_mux_checks_catch_a_wrong_pcr_and_a_wrong_random_access_flag() {
    // The PCR and random_access_indicator of each AU are checked on read_segment's report
    // (no separate mpeg2ts pass per file): a seeded error in either is still caught.
    let seeds: HashMap<&str, Vec<u8>> = ts_mux_seeds().into_iter().collect();
    let (run, resume) = ts_mux_output(&seeds["steady_gop30"]);
    verify_ts_output(&run.segments, resume.as_ref(), &run.mux).expect("the muxer's output");
    // The second AU of the first segment (not a keyframe) starts a video packet with an
    // adaptation field carrying a PCR: flags at byte 5, PCR extension ends at byte 11.
    let seg = &run.segments[0];
    let au_packets: Vec<usize> = seg
        .bytes
        .chunks_exact(PACKET_SIZE)
        .enumerate()
        .filter(|(_, p)| p[1] & 0x40 != 0 && u16::from_be_bytes([p[1] & 0x1F, p[2]]) == VIDEO_PID)
        .map(|(i, _)| i * PACKET_SIZE)
        .collect();
    let at = au_packets[1];
    assert_eq!(seg.bytes[at + 5] & 0x50, 0x10, "PCR, no random access");
    let broken = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut segments = run.segments.clone();
        edit(&mut segments[0].bytes);
        verify_ts_output(&segments, resume.as_ref(), &run.mux).expect_err("a seeded error")
    };
    let e = broken(&|b| b[at + 11] ^= 0x01); // PCR one 27 MHz tick off
    assert!(e.contains("PCR"), "{e}");
    let e = broken(&|b| b[at + 5] ^= 0x40); // random_access_indicator on a P-frame
    assert!(e.contains("keyframe"), "{e}");
}

/// 1 ms segments at a 7 s target: thousands of renders, each dropping one segment.
fn one_ms_segments() -> Vec<u8> {
    let mut w = InputWriter::new();
    w.u8(0x70 | 5).varint(0).u8(0).u32(0);
    for _ in 0..PL_MAX_OPS {
        w.u8(PL_PUSH | PL_DUR_MS).u16(1).u8(0);
    }
    w.finish()
}

/// 1 s segments at a 1 s target, three listed: every push drops a segment, so most
/// segments are listed only by renders m3u8-rs does not read on the PL_M3U8_EVERY clock.
fn short_window() -> Vec<u8> {
    let mut w = InputWriter::new();
    pl_header(&mut w, 3, 1, 0, 0);
    pl_push_target(&mut w, 60);
    w.finish()
}

#[test]
fn m3u8_rs_reads_every_segment_and_daterange_state() {
    // m3u8-rs reads a sample of the renders (PlaylistRun::m3u8_due); every segment URI and
    // every DATERANGE list some render showed must be in a render it read.
    let mut inputs: Vec<(&str, Vec<u8>)> = playlist_window_seeds();
    inputs.push(("one_ms_segments", one_ms_segments()));
    inputs.push(("short_window", short_window()));
    for (name, input) in inputs {
        M3U8_SEEN.with_borrow_mut(|s| *s = Seen::default());
        playlist_window_run(&input);
        let (listed, read) = M3U8_SEEN.take();
        let missed: Vec<&String> = listed.difference(&read).collect();
        assert!(missed.is_empty(), "{name}: m3u8-rs never read {missed:?}");
        assert!(
            listed.len() > 1 || name.starts_with("config"),
            "{name}: {listed:?}"
        );
    }
    // A disagreement about any one segment, even one listed only between samples, fails.
    M3U8_SEEN.with_borrow_mut(|s| *s = Seen::default());
    playlist_window_run(&short_window());
    let (listed, _) = M3U8_SEEN.take();
    let uris: Vec<&String> = listed.iter().filter(|u| u.ends_with(".ts")).collect();
    assert!(uris.len() >= 60, "{uris:?}");
    for uri in uris {
        M3U8_POISON.with_borrow_mut(|p| *p = Some(uri.clone()));
        let caught = std::panic::catch_unwind(|| playlist_window_run(&short_window()));
        M3U8_POISON.with_borrow_mut(|p| *p = None);
        assert!(caught.is_err(), "a poisoned {uri} passed");
    }
}

#[test]
fn input_reads_what_input_writer_writes() {
    let values = [0, 1, 127, 128, 300, 1 << 35, u64::MAX];
    let mut w = InputWriter::new();
    w.u8(7).u16(0xBEEF).u32(0xDEAD_BEEF);
    for v in values {
        w.varint(v);
    }
    for v in [0, -1, 1, i64::MIN, i64::MAX] {
        w.zigzag(v);
    }
    w.bytes(b"abc");
    let bytes = w.finish();
    let mut r = Input::new(&bytes);
    assert_eq!(
        (r.u8(), r.u16(), r.u32()),
        (Some(7), Some(0xBEEF), Some(0xDEAD_BEEF))
    );
    for v in values {
        assert_eq!(r.varint(), Some(v));
    }
    for v in [0, -1, 1, i64::MIN, i64::MAX] {
        assert_eq!(r.zigzag(), Some(v));
    }
    assert_eq!(r.bytes(10), b"abc");
    assert!(r.is_empty());
    assert_eq!((r.u8(), r.varint()), (None, None));
}

#[test]
fn varint_tolerates_overlong_and_truncated_input() {
    // Eleven continuation bytes: ten are read, the value keeps 64 bits.
    let mut r = Input::new(&[0xFF; 11]);
    assert_eq!(r.varint(), Some(u64::MAX));
    assert_eq!(r.u8(), Some(0xFF));
    let mut r = Input::new(&[0x80, 0x80]);
    assert_eq!(r.varint(), None);
}

#[test]
fn demux_seeds_reach_what_they_are_named_after() {
    let seeds: HashMap<&str, Vec<u8>> = ts_demux_seeds().into_iter().collect();
    let read = |name: &str| {
        let (bytes, prev) = demux_input(&seeds[name]);
        read_segment(&bytes, prev.as_ref())
    };
    let report = read("valid_segment").expect("valid");
    assert_eq!(report.aus.len(), 5);
    assert!(
        report.pcr_only_packets > 0,
        "the 250 ms step needs PCR-only packets"
    );
    let report = read("b_frames").expect("valid");
    assert!(report.aus[..2]
        .iter()
        .all(|a| a.dts == Some(a.pts - 2 * FRAME_TICKS)));
    let err = |name: &str| read(name).expect_err(name);
    assert!(err("pat_other_program_crc_fixed").contains("PAT must list one program"));
    assert!(err("pmt_hevc_stream_crc_fixed").contains("PMT must describe"));
    assert!(err("pmt_overlong_program_info").contains("program_info_length"));
    assert!(err("valid_segment_with_prev_cc").contains("previous segment"));
}

#[test]
fn crc32_mpeg2_matches_the_standard_check_value() {
    // The CRC-32/MPEG-2 catalogue check value of "123456789".
    assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
}

#[test]
fn strict_playlist_reader_catches_each_violation() {
    let good = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
                #EXT-X-INDEPENDENT-SEGMENTS\n\
                #EXT-X-DATERANGE:ID=\"a\",START-DATE=\"2026-11-25T12:00:00.000Z\",DURATION=0.000,X-COM-HLSSTREAMER-LABEL=\"a b\"\n\
                #EXT-X-PROGRAM-DATE-TIME:2026-11-25T12:00:00.000Z\n#EXTINF:2.000,\nchessboard0.ts\n";
    let parsed = check_playlist_text(good).expect("a valid playlist");
    assert_eq!(parsed.segments.len(), 1);
    assert_eq!(parsed.date_ranges[0].label.as_deref(), Some("a b"));
    let cases = [
        ("\u{feff}", "R9"),                                         // BOM
        ("#EXT-X-VERSION:3 \n", "R9"),                              // stray whitespace
        ("#EXTINF:2.000,\r\n", "R9"),                               // CR
        ("#EXTINF:2.500,\n", "R13"),                                // above the target
        ("#EXT-X-VERSION:3\n", "R11"),                              // repeated
        ("#EXT-X-PLAYLIST-TYPE:EVENT\n", "R17"),                    // live with a type
        ("#EXT-X-DISCONTINUITY\n", "R16"),                          // without the sequence
        ("#EXT-X-DATERANGE:ID=\"a\"b\"\n", "R37"),                  // quote inside quotes
        ("#EXT-X-DATERANGE:id=\"a\"\n", "R37"),                     // lower-case name
        ("#EXT-X-DATERANGE:ID=\"b\",ID=\"c\"\n", "R37"),            // duplicate attribute
        ("#EXT-X-DATERANGE:ID=\"b\",DURATION=-1.000\n", "R35"),     // negative
        ("#EXT-X-PROGRAM-DATE-TIME:2026-11-25T12:00:00Z\n", "R32"), // no ms
    ];
    let insert_at = good.find("#EXT-X-PROGRAM-DATE-TIME").expect("a PDT line");
    for (bad, rule) in cases {
        let text = if bad == "\u{feff}" {
            format!("{bad}{good}")
        } else if bad.starts_with("#EXTINF") {
            good.replacen("#EXTINF:2.000,\n", bad, 1)
        } else {
            format!("{}{bad}{}", &good[..insert_at], &good[insert_at..])
        };
        let err = check_playlist_text(&text).expect_err(bad);
        assert!(err.contains(rule), "{bad:?}: {err}");
    }
}

#[test]
fn ts_checks_catch_a_skipped_counter_and_a_foreign_reader_result() {
    let mut params = InputWriter::new();
    sample_params(&mut params, &[(500, 0), (500, 0)]);
    let seg = sample_segment(&mut Input::new(&params.finish()));
    check_read_segment(&seg, None).expect("a valid segment passes");
    // A segment the reader accepts but whose last_cc is then checked against the bytes:
    // flipping a counter must make read_segment refuse (and the check stays quiet).
    let mut bad = seg.clone();
    bad[3 * PACKET_SIZE + 3] ^= 0x01;
    assert!(read_segment(&bad, None).is_err());
    check_read_segment(&bad, None).expect("a refusal that names its packet is fine");
    // The error-context check itself fails on a made-up message.
    assert!(check_error_context(&seg, "packet 99999 (byte 0), PID 0x0100: x").is_err());
}

/// xorshift64*, for the deterministic mutations below.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[test]
fn incremental_strict_reader_agrees_with_the_full_one() {
    // Over the committed corpus and mutations of the seeds, check_render holds every render's
    // incremental reading against check_playlist_text (cross_check_strict_reader).
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/corpus/playlist_window"
    );
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .expect("the corpus")
        .map(|e| std::fs::read(e.expect("an entry").path()).expect("a corpus file"))
        .collect();
    let mut rng = 0x5eed_u64;
    for (_, seed) in playlist_window_seeds() {
        for _ in 0..30 {
            let mut v = seed.clone();
            for _ in 0..1 + xorshift(&mut rng) % 4 {
                let at = (xorshift(&mut rng) as usize) % (v.len() + 1);
                match xorshift(&mut rng) % 3 {
                    0 if at < v.len() => v[at] ^= 1 << (xorshift(&mut rng) % 8),
                    1 => v.insert(at, xorshift(&mut rng) as u8),
                    _ if at < v.len() => {
                        v.remove(at);
                    }
                    _ => v.push(xorshift(&mut rng) as u8),
                }
            }
            inputs.push(v);
        }
    }
    inputs.push(one_ms_segments());
    inputs.push(short_window());
    REUSED_SEGMENTS.set(0);
    for input in &inputs {
        playlist_window_run(input);
    }
    assert!(REUSED_SEGMENTS.get() > 10_000, "{}", REUSED_SEGMENTS.get());

    // Broken texts after a valid one: the same error (or reading) as the full reader.
    let cfg = PlaylistConfig {
        name: StreamName::new("chessboard").expect("a valid name"),
        target_duration_secs: 2,
        list_size: 3,
        start_sequence: 7,
        start_discontinuity_sequence: 1,
    };
    let mut pl = Playlist::new(cfg).expect("a valid config");
    let t0 = WallClock::from_unix_millis(1_795_608_000_000);
    let mut renders = vec![pl.render()];
    let mut at = t0;
    for i in 0..12u64 {
        let d = Duration90k(if i % 3 == 0 { 90_000 } else { 180_000 });
        pl.push(d, at, i == 5).expect("a valid push");
        at = at + d;
        if i == 4 {
            let range = DateRange {
                id: "ad".into(),
                start: at,
                duration: Duration90k(90_000),
                label: "a \"b\"".into(),
            };
            pl.add_date_range(range).expect("a valid range");
        }
        renders.push(pl.render());
    }
    pl.end();
    renders.push(pl.render());
    let edits: [&dyn Fn(&str) -> String; 8] = [
        &|t| t.replacen("#EXT-X-DISCONTINUITY-SEQUENCE:1\n", "", 1),
        &|t| {
            t.replacen(
                "#EXT-X-INDEPENDENT-SEGMENTS\n",
                "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-ENDLIST\n",
                1,
            )
        },
        &|t| {
            t.replacen("#EXTINF", "#EXT-X-DATERANGE:ID=\"z\",START-DATE=\"2026-11-25T12:00:00.000Z\",DURATION=1.000\n#EXTINF", 2)
        },
        &|t| t.replacen(".ts\n", ".ts\n#EXT-X-VERSION:3\n", 1),
        &|t| {
            t.replacen(
                ".ts\n#EXT-X-PROGRAM-DATE-TIME",
                ".ts\n\n#EXT-X-PROGRAM-DATE-TIME",
                1,
            )
        },
        &|t| t.replacen("#EXTINF:2.000,\n", "", 1),
        &|t| t.replacen("#EXT-X-TARGETDURATION:2", "#EXT-X-TARGETDURATION:1", 1),
        &|t| format!("{t}#EXT-X-DISCONTINUITY\n"),
    ];
    let mut checked = 0;
    REUSED_SEGMENTS.set(0);
    for pair in renders.windows(2) {
        let prev = check_playlist_text_after(&pair[0], None).expect("a valid render");
        let mut texts: Vec<String> = edits.iter().map(|e| e(&pair[1])).collect();
        for _ in 0..40 {
            let mut b = pair[1].clone().into_bytes();
            let i = (xorshift(&mut rng) as usize) % b.len();
            b[i] = b"\n\r \"#:,.0123456789AZaz\x7f"[(xorshift(&mut rng) % 23) as usize];
            texts.push(String::from_utf8(b).expect("ASCII"));
        }
        texts.push(pair[1].clone());
        for text in &texts {
            let incremental =
                check_playlist_text_after(text, Some((&pair[0], &prev))).map(|r| r.parsed);
            assert_eq!(
                incremental,
                check_playlist_text(text),
                "after:\n{}\n{text}",
                pair[0]
            );
            checked += 1;
        }
    }
    assert!(checked > 500);
    assert!(REUSED_SEGMENTS.get() > 200, "{}", REUSED_SEGMENTS.get());
}

#[test]
fn push_repeated_writes_the_cycled_pattern() {
    // The MUX_BIG access units: the same bytes as pattern.iter().cycle().take(len).
    for pattern_len in 1..=5u8 {
        let pattern: Vec<u8> = (1..=pattern_len).collect();
        for len in 0..40 {
            let mut out = vec![0xAA];
            push_repeated(&mut out, &pattern, len);
            let want: Vec<u8> = std::iter::once(0xAA)
                .chain(pattern.iter().copied().cycle().take(len))
                .collect();
            assert_eq!(out, want, "pattern {pattern:?}, {len} bytes");
        }
    }
}
