//! Snapshot → exposition text (format 0.0.4), written once per cycle straight
//! into a gzip encoder: the plain page never exists whole in memory, and a
//! scrape only copies bytes.

use std::collections::BTreeSet;
use std::io::{self, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use prometheus::Registry;

pub use crate::snapshot::StateSets;
use crate::snapshot::{FleetSnapshot, RegionData};

pub use crate::api::{INSTANCE_STATES, PLUGIN_STATES};
pub const AGENT_STATES: &[&str] = &["down", "not_installed", "up"];

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

/// Where series are written: lines are built in a buffer (no virtual call
/// per piece) that goes to the compressor in large chunks.
pub struct Out<'w> {
    buf: Vec<u8>,
    sink: &'w mut dyn Write,
    /// Bytes written in all (the page's plain size).
    written: usize,
}

const CHUNK: usize = 64 << 10;

impl<'w> Out<'w> {
    fn new(sink: &'w mut dyn Write) -> Self {
        Out {
            buf: Vec::with_capacity(CHUNK + 1024),
            sink,
            written: 0,
        }
    }

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(bytes);
        self.maybe_flush()
    }

    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.written += self.buf.len();
        self.sink.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Appends a label value with `\`, `"` and newline escaped.
    fn esc(&mut self, v: &str) {
        if !v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
            self.buf.extend_from_slice(v.as_bytes());
            return;
        }
        for b in v.bytes() {
            match b {
                b'\\' => self.buf.extend_from_slice(b"\\\\"),
                b'"' => self.buf.extend_from_slice(b"\\\""),
                b'\n' => self.buf.extend_from_slice(b"\\n"),
                b => self.buf.push(b),
            }
        }
    }
}

/// A sample value, written without going through `fmt`.
pub trait SampleValue {
    fn write_to(&self, buf: &mut Vec<u8>);
}

fn write_int(buf: &mut Vec<u8>, v: i128) {
    if v < 0 {
        buf.push(b'-');
    }
    let mut n = v.unsigned_abs();
    let mut tmp = [0u8; 40];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl SampleValue for $t {
            fn write_to(&self, buf: &mut Vec<u8>) {
                write_int(buf, *self as i128);
            }
        }
    )*};
}
int_value!(i32, i64, u8, u64, usize);

impl SampleValue for String {
    fn write_to(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self.as_bytes());
    }
}

/// One series: `name{account="a",l1="v1",...} value`; the `account` label
/// comes first, and only when accounts are configured.
fn series(
    out: &mut Out<'_>,
    account: Option<&str>,
    name: &str,
    labels: &[(&str, &str)],
    value: impl SampleValue,
) -> io::Result<()> {
    out.buf.extend_from_slice(name.as_bytes());
    let mut sep = b'{';
    for (k, v) in account.map(|a| ("account", a)).iter().chain(labels) {
        out.buf.push(sep);
        sep = b',';
        out.buf.extend_from_slice(k.as_bytes());
        out.buf.extend_from_slice(b"=\"");
        out.esc(v);
        out.buf.push(b'"');
    }
    if sep == b',' {
        out.buf.push(b'}');
    }
    out.buf.push(b' ');
    value.write_to(&mut out.buf);
    out.buf.push(b'\n');
    out.maybe_flush()
}

/// The `account` label (when accounts are configured) and the region id.
type Labels<'a> = (Option<&'a str>, &'a str);

type Body<'a> = Box<dyn Fn(&mut Out<'_>) -> io::Result<()> + 'a>;

/// A metric family: name, help, type and a writer for its series.
struct Family<'a> {
    name: String,
    help: &'a str,
    kind: &'a str,
    body: Body<'a>,
}

/// The labels every account-scoped series starts with.
fn base<'a>(region: &'a str, instance: &'a str) -> [(&'a str, &'a str); 2] {
    [("region_id", region), ("instance_id", instance)]
}

