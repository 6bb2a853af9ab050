//! Plain frame buffers: packed RGB24 and planar I420 (YUV 4:2:0, 8 bit).

/// What a source reports about one painted frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameInfo {
    /// The event visible on this frame, if any (1-based, in order of occurrence).
    pub event: Option<u64>,
}

/// A packed RGB24 frame: `stride` bytes per row, 3 bytes per pixel, rows top to bottom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbFrame {
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) stride: usize,
    pub(crate) data: Vec<u8>,
}

impl RgbFrame {
    pub fn new(width: usize, height: usize) -> Self {
        let stride = width * 3;
        RgbFrame {
            width,
            height,
            stride,
            data: vec![0; stride * height],
        }
    }

    #[inline]
    #[cfg(test)]
    pub(crate) fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = y * self.stride + x * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    #[inline]
    pub(crate) fn row_mut(&mut self, y: usize) -> &mut [u8] {
        let s = y * self.stride;
        &mut self.data[s..s + self.width * 3]
    }

    /// Fills the rectangle `[x0, x1) x [y0, y1)` (clipped to the frame) with one colour.
    pub(crate) fn fill_rect(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, rgb: [u8; 3]) {
        let x1 = x1.min(self.width);
        let y1 = y1.min(self.height);
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        for y in y0..y1 {
            let row = self.row_mut(y);
            for px in row[x0 * 3..x1 * 3].chunks_exact_mut(3) {
                px.copy_from_slice(&rgb);
            }
        }
    }
}

/// A planar I420 frame: full-resolution Y, then U and V at half resolution in each direction
/// (rounded up, so odd sizes keep their last column and row).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YuvFrame {
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) y: Vec<u8>,
    pub(crate) u: Vec<u8>,
    pub(crate) v: Vec<u8>,
}

impl YuvFrame {
    pub fn new(width: usize, height: usize) -> Self {
        let (cw, ch) = Self::chroma_size(width, height);
        YuvFrame {
            width,
            height,
            y: vec![0; width * height],
            u: vec![128; cw * ch],
            v: vec![128; cw * ch],
        }
    }

    /// Width and height of each chroma plane.
    pub(crate) fn chroma_size(width: usize, height: usize) -> (usize, usize) {
        (width.div_ceil(2), height.div_ceil(2))
    }

    /// The luma plane, `width` bytes per row (for callers that read or bring pictures).
    pub fn luma(&self) -> &[u8] {
        &self.y
    }

    /// The luma plane, writable.
    pub fn luma_mut(&mut self) -> &mut [u8] {
        &mut self.y
    }

    /// The chroma planes (U, then V), [`YuvFrame::uv_stride`] bytes per row.
    pub fn chroma(&self) -> (&[u8], &[u8]) {
        (&self.u, &self.v)
    }

    /// The chroma planes, writable.
    pub fn chroma_mut(&mut self) -> (&mut [u8], &mut [u8]) {
        (&mut self.u, &mut self.v)
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn y_stride(&self) -> usize {
        self.width
    }

    pub fn uv_stride(&self) -> usize {
        self.width.div_ceil(2)
    }
}
