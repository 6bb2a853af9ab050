//! YUV4MPEG2 input: the stream header parsed by the `y4m` crate, frames read by us straight into
//! the pipeline's pooled I420 buffers.
//!
//! ```text
//! YUV4MPEG2 W1280 H720 F30000:1001 Ip A1:1 C420jpeg\n     stream header (at most 1024 bytes)
//! FRAME\n                                                 frame header (parameters ignored)
//! Y plane (W x H), then U and V (4:2:0: W/2 x H/2; 4:2:2: W/2 x H; 4:4:4: W x H; mono: none)
//! FRAME\n ...
//! ```
//!
//! Why not the crate's `Decoder::read_frame`: it reads each frame into its own buffer (one copy
//! more than reading into the pooled frame, 3 MB per 1080p frame), and it reports a frame cut
//! short by the end of the input as a plain end of file, so a truncated last frame would look
//! like a clean end. So the crate parses the header line (given to it on its own), and this module
//! reads the frame headers and planes itself: allocation-free once open, every error naming the
//! frame (numbered from 0, as ffmpeg's `n`).
//!
//! Accepted: 8-bit 4:2:0 in every siting (`C420jpeg`, the default when there is no `C`,
//! `C420`, `C420mpeg2`, `C420paldv`; the samples are taken as they are, siting is not resampled),
//! 4:2:2 and 4:4:4 (subsampled to 4:2:0 by [`crate::chroma`]) and mono (grey chroma). Sizes are
//! even, 16x16 to 3840x2160, like `--size`. Interlaced frames are encoded as progressive pictures.
//!
//! Waiting: a pipe is polled ([`Polled`]) in slices of [`WAIT_SLICE`], and between slices the
//! caller's [`Waiting`] is asked whether to go on; that is how the source notices a producer that
//! stopped while it waits for the next frame, and how it leaves on Ctrl-C. A regular file is
//! read without polling.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::time::Duration;

use crate::chroma::{chroma_422_to_420, chroma_444_to_420};
use crate::frame::YuvFrame;
use crate::time::FrameRate;

use super::Y4mInput;

/// Longest stream or frame header accepted, end of line included (the `y4m` crate's bound).
pub(crate) const MAX_HEADER: usize = 1024;
const MAGIC: &[u8] = b"YUV4MPEG2 ";
const FRAME: &[u8] = b"FRAME";
/// How long one wait for input lasts before the caller's [`Waiting`] is asked again.
pub(crate) const WAIT_SLICE: Duration = Duration::from_millis(100);
/// Read buffer: large reads of a plane bypass it; it serves the frame headers.
const READ_BUFFER: usize = 64 * 1024;
/// Frame sizes the encoder takes (the same bounds as `--size`).
const MIN_SIDE: usize = 16;
const MAX_LONG_SIDE: usize = 3840;
const MAX_SHORT_SIDE: usize = 2160;

/// How a stream stores its chroma.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Chroma {
    /// 4:2:0, any siting: read as it is.
    C420,
    /// 4:2:2: half width, full height.
    C422,
    /// 4:4:4: full resolution.
    C444,
    /// Luma only: chroma is grey.
    Mono,
}

/// What a stream header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Y4mFormat {
    pub(crate) width: usize,
    pub(crate) height: usize,
    /// `None` when the header has no `F` (the crate would assume 25 fps; we ask for `--fps`).
    pub(crate) rate: Option<FrameRate>,
    pub(crate) chroma: Chroma,
    /// The colour space as the header names it (`420jpeg` when it names none).
    pub(crate) colour_space: String,
    /// The `I` parameter: `p` progressive, `t`/`b` fields, `m` mixed, `?` unknown.
    pub(crate) interlace: Option<char>,
}

impl Y4mFormat {
    /// Bytes of one frame's chroma planes as stored (both planes).
    fn chroma_len(&self) -> usize {
        let (w, h) = (self.width, self.height);
        match self.chroma {
            Chroma::C420 => 2 * w.div_ceil(2) * h.div_ceil(2),
            Chroma::C422 => 2 * w.div_ceil(2) * h,
            Chroma::C444 => 2 * w * h,
            Chroma::Mono => 0,
        }
    }

    /// Bytes of one frame's planes (after its `FRAME` line).
    pub(crate) fn frame_len(&self) -> usize {
        self.width * self.height + self.chroma_len()
    }
}

