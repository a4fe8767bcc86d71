//! The page as pieces: each region's series of each family are rendered when
//! that region's walk ends, into chunks of text each compressed on its own
//! (raw deflate from a reset compressor, ended by a sync flush: byte
//! aligned, no back-reference into another chunk). Any sequence of such
//! chunks is a valid deflate stream, so the page is the gzip header, the
//! chunks in family order and, at each scrape, a tail: one gzip member,
//! whose CRC-32 is combined from the chunks' own.
//!
//! A chunk whose text is the same as one of the region's last walk (same
//! hash and length) keeps its compressed bytes: most series of a region do
//! not change from one walk to the next.

use std::collections::HashMap;
use std::io;
use std::sync::OnceLock;

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};

use super::GZIP_LEVEL;
use super::ctx::Ctx;
use super::families::{Empty, FAMILIES, FLEET_FAMILIES, FamilyDef};
use super::text::{Out, fx_hashes};
use crate::snapshot::{FleetSnapshot, RegionKey, RegionState, StateSets};

/// A run of the page's text, compressed on its own.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub bytes: Bytes,
    pub crc: u32,
    /// Length of the text.
    pub len: usize,
    /// Hash of the text (two seeds), to find it again at the next walk.
    hash: (u64, u64),
}

/// One family's series of one region (or of the whole exporter).
#[derive(Clone, Debug, Default)]
pub struct Piece {
    pub chunks: Vec<Chunk>,
}

impl Piece {
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn plain_len(&self) -> usize {
        self.chunks.iter().map(|c| c.len).sum()
    }
}

/// A region's pieces, one per region family in page order.
#[derive(Clone, Debug, Default)]
pub struct RegionPieces {
    pub families: Vec<Piece>,
    /// Chunks compressed afresh and reused from the last walk, in this render.
    pub fresh: usize,
    pub reused: usize,
}

/// A family of the page, in page order: one of the per-region table's, or
/// one of the whole exporter's.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Region(usize),
    Fleet(usize),
}

/// The families in page order (by name), with their compressed headers.
struct Order {
    slots: Vec<(Slot, Chunk)>,
    /// Index into `FAMILIES` → position among the region families in
    /// page order (the index of its piece in [`RegionPieces::families`]).
    region_pos: Vec<usize>,
}

fn order() -> &'static Order {
    static ORDER: OnceLock<Order> = OnceLock::new();
    ORDER.get_or_init(|| {
        let mut all: Vec<(Slot, &FamilyDef)> = FAMILIES
            .iter()
            .enumerate()
            .map(|(i, f)| (Slot::Region(i), f))
            .chain(
                FLEET_FAMILIES
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (Slot::Fleet(i), f)),
            )
            .collect();
        all.sort_by_key(|(_, f)| f.name);
        let mut comp = Deflater::new();
        let mut region_pos = vec![0; FAMILIES.len()];
        let mut next = 0;
        let slots = all
            .into_iter()
            .map(|(slot, f)| {
                if let Slot::Region(i) = slot {
                    region_pos[i] = next;
                    next += 1;
                }
                let text = format!(
                    "# HELP {0} {1}\n# TYPE {0} {2}\n",
                    f.name,
                    f.help,
                    f.kind.as_str()
                );
                // Compressing a few hundred bytes into a Vec cannot fail.
                let header = comp
                    .chunk(text.as_bytes())
                    .unwrap_or_else(|_| stored(text.as_bytes()));
                (slot, header)
            })
            .collect();
        Order { slots, region_pos }
    })
}

/// `text` as one stored (uncompressed) deflate block: the fallback should
/// the compressor ever refuse.
fn stored(text: &[u8]) -> Chunk {
    let mut out = Vec::with_capacity(text.len() + 5 * (text.len() / 65_535 + 1));
    for part in text.chunks(65_535) {
        out.push(0);
        let n = part.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(part);
    }
    Chunk {
        bytes: Bytes::from(out),
        crc: zlib_rs::crc32::crc32(0, text),
        len: text.len(),
        hash: hash(text),
    }
}

fn hash(text: &[u8]) -> (u64, u64) {
    let [a, b] = fx_hashes(text, [0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344]);
    (a, b)
}