/// Agent status as the aggregate counts it.
pub fn agent_state(a: &crate::api::AgentStatus) -> &'static str {
    if a.up {
        "up"
    } else if a.version.is_none() && a.last_heartbeat.is_none() {
        "not_installed"
    } else {
        "down"
    }
}

/// Counts items by key in one pass (sorted keys, for stable output).
fn count_by<K: Ord>(keys: impl Iterator<Item = K>) -> std::collections::BTreeMap<K, usize> {
    let mut m = std::collections::BTreeMap::new();
    for k in keys {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// The states to write for a state set whose current state is `current`.
fn states<'s>(
    known: &'s [&'s str],
    current: &'s str,
    mode: StateSets,
) -> impl Iterator<Item = &'s str> {
    let extra = (!known.contains(&current)).then_some(current);
    let all = mode == StateSets::All;
    known
        .iter()
        .copied()
        .filter(move |s| all || *s == current)
        .chain(extra)
}

fn fleet_families<'a>(snap: &'a FleetSnapshot, mode: StateSets) -> Vec<Family<'a>> {
    let regions = || {
        snap.regions
            .iter()
            .filter_map(|(key, r)| Some((snap.labels(key), r.data.as_deref()?)))
    };
    let mut f: Vec<Family<'a>> = Vec::new();
    macro_rules! fam {
        ($name:expr, $kind:expr, $help:expr, $body:expr) => {
            f.push(Family {
                name: $name.to_string(),
                kind: $kind,
                help: $help,
                body: Box::new($body),
            })
        };
    }
    // Per agent: a value from each row, absent where the API gave none.
    fn per_agent<'a>(
        regions: impl Fn() -> Box<dyn Iterator<Item = (Labels<'a>, &'a RegionData)> + 'a> + 'a,
        name: &'static str,
        value: impl Fn(&crate::api::AgentStatus, &RegionData) -> Option<i64> + 'a,
    ) -> Body<'a> {
        Box::new(move |out| {
            for ((acct, region), d) in regions() {
                for a in &d.agents {
                    if let Some(v) = value(a, d) {
                        series(out, acct, name, &base(region, &a.instance_id), v)?;
                    }
                }
            }
            Ok(())
        })
    }
    // Per plugin row: a value from each, absent where the API gave none.
    fn per_plugin<'a>(
        regions: impl Fn() -> Box<dyn Iterator<Item = (Labels<'a>, &'a RegionData)> + 'a> + 'a,
        name: &'static str,
        value: impl Fn(&crate::api::PluginStatus, &RegionData) -> Option<i64> + 'a,
    ) -> Body<'a> {
        Box::new(move |out| {
            for ((acct, region), d) in regions() {
                for p in &d.plugins {
                    if let Some(v) = value(p, d) {
                        let [r, i] = base(region, &p.instance_id);
                        series(out, acct, name, &[r, i, ("plugin", &p.name)], v)?;
                    }
                }
            }
            Ok(())
        })
    }
    let boxed = move || -> Box<dyn Iterator<Item = (Labels<'a>, &'a RegionData)> + 'a> {
        Box::new(regions())
    };

    f.push(Family {
        name: "aliyun_cloud_assistant_agent_up".into(),
        kind: "gauge",
        help: "1 if the Cloud Assistant agent sent a heartbeat within the last 2 minutes (CloudAssistantStatus), else 0.",
        body: per_agent(boxed, "aliyun_cloud_assistant_agent_up", |a, _| Some(a.up as i64)),
    });
    fam!(
        "aliyun_cloud_assistant_agent_info",
        "gauge",
        "Cloud Assistant agent version, OS type and Session Manager support; always 1.",
        move |out: &mut Out<'_>| {
            for ((acct, region), d) in regions() {
                for a in &d.agents {
                    let sm = if a.session_manager == Some(true) {
                        "true"
                    } else {
                        "false"
                    };
                    let [r, i] = base(region, &a.instance_id);
                    series(
                        out,
                        acct,
                        "aliyun_cloud_assistant_agent_info",
                        &[
                            r,
                            i,
                            ("version", a.version.as_deref().unwrap_or("")),
                            ("os_type", a.os_type.as_deref().unwrap_or("")),
                            ("session_manager", sm),
                        ],
                        1,
                    )?;
                }
            }
            Ok(())
        }
    );
    f.push(Family {
        name: "aliyun_cloud_assistant_agent_active_tasks".into(),
        kind: "gauge",
        help: "Cloud Assistant tasks running on the instance (ActiveTaskCount).",
        body: per_agent(
            boxed,
            "aliyun_cloud_assistant_agent_active_tasks",
            |a, _| a.active_tasks.map(|v| v as i64),
        ),
    });
    f.push(Family {
        name: "aliyun_cloud_assistant_agent_invocations_total".into(),
        kind: "counter",
        help: "Cloud Assistant tasks the instance has completed (InvocationCount).",
        body: per_agent(
            boxed,
            "aliyun_cloud_assistant_agent_invocations_total",
            |a, _| a.invocations.map(|v| v as i64),
        ),
    });
    f.push(Family {
        name: "aliyun_cloud_assistant_agent_last_invocation_timestamp_seconds".into(),
        kind: "gauge",
        help: "When a command last ran on the instance (LastInvokedTime), Unix seconds.",
        body: per_agent(
            boxed,
            "aliyun_cloud_assistant_agent_last_invocation_timestamp_seconds",
            |a, _| a.last_invoked,
        ),
    });
    f.push(Family {
        name: "aliyun_cloud_assistant_agent_last_heartbeat_timestamp_seconds".into(),
        kind: "gauge",
        help: "Last heartbeat of the Cloud Assistant agent (LastHeartbeatTime), Unix seconds.",
        body: per_agent(
            boxed,
            "aliyun_cloud_assistant_agent_last_heartbeat_timestamp_seconds",
            |a, _| a.last_heartbeat,
        ),
    });
    f.push(Family {
        name: "aliyun_cloud_assistant_agent_heartbeat_age_seconds".into(),
        kind: "gauge",
        help: "Seconds between the collection and the agent's last heartbeat.",
        body: per_agent(
            boxed,
            "aliyun_cloud_assistant_agent_heartbeat_age_seconds",
            |a, d| a.last_heartbeat.map(|h| (d.collected_at - h).max(0)),
        ),
    });
    fam!(
        "aliyun_cloud_assistant_agents",
        "gauge",
        "Cloud Assistant agents per region by status (up, down, not_installed).",
        move |out: &mut Out<'_>| {
            for ((acct, region), d) in regions() {
                let mut counts = [0usize; 3];
                for a in &d.agents {
                    let s = agent_state(a);
                    if let Some(i) = AGENT_STATES.iter().position(|x| *x == s) {
                        counts[i] += 1;
                    }
                }
                for (s, n) in AGENT_STATES.iter().zip(counts) {
                    series(
                        out,
                        acct,
                        "aliyun_cloud_assistant_agents",
                        &[("region_id", region), ("status", s)],
                        n,
                    )?;
                }
            }
            Ok(())
        }
    );
    fam!(
        "aliyun_cloud_assistant_instance_status",
        "gauge",
        "ECS instance state (state set: 1 for the current state).",
        move |out: &mut Out<'_>| {
            for ((acct, region), d) in regions() {
                for i in &d.instances {
                    for s in states(INSTANCE_STATES, &i.status, mode) {
                        let [r, id] = base(region, &i.instance_id);
                        series(
                            out,
                            acct,
                            "aliyun_cloud_assistant_instance_status",
                            &[r, id, ("status", s)],
                            (s == &*i.status) as u8,
                        )?;
                    }
                }
            }
            Ok(())
        }
    );
    fam!(
        "aliyun_cloud_assistant_instances",
        "gauge",
        "ECS instances per region by state.",
        move |out: &mut Out<'_>| {
            for ((acct, region), d) in regions() {
                let counts = count_by(d.instances.iter().map(|i| &*i.status));
                let seen = counts
                    .keys()
                    .copied()
                    .filter(|s| !INSTANCE_STATES.contains(s));
                let all: Vec<&str> = INSTANCE_STATES.iter().copied().chain(seen).collect();
                for s in all {
                    let n = counts.get(s).copied().unwrap_or(0);
                    series(
                        out,
                        acct,
                        "aliyun_cloud_assistant_instances",
                        &[("region_id", region), ("status", s)],
                        n,
                    )?;
                }
            }
            Ok(())
        }
    );
    fam!(
        "aliyun_cloud_assistant_plugin_status",
        "gauge",
        "Cloud Assistant plugin state on the instance (state set: 1 for the current state).",
        move |out: &mut Out<'_>| {
            for ((acct, region), d) in regions() {
                for p in &d.plugins {
                    for s in states(PLUGIN_STATES, &p.status, mode) {
                        let [r, i] = base(region, &p.instance_id);
                        series(
                            out,
                            acct,
                            "aliyun_cloud_assistant_plugin_status",
                            &[r, i, ("plugin", &p.name), ("status", s)],
                            (s == &*p.status) as u8,
                        )?;
                    }
                }
            }
            Ok(())
        }
    );
    fam!(
        "aliyun_cloud_assistant_plugin_info",
        "gauge",
        "Cloud Assistant plugin version on the instance; always 1.",
        move |out: &mut Out<'_>| {
            for ((acct, region), d) in regions() {
                for p in &d.plugins {
                    let [r, i] = base(region, &p.instance_id);
                    series(
                        out,
                        acct,
                        "aliyun_cloud_assistant_plugin_info",
                        &[
                            r,
                            i,
                            ("plugin", &p.name),
                            ("version", p.version.as_deref().unwrap_or("")),
                        ],
                        1,
                    )?;
                }
            }
            Ok(())
        }
    );
    f.push(Family {
        name: "aliyun_cloud_assistant_plugin_last_heartbeat_timestamp_seconds".into(),
        kind: "gauge",
        help: "Last heartbeat of the plugin, Unix seconds.",
        body: per_plugin(
            boxed,
            "aliyun_cloud_assistant_plugin_last_heartbeat_timestamp_seconds",
            |p, _| p.last_heartbeat,
        ),
    });
    f.push(Family {
        name: "aliyun_cloud_assistant_plugin_heartbeat_age_seconds".into(),
        kind: "gauge",
        help: "Seconds between the collection and the plugin's last heartbeat.",
        body: per_plugin(
            boxed,
            "aliyun_cloud_assistant_plugin_heartbeat_age_seconds",
            |p, d| p.last_heartbeat.map(|h| (d.collected_at - h).max(0)),
        ),
    });
    fam!(
        "aliyun_cloud_assistant_plugins",
        "gauge",
        "Cloud Assistant plugins per region, plugin and state.",
        move |out: &mut Out<'_>| {
            for ((acct, region), d) in regions() {
                let counts = count_by(d.plugins.iter().map(|p| (&*p.name, &*p.status)));
                let names: BTreeSet<&str> = counts.keys().map(|k| k.0).collect();
                for name in names {
                    let extra = counts
                        .keys()
                        .filter(|k| k.0 == name && !PLUGIN_STATES.contains(&k.1))
                        .map(|k| k.1);
                    let all: Vec<&str> = PLUGIN_STATES.iter().copied().chain(extra).collect();
                    for s in all {
                        let n = counts.get(&(name, s)).copied().unwrap_or(0);
                        series(
                            out,
                            acct,
                            "aliyun_cloud_assistant_plugins",
                            &[("region_id", region), ("plugin", name), ("status", s)],
                            n,
                        )?;
                    }
                }
            }
            Ok(())
        }
    );

    // The exporter's own per-region series.
    fam!(
        "aliyun_cloud_assistant_exporter_region_up",
        "gauge",
        "1 if the region's last collection cycle succeeded, else 0.",
        move |out: &mut Out<'_>| {
            for (key, r) in &snap.regions {
                let (acct, region) = snap.labels(key);
                series(
                    out,
                    acct,
                    "aliyun_cloud_assistant_exporter_region_up",
                    &[("region_id", region)],
                    r.up as u8,
                )?;
            }
            Ok(())
        }
    );
    fam!(
        "aliyun_cloud_assistant_exporter_region_last_success_timestamp_seconds",
        "gauge",
        "When the region was last collected successfully, Unix seconds.",
        move |out: &mut Out<'_>| {
            for (key, r) in &snap.regions {
                let (acct, region) = snap.labels(key);
                if let Some(t) = r.last_success {
                    series(
                        out,
                        acct,
                        "aliyun_cloud_assistant_exporter_region_last_success_timestamp_seconds",
                        &[("region_id", region)],
                        t,
                    )?;
                }
            }
            Ok(())
        }
    );
    fam!(
        "aliyun_cloud_assistant_exporter_collection_duration_seconds",
        "gauge",
        "Seconds the region's last collection cycle took.",
        move |out: &mut Out<'_>| {
            for (key, r) in &snap.regions {
                let (acct, region) = snap.labels(key);
                series(
                    out,
                    acct,
                    "aliyun_cloud_assistant_exporter_collection_duration_seconds",
                    &[("region_id", region)],
                    format!("{:.6}", r.duration),
                )?;
            }
            Ok(())
        }
    );
    fam!(
        "aliyun_cloud_assistant_exporter_cycles_total",
        "counter",
        "Collection cycles finished since the exporter started.",
        move |out: &mut Out<'_>| series(
            out,
            None,
            "aliyun_cloud_assistant_exporter_cycles_total",
            &[],
            snap.cycles
        )
    );
    fam!(
        "aliyun_cloud_assistant_exporter_cycle_duration_seconds",
        "gauge",
        "Seconds the last whole collection cycle took, every region included.",
        move |out: &mut Out<'_>| {
            if snap.cycles > 0 {
                series(
                    out,
                    None,
                    "aliyun_cloud_assistant_exporter_cycle_duration_seconds",
                    &[],
                    format!("{:.6}", snap.cycle_duration),
                )?;
            }
            Ok(())
        }
    );
    fam!(
        "aliyun_cloud_assistant_exporter_last_collection_timestamp_seconds",
        "gauge",
        "When the last collection cycle finished, Unix seconds.",
        move |out: &mut Out<'_>| {
            if let Some(t) = snap.last_collection {
                series(
                    out,
                    None,
                    "aliyun_cloud_assistant_exporter_last_collection_timestamp_seconds",
                    &[],
                    t,
                )?;
            }
            Ok(())
        }
    );
    fam!(
        "aliyun_cloud_assistant_exporter_plugin_names",
        "gauge",
        "Plugin names swept by name in every cycle, by source (flag, discovered).",
        move |out: &mut Out<'_>| {
            for source in ["discovered", "flag"] {
                let n = snap.plugin_names.get(source).copied().unwrap_or(0);
                series(
                    out,
                    None,
                    "aliyun_cloud_assistant_exporter_plugin_names",
                    &[("source", source)],
                    n,
                )?;
            }
            Ok(())
        }
    );
    f
}

