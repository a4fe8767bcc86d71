//! The simulated fleet: instances, agents and plugins generated from a seed,
//! and their state at any moment (heartbeats advance with the clock, some
//! agents stop beating after a while, so dashboards see staleness grow).

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use super::inventory;
use super::invocations::{self, SimInvocation};
pub use super::model::{
    Agent, HybridPaging, RegionSpec, SimActivation, SimInstance, SimManagedInstance, SimPlugin,
};
use super::model::{LINUX_VERSIONS, WINDOWS_VERSIONS, pick};
pub use super::quirks::{
    QUIRK_BOOL_CAPITAL, QUIRK_MINUTE_TIMES, QUIRK_NUMBERS_AS_STRINGS, QUIRK_OMIT_OPTIONAL,
};
use super::quirks::{num_json, status_key, status_word, time_json};
use super::reference;
pub use super::reference::{INSTANCE_STATES, PLUGIN_STATES};
use crate::clock::format_iso8601;
use crate::rng::Rng;

#[derive(Clone, Debug)]
pub struct FleetConfig {
    pub seed: u64,
    pub regions: Vec<RegionSpec>,
    /// Plugin names installed across the fleet.
    pub plugins: Vec<String>,
    /// Unix time the fleet "starts": heartbeats that go stale do so after it.
    pub start: i64,
}

impl FleetConfig {
    /// A few hundred instances over several regions, for `--demo`.
    pub fn demo(start: i64) -> Self {
        FleetConfig {
            seed: 42,
            regions: vec![
                RegionSpec::new("cn-hangzhou", 137)
                    .hybrid(12, 4)
                    .invocations(40),
                RegionSpec::new("cn-shanghai", 90)
                    .hybrid(5, 2)
                    .invocations(20),
                RegionSpec::new("ap-southeast-1", 51)
                    .quirky()
                    .hybrid(3, 1)
                    .invocations(10),
                RegionSpec::new("eu-central-1", 22).hybrid_not_supported(),
                RegionSpec::new("us-west-1", 0).hybrid_not_supported(),
            ],
            plugins: vec![
                "ecs-tool-monitor".into(),
                "aliyun-service-ops".into(),
                "oos-cloudmonitor".into(),
            ],
            start,
        }
    }
}

/// Lowest agent versions that answer ListPluginStatus.
pub fn agent_supports_plugins(os_type: &str, version: &str) -> bool {
    reference::answers_plugin_status(os_type, version)
}

fn weighted<'a>(rng: &mut Rng, items: &[(&'a str, u64)]) -> &'a str {
    let total: u64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.below(total);
    for (name, w) in items {
        if x < *w {
            return name;
        }
        x -= w;
    }
    items[0].0
}

/// Seed offsets of the extra streams (DescribeInstances data, hybrid fleet).
const INFO_STREAM: u64 = 0x1d0c_a7ed_5eed_0001;
const HYBRID_STREAM: u64 = 0x4b1d_5e4e_5eed_0002;
const INVOCATION_STREAM: u64 = 0x1a7b_5e4e_5eed_0003;

fn region_seed(seed: u64, region: &str) -> u64 {
    // FNV-1a of the region id, mixed with the fleet seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in region.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^ seed.rotate_left(17)
}