/// A raw deflate compressor, reset before every chunk, and the buffer it
/// writes into (each chunk then keeps exactly its own bytes).
pub struct Deflater {
    comp: Compress,
    scratch: Vec<u8>,
}

impl Default for Deflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Deflater {
    pub fn new() -> Self {
        Deflater {
            comp: Compress::new(Compression::new(GZIP_LEVEL), false),
            scratch: Vec::new(),
        }
    }

    /// `text` compressed from a fresh state, ending in a sync flush.
    pub fn chunk(&mut self, text: &[u8]) -> io::Result<Chunk> {
        self.chunk_hashed(text, hash(text))
    }

    /// [`Deflater::chunk`] of a text whose hash the caller has already.
    fn chunk_hashed(&mut self, text: &[u8], text_hash: (u64, u64)) -> io::Result<Chunk> {
        self.comp.reset();
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        out.reserve(text.len() / 4 + 64);
        let start = self.comp.total_in();
        loop {
            let done = (self.comp.total_in() - start) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(4096));
            }
            let status = self
                .comp
                .compress_vec(&text[done..], &mut out, FlushCompress::Sync)
                .map_err(io::Error::other)?;
            let all_in = (self.comp.total_in() - start) as usize == text.len();
            // The flush is complete once all input is in and the output
            // was not filled up.
            if all_in && out.len() < out.capacity() {
                break;
            }
            if status == Status::BufError && out.len() < out.capacity() {
                return Err(io::Error::other("deflate made no progress"));
            }
        }
        let bytes = Bytes::copy_from_slice(&out);
        self.scratch = out;
        Ok(Chunk {
            bytes,
            crc: zlib_rs::crc32::crc32(0, text),
            len: text.len(),
            hash: text_hash,
        })
    }
}

/// Where `Out` hands its text: every write is one chunk, reused from the
/// last walk's piece when the same text was there.
struct ChunkSink<'a> {
    deflater: &'a mut Deflater,
    previous: &'a HashMap<(u64, u64, usize), Chunk>,
    chunks: Vec<Chunk>,
    fresh: usize,
    reused: usize,
}

impl io::Write for ChunkSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let h = hash(buf);
        match self.previous.get(&(h.0, h.1, buf.len())) {
            Some(c) => {
                self.chunks.push(c.clone());
                self.reused += 1;
            }
            None => {
                self.chunks.push(self.deflater.chunk_hashed(buf, h)?);
                self.fresh += 1;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Renders one region's pieces from its state. `previous` is what the
/// region's last render made: chunks of the same text are taken from it.
pub fn render_region(
    key: &RegionKey,
    state: &RegionState,
    tags: &std::sync::Arc<[String]>,
    mode: StateSets,
    previous: Option<&RegionPieces>,
    deflater: &mut Deflater,
) -> io::Result<RegionPieces> {
    let mut one = FleetSnapshot {
        tags: std::sync::Arc::clone(tags),
        ..FleetSnapshot::default()
    };
    one.regions.insert(key.clone(), state.clone());
    let ctx = Ctx::new(&one, mode);
    let ord = order();
    let mut pieces = RegionPieces {
        families: vec![Piece::default(); FAMILIES.len()],
        ..RegionPieces::default()
    };
    let no_previous = HashMap::new();
    for (i, f) in FAMILIES.iter().enumerate() {
        let pos = ord.region_pos[i];
        // A side walk whose rows were let go: its piece stays as rendered.
        if state.rendered.contains(f.source)
            && let Some(p) = previous.and_then(|p| p.families.get(pos))
        {
            pieces.reused += p.chunks.len();
            pieces.families[pos] = p.clone();
            continue;
        }
        let prev: HashMap<(u64, u64, usize), Chunk>;
        let previous = match previous.and_then(|p| p.families.get(pos)) {
            Some(p) if !p.is_empty() => {
                prev = p
                    .chunks
                    .iter()
                    .map(|c| ((c.hash.0, c.hash.1, c.len), c.clone()))
                    .collect();
                &prev
            }
            _ => &no_previous,
        };
        let sink = write_family(f, &ctx, deflater, previous)?;
        pieces.fresh += sink.fresh;
        pieces.reused += sink.reused;
        pieces.families[pos] = Piece {
            chunks: sink.chunks,
        };
    }
    Ok(pieces)
}

/// One family's series as `ctx` has them, in chunks (those of `previous`
/// reused where the text is the same).
fn write_family<'a>(
    f: &FamilyDef,
    ctx: &Ctx<'_>,
    deflater: &'a mut Deflater,
    previous: &'a HashMap<(u64, u64, usize), Chunk>,
) -> io::Result<ChunkSink<'a>> {
    let mut sink = ChunkSink {
        deflater,
        previous,
        chunks: Vec::new(),
        fresh: 0,
        reused: 0,
    };
    {
        let mut out = Out::new(&mut sink);
        out.begin_body(f.name)?;
        (f.write)(ctx, &mut out)?;
        out.flush()?;
    }
    Ok(sink)
}

