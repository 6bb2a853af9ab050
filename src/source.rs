//! Frame sources. [`Source`] is the seam where a camera or a raw-frame pipe can replace the
//! synthetic [`Checkerboard`] later: a source paints frame slot `n` into a caller-owned buffer
//! and says whether a timed event is visible on it. A source that can paint I420 directly
//! ([`Source::render_i420`]) saves the pipeline a whole RGB frame and its conversion per frame.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Normal};

use crate::frame::{RgbFrame, YuvFrame};
use crate::time::{Duration90k, FrameRate, StreamTime};
use crate::yuv::rgb_row_pair_to_i420;

/// The colour of an active event: the top-left block is painted mint.
pub(crate) const MINT: [u8; 3] = [0, 255, 255];
const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];

/// Block size at the reference width of 320 px; it scales with the frame width.
pub const DEFAULT_BLOCK_SIZE: u32 = 20;
const REFERENCE_WIDTH: usize = 320;

pub use crate::frame::FrameInfo;

/// A producer of RGB frames for consecutive frame slots.
pub trait Source: Send {
    /// Paints frame slot `n` (stream time `rate.time_of(n)`) into `frame`, which has the
    /// configured size. Slots are visited in increasing order; gaps (dropped slots) are allowed.
    fn render(&mut self, n: u64, frame: &mut RgbFrame) -> FrameInfo;

    /// Paints frame slot `n` straight into an I420 `frame` of the configured size: the same
    /// picture as [`Source::render`] followed by [`crate::yuv::rgb_to_i420`], sample for sample.
    /// `None` (the default) means this source paints RGB only: then nothing was painted and no
    /// state changed, and the caller renders RGB and converts.
    fn render_i420(&mut self, n: u64, frame: &mut YuvFrame) -> Option<FrameInfo> {
        let _ = (n, frame);
        None
    }
}

/// Settings of the synthetic checkerboard.
#[derive(Clone, Debug)]
pub struct CheckerboardConfig {
    pub width: usize,
    pub height: usize,
    pub rate: FrameRate,
    /// Block edge at 320 px width; scaled by `width / 320`. default: 20
    pub block_size: u32,
    /// Time for the board to travel once across the frame. default: 10 s
    pub roll: Duration90k,
    /// Standard deviation of additive Gaussian noise in 8-bit levels; 0 disables it. default: 0
    pub noise_sigma: f32,
    /// Mean quiet time between events (exponentially distributed). default: 20 s
    pub event_mean: Duration90k,
    /// How long an event stays visible. default: 2 s
    pub event_duration: Duration90k,
    /// RNG seed; `None` seeds from the OS.
    pub seed: Option<u64>,
}

/// A black/white checkerboard that rolls horizontally, with random "events" that paint the
/// top-left block mint.
///
/// Events: after a quiet gap drawn from `Exp(1/event_mean)` the event starts on the first frame
/// slot at or after that instant and stays for `event_duration`; the next gap is counted from
/// the event's end, so two events never merge and every event has a clean first frame.
pub struct Checkerboard {
    cfg: CheckerboardConfig,
    block: usize,
    rng: StdRng,
    gaps: Exp<f64>,
    /// Slot of the next event's first frame, and its exclusive end slot.
    next_event: (u64, u64),
    next_event_id: u64,
    /// One row of each phase (even block row / odd block row), rebuilt per frame.
    row_even: Vec<u8>,
    row_odd: Vec<u8>,
    /// An even row with the event block painted (the top rows during an event); I420 path.
    row_mint: Vec<u8>,
    /// Two rows with noise added, converted as a pair; I420 path with noise only.
    noisy: [Vec<u8>; 2],
    noise: Option<NoiseTable>,
}

/// Which of the painted rows a frame row shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RowKind {
    Even,
    Odd,
    Mint,
}