/// The page is compressed once per cycle and sent on every scrape: level 4
/// (zlib-rs) makes it ~13% smaller than level 1 for about twice the
/// compression CPU (0.9 s instead of 0.5 s for a 366 MB page), spent on the
/// background thread; levels above 4 save little more for much more CPU.
pub const GZIP_LEVEL: u32 = 4;

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
    let mut families = fleet_families(snap, mode);
    let encoder = prometheus::TextEncoder::new();
    for mf in registry.gather() {
        let mut text = String::new();
        if encoder
            .encode_utf8(std::slice::from_ref(&mf), &mut text)
            .is_err()
        {
            continue;
        }
        families.push(Family {
            name: mf.name().to_string(),
            kind: "",
            help: "",
            body: Box::new(move |out| out.raw(text.as_bytes())),
        });
    }
    families.sort_by(|a, b| a.name.cmp(&b.name));
    let mut gz = GzEncoder::new(
        Vec::with_capacity(gzip_hint + gzip_hint / 16),
        Compression::new(GZIP_LEVEL),
    );
    let mut out = Out::new(&mut gz);
    for fam in &families {
        if !fam.kind.is_empty() {
            for line in [("# HELP ", fam.help), ("# TYPE ", fam.kind)] {
                out.raw(line.0.as_bytes())?;
                out.raw(fam.name.as_bytes())?;
                out.raw(b" ")?;
                out.raw(line.1.as_bytes())?;
                out.raw(b"\n")?;
            }
        }
        (fam.body)(&mut out)?;
    }
    out.flush()?;
    let plain_len = out.written;
    let gzip = gz.finish()?;
    Ok(Page {
        gzip: Bytes::from(gzip),
        plain_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AgentStatus, InstanceStatus, PluginStatus};
    use crate::snapshot::{RegionKey, RegionState};
    use std::sync::Arc;

    fn snap() -> FleetSnapshot {
        let data = RegionData {
            agents: vec![
                AgentStatus {
                    instance_id: "i-1".into(),
                    up: true,
                    version: Some("2.2.4".into()),
                    os_type: Some("Linux".into()),
                    session_manager: Some(true),
                    active_tasks: Some(2),
                    invocations: Some(9),
                    last_invoked: None,
                    last_heartbeat: Some(940),
                },
                AgentStatus {
                    instance_id: "i-2".into(),
                    ..Default::default()
                },
            ],
            instances: vec![
                InstanceStatus {
                    instance_id: "i-1".into(),
                    status: "Running".into(),
                },
                InstanceStatus {
                    instance_id: "i-2".into(),
                    status: "Hibernated".into(),
                },
            ],
            plugins: vec![PluginStatus {
                instance_id: "i-1".into(),
                name: "p\"q".into(),
                version: None,
                status: "Crashed".into(),
                first_heartbeat: None,
                last_heartbeat: Some(900),
            }],
            collected_at: 1000,
        };
        let mut s = FleetSnapshot::default();
        s.regions.insert(
            RegionKey::new("", "r"),
            RegionState {
                data: Some(Arc::new(data)),
                up: true,
                last_success: Some(1000),
                duration: 0.5,
                ..RegionState::default()
            },
        );
        s.regions.insert(
            RegionKey::new("", "dead"),
            RegionState {
                data: None,
                up: false,
                last_success: None,
                duration: 1.0,
                ..RegionState::default()
            },
        );
        s
    }

    fn text(mode: StateSets) -> String {
        let page = render(&snap(), &Registry::new(), mode, 0).expect("render");
        let plain = page.plain().expect("gunzip");
        assert_eq!(plain.len(), page.plain_len);
        String::from_utf8(plain).expect("utf8")
    }

    #[test]
    fn renders_series_state_sets_and_aggregates() {
        let t = text(StateSets::All);
        for line in [
            "aliyun_cloud_assistant_agent_up{region_id=\"r\",instance_id=\"i-1\"} 1",
            "aliyun_cloud_assistant_agent_up{region_id=\"r\",instance_id=\"i-2\"} 0",
            "aliyun_cloud_assistant_agent_info{region_id=\"r\",instance_id=\"i-1\",version=\"2.2.4\",os_type=\"Linux\",session_manager=\"true\"} 1",
            "aliyun_cloud_assistant_agent_heartbeat_age_seconds{region_id=\"r\",instance_id=\"i-1\"} 60",
            "aliyun_cloud_assistant_instance_status{region_id=\"r\",instance_id=\"i-1\",status=\"Stopped\"} 0",
            "aliyun_cloud_assistant_instance_status{region_id=\"r\",instance_id=\"i-2\",status=\"Hibernated\"} 1",
            "aliyun_cloud_assistant_instances{region_id=\"r\",status=\"Hibernated\"} 1",
            "aliyun_cloud_assistant_agents{region_id=\"r\",status=\"not_installed\"} 1",
            "aliyun_cloud_assistant_plugin_status{region_id=\"r\",instance_id=\"i-1\",plugin=\"p\\\"q\",status=\"Crashed\"} 1",
            "aliyun_cloud_assistant_plugins{region_id=\"r\",plugin=\"p\\\"q\",status=\"Running\"} 0",
            "aliyun_cloud_assistant_exporter_region_up{region_id=\"dead\"} 0",
            "# TYPE aliyun_cloud_assistant_agent_invocations_total counter",
        ] {
            assert!(t.lines().any(|l| l == line), "missing {line}\n{t}");
        }
        // Absent fields are absent series, not zeros.
        assert!(!t.contains(
            "agent_last_heartbeat_timestamp_seconds{region_id=\"r\",instance_id=\"i-2\"}"
        ));
        assert!(
            !t.contains("last_invocation_timestamp_seconds{region_id=\"r\",instance_id=\"i-1\"}")
        );
        assert_eq!(
            t.matches("instance_status{region_id=\"r\",instance_id=\"i-1\"")
                .count(),
            5
        );
        // Families are sorted by name.
        let names: Vec<&str> = t
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap_or(""))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn accounts_label_every_series_when_configured() {
        let mut s = snap();
        let plain = String::from_utf8(
            render(&s, &Registry::new(), StateSets::All, 0)
                .expect("render")
                .plain()
                .expect("gunzip"),
        )
        .expect("utf8");
        assert!(!plain.contains("account="));
        let state = s.regions.remove(&RegionKey::new("", "r")).expect("region");
        s.regions.insert(RegionKey::new("prod", "r"), state);

        let t = String::from_utf8(
            render(&s, &Registry::new(), StateSets::All, 0)
                .expect("render")
                .plain()
                .expect("gunzip"),
        )
        .expect("utf8");
        assert!(t.contains("aliyun_cloud_assistant_agent_up{account=\"prod\",region_id=\"r\",instance_id=\"i-1\"} 1"), "{t}");
        assert!(t.contains(
            "aliyun_cloud_assistant_exporter_region_up{account=\"prod\",region_id=\"r\"} 1"
        ));
        assert!(t.contains(
            "aliyun_cloud_assistant_agents{account=\"prod\",region_id=\"r\",status=\"up\"} 1"
        ));
        // Series that are not per account have none.
        assert!(t.contains("aliyun_cloud_assistant_exporter_cycles_total 0"));
    }

    #[test]
    fn integers_are_written_exactly() {
        for v in [0i64, 7, -7, 1_700_000_000, i64::MAX, i64::MIN] {
            let mut b = Vec::new();
            v.write_to(&mut b);
            assert_eq!(String::from_utf8(b).expect("ascii"), v.to_string());
        }
        let mut b = Vec::new();
        u64::MAX.write_to(&mut b);
        assert_eq!(b, u64::MAX.to_string().into_bytes());
    }

    #[test]
    fn current_mode_writes_only_the_current_state() {
        let t = text(StateSets::Current);
        assert_eq!(
            t.matches("instance_status{region_id=\"r\",instance_id=\"i-1\"")
                .count(),
            1
        );
        assert!(
            t.contains("instance_status{region_id=\"r\",instance_id=\"i-1\",status=\"Running\"} 1")
        );
        assert_eq!(t.matches("plugin_status{").count(), 1);
    }
}