/// Generates one instance; `plugin_names` are the fleet's plugins.
fn generate_instance(rng: &mut Rng, cfg: &FleetConfig, quirky: bool) -> SimInstance {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let id: String = (0..18)
        .map(|_| ALPHABET[rng.below(36) as usize] as char)
        .collect();
    let status = weighted(
        rng,
        &[
            ("Running", 70),
            ("Stopped", 15),
            ("Pending", 5),
            ("Starting", 5),
            ("Stopping", 5),
        ],
    );
    let os_type = if rng.chance(0.8) { "Linux" } else { "Windows" };
    let version = pick(
        rng,
        if os_type == "Linux" {
            LINUX_VERSIONS
        } else {
            WINDOWS_VERSIONS
        },
    )
    .to_string();
    let agent = match weighted(
        rng,
        &[
            ("none", 10),
            ("beating", 72),
            ("stale-later", 6),
            ("down", 12),
        ],
    ) {
        "none" => Agent::NotInstalled,
        "beating" if status == "Stopped" => Agent::Down {
            last_heartbeat: cfg.start - 3600 - rng.below(86_400 * 3) as i64,
        },
        "beating" => Agent::Beating { stops_at: None },
        "stale-later" => Agent::Beating {
            stops_at: Some(cfg.start + 60 + rng.below(3600) as i64),
        },
        _ => Agent::Down {
            last_heartbeat: cfg.start - 600 - rng.below(86_400 * 7) as i64,
        },
    };
    let invocations = if agent == Agent::NotInstalled {
        0
    } else {
        rng.below(5000)
    };
    let last_invoked = (invocations > 0).then(|| cfg.start - rng.below(86_400 * 30) as i64);
    let active_tasks = if matches!(agent, Agent::Beating { .. }) {
        rng.below(4)
    } else {
        0
    };
    let phase = rng.below(60) as i64;
    let mut plugins = Vec::new();
    if agent != Agent::NotInstalled {
        for name in &cfg.plugins {
            if rng.chance(0.6) {
                plugins.push(SimPlugin {
                    name: name.clone(),
                    version: format!("1.{}.{}", rng.below(3), rng.below(10)),
                    status: PLUGIN_STATES[rng.below(PLUGIN_STATES.len() as u64) as usize]
                        .to_string(),
                    first_heartbeat: cfg.start - 86_400 * 30 - rng.below(86_400 * 30) as i64,
                    lag: rng.below(600) as i64,
                });
            }
        }
    }
    let quirks = if quirky { rng.below(16) as u8 } else { 0 };
    SimInstance {
        id: format!("i-{id}"),
        status: status.to_string(),
        os_type: os_type.to_string(),
        agent,
        version,
        active_tasks,
        invocations,
        last_invoked,
        phase,
        plugins,
        quirks,
        // Filled by `inventory::describe_instances` from a stream of its own.
        name: String::new(),
        zone_id: String::new(),
        instance_type: String::new(),
        tags: Vec::new(),
    }
}

/// Every region's instances, sorted by id (the order pages are cut in).
#[derive(Clone, Debug)]
pub struct Fleet {
    pub regions: BTreeMap<String, SimRegion>,
}

#[derive(Clone, Debug)]
pub struct SimRegion {
    pub quirky: bool,
    pub instances: Vec<SimInstance>,
    /// Hybrid servers, sorted by id.
    pub managed: Vec<SimManagedInstance>,
    /// Activation codes, sorted by id.
    pub activations: Vec<SimActivation>,
    /// Command invocations, newest first; tests add more while it runs.
    pub invocations: Vec<SimInvocation>,
    pub hybrid_supported: bool,
    pub hybrid_paging: HybridPaging,
    /// Positions in `instances` of the instances reporting each plugin,
    /// built on first use: a sweep page then costs its own rows, not a scan
    /// of the region (the bench runs the simulator beside the exporter).
    /// `Simulator::update_fleet` clears it.
    pub(crate) by_plugin: OnceLock<HashMap<String, Vec<u32>>>,
}

impl SimRegion {
    pub fn new(quirky: bool, instances: Vec<SimInstance>) -> Self {
        SimRegion {
            quirky,
            instances,
            managed: Vec::new(),
            activations: Vec::new(),
            invocations: Vec::new(),
            hybrid_supported: true,
            hybrid_paging: HybridPaging::Tokens,
            by_plugin: OnceLock::new(),
        }
    }