impl Checkerboard {
    pub fn new(cfg: CheckerboardConfig) -> Result<Self, String> {
        if cfg.width == 0 || cfg.height == 0 {
            return Err(format!(
                "frame size {}x{} must be positive",
                cfg.width, cfg.height
            ));
        }
        if cfg.block_size == 0 {
            return Err("block size must be positive".into());
        }
        if cfg.roll == Duration90k::ZERO {
            return Err("roll time must be positive".into());
        }
        if cfg.event_duration == Duration90k::ZERO {
            return Err("event duration must be positive".into());
        }
        let mean_secs = cfg.event_mean.as_secs_f64();
        if mean_secs.is_nan() || mean_secs <= 0.0 {
            return Err("event mean must be positive".into());
        }
        let block = ((cfg.block_size as usize * cfg.width) / REFERENCE_WIDTH).max(1);
        let mut rng = match cfg.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        let gaps = Exp::new(1.0 / mean_secs).map_err(|e| format!("event mean: {e}"))?;
        let noise = if cfg.noise_sigma > 0.0 {
            Some(NoiseTable::new(&mut rng, cfg.noise_sigma)?)
        } else {
            None
        };
        let mut board = Checkerboard {
            block,
            gaps,
            next_event: (0, 0),
            next_event_id: 1,
            row_even: vec![0; cfg.width * 3],
            row_odd: vec![0; cfg.width * 3],
            row_mint: vec![0; cfg.width * 3],
            noisy: if noise.is_some() {
                [vec![0; cfg.width * 3], vec![0; cfg.width * 3]]
            } else {
                [Vec::new(), Vec::new()]
            },
            noise,
            rng,
            cfg,
        };
        board.next_event = board.schedule_after(StreamTime::ZERO);
        Ok(board)
    }

    /// Edge of one block in pixels at this frame size.
    #[cfg(test)]
    pub(crate) fn block(&self) -> usize {
        self.block
    }

    /// Draws the next quiet gap after `after` and returns the event's `[first, end)` slots.
    fn schedule_after(&mut self, after: StreamTime) -> (u64, u64) {
        let gap_secs: f64 = self.gaps.sample(&mut self.rng);
        // Clamp absurd tails (and keep at least one frame between events).
        let gap = Duration90k::from_secs_f64(gap_secs.min(1e7)).unwrap_or(Duration90k::ZERO);
        let rate = self.cfg.rate;
        let mut first = rate.first_frame_at_or_after(after + gap);
        if first == 0 {
            // Frame 0 has no "frame before it"; an event on it could not be told from the start.
            first = 1;
        }
        let end = rate.first_frame_at_or_after(rate.time_of(first) + self.cfg.event_duration);
        (first, end.max(first + 1))
    }

    /// Horizontal offset of the board at slot `n`, in pixels: one full frame width per roll.
    fn offset(&self, n: u64) -> usize {
        let t = u128::from(self.cfg.rate.time_of(n).as_u64());
        let w = self.cfg.width as u128;
        ((t * w / u128::from(self.cfg.roll.as_u64())) % w) as usize
    }

    fn build_rows(&mut self, offset: usize) {
        let b = self.block;
        let w = self.cfg.width;
        // Column x shows board column (x + w - offset) / b, so the pattern moves right.
        let shift = w - offset;
        for x in 0..w {
            let white = ((x + shift) / b) % 2 == 0;
            let (e, o) = if white {
                (WHITE, BLACK)
            } else {
                (BLACK, WHITE)
            };
            self.row_even[x * 3..x * 3 + 3].copy_from_slice(&e);
            self.row_odd[x * 3..x * 3 + 3].copy_from_slice(&o);
        }
    }
}

impl Checkerboard {
    /// What every frame starts with: skips events that ended in dropped slots, builds the rows
    /// of slot `n` and says whether an event is visible.
    fn begin(&mut self, n: u64) -> FrameInfo {
        while n >= self.next_event.1 {
            let end = self.cfg.rate.time_of(self.next_event.1);
            self.next_event = self.schedule_after(end);
            self.next_event_id += 1;
        }
        let offset = self.offset(n);
        self.build_rows(offset);
        FrameInfo {
            event: (n >= self.next_event.0).then_some(self.next_event_id),
        }
    }

    fn row_kind(&self, y: usize, event: bool) -> RowKind {
        if event && y < self.block {
            RowKind::Mint
        } else if (y / self.block) % 2 == 0 {
            RowKind::Even
        } else {
            RowKind::Odd
        }
    }

    fn row(&self, kind: RowKind) -> &[u8] {
        pick_row([&self.row_even, &self.row_odd, &self.row_mint], kind)
    }
}

fn pick_row([even, odd, mint]: [&[u8]; 3], kind: RowKind) -> &[u8] {
    match kind {
        RowKind::Even => even,
        RowKind::Odd => odd,
        RowKind::Mint => mint,
    }
}

impl Source for Checkerboard {
    fn render(&mut self, n: u64, frame: &mut RgbFrame) -> FrameInfo {
        debug_assert_eq!(
            (frame.width, frame.height),
            (self.cfg.width, self.cfg.height)
        );
        let info = self.begin(n);
        let b = self.block;
        for y in 0..frame.height {
            let src = if (y / b) % 2 == 0 {
                &self.row_even
            } else {
                &self.row_odd
            };
            frame.row_mut(y).copy_from_slice(src);
        }
        if info.event.is_some() {
            frame.fill_rect(0, 0, b, b, MINT);
        }
        if let Some(noise) = &self.noise {
            let mut walk = NoiseWalk::start(&mut self.rng);
            for y in 0..frame.height {
                walk.apply(noise, frame.row_mut(y));
            }
        }
        info
    }

