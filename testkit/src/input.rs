//! The byte reader that decodes fuzz inputs into operations, and its encoder for the seeds.

// ---------------------------------------------------------------------------------------------
// The byte reader and its encoder
// ---------------------------------------------------------------------------------------------

/// Reads fuzz bytes as a sequence of small values. Every read returns `None` once the bytes run
/// out, which ends the caller's operation list.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    /// Big-endian.
    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    /// Big-endian.
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }

    /// LEB128: seven bits per byte, least significant group first, high bit set on all bytes but
    /// the last. At most ten bytes are read; bits beyond 64 are dropped.
    pub fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for group in 0..10 {
            let b = self.u8()?;
            value |= u64::from(b & 0x7F) << (7 * group);
            if b & 0x80 == 0 {
                break;
            }
        }
        Some(value)
    }

    /// A zigzag-coded varint: 0, -1, 1, -2, 2... so small magnitudes of either sign are short.
    pub fn zigzag(&mut self) -> Option<i64> {
        let v = self.varint()?;
        Some((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// Up to `n` bytes (fewer when the input ends first).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Writes values the way [`Input`] reads them; builds the seed inputs.
#[derive(Clone, Debug, Default)]
pub struct InputWriter {
    bytes: Vec<u8>,
}

impl InputWriter {
    pub fn new() -> Self {
        InputWriter::default()
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes.push(v);
        self
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn varint(&mut self, mut v: u64) -> &mut Self {
        loop {
            let group = (v & 0x7F) as u8;
            v >>= 7;
            if v == 0 {
                self.bytes.push(group);
                return self;
            }
            self.bytes.push(group | 0x80);
        }
    }

    pub fn zigzag(&mut self, v: i64) -> &mut Self {
        self.varint(((v << 1) ^ (v >> 63)) as u64)
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(b);
        self
    }

    /// The bytes written so far.
    pub fn finish(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}

/// A named seed input.
pub type Seed = (&'static str, Vec<u8>);
