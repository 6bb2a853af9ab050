//! Frame sources. [`Source`] is the seam where a camera or a raw-frame pipe can replace the
//! synthetic [`Checkerboard`] later: a source paints frame slot `n` into a caller-owned buffer
//! and says whether a timed event is visible on it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Normal};

use crate::frame::RgbFrame;
use crate::time::{Duration90k, FrameRate, StreamTime};

/// The colour of an active event: the top-left block is painted mint.
pub const MINT: [u8; 3] = [0, 255, 255];
const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];

/// Block size at the reference width of 320 px; it scales with the frame width.
pub const DEFAULT_BLOCK_SIZE: u32 = 20;
const REFERENCE_WIDTH: usize = 320;

/// What a source reports about one painted frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameInfo {
    /// The event visible on this frame, if any (1-based, in order of occurrence).
    pub event: Option<u64>,
}

/// A producer of RGB frames for consecutive frame slots.
pub trait Source: Send {
    /// Paints frame slot `n` (stream time `rate.time_of(n)`) into `frame`, which has the
    /// configured size. Slots are visited in increasing order; gaps (dropped slots) are allowed.
    fn render(&mut self, n: u64, frame: &mut RgbFrame) -> FrameInfo;
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
    noise: Option<NoiseTable>,
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
            noise,
            rng,
            cfg,
        };
        board.next_event = board.schedule_after(StreamTime::ZERO);
        Ok(board)
    }

    /// Edge of one block in pixels at this frame size.
    pub fn block(&self) -> usize {
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

impl Source for Checkerboard {
    fn render(&mut self, n: u64, frame: &mut RgbFrame) -> FrameInfo {
        debug_assert_eq!(
            (frame.width, frame.height),
            (self.cfg.width, self.cfg.height)
        );
        // Skip events that ended in dropped slots.
        while n >= self.next_event.1 {
            let end = self.cfg.rate.time_of(self.next_event.1);
            self.next_event = self.schedule_after(end);
            self.next_event_id += 1;
        }
        let offset = self.offset(n);
        self.build_rows(offset);
        let b = self.block;
        for y in 0..frame.height {
            let src = if (y / b) % 2 == 0 {
                &self.row_even
            } else {
                &self.row_odd
            };
            frame.row_mut(y).copy_from_slice(src);
        }
        let mut info = FrameInfo::default();
        if n >= self.next_event.0 {
            frame.fill_rect(0, 0, b, b, MINT);
            info.event = Some(self.next_event_id);
        }
        if let Some(noise) = &mut self.noise {
            noise.apply(frame, &mut self.rng);
        }
        info
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

    fn apply(&mut self, frame: &mut RgbFrame, rng: &mut StdRng) {
        let mask = NOISE_TABLE_LEN - 1;
        let mut i: usize = rng.random_range(0..NOISE_TABLE_LEN);
        let stride: usize = rng.random_range(0..NOISE_TABLE_LEN / 2) * 2 + 1;
        for y in 0..frame.height {
            for v in frame.row_mut(y) {
                *v = (i16::from(*v) + self.values[i]).clamp(0, 255) as u8;
                i = (i + stride) & mask;
            }
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