/// Everything that can be wrong with a Y4M input. Frames are numbered from 0.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Y4mError {
    #[error("empty input: no YUV4MPEG2 header")]
    Empty,
    #[error("not a YUV4MPEG2 stream: it starts with {start} instead of \"YUV4MPEG2 \"")]
    NoMagic { start: String },
    #[error(
        "truncated YUV4MPEG2 header: the input ended after {len} bytes, before the header's end of line"
    )]
    TruncatedHeader { len: usize },
    #[error("YUV4MPEG2 header longer than {MAX_HEADER} bytes (no end of line)")]
    HeaderTooLong,
    #[error(
        "unsupported colour space C{name} (supported: C420jpeg, C420, C420mpeg2, C420paldv, C422, C444, Cmono, all 8-bit)"
    )]
    UnsupportedColourSpace { name: String },
    #[error("bad YUV4MPEG2 header {header}: {reason}")]
    BadHeader { header: String, reason: String },
    #[error(
        "odd frame size {width}x{height} in the YUV4MPEG2 header: H.264 4:2:0 needs even sizes"
    )]
    OddSize { width: usize, height: usize },
    #[error(
        "frame size {width}x{height} in the YUV4MPEG2 header is out of range (16x16 up to 3840x2160)"
    )]
    SizeOutOfRange { width: usize, height: usize },
    #[error("the YUV4MPEG2 stream has a header but no frame")]
    NoFrames,
    #[error("frame {frame} (counting from 0): missing FRAME marker, found {found}")]
    NoFrameMarker { frame: u64, found: String },
    #[error("frame {frame} (counting from 0): the input ended inside its FRAME header")]
    TruncatedFrameHeader { frame: u64 },
    #[error("frame {frame} (counting from 0): FRAME header longer than {MAX_HEADER} bytes")]
    FrameHeaderTooLong { frame: u64 },
    #[error(
        "frame {frame} (counting from 0) is short: the input ended after {got} of the {len} bytes the header promises"
    )]
    ShortFrame { frame: u64, got: usize, len: usize },
    #[error("reading the YUV4MPEG2 header: {0}")]
    HeaderIo(#[source] io::Error),
    #[error("reading frame {frame} (counting from 0): {source}")]
    FrameIo {
        frame: u64,
        #[source]
        source: io::Error,
    },
}

impl Y4mError {
    /// The frame the error is about, if it is about one.
    #[cfg(test)]
    pub(crate) fn frame(&self) -> Option<u64> {
        match self {
            Y4mError::NoFrameMarker { frame, .. }
            | Y4mError::TruncatedFrameHeader { frame }
            | Y4mError::FrameHeaderTooLong { frame }
            | Y4mError::ShortFrame { frame, .. }
            | Y4mError::FrameIo { frame, .. } => Some(*frame),
            _ => None,
        }
    }
}

impl From<Y4mError> for crate::error::Error {
    fn from(e: Y4mError) -> Self {
        use crate::error::{Error, ErrorKind};
        let kind = match e {
            Y4mError::HeaderIo(_) | Y4mError::FrameIo { .. } => ErrorKind::Io,
            _ => ErrorKind::InvalidArgument,
        };
        Error::new(kind, e.to_string())
    }
}

/// Asked each time no input has arrived for [`WAIT_SLICE`].
pub(crate) trait Waiting {
    /// `true` to wait on, `false` to give up the read (it returns [`Frame::Stopped`]).
    fn still_waiting(&mut self) -> bool;
}

/// Waits for as long as it takes.
pub(crate) struct Forever;

impl Waiting for Forever {
    fn still_waiting(&mut self) -> bool {
        true
    }
}

/// What a frame read gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole frame was read.
    Read,
    /// The input ended cleanly, between frames.
    End,
    /// [`Waiting::still_waiting`] said stop; the frame was not (completely) read.
    Stopped,
}

/// An input file or pipe whose reads wait at most [`WAIT_SLICE`]: a read with nothing to read
/// after that fails with [`io::ErrorKind::WouldBlock`] (nothing consumed), and the reader asks
/// its [`Waiting`]. Regular files are read directly.
pub(crate) struct Polled {
    file: File,
    poll: bool,
}

impl Polled {
    /// Opens `input` (a FIFO's open waits for its writer). Errors name the input.
    pub(crate) fn open(input: &Y4mInput) -> io::Result<Polled> {
        let file = match input {
            // Our own descriptor for fd 0, so reads go through our buffer only (std's stdin has
            // one of its own, which poll(2) cannot see into).
            Y4mInput::Stdin => File::from(io::stdin().as_fd().try_clone_to_owned()?),
            Y4mInput::Path(p) => File::open(p)?,
        };
        let poll = !file.metadata()?.is_file();
        Ok(Polled { file, poll })
    }
}

