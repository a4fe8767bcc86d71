//! Snapshot → exposition text (format 0.0.4), written once per cycle straight
//! into a gzip encoder: the plain page never exists whole in memory, and a
//! scrape only copies bytes. The families are a table (`families`) whose
//! writers read the snapshot through `ctx`; the line writer, escaping and
//! numbers are in `text`.

mod ctx;
mod families;
mod text;

use std::io;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use prometheus::Registry;

use crate::snapshot::FleetSnapshot;
use ctx::Ctx;
use families::{Empty, FAMILIES, FamilyDef};
use text::Out;

pub use crate::api::{INSTANCE_STATES, PLUGIN_STATES};
pub use crate::snapshot::StateSets;
pub use families::{AGENT_STATES, agent_state};

/// A rendered page, held compressed.
#[derive(Clone, Debug)]
pub struct Page {
    pub gzip: Bytes,
    /// Size of the page uncompressed.
    pub plain_len: usize,
}

impl Page {
    /// The plain text (tests, and clients that do not take gzip).
    pub fn plain(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.plain_len);
        io::copy(&mut flate2::read::GzDecoder::new(&self.gzip[..]), &mut out)?;
        Ok(out)
    }
}

/// The page is compressed once per cycle and sent on every scrape: level 4
/// (zlib-rs) makes it ~13% smaller than level 1 for about twice the
/// compression CPU (0.9 s instead of 0.5 s for a 366 MB page), spent on the
/// background thread; levels above 4 save little more for much more CPU.
pub const GZIP_LEVEL: u32 = 4;

/// A family of the page: one of the table, or one of the registry's
/// already in text.
enum Part<'a> {
    Table(&'static FamilyDef),
    Text(&'a str),
}

/// Renders the whole page: fleet and exporter families from the snapshot and
/// the registry's families (API counters, build info, process), all sorted
/// by name. `gzip_hint` is the expected compressed size (the last page's):
/// the buffer is sized once instead of doubling its way there.
pub fn render(
    snap: &FleetSnapshot,
    registry: &Registry,
    mode: StateSets,
    gzip_hint: usize,
) -> io::Result<Page> {
    let encoder = prometheus::TextEncoder::new();
    let gathered: Vec<(String, String)> = registry
        .gather()
        .iter()
        .filter_map(|mf| {
            let mut text = String::new();
            encoder
                .encode_utf8(std::slice::from_ref(mf), &mut text)
                .ok()?;
            Some((mf.name().to_string(), text))
        })
        .collect();
    let mut parts: Vec<(&str, Part<'_>)> = FAMILIES
        .iter()
        .map(|f| (f.name, Part::Table(f)))
        .chain(gathered.iter().map(|(n, t)| (n.as_str(), Part::Text(t))))
        .collect();
    parts.sort_by(|a, b| a.0.cmp(b.0));

    let ctx = Ctx::new(snap, mode);
    let mut gz = GzEncoder::new(
        Vec::with_capacity(gzip_hint + gzip_hint / 16),
        Compression::new(GZIP_LEVEL),
    );
    let mut out = Out::new(&mut gz);
    for (_, part) in &parts {
        match part {
            Part::Table(f) => {
                out.begin(f.name, f.help, f.kind.as_str(), f.empty == Empty::Header)?;
                (f.write)(&ctx, &mut out)?;
            }
            Part::Text(text) => out.raw(text.as_bytes())?,
        }
    }
    out.flush()?;
    let plain_len = out.written();
    let gzip = gz.finish()?;
    Ok(Page {
        gzip: Bytes::from(gzip),
        plain_len,
    })
}

#[cfg(test)]
mod tests;