    /// The board is a few distinct rows (the two phases, and the top rows with the event block),
    /// so each row pair is converted from them once and repeated while the pair repeats. With
    /// noise each row pair gets its own noisy copy of its rows, the same noise in the same order
    /// as [`Checkerboard::render`]. Both give exactly the converted RGB picture.
    fn render_i420(&mut self, n: u64, frame: &mut YuvFrame) -> Option<FrameInfo> {
        let (w, h) = (self.cfg.width, self.cfg.height);
        assert!(
            frame.width == w && frame.height == h,
            "checkerboard of {w}x{h} painted on a {}x{} frame",
            frame.width,
            frame.height
        );
        let info = self.begin(n);
        let event = info.event.is_some();
        if event {
            self.row_mint.copy_from_slice(&self.row_even);
            for px in self.row_mint[..3 * self.block.min(w)].chunks_exact_mut(3) {
                px.copy_from_slice(&MINT);
            }
        }
        let (cw, ch) = YuvFrame::chroma_size(w, h);
        let mut walk = self.noise.as_ref().map(|_| NoiseWalk::start(&mut self.rng));
        let mut prev = None;
        for j in 0..ch {
            let (r0, two_rows) = (2 * j, 2 * j + 1 < h);
            let key = (
                self.row_kind(r0, event),
                two_rows.then(|| self.row_kind(r0 + 1, event)),
            );
            let rows = if two_rows { 2 } else { 1 };
            if walk.is_none() && prev == Some(key) {
                // The same rows as the pair above (which had two rows, as this one does).
                frame
                    .y
                    .copy_within((r0 - 2) * w..(r0 - 2 + rows) * w, r0 * w);
                frame.u.copy_within((j - 1) * cw..j * cw, j * cw);
                frame.v.copy_within((j - 1) * cw..j * cw, j * cw);
            } else {
                let (y0, rest) = frame.y[r0 * w..(r0 + rows) * w].split_at_mut(w);
                let y1 = two_rows.then_some(rest);
                let (u, v) = (
                    &mut frame.u[j * cw..(j + 1) * cw],
                    &mut frame.v[j * cw..(j + 1) * cw],
                );
                match (&mut walk, &self.noise) {
                    (Some(walk), Some(noise)) => {
                        let rows = [&self.row_even[..], &self.row_odd, &self.row_mint];
                        let [n0, n1] = &mut self.noisy;
                        n0.copy_from_slice(pick_row(rows, key.0));
                        walk.apply(noise, n0);
                        if let Some(k1) = key.1 {
                            n1.copy_from_slice(pick_row(rows, k1));
                            walk.apply(noise, n1);
                            rgb_row_pair_to_i420(n0, n1, y0, y1, u, v);
                        } else {
                            rgb_row_pair_to_i420(n0, n0, y0, y1, u, v);
                        }
                    }
                    _ => {
                        let s0 = self.row(key.0);
                        let s1 = key.1.map_or(s0, |k| self.row(k));
                        rgb_row_pair_to_i420(s0, s1, y0, y1, u, v);
                    }
                }
            }
            prev = Some(key);
        }
        Some(info)
    }
}

/// Gaussian noise without a Gaussian draw per pixel: a table of pre-drawn deviations read from
/// a random start with a random odd stride each frame. Cheap, allocation-free, and visually
/// indistinguishable from fresh noise for a test pattern.
struct NoiseTable {
    values: Vec<i16>,
}

const NOISE_TABLE_LEN: usize = 1 << 16;

impl NoiseTable {
    fn new(rng: &mut StdRng, sigma: f32) -> Result<Self, String> {
        let normal = Normal::new(0.0f32, sigma).map_err(|e| format!("noise sigma: {e}"))?;
        let values = (0..NOISE_TABLE_LEN)
            .map(|_| normal.sample(rng).round().clamp(-255.0, 255.0) as i16)
            .collect();
        Ok(NoiseTable { values })
    }
}

/// One frame's walk through the noise table: a random start and a random odd stride, drawn
/// once per frame, then applied to the frame's bytes in order, row after row.
struct NoiseWalk {
    i: usize,
    stride: usize,
}