/// Renders the whole exporter's families (a few lines) from `snap`.
fn render_fleet(
    snap: &FleetSnapshot,
    mode: StateSets,
    deflater: &mut Deflater,
) -> io::Result<Vec<Piece>> {
    // The fleet writers read only the snapshot's own fields, not its regions.
    let ctx = Ctx::new(snap, mode);
    let empty = HashMap::new();
    FLEET_FAMILIES
        .iter()
        .map(|f| {
            let sink = write_family(f, &ctx, &mut *deflater, &empty)?;
            Ok(Piece {
                chunks: sink.chunks,
            })
        })
        .collect()
}

/// Compressed chunks smaller than this are joined with their neighbours.
const SMALL_PART: usize = 4 << 10;
/// Joined chunks make parts of about this size.
const JOINED_PART: usize = 64 << 10;

/// The gzip header: deflate, no name, no time, unknown OS.
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The page from the regions' pieces (in region order) and the whole
/// exporter's families as of `snap`: every family in name order, its
/// header once (for an optional family, only when some region has its
/// series), then each region's piece. Nothing is compressed again but the
/// few lines of the whole exporter's families.
pub fn assemble<'a>(
    regions: impl Iterator<Item = &'a RegionPieces> + Clone,
    snap: &FleetSnapshot,
    mode: StateSets,
) -> io::Result<super::Page> {
    let mut deflater = Deflater::new();
    let fleet = render_fleet(snap, mode, &mut deflater)?;
    let mut parts: Vec<Bytes> = Vec::new();
    let (mut crc, mut plain_len, mut gzip_len) = (0u32, 0usize, GZIP_HEADER.len());
    // Runs of small chunks (headers, a region's few aggregate lines) are
    // copied together once here, so a scrape sends a few large parts
    // rather than hundreds of tiny ones; large chunks are shared as they are.
    let mut small: Vec<u8> = GZIP_HEADER.to_vec();
    let mut push = |c: &Chunk| {
        crc = zlib_rs::crc32::crc32_combine(crc, c.crc, c.len as u64);
        plain_len += c.len;
        gzip_len += c.bytes.len();
        if c.bytes.len() < SMALL_PART {
            small.extend_from_slice(&c.bytes);
            if small.len() >= JOINED_PART {
                // Exactly its bytes: the buffer is used again.
                parts.push(Bytes::copy_from_slice(&small));
                small.clear();
            }
        } else {
            if !small.is_empty() {
                parts.push(Bytes::copy_from_slice(&small));
                small.clear();
            }
            parts.push(c.bytes.clone());
        }
    };
    for (slot, header) in &order().slots {
        match *slot {
            Slot::Region(i) => {
                let f = &FAMILIES[i];
                let pos = order().region_pos[i];
                let pieces = regions.clone().filter_map(|r| r.families.get(pos));
                let any = pieces.clone().any(|p| !p.is_empty());
                if any || f.empty == Empty::Header {
                    push(header);
                }
                for p in pieces {
                    p.chunks.iter().for_each(&mut push);
                }
            }
            Slot::Fleet(i) => {
                let piece = &fleet[i];
                if !piece.is_empty() || FLEET_FAMILIES[i].empty == Empty::Header {
                    push(header);
                }
                piece.chunks.iter().for_each(&mut push);
            }
        }
    }
    if !small.is_empty() {
        parts.push(Bytes::copy_from_slice(&small));
    }
    Ok(super::Page::from_parts(parts, crc, plain_len, gzip_len))
}

#[cfg(test)]
#[path = "pieces_tests.rs"]
mod tests;