    /// The positions of the instances that report plugin `name`, in id order.
    pub fn with_plugin(&self, name: &str) -> &[u32] {
        let index = self.by_plugin.get_or_init(|| {
            let mut m: HashMap<String, Vec<u32>> = HashMap::new();
            for (pos, inst) in self.instances.iter().enumerate() {
                for p in &inst.plugins {
                    let rows = m.entry(p.name.clone()).or_default();
                    // An instance listed once even if it reports a name twice.
                    if rows.last() != Some(&(pos as u32)) {
                        rows.push(pos as u32);
                    }
                }
            }
            m
        });
        index.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

impl Fleet {
    pub fn generate(cfg: &FleetConfig) -> Self {
        let mut regions = BTreeMap::new();
        for spec in &cfg.regions {
            let mut rng = Rng::new(region_seed(cfg.seed, &spec.id));
            let mut instances: Vec<SimInstance> = (0..spec.instances)
                .map(|_| generate_instance(&mut rng, cfg, spec.quirky))
                .collect();
            instances.sort_by(|a, b| a.id.cmp(&b.id));
            instances.dedup_by(|a, b| a.id == b.id);
            // Names, tags and the hybrid fleet come from streams of their
            // own: every fleet generated before they existed stays the same.
            let seed = region_seed(cfg.seed, &spec.id);
            inventory::describe_instances(
                &mut instances,
                &spec.id,
                &mut Rng::new(seed ^ INFO_STREAM),
            );
            let mut region = SimRegion::new(spec.quirky, instances);
            let (activations, managed) =
                inventory::generate_hybrid(&mut Rng::new(seed ^ HYBRID_STREAM), cfg.start, spec);
            region.managed = managed;
            region.activations = activations;
            if spec.invocations > 0 {
                let ids: Vec<String> = region.instances.iter().map(|i| i.id.clone()).collect();
                region.invocations = invocations::generate(
                    &mut Rng::new(seed ^ INVOCATION_STREAM),
                    &ids,
                    spec.invocations,
                    cfg.start,
                    spec.quirky,
                );
            }
            region.hybrid_supported = spec.hybrid_supported;
            region.hybrid_paging = spec.hybrid_paging;
            regions.insert(spec.id.clone(), region);
        }
        Fleet { regions }
    }

    pub fn instance_count(&self) -> usize {
        self.regions.values().map(|r| r.instances.len()).sum()
    }
}

impl SimInstance {
    /// Last heartbeat at `now`, if the agent ever beat.
    pub fn last_heartbeat(&self, now: i64) -> Option<i64> {
        match self.agent {
            Agent::NotInstalled => None,
            Agent::Down { last_heartbeat } => Some(last_heartbeat),
            Agent::Beating { stops_at } => {
                let t = stops_at.map_or(now, |s| s.min(now));
                Some(t - (t + self.phase).rem_euclid(60))
            }
        }
    }

    /// Session Manager needs Linux >= 2.2.3.189 or Windows >= 2.1.3.189.
    pub fn session_manager(&self) -> bool {
        reference::supports_session_manager(&self.os_type, &self.version)
    }

    /// CloudAssistantStatus: a heartbeat within the last 2 minutes.
    pub fn agent_up(&self, now: i64) -> bool {
        self.last_heartbeat(now).is_some_and(|h| now - h < 120)
    }

    fn time(&self, t: i64) -> Value {
        time_json(t, self.quirks)
    }

    fn num(&self, n: u64) -> Value {
        num_json(n, self.quirks)
    }

    /// The DescribeCloudAssistantStatus row. `old_keys`: the misspelt form.
    pub fn agent_json(&self, now: i64, old_keys: bool) -> Value {
        let up = self.agent_up(now);
        let mut m = Map::new();
        m.insert("InstanceId".into(), json!(self.id));
        m.insert(
            status_key(old_keys).into(),
            json!(status_word(up, self.quirks)),
        );
        let installed = self.agent != Agent::NotInstalled;
        let omit = self.quirks & QUIRK_OMIT_OPTIONAL != 0;
        if installed {
            m.insert("CloudAssistantVersion".into(), json!(self.version));
            m.insert("OSType".into(), json!(self.os_type));
            m.insert("ActiveTaskCount".into(), self.num(self.active_tasks));
            m.insert("InvocationCount".into(), self.num(self.invocations));
            if !omit {
                m.insert(
                    "SupportSessionManager".into(),
                    json!(self.session_manager()),
                );
            }
            if let Some(t) = self.last_invoked.filter(|_| !omit) {
                m.insert("LastInvokedTime".into(), self.time(t));
            }
            if let Some(t) = self.last_heartbeat(now) {
                m.insert("LastHeartbeatTime".into(), self.time(t));
            }
        } else {
            m.insert("CloudAssistantVersion".into(), json!(""));
            if !omit {
                m.insert("OSType".into(), json!(self.os_type));
                m.insert("ActiveTaskCount".into(), self.num(0));
                m.insert("InvocationCount".into(), self.num(0));
                m.insert("SupportSessionManager".into(), json!(false));
            }
        }
        Value::Object(m)
    }

    /// The plugin's last heartbeat at `now`: it beats with the agent.
    pub fn plugin_heartbeat(&self, p: &SimPlugin, now: i64) -> i64 {
        self.last_heartbeat(now).unwrap_or(p.first_heartbeat) - p.lag
    }

    pub fn plugin_json(&self, p: &SimPlugin, now: i64) -> Value {
        json!({
            "PluginName": p.name,
            "PluginVersion": p.version,
            "PluginStatus": p.status,
            "FirstHeartbeatTime": format_iso8601(p.first_heartbeat),
            "LastHeartbeatTime": format_iso8601(self.plugin_heartbeat(p, now).max(p.first_heartbeat)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn plugin_index_lists_what_a_scan_finds() {
        let fleet = Fleet::generate(&FleetConfig::demo(1_700_000_000));
        let mut checked = 0;
        for r in fleet.regions.values() {
            let names: BTreeSet<&str> = r
                .instances
                .iter()
                .flat_map(|i| i.plugins.iter().map(|p| p.name.as_str()))
                .collect();
            for name in names {
                checked += 1;
                let scan: Vec<u32> = (0..r.instances.len() as u32)
                    .filter(|&k| {
                        r.instances[k as usize]
                            .plugins
                            .iter()
                            .any(|p| p.name == name)
                    })
                    .collect();
                assert_eq!(r.with_plugin(name), scan.as_slice(), "{name}");
            }
            assert!(r.with_plugin("no-such-plugin").is_empty());
        }
        assert!(checked > 3, "the demo fleet has plugins");
    }

    #[test]
    fn same_seed_same_fleet() {
        let cfg = FleetConfig::demo(1_700_000_000);
        let a = Fleet::generate(&cfg);
        let b = Fleet::generate(&cfg);
        let ids = |f: &Fleet| {
            f.regions
                .values()
                .flat_map(|r| r.instances.iter().map(|i| i.id.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(a.instance_count(), 137 + 90 + 51 + 22);
        let mut other = cfg.clone();
        other.seed = 43;
        assert_ne!(ids(&a), ids(&Fleet::generate(&other)));
    }

    #[test]
    fn heartbeats_advance_and_some_go_stale() {
        let start = 1_700_000_000;
        let cfg = FleetConfig::demo(start);
        let fleet = Fleet::generate(&cfg);
        let all: Vec<&SimInstance> = fleet
            .regions
            .values()
            .flat_map(|r| r.instances.iter())
            .collect();
        let up_at = |t: i64| all.iter().filter(|i| i.agent_up(t)).count();
        let beating_later = all
            .iter()
            .filter(|i| matches!(i.agent, Agent::Beating { stops_at: Some(_) }))
            .count();
        assert!(beating_later > 0);
        assert!(
            up_at(start + 7200) < up_at(start),
            "agents go stale over time"
        );
        for i in &all {
            if let Some(h) = i.last_heartbeat(start) {
                assert!(h <= start);
            }
        }
    }

    #[test]
    fn hybrid_fleet_has_every_kind_of_code_and_server() {
        let start = 1_700_000_000;
        let fleet = Fleet::generate(&FleetConfig::demo(start));
        let r = &fleet.regions["cn-hangzhou"];
        assert_eq!((r.managed.len(), r.activations.len()), (12, 4));
        assert!(r.managed.iter().any(|m| m.connected) && r.managed.iter().any(|m| !m.connected));
        assert!(r.activations.iter().any(|a| a.expires_at() < start));
        assert!(r.activations.iter().any(|a| a.disabled));
        assert!(
            r.activations
                .iter()
                .any(|a| a.limit == a.registered + a.deregistered + 1
                    && a.registered + a.deregistered >= 9)
        );
        assert!(
            r.activations
                .iter()
                .any(|a| (start..start + 86_400).contains(&a.expires_at()))
        );
        for a in &r.activations {
            let users = r.managed.iter().filter(|m| m.activation_id == a.id).count() as u64;
            assert_eq!(a.registered, users, "{}", a.id);
            assert!(
                a.limit > a.registered + a.deregistered,
                "room left in {}",
                a.id
            );
        }
        assert!(!fleet.regions["eu-central-1"].hybrid_supported);
        assert!(fleet.regions["ap-southeast-1"].quirky);
    }

    #[test]
    fn instances_have_names_tags_and_one_has_twenty() {
        let fleet = Fleet::generate(&FleetConfig::demo(1_700_000_000));
        for (id, r) in &fleet.regions {
            if let Some(first) = r.instances.first() {
                assert_eq!(first.tags.len(), inventory::MAX_TAGS, "{id}");
                let mut keys: Vec<&str> = first.tags.iter().map(|(k, _)| k.as_str()).collect();
                keys.sort_unstable();
                keys.dedup();
                assert_eq!(keys.len(), inventory::MAX_TAGS, "{id}: unique keys");
            }
            for i in &r.instances {
                assert!(!i.name.is_empty() && i.zone_id.starts_with(id.as_str()));
                assert!(i.tags.len() <= inventory::MAX_TAGS);
            }
        }
        let names: Vec<&str> = fleet
            .regions
            .values()
            .flat_map(|r| r.instances.iter().map(|i| i.name.as_str()))
            .collect();
        for odd in [" ", "\"", "'", "\\", "应"] {
            assert!(names.iter().any(|n| n.contains(odd)), "a name with {odd:?}");
        }
    }
}