impl Read for Polled {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        if self.poll {
            let mut fds = [PollFd::new(&self.file, PollFlags::IN)];
            let slice = Timespec {
                tv_sec: 0,
                tv_nsec: WAIT_SLICE.as_nanos() as _,
            };
            match poll(&mut fds, Some(&slice)) {
                Ok(0) => return Err(io::ErrorKind::WouldBlock.into()),
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => return Err(io::ErrorKind::Interrupted.into()),
                Err(e) => return Err(e.into()),
            }
        }
        self.file.read(buf)
    }
}

/// How a header line read ended.
enum Line {
    /// Up to the end of line (not kept).
    Complete,
    /// The input ended; the line holds what came before.
    Eof,
    /// [`MAX_HEADER`] bytes without an end of line.
    TooLong,
    Stopped,
}

/// Reads a YUV4MPEG2 stream frame by frame into I420 buffers (see the module documentation).
pub(crate) struct Y4mReader<R> {
    input: BufReader<R>,
    format: Y4mFormat,
    /// The current header line; reused, never grows past [`MAX_HEADER`].
    line: Vec<u8>,
    /// 4:2:2 or 4:4:4 chroma as stored, before subsampling (empty otherwise); also where a
    /// dropped frame's planes go.
    scratch: Vec<u8>,
    next_frame: u64,
}

impl<R: Read> Y4mReader<R> {
    /// Reads and checks the stream header.
    pub(crate) fn new(input: R, waiting: &mut dyn Waiting) -> Result<Self, Y4mError> {
        let mut reader = Y4mReader {
            input: BufReader::with_capacity(READ_BUFFER, input),
            format: Y4mFormat {
                width: 0,
                height: 0,
                rate: None,
                chroma: Chroma::C420,
                colour_space: String::new(),
                interlace: None,
            },
            line: Vec::with_capacity(MAX_HEADER),
            scratch: Vec::new(),
            next_frame: 0,
        };
        let end = reader.read_line(waiting).map_err(Y4mError::HeaderIo)?;
        let line = &reader.line;
        if line.is_empty() && matches!(end, Line::Eof) {
            return Err(Y4mError::Empty);
        }
        let prefix = line.len().min(MAGIC.len());
        if line[..prefix] != MAGIC[..prefix]
            || matches!(end, Line::Complete if prefix < MAGIC.len())
        {
            return Err(Y4mError::NoMagic { start: quote(line) });
        }
        match end {
            Line::Complete => {}
            Line::Eof => return Err(Y4mError::TruncatedHeader { len: line.len() }),
            Line::TooLong => return Err(Y4mError::HeaderTooLong),
            // Only a caller that gives up can stop a header read; report it as truncated.
            Line::Stopped => return Err(Y4mError::TruncatedHeader { len: line.len() }),
        }
        reader.format = parse_header(&reader.line)?;
        let stored_chroma = match reader.format.chroma {
            Chroma::C422 | Chroma::C444 => reader.format.chroma_len(),
            Chroma::C420 | Chroma::Mono => 0,
        };
        reader.scratch = vec![0; stored_chroma.max(READ_BUFFER)];
        Ok(reader)
    }

    pub(crate) fn format(&self) -> &Y4mFormat {
        &self.format
    }

    /// The number of the next frame to be read (frames count from 0).
    pub(crate) fn next_frame(&self) -> u64 {
        self.next_frame
    }

