//! Snapshot → exposition text (format 0.0.4), written once per cycle straight
//! into a gzip encoder: the plain page never exists whole in memory, and a
//! scrape only copies bytes. The families are a table (`families`) whose
//! writers read the snapshot through `ctx`; the line writer, escaping and
//! numbers are in `text`.

mod ctx;
mod families;
mod text;

use std::io::{self, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::DeflateEncoder;
use prometheus::Registry;

use crate::snapshot::FleetSnapshot;
use ctx::Ctx;
use families::{Empty, FAMILIES, FamilyDef};
use text::Out;

pub use crate::api::{INSTANCE_STATES, PLUGIN_STATES};
pub use crate::snapshot::StateSets;
pub use families::{AGENT_STATES, agent_state};

/// A rendered page, held compressed as the start of one gzip member: the
/// header and the page's deflate blocks, flushed to a byte boundary but not
/// finished. Each scrape finishes it with the exporter's own series as of
/// that moment ([`Page::tail`]), so the served answer is one ordinary gzip
/// stream whatever the client.
#[derive(Clone, Debug)]
pub struct Page {
    pub head: Bytes,
    /// CRC-32 of the page's text, continued over the tail at each scrape.
    crc: u32,
    /// Size of the page uncompressed.
    pub plain_len: usize,
}

/// The gzip header: deflate, no name, no time, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

impl Page {
    /// The deflate blocks of `own` (compressed on their own: a new deflate
    /// stream may follow a flushed one) and the gzip trailer.
    pub fn tail(&self, own: &[u8]) -> io::Result<Bytes> {
        let mut enc =
            DeflateEncoder::new(Vec::with_capacity(own.len() / 4 + 64), Compression::fast());
        enc.write_all(own)?;
        let mut tail = enc.finish()?;
        let crc = zlib_rs::crc32::crc32(self.crc, own);
        tail.extend_from_slice(&crc.to_le_bytes());
        // ISIZE is the length modulo 2^32 (RFC 1952).
        tail.extend_from_slice(&((self.plain_len + own.len()) as u32).to_le_bytes());
        Ok(Bytes::from(tail))
    }

    /// Compressed size of the page itself.
    pub fn gzip_len(&self) -> usize {
        self.head.len()
    }

    /// The page and `own` as plain text (tests, clients without gzip).
    pub fn plain_with(&self, own: &[u8]) -> io::Result<Vec<u8>> {
        let tail = self.tail(own)?;
        let mut out = Vec::with_capacity(self.plain_len + own.len());
        let gz = io::Read::chain(&self.head[..], &tail[..]);
        io::copy(&mut flate2::read::GzDecoder::new(gz), &mut out)?;
        Ok(out)
    }

    /// A page of ready text (what a server serves when it is not the
    /// fleet's page: a placeholder, a test).
    pub fn from_text(text: &[u8]) -> io::Result<Page> {
        let mut enc = DeflateEncoder::new(GZIP_HEADER.to_vec(), Compression::fast());
        enc.write_all(text)?;
        enc.flush()?;
        // The flushed blocks end on a byte boundary. The buffer is taken
        // out before the encoder is dropped: dropping it finishes the
        // stream, and a final block here would end the member before the
        // tail.
        let head = std::mem::take(enc.get_mut());
        Ok(Page {
            crc: zlib_rs::crc32::crc32(0, text),
            plain_len: text.len(),
            head: Bytes::from(head),
        })
    }

    /// A page of raw bytes, for tests of what serves it.
    #[cfg(test)]
    pub(crate) fn from_raw(head: Bytes) -> Page {
        Page {
            head,
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

/// The page's writer: deflate into a buffer, counting the CRC of the text.
struct Sink {
    enc: DeflateEncoder<Vec<u8>>,
    crc: u32,
}

impl io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.enc.write(buf)?;
        self.crc = zlib_rs::crc32::crc32(self.crc, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.enc.flush()
    }
}

/// The page is compressed once per cycle and sent on every scrape: level 4
/// (zlib-rs) makes it ~13% smaller than level 1 for about twice the
/// compression CPU (0.9 s instead of 0.5 s for a 366 MB page), spent on the
/// background thread; levels above 4 save little more for much more CPU.
pub const GZIP_LEVEL: u32 = 4;

/// Renders the fleet's page: the table's families from the snapshot,
/// sorted by name. `gzip_hint` is the expected compressed size (the last
/// page's): the buffer is sized once instead of doubling its way there.
pub fn render(snap: &FleetSnapshot, mode: StateSets, gzip_hint: usize) -> io::Result<Page> {
    let ctx = Ctx::new(snap, mode);
    let mut head = Vec::with_capacity(gzip_hint + gzip_hint / 16);
    head.extend_from_slice(&GZIP_HEADER);
    let mut sink = Sink {
        enc: DeflateEncoder::new(head, Compression::new(GZIP_LEVEL)),
        crc: 0,
    };
    let mut out = Out::new(&mut sink);
    let mut families: Vec<&FamilyDef> = FAMILIES.iter().collect();
    families.sort_by_key(|f| f.name);
    for f in families {
        out.begin(f.name, f.help, f.kind.as_str(), f.empty == Empty::Header)?;
        (f.write)(&ctx, &mut out)?;
    }
    out.flush()?;
    let plain_len = out.written();
    drop(out);
    // A sync flush ends the blocks on a byte boundary without the final
    // block; the encoder is then let go without finishing.
    io::Write::flush(&mut sink)?;
    let head = std::mem::take(sink.enc.get_mut());
    Ok(Page {
        head: Bytes::from(head),
        crc: sink.crc,
        plain_len,
    })
}

#[cfg(test)]
mod tests;
