//! Call recording as a streaming stereo WAV (PROTOCOLS.md §3 `GET /v1/calls/{id}/recording`):
//! RIFF/WAVE, PCM 16-bit little-endian, 8 kHz, left = caller, right = agent.
//!
//! Owns: the 44-byte canonical header, interleaving, patching the sizes at the end.
//! Must not: open files or know paths (it takes any `Write + Seek`), read a clock, or panic for
//! any input. The only media file allowed to touch `std::io`.
//!
//! The header is written up front with zero sizes (a reader of an unfinished file sees an empty
//! but valid WAV); `finish` seeks back and writes the real sizes. RIFF sizes are 32-bit, so the
//! data is capped at [`MAX_DATA_LEN`] (≈ 37 h of 8 kHz stereo); writing past it is an error.

use std::io::{self, Seek, SeekFrom, Write};

pub const HEADER_LEN: usize = 44;
pub const RATE: u32 = 8000;
pub const CHANNELS: u16 = 2;
/// Largest data chunk whose RIFF size (36 + data) still fits in 32 bits, rounded down to whole
/// stereo frames.
pub const MAX_DATA_LEN: u32 = (u32::MAX - 36) / 4 * 4;

/// The canonical 44-byte PCM16 header for `data_len` bytes of sample data.
pub fn encode_header(channels: u16, rate: u32, data_len: u32) -> [u8; HEADER_LEN] {
    let block_align = channels.saturating_mul(2);
    let byte_rate = rate.saturating_mul(u32::from(block_align));
    let mut h = [0u8; HEADER_LEN];
    let fields: [(usize, &[u8]); 13] = [
        (0, b"RIFF"),
        (4, &data_len.saturating_add(36).to_le_bytes()),
        (8, b"WAVE"),
        (12, b"fmt "),
        (16, &16u32.to_le_bytes()),
        (20, &1u16.to_le_bytes()), // PCM
        (22, &channels.to_le_bytes()),
        (24, &rate.to_le_bytes()),
        (28, &byte_rate.to_le_bytes()),
        (32, &block_align.to_le_bytes()),
        (34, &16u16.to_le_bytes()),
        (36, b"data"),
        (40, &data_len.to_le_bytes()),
    ];
    for (at, bytes) in fields {
        if let Some(dst) = h.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
    h
}

pub struct StereoWavWriter<W: Write + Seek> {
    inner: W,
    /// Where the header starts in `inner` (the writer need not be at 0).
    base: u64,
    data_len: u32,
    /// Reused interleave buffer: grows to the largest batch once, then no allocation.
    scratch: Vec<u8>,
}

impl<W: Write + Seek> StereoWavWriter<W> {
    /// Writes a provisional header at the writer's current position.
    pub fn new(mut inner: W) -> io::Result<Self> {
        let base = inner.stream_position()?;
        inner.write_all(&encode_header(CHANNELS, RATE, 0))?;
        Ok(Self {
            inner,
            base,
            data_len: 0,
            scratch: Vec::new(),
        })
    }

    /// Appends frames; the shorter side is padded with silence to the longer one's length.
    /// After an I/O error the file's tail is unknown: finish or drop the writer, do not go on.
    pub fn write_frames(&mut self, left: &[i16], right: &[i16]) -> io::Result<()> {
        let frames = left.len().max(right.len());
        let bytes = u32::try_from(frames.saturating_mul(4)).unwrap_or(u32::MAX);
        if self
            .data_len
            .checked_add(bytes)
            .is_none_or(|n| n > MAX_DATA_LEN)
        {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "WAV data would exceed the 32-bit RIFF size",
            ));
        }
        self.scratch.clear();
        self.scratch.reserve(frames * 4);
        let mut l = left.iter().copied();
        let mut r = right.iter().copied();
        for _ in 0..frames {
            self.scratch
                .extend_from_slice(&l.next().unwrap_or(0).to_le_bytes());
            self.scratch
                .extend_from_slice(&r.next().unwrap_or(0).to_le_bytes());
        }
        self.inner.write_all(&self.scratch)?;
        self.data_len += bytes;
        Ok(())
    }

    /// Bytes of sample data written so far.
    pub fn data_len(&self) -> u32 {
        self.data_len
    }

    /// Patches the RIFF and data sizes, leaves the writer positioned after the data, flushes
    /// and returns it.
    pub fn finish(mut self) -> io::Result<W> {
        let end = self
            .base
            .saturating_add(HEADER_LEN as u64 + u64::from(self.data_len));
        let header = encode_header(CHANNELS, RATE, self.data_len);
        self.inner.seek(SeekFrom::Start(self.base))?;
        self.inner.write_all(&header)?;
        self.inner.seek(SeekFrom::Start(end))?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }
    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    #[test]
    fn header_fields() {
        let h = encode_header(2, 8000, 1000);
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(u32_at(&h, 4), 1036);
        assert_eq!(&h[8..16], b"WAVEfmt ");
        assert_eq!(u32_at(&h, 16), 16);
        assert_eq!(u16_at(&h, 20), 1);
        assert_eq!(u16_at(&h, 22), 2);
        assert_eq!(u32_at(&h, 24), 8000);
        assert_eq!(u32_at(&h, 28), 32_000);
        assert_eq!(u16_at(&h, 32), 4);
        assert_eq!(u16_at(&h, 34), 16);
        assert_eq!(&h[36..40], b"data");
        assert_eq!(u32_at(&h, 40), 1000);
        let m = encode_header(1, 16000, u32::MAX);
        assert_eq!(
            (u32_at(&m, 4), u32_at(&m, 28), u16_at(&m, 32)),
            (u32::MAX, 32_000, 2)
        );
    }

    #[test]
    fn interleaves_pads_and_patches_sizes() {
        let mut w = StereoWavWriter::new(Cursor::new(Vec::new())).unwrap();
        w.write_frames(&[1, 2, 3], &[-1, -2, -3]).unwrap();
        w.write_frames(&[4, 5], &[-4]).unwrap();
        w.write_frames(&[], &[-6]).unwrap();
        w.write_frames(&[], &[]).unwrap();
        assert_eq!(w.data_len(), 24);
        let bytes = w.finish().unwrap().into_inner();
        assert_eq!(bytes.len(), 44 + 24);
        assert_eq!(bytes[..44], encode_header(2, 8000, 24));
        let samples: Vec<i16> = bytes[44..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(samples, vec![1, -1, 2, -2, 3, -3, 4, -4, 5, 0, 0, -6]);
    }

    #[test]
    fn unfinished_file_is_a_valid_empty_wav_and_offset_base_works() {
        let mut cur = Cursor::new(vec![0xAA; 10]);
        cur.seek(SeekFrom::End(0)).unwrap();
        let mut w = StereoWavWriter::new(cur).unwrap();
        w.write_frames(&[i16::MIN], &[i16::MAX]).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        assert_eq!(bytes[..10], [0xAA; 10]);
        assert_eq!(bytes[10..54], encode_header(2, 8000, 4));
        assert_eq!(bytes[54..], [0x00, 0x80, 0xFF, 0x7F]);
        let fresh = StereoWavWriter::new(Cursor::new(Vec::new())).unwrap();
        assert_eq!(fresh.inner.get_ref()[..], encode_header(2, 8000, 0));
    }

    #[test]
    fn size_limit_is_an_error_not_a_wrap() {
        let mut w = StereoWavWriter::new(Cursor::new(Vec::new())).unwrap();
        w.data_len = MAX_DATA_LEN - 4;
        assert!(w.write_frames(&[1], &[1]).is_ok());
        let e = w.write_frames(&[1], &[1]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(w.data_len(), MAX_DATA_LEN);
    }
}