    /// Reads the next frame into `dst` (of the header's size), converting its chroma to 4:2:0.
    pub(crate) fn read_frame(
        &mut self,
        dst: &mut YuvFrame,
        waiting: &mut dyn Waiting,
    ) -> Result<Frame, Y4mError> {
        assert!(
            dst.width == self.format.width && dst.height == self.format.height,
            "a {}x{} Y4M frame read into a {}x{} buffer",
            self.format.width,
            self.format.height,
            dst.width,
            dst.height
        );
        if let Some(end) = self.frame_header(waiting)? {
            return Ok(end);
        }
        let frame = self.next_frame;
        let len = self.format.frame_len();
        let (w, h) = (self.format.width, self.format.height);
        let mut got = 0;
        let io = |source| Y4mError::FrameIo { frame, source };
        let short = |got| Y4mError::ShortFrame { frame, got, len };
        macro_rules! fill {
            ($buf:expr) => {{
                let buf: &mut [u8] = $buf;
                let (n, stopped) = fill(&mut self.input, buf, waiting).map_err(io)?;
                got += n;
                if stopped {
                    return Ok(Frame::Stopped);
                }
                if n < buf.len() {
                    return Err(short(got));
                }
            }};
        }
        fill!(&mut dst.y);
        match self.format.chroma {
            Chroma::C420 => {
                fill!(&mut dst.u);
                fill!(&mut dst.v);
            }
            Chroma::C422 | Chroma::C444 => {
                let plane = self.format.chroma_len() / 2;
                fill!(&mut self.scratch[..2 * plane]);
                let (u, v) = self.scratch[..2 * plane].split_at(plane);
                if self.format.chroma == Chroma::C422 {
                    chroma_422_to_420(u, w.div_ceil(2), h, &mut dst.u);
                    chroma_422_to_420(v, w.div_ceil(2), h, &mut dst.v);
                } else {
                    chroma_444_to_420(u, w, h, &mut dst.u);
                    chroma_444_to_420(v, w, h, &mut dst.v);
                }
            }
            Chroma::Mono => {
                dst.u.fill(128);
                dst.v.fill(128);
            }
        }
        self.next_frame += 1;
        Ok(Frame::Read)
    }

    /// Reads the next frame and throws it away (a frame dropped because the encoder is behind).
    pub(crate) fn skip_frame(&mut self, waiting: &mut dyn Waiting) -> Result<Frame, Y4mError> {
        if let Some(end) = self.frame_header(waiting)? {
            return Ok(end);
        }
        let frame = self.next_frame;
        let len = self.format.frame_len();
        let mut got = 0;
        while got < len {
            let chunk = (len - got).min(self.scratch.len());
            let (n, stopped) = fill(&mut self.input, &mut self.scratch[..chunk], waiting)
                .map_err(|source| Y4mError::FrameIo { frame, source })?;
            got += n;
            if stopped {
                return Ok(Frame::Stopped);
            }
            if n < chunk {
                return Err(Y4mError::ShortFrame { frame, got, len });
            }
        }
        self.next_frame += 1;
        Ok(Frame::Read)
    }

    /// Reads a `FRAME` line. `Some` when there is no frame to read: the input ended cleanly (no
    /// byte of a next frame) or the caller stopped waiting.
    fn frame_header(&mut self, waiting: &mut dyn Waiting) -> Result<Option<Frame>, Y4mError> {
        let frame = self.next_frame;
        let end = self
            .read_line(waiting)
            .map_err(|source| Y4mError::FrameIo { frame, source })?;
        let line = &self.line;
        let prefix = line.len().min(FRAME.len());
        let marker_ok = line[..prefix] == FRAME[..prefix]
            && (line.len() <= FRAME.len() || line[FRAME.len()] == b' ');
        match end {
            Line::Stopped => Ok(Some(Frame::Stopped)),
            Line::Eof if line.is_empty() => Ok(Some(Frame::End)),
            _ if !marker_ok || (matches!(end, Line::Complete) && prefix < FRAME.len()) => {
                Err(Y4mError::NoFrameMarker {
                    frame,
                    found: quote(line),
                })
            }
            Line::Eof => Err(Y4mError::TruncatedFrameHeader { frame }),
            Line::TooLong => Err(Y4mError::FrameHeaderTooLong { frame }),
            Line::Complete => Ok(None),
        }
    }

    /// Reads up to an end of line into `self.line` (without it), at most [`MAX_HEADER`] bytes.
    fn read_line(&mut self, waiting: &mut dyn Waiting) -> io::Result<Line> {
        self.line.clear();
        loop {
            let buf = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !waiting.still_waiting() {
                        return Ok(Line::Stopped);
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok(Line::Eof);
            }
            // Room for the line's bytes and its end of line.
            let room = MAX_HEADER - 1 - self.line.len();
            let look = &buf[..buf.len().min(room + 1)];
            match look.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.line.extend_from_slice(&look[..i]);
                    self.input.consume(i + 1);
                    return Ok(Line::Complete);
                }
                None if look.len() > room => {
                    self.line.extend_from_slice(&look[..room]);
                    self.input.consume(room);
                    return Ok(Line::TooLong);
                }
                None => {
                    let n = look.len();
                    self.line.extend_from_slice(look);
                    self.input.consume(n);
                }
            }
        }
    }
}

/// Fills `buf` from `input`, waiting as `waiting` allows. Returns the bytes read (fewer than
/// `buf.len()` only at the end of the input) and whether the caller stopped waiting.
fn fill<R: Read>(
    input: &mut BufReader<R>,
    buf: &mut [u8],
    waiting: &mut dyn Waiting,
) -> io::Result<(usize, bool)> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !waiting.still_waiting() {
                    return Ok((got, true));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok((got, false))
}

