//! `mpeg2ts`'s TS packet reader over a byte slice, for `hls-testkit`'s `check::read_segment`,
//! and its PES reader over packets that reader parsed, for the `ts_mux` property.
//!
//! The reader is generic, so its code (and the `std::io` code it inlines) is compiled in the
//! crate that names the concrete type. Naming it here, behind a function that is never inlined,
//! puts that code in this crate, which the fuzz builds compile without libFuzzer's comparison
//! tracing (`fuzz/rustc-wrapper`, like `mpeg2ts` itself): it reads only bytes our muxer wrote or
//! that `read_segment` checks itself, and its traced comparisons (one `Take::read` per stuffing
//! byte) were 60 % of the `ts_mux` target's time. Nothing else changes: the same readers, the
//! same packets.

use mpeg2ts::pes::{PesPacket, PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::{ReadTsPacket, TsPacket, TsPacketReader};

/// `TsPacketReader<&[u8]>`.
pub struct SliceTsReader<'a>(TsPacketReader<&'a [u8]>);

impl<'a> SliceTsReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        SliceTsReader(TsPacketReader::new(bytes))
    }

    /// [`ReadTsPacket::read_ts_packet`]: the next packet, `None` at the end of the bytes.
    #[inline(never)]
    pub fn read_ts_packet(&mut self) -> mpeg2ts::Result<Option<TsPacket>> {
        self.0.read_ts_packet()
    }
}

/// Packets `mpeg2ts` already parsed, replayed as a [`ReadTsPacket`] source.
pub struct ParsedPackets(pub std::vec::IntoIter<TsPacket>);

impl ReadTsPacket for ParsedPackets {
    fn read_ts_packet(&mut self) -> mpeg2ts::Result<Option<TsPacket>> {
        Ok(self.0.next())
    }
}

/// `PesPacketReader<ParsedPackets>`: `mpeg2ts`'s PES reassembly over parsed packets.
pub struct ParsedPesReader(PesPacketReader<ParsedPackets>);

impl ParsedPesReader {
    pub fn new(packets: Vec<TsPacket>) -> Self {
        ParsedPesReader(PesPacketReader::new(ParsedPackets(packets.into_iter())))
    }

    /// [`ReadPesPacket::read_pes_packet`]: the next PES packet, `None` at the end.
    #[inline(never)]
    pub fn read_pes_packet(&mut self) -> mpeg2ts::Result<Option<PesPacket<Vec<u8>>>> {
        self.0.read_pes_packet()
    }
}