impl NoiseWalk {
    fn start(rng: &mut StdRng) -> Self {
        let i = rng.random_range(0..NOISE_TABLE_LEN);
        let stride = rng.random_range(0..NOISE_TABLE_LEN / 2) * 2 + 1;
        NoiseWalk { i, stride }
    }

    /// Adds the next `row.len()` deviations to `row`, clamped to 0..=255.
    fn apply(&mut self, table: &NoiseTable, row: &mut [u8]) {
        let mask = NOISE_TABLE_LEN - 1;
        for v in row {
            *v = (i16::from(*v) + table.values[self.i]).clamp(0, 255) as u8;
            self.i = (self.i + self.stride) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64) -> CheckerboardConfig {
        CheckerboardConfig {
            width: 320,
            height: 180,
            rate: FrameRate::new(30, 1).unwrap(),
            block_size: DEFAULT_BLOCK_SIZE,
            roll: Duration90k::from_secs(10),
            noise_sigma: 0.0,
            event_mean: Duration90k::from_secs(3),
            event_duration: Duration90k::from_secs(2),
            seed: Some(seed),
        }
    }

    fn events(board: &mut Checkerboard, frames: u64) -> Vec<(u64, u64)> {
        // (event id, first slot) for every event start.
        let mut f = RgbFrame::new(320, 180);
        let mut out = Vec::new();
        let mut prev = None;
        for n in 0..frames {
            let info = board.render(n, &mut f);
            let mint = f.pixel(0, 0) == MINT && f.pixel(19, 19) == MINT;
            assert_eq!(mint, info.event.is_some(), "slot {n}");
            if let Some(id) = info.event.filter(|_| info.event != prev) {
                out.push((id, n));
            }
            prev = info.event;
        }
        out
    }

    #[test]
    fn seed_makes_runs_reproducible() {
        let a = events(&mut Checkerboard::new(cfg(7)).unwrap(), 3000);
        let b = events(&mut Checkerboard::new(cfg(7)).unwrap(), 3000);
        let c = events(&mut Checkerboard::new(cfg(8)).unwrap(), 3000);
        assert!(
            a.len() > 5,
            "expected several events in 100 s at mean 3 s: {a:?}"
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn events_last_their_duration_and_never_merge() {
        let mut board = Checkerboard::new(cfg(3)).unwrap();
        let mut f = RgbFrame::new(320, 180);
        let mut run = 0;
        let mut runs = Vec::new();
        for n in 0..6000 {
            if board.render(n, &mut f).event.is_some() {
                run += 1;
            } else if run > 0 {
                runs.push(run);
                run = 0;
            }
        }
        assert!(runs.len() > 10);
        assert!(
            runs.iter().all(|&r| r == 60),
            "every event is 2 s = 60 frames: {runs:?}"
        );
    }

    #[test]
    fn event_gaps_are_exponential_with_the_configured_mean() {
        let mut c = cfg(11);
        c.width = 32;
        c.height = 20;
        let mut board = Checkerboard::new(c).unwrap();
        let mut gaps = Vec::new();
        let mut last_end = 0u64;
        for _ in 0..2000 {
            let (first, end) = board.next_event;
            gaps.push((first - last_end) as f64 / 30.0);
            last_end = end;
            board.next_event = board.schedule_after(board.cfg.rate.time_of(end));
        }
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        // Standard error of the mean of 2000 exponentials with mean 3 is 0.067 s.
        assert!((mean - 3.0).abs() < 0.3, "mean gap {mean}");
    }

    #[test]
    fn board_rolls_one_width_per_roll_period() {
        let mut c = cfg(1);
        c.event_mean = Duration90k::from_secs(1_000_000);
        let mut board = Checkerboard::new(c).unwrap();
        let mut f0 = RgbFrame::new(320, 180);
        let mut f = RgbFrame::new(320, 180);
        board.render(0, &mut f0);
        // After 10 s (300 frames) the board has moved 320 px = 8 blocks: same picture.
        board.render(300, &mut f);
        assert_eq!(f0, f);
        // After one frame it has moved 320/300 px: a different picture.
        board.render(301, &mut f);
        assert_ne!(f0, f);
        // Blocks of 20 px alternate along a row and a column.
        assert_ne!(f0.pixel(5, 5), f0.pixel(25, 5));
        assert_ne!(f0.pixel(5, 5), f0.pixel(5, 25));
        assert_eq!(f0.pixel(5, 5), f0.pixel(45, 5));
    }

    #[test]
    fn block_scales_with_width() {
        let mut c = cfg(1);
        c.width = 1280;
        c.height = 720;
        assert_eq!(Checkerboard::new(c).unwrap().block(), 80);
    }

    #[test]
    fn noise_changes_pixels_but_keeps_the_board() {
        let mut c = cfg(5);
        c.noise_sigma = 8.0;
        c.event_mean = Duration90k::from_secs(1_000_000);
        let mut board = Checkerboard::new(c).unwrap();
        let mut f = RgbFrame::new(320, 180);
        board.render(0, &mut f);
        // Mean over one block row of each colour: noise moves pixels, not the board.
        let mean = |x0: usize| {
            (x0..x0 + 20)
                .map(|x| f64::from(f.pixel(x, 2)[0]))
                .sum::<f64>()
                / 20.0
        };
        let first = (0..20).map(|x| f.pixel(x, 2)[0]).collect::<Vec<_>>();
        let distinct = first
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        assert!(
            distinct > 3,
            "noise varies pixels inside a block: {first:?}"
        );
        let (a, b) = (mean(0), mean(20));
        assert!(
            (a > 220.0 && b < 35.0) || (a < 35.0 && b > 220.0),
            "block means {a} {b}"
        );
    }

    /// The first sample where two I420 frames differ, if any.
    fn first_difference(a: &YuvFrame, b: &YuvFrame) -> Option<String> {
        for (name, p, q, w) in [
            ("Y", &a.y, &b.y, a.y_stride()),
            ("U", &a.u, &b.u, a.uv_stride()),
            ("V", &a.v, &b.v, a.uv_stride()),
        ] {
            if let Some(i) = p.iter().zip(q.iter()).position(|(x, y)| x != y) {
                return Some(format!(
                    "{name} at ({}, {}): {} vs {}",
                    i % w,
                    i / w,
                    p[i],
                    q[i]
                ));
            }
        }
        None
    }

    /// The I420 path paints exactly the converted RGB picture: every size parity, odd blocks,
    /// block rows that split chroma rows, events (mint) on and off, noise on and off, skipped
    /// slots.
    #[test]
    fn i420_render_is_the_converted_rgb_render() {
        // (width, height, block size at 320 px, noise sigma)
        let cases = [
            (320, 180, 20, 0.0),
            (1280, 720, 20, 0.0),
            (333, 187, 21, 0.0),
            (320, 181, 7, 0.0),
            (321, 9, 200, 0.0),
            (2, 1, 20, 0.0),
            (1, 3, 20, 0.0),
            (320, 180, 20, 8.0),
            (333, 187, 21, 30.0),
            (1920, 1080, 20, 2.0),
        ];
        for (w, h, block, sigma) in cases {
            let mut c = cfg(4);
            (c.width, c.height, c.block_size, c.noise_sigma) = (w, h, block, sigma);
            c.event_mean = Duration90k::from_secs(1);
            c.event_duration = Duration90k::from_secs(1);
            let mut rgb_board = Checkerboard::new(c.clone()).unwrap();
            let mut yuv_board = Checkerboard::new(c).unwrap();
            let mut rgb = RgbFrame::new(w, h);
            let mut want = YuvFrame::new(w, h);
            let mut got = YuvFrame::new(w, h);
            let frames = if w * h > 1_000_000 { 90 } else { 300 };
            let (mut with_event, mut without) = (0, 0);
            for n in (0..frames).filter(|n| n % 7 != 3) {
                let a = rgb_board.render(n, &mut rgb);
                crate::yuv::rgb_to_i420(&rgb, &mut want);
                let b = yuv_board.render_i420(n, &mut got).expect("paints I420");
                assert_eq!(a, b, "{w}x{h} slot {n}");
                if let Some(d) = first_difference(&want, &got) {
                    panic!("{w}x{h} block {block} noise {sigma} slot {n}: {d}");
                }
                with_event += usize::from(a.event.is_some());
                without += usize::from(a.event.is_none());
            }
            assert!(
                with_event > 0 && without > 0,
                "{w}x{h}: both kinds of frame"
            );
        }
    }

    #[test]
    #[should_panic(expected = "checkerboard of 320x180 painted on a 320x182 frame")]
    fn i420_render_checks_the_size() {
        let mut board = Checkerboard::new(cfg(1)).unwrap();
        board.render_i420(0, &mut YuvFrame::new(320, 182));
    }

    #[test]
    fn rejects_bad_config() {
        let mut c = cfg(1);
        c.block_size = 0;
        assert!(Checkerboard::new(c).is_err());
        let mut c = cfg(1);
        c.event_mean = Duration90k::ZERO;
        assert!(Checkerboard::new(c).is_err());
    }
}