/// The first bytes of `bytes` for a message: printable ASCII as it is, the rest escaped.
fn quote(bytes: &[u8]) -> String {
    const SHOWN: usize = 16;
    let mut s = String::from("\"");
    for &b in bytes.iter().take(SHOWN) {
        s.extend(std::ascii::escape_default(b).map(char::from));
    }
    s.push('"');
    if bytes.len() > SHOWN {
        s.push_str("...");
    }
    if bytes.is_empty() {
        s = "nothing".into();
    }
    s
}

/// The parameter of `header` (the stream header line, magic included) that starts with `tag`.
fn param(header: &[u8], tag: u8) -> Option<&[u8]> {
    header[MAGIC.len()..]
        .split(|&b| b == b' ')
        .find(|p| p.first() == Some(&tag))
        .map(|p| &p[1..])
}

/// Parses a stream header line (magic included, end of line not) with the `y4m` crate and checks
/// what this product needs from it.
pub(crate) fn parse_header(header: &[u8]) -> Result<Y4mFormat, Y4mError> {
    let shown = || quote_all(header);
    let bad = |reason: String| Y4mError::BadHeader {
        header: shown(),
        reason,
    };
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    // The crate reads the header up to its end of line from any reader.
    let mut line = Vec::with_capacity(header.len() + 1);
    line.extend_from_slice(header);
    line.push(b'\n');
    let decoder = match y4m::Decoder::new(&line[..]) {
        Ok(d) => d,
        Err(y4m::Error::UnknownColorspace) => {
            return Err(Y4mError::UnsupportedColourSpace {
                name: text(param(header, b'C').unwrap_or_default()),
            })
        }
        Err(e) => {
            // The crate says "Error parsing Int" and the like; name the parameter.
            for (tag, what) in [(b'W', "width"), (b'H', "height")] {
                match param(header, tag) {
                    None => return Err(bad(format!("no {} ({})", tag as char, what))),
                    Some(v) if text(v).parse::<usize>().map_or(true, |n| n == 0) => {
                        return Err(bad(format!("{}{} is not a {what}", tag as char, text(v))))
                    }
                    Some(_) => {}
                }
            }
            if let Some(v) = param(header, b'F') {
                return Err(bad(format!(
                    "F{} is not a frame rate (F30000:1001, F25:1)",
                    text(v)
                )));
            }
            return Err(bad(format!("{e}")));
        }
    };
    let (width, height) = (decoder.get_width(), decoder.get_height());
    let colour_space = param(header, b'C').map_or_else(|| "420jpeg".to_owned(), text);
    let chroma = match decoder.get_colorspace() {
        y4m::Colorspace::C420
        | y4m::Colorspace::C420jpeg
        | y4m::Colorspace::C420paldv
        | y4m::Colorspace::C420mpeg2 => Chroma::C420,
        y4m::Colorspace::C422 => Chroma::C422,
        y4m::Colorspace::C444 => Chroma::C444,
        y4m::Colorspace::Cmono => Chroma::Mono,
        _ => return Err(Y4mError::UnsupportedColourSpace { name: colour_space }),
    };
    let rate = match param(header, b'F') {
        None => None,
        Some(v) => {
            let r = decoder.get_framerate();
            let rate = u32::try_from(r.num)
                .ok()
                .zip(u32::try_from(r.den).ok())
                .and_then(|(n, d)| FrameRate::new(n, d).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "F{} is not a frame rate (F30000:1001, F25:1)",
                        text(v)
                    ))
                })?;
            Some(rate)
        }
    };
    if width % 2 == 1 || height % 2 == 1 {
        return Err(Y4mError::OddSize { width, height });
    }
    if width.min(height) < MIN_SIDE
        || width.max(height) > MAX_LONG_SIDE
        || width.min(height) > MAX_SHORT_SIDE
    {
        return Err(Y4mError::SizeOutOfRange { width, height });
    }
    let interlace = param(header, b'I')
        .and_then(|v| v.first())
        .map(|&b| b as char);
    Ok(Y4mFormat {
        width,
        height,
        rate,
        chroma,
        colour_space,
        interlace,
    })
}

/// A whole header line for a message (it is at most [`MAX_HEADER`] bytes).
fn quote_all(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        s.extend(std::ascii::escape_default(b).map(char::from));
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests;
