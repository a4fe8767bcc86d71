//! Snapshot → exposition text (format 0.0.4), compressed as it is written:
//! the plain page never exists whole in memory, and a scrape only hands out
//! bytes. A region's series are rendered when its walk ends, as pieces
//! (`pieces`), and the page is those pieces in family order. The families
//! are a table (`families`, with writers by subject in `status` and
//! `inventory`) whose writers read the snapshot through `ctx`;
//! the line writer, escaping and numbers are in `text`.

mod ctx;
mod families;
mod inventory;
pub mod pieces;
mod status;
mod text;

use std::io;

use bytes::Bytes;
use prometheus::Registry;

use crate::snapshot::FleetSnapshot;
pub use pieces::{Deflater, RegionPieces, assemble, render_region};

pub use crate::api::{INSTANCE_STATES, PLUGIN_STATES};
pub use crate::snapshot::StateSets;
pub use families::WALK_RESULTS;
pub use status::{AGENT_STATES, agent_state};

/// A rendered page, held compressed as the start of one gzip member: the
/// header and the page's deflate blocks in parts (the regions' chunks,
/// shared with the pages before and after it), each ending on a byte
/// boundary, none final. Each scrape finishes it with the exporter's own
/// series as of that moment ([`Page::tail`]), so the served answer is one
/// ordinary gzip stream whatever the client.
#[derive(Clone, Debug)]
pub struct Page {
    /// The gzip header, then the deflate chunks in order.
    pub parts: Vec<Bytes>,
    /// CRC-32 of the page's text, continued over the tail at each scrape.
    crc: u32,
    /// Size of the page uncompressed.
    pub plain_len: usize,
    gzip_len: usize,
}

/// The most a stored deflate block holds.
const STORED_MAX: usize = 65_535;

impl Page {
    pub(crate) fn from_parts(
        parts: Vec<Bytes>,
        crc: u32,
        plain_len: usize,
        gzip_len: usize,
    ) -> Page {
        Page {
            parts,
            crc,
            plain_len,
            gzip_len,
        }
    }

    /// `own` as stored deflate blocks after the page's (which end on a byte
    /// boundary), and the gzip trailer. Stored, not compressed: the
    /// exporter's own series are small, and a scrape then costs no
    /// compressor state, however many scrapes run at once.
    pub fn tail(&self, own: &[u8]) -> io::Result<Bytes> {
        let blocks = own.len().div_ceil(STORED_MAX).max(1);
        let mut tail = Vec::with_capacity(own.len() + blocks * 5 + 8);
        let mut chunks = own.chunks(STORED_MAX).peekable();
        if own.is_empty() {
            // One empty final block.
            tail.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        }
        while let Some(chunk) = chunks.next() {
            // BFINAL in bit 0, BTYPE 00 (stored), the rest padding.
            tail.push(u8::from(chunks.peek().is_none()));
            let len = chunk.len() as u16;
            tail.extend_from_slice(&len.to_le_bytes());
            tail.extend_from_slice(&(!len).to_le_bytes());
            tail.extend_from_slice(chunk);
        }
        let crc = zlib_rs::crc32::crc32(self.crc, own);
        tail.extend_from_slice(&crc.to_le_bytes());
        // ISIZE is the length modulo 2^32 (RFC 1952).
        tail.extend_from_slice(&((self.plain_len + own.len()) as u32).to_le_bytes());
        Ok(Bytes::from(tail))
    }

    /// Compressed size of the page itself.
    pub fn gzip_len(&self) -> usize {
        self.gzip_len
    }

    /// The page's compressed bytes and then `tail`, as one reader.
    pub fn reader<'a>(&'a self, tail: &'a [u8]) -> impl io::Read + 'a {
        PartsReader {
            parts: self
                .parts
                .iter()
                .map(|b| &b[..])
                .chain(std::iter::once(tail)),
            current: &[],
        }
    }

    /// The page and `own` as plain text (tests, clients without gzip).
    pub fn plain_with(&self, own: &[u8]) -> io::Result<Vec<u8>> {
        let tail = self.tail(own)?;
        let mut out = Vec::with_capacity(self.plain_len + own.len());
        io::copy(
            &mut flate2::read::GzDecoder::new(self.reader(&tail)),
            &mut out,
        )?;
        Ok(out)
    }

    /// A page of ready text (what a server serves when it is not the
    /// fleet's page: a placeholder, a test).
    pub fn from_text(text: &[u8]) -> io::Result<Page> {
        let chunk = Deflater::new().chunk(text)?;
        let gzip_len = pieces::GZIP_HEADER.len() + chunk.bytes.len();
        Ok(Page {
            parts: vec![Bytes::from_static(&pieces::GZIP_HEADER), chunk.bytes],
            crc: chunk.crc,
            plain_len: text.len(),
            gzip_len,
        })
    }

    /// The whole gzip member a scrape with `own` would send, in one buffer
    /// (tests).
    #[cfg(test)]
    pub(crate) fn member(&self, own: &[u8]) -> io::Result<Vec<u8>> {
        let tail = self.tail(own)?;
        let mut out = Vec::with_capacity(self.gzip_len + tail.len());
        for p in self.parts.iter().chain(std::iter::once(&tail)) {
            out.extend_from_slice(p);
        }
        Ok(out)
    }

    /// A page of raw bytes, for tests of what serves it.
    #[cfg(test)]
    pub(crate) fn from_raw(head: Bytes) -> Page {
        Page {
            gzip_len: head.len(),
            parts: vec![head],
            crc: 0,
            plain_len: 0,
        }
    }

    /// The page alone as plain text.
    pub fn plain(&self) -> io::Result<Vec<u8>> {
        self.plain_with(b"")
    }
}

/// The exporter's own series in a registry (API counters, build info,
/// process), as text: gathered at each scrape, so they are as of the scrape.
pub fn registry_text(registry: &Registry) -> Vec<u8> {
    let mut text = String::new();
    let families = registry.gather();
    if prometheus::TextEncoder::new()
        .encode_utf8(&families, &mut text)
        .is_err()
    {
        // A family the encoder refuses is left out rather than the page.
        text.clear();
        for mf in &families {
            let _ = prometheus::TextEncoder::new().encode_utf8(std::slice::from_ref(mf), &mut text);
        }
    }
    text.into_bytes()
}

/// The page is compressed once per cycle and sent on every scrape: level 4
/// (zlib-rs) makes it ~13% smaller than level 1 for about twice the
/// compression CPU (0.9 s instead of 0.5 s for a 366 MB page), spent on the
/// low-priority thread; levels above 4 save little more for much more CPU.
pub const GZIP_LEVEL: u32 = 4;

/// Renders the fleet's page at once: every region's pieces, then the page.
/// (The collector renders a region's pieces when its walk ends instead, and
/// only assembles the page.)
pub fn render(snap: &FleetSnapshot, mode: StateSets) -> io::Result<Page> {
    let mut deflater = Deflater::new();
    let regions = snap
        .regions
        .iter()
        .map(|(k, r)| render_region(k, r, &snap.tags, mode, None, &mut deflater))
        .collect::<io::Result<Vec<_>>>()?;
    assemble(regions.iter(), snap, mode)
}

/// Reads a list of byte slices one after another without copying them
/// together.
struct PartsReader<'a, I: Iterator<Item = &'a [u8]>> {
    parts: I,
    current: &'a [u8],
}

impl<'a, I: Iterator<Item = &'a [u8]>> io::Read for PartsReader<'a, I> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.parts.next() {
                Some(p) => self.current = p,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = &self.current[n..];
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
