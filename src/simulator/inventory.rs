//! What the simulator's DescribeInstances, DescribeManagedInstances and
//! DescribeActivations tell: instance names, zones, types and tags, hybrid
//! servers (`mi-*`) and the activation codes that registered them. All of it
//! is drawn from random streams of its own, so the rest of a seeded fleet is
//! the same with or without it.

use serde_json::{Map, Value, json};

use super::model::{
    LINUX_VERSIONS, RegionSpec, SimActivation, SimInstance, SimManagedInstance, WINDOWS_VERSIONS,
    pick,
};
use super::quirks::{QUIRK_OMIT_OPTIONAL, bool_json, num_json, tags_json, time_json};
use crate::rng::Rng;

/// Names with the characters a label value must survive: spaces, both
/// quotes, a backslash, non-ASCII. `#` becomes the instance's number.
const NAMES: &[&str] = &[
    "web #",
    "db \"primary\" #",
    "应用服务器-#",
    "café-#",
    "o'brien's box #",
    "batch-worker-#",
    "back\\slash #",
    "api-gateway-#",
];
const ZONES: &[&str] = &["a", "b", "c", "g", "h"];
const TYPES: &[&str] = &[
    "ecs.g7.large",
    "ecs.c7.xlarge",
    "ecs.r7.2xlarge",
    "ecs.t6-c1m1.large",
    "ecs.g8i.4xlarge",
];
/// Tags with odd keys, an empty value and non-ASCII; the first instance of
/// a region carries all of them and more, 20 in all (the API's maximum).
const TAG_CHOICES: &[(&str, &[&str], f64)] = &[
    ("env", &["prod", "staging", "dev"], 0.8),
    (
        "team",
        &["payments", "search", "data platform", "运维"],
        0.6,
    ),
    ("Cost Center", &["CC-1001", "CC-2002"], 0.3),
    ("app.kubernetes.io/name", &["nginx", "redis"], 0.2),
    ("owner", &[""], 0.2),
    ("部门", &["研发"], 0.1),
];
/// Tags per resource the API allows.
pub const MAX_TAGS: usize = 20;

fn numbered(rng: &mut Rng, n: usize) -> String {
    pick(rng, NAMES).replace('#', &n.to_string())
}

fn draw_tags(rng: &mut Rng, all: bool) -> Vec<(String, String)> {
    let mut tags = Vec::new();
    for (key, values, p) in TAG_CHOICES {
        // Always draw, so `all` changes nothing but the outcome.
        let chosen = rng.chance(*p);
        let value = pick(rng, values);
        if chosen || all {
            tags.push((key.to_string(), value.to_string()));
        }
    }
    if all {
        for k in tags.len()..MAX_TAGS {
            tags.push((format!("extra-{k:02}"), format!("v{k}")));
        }
    }
    tags
}

/// Fills in the DescribeInstances side of a region's instances (sorted by
/// id): the first one gets 20 tags.
pub fn describe_instances(instances: &mut [SimInstance], region: &str, rng: &mut Rng) {
    for (k, inst) in instances.iter_mut().enumerate() {
        inst.name = numbered(rng, k + 1);
        inst.zone_id = format!("{region}-{}", pick(rng, ZONES));
        inst.instance_type = pick(rng, TYPES).to_string();
        inst.tags = draw_tags(rng, k == 0);
    }
}

fn hex_id(rng: &mut Rng) -> String {
    let n = |rng: &mut Rng, digits: u32| {
        let v = rng.below(16u64.pow(digits));
        format!("{v:0width$X}", width = digits as usize)
    };
    format!(
        "{}-{}-4{}-{}-{}",
        n(rng, 8),
        n(rng, 4),
        n(rng, 3),
        n(rng, 4),
        n(rng, 12)
    )
}

/// The codes and the servers they registered. Code 0 has expired, code 1 is
/// disabled, code 2 has one registration left, code 3 expires within a day;
/// the rest are ordinary. Servers without codes name codes since deleted.
pub fn generate_hybrid(
    rng: &mut Rng,
    start: i64,
    spec: &RegionSpec,
) -> (Vec<SimActivation>, Vec<SimManagedInstance>) {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let quirks = |rng: &mut Rng| {
        if spec.quirky { rng.below(16) as u8 } else { 0 }
    };
    let mut codes: Vec<SimActivation> = (0..spec.activations)
        .map(|k| {
            let (created, ttl_hours) = match k {
                0 => (start - 10 * 86_400, 24),
                3 => (start - 20 * 3600, 24),
                _ => (
                    start - 3600 - rng.below(30 * 86_400) as i64,
                    *[720u64, 2160, 8760]
                        .get(rng.below(3) as usize)
                        .unwrap_or(&720),
                ),
            };
            SimActivation {
                id: hex_id(rng),
                instance_name: pick(
                    rng,
                    &["edge-node", "factory floor", "门店服务器", "dc \"east\""],
                )
                .to_string(),
                description: format!("code {k}"),
                limit: 0,
                registered: 0,
                deregistered: rng.below(4),
                disabled: k == 1,
                created,
                ttl_hours,
                tags: draw_tags(rng, false),
                quirks: quirks(rng),
            }
        })
        .collect();
    let mut managed: Vec<SimManagedInstance> = (0..spec.managed_instances)
        .map(|i| {
            let id: String = (0..17)
                .map(|_| ALPHABET[rng.below(36) as usize] as char)
                .collect();
            let linux = rng.chance(0.8);
            let invocations = rng.below(3000);
            let code = if codes.is_empty() {
                hex_id(rng)
            } else {
                codes[rng.below(codes.len() as u64) as usize].id.clone()
            };
            SimManagedInstance {
                id: format!("mi-{id}"),
                name: numbered(rng, i + 1),
                hostname: format!(
                    "{}-{:03}.corp.example",
                    pick(rng, &["rack-a", "rack-b", "edge"]),
                    i + 1
                ),
                connected: rng.chance(0.75),
                agent_version: pick(
                    rng,
                    if linux {
                        LINUX_VERSIONS
                    } else {
                        WINDOWS_VERSIONS
                    },
                )
                .to_string(),
                os_type: if linux { "linux" } else { "windows" }.to_string(),
                os_version: if linux {
                    pick(
                        rng,
                        &[
                            "Ubuntu 22.04.4 LTS",
                            "CentOS Linux release 7.9.2009 (Core)",
                            "Debian GNU/Linux 12 (bookworm)",
                        ],
                    )
                } else {
                    "Microsoft Windows Server 2019 Datacenter"
                }
                .to_string(),
                invocations,
                last_invoked: (invocations > 0).then(|| start - rng.below(30 * 86_400) as i64),
                registered_at: start - 3600 - rng.below(365 * 86_400) as i64,
                activation_id: code,
                intranet_ip: format!(
                    "10.{}.{}.{}",
                    rng.below(256),
                    rng.below(256),
                    1 + rng.below(254)
                ),
                tags: draw_tags(rng, false),
                quirks: quirks(rng),
            }
        })
        .collect();
    for (k, code) in codes.iter_mut().enumerate() {
        code.registered = managed
            .iter()
            .filter(|m| m.activation_id == code.id)
            .count() as u64;
        code.limit = if k == 2 {
            // Nearly full: at least 9 registrations made, one left.
            code.deregistered = code.deregistered.max(9u64.saturating_sub(code.registered));
            code.registered + code.deregistered + 1
        } else {
            code.registered + code.deregistered + 5 + rng.below(50)
        };
    }
    codes.sort_by(|a, b| a.id.cmp(&b.id));
    managed.sort_by(|a, b| a.id.cmp(&b.id));
    managed.dedup_by(|a, b| a.id == b.id);
    (codes, managed)
}

impl SimInstance {
    /// The DescribeInstances row.
    pub fn info_json(&self, quirky: bool) -> Value {
        let mut m = Map::new();
        m.insert("InstanceId".into(), json!(self.id));
        if self.quirks & QUIRK_OMIT_OPTIONAL == 0 {
            m.insert("InstanceName".into(), json!(self.name));
        }
        m.insert("ZoneId".into(), json!(self.zone_id));
        m.insert("InstanceType".into(), json!(self.instance_type));
        m.insert("OSType".into(), json!(self.os_type.to_ascii_lowercase()));
        m.insert("Status".into(), json!(self.status));
        // Fields the exporter does not read.
        m.insert("Cpu".into(), num_json(2, self.quirks));
        m.insert("Memory".into(), num_json(8192, self.quirks));
        if !self.tags.is_empty() {
            m.insert("Tags".into(), tags_json(&self.tags, !quirky));
        }
        Value::Object(m)
    }
}

impl SimManagedInstance {
    /// The DescribeManagedInstances row.
    pub fn json(&self) -> Value {
        let q = self.quirks;
        let mut m = Map::new();
        m.insert("InstanceId".into(), json!(self.id));
        m.insert("InstanceName".into(), json!(self.name));
        m.insert("Hostname".into(), json!(self.hostname));
        m.insert("Connected".into(), bool_json(self.connected, q));
        m.insert("AgentVersion".into(), json!(self.agent_version));
        m.insert("OsType".into(), json!(self.os_type));
        m.insert("OsVersion".into(), json!(self.os_version));
        m.insert("InvocationCount".into(), num_json(self.invocations, q));
        if let Some(t) = self.last_invoked.filter(|_| q & QUIRK_OMIT_OPTIONAL == 0) {
            m.insert("LastInvokedTime".into(), time_json(t, q));
        }
        m.insert("RegistrationTime".into(), time_json(self.registered_at, q));
        m.insert("ActivationId".into(), json!(self.activation_id));
        m.insert("IntranetIp".into(), json!(self.intranet_ip));
        m.insert(
            "MachineId".into(),
            json!(format!("{:032x}", self.registered_at)),
        );
        m.insert("Tags".into(), tags_json(&self.tags, false));
        Value::Object(m)
    }
}

impl SimActivation {
    /// The DescribeActivations row.
    pub fn json(&self) -> Value {
        let q = self.quirks;
        json!({
            "ActivationId": self.id,
            "InstanceName": self.instance_name,
            "Description": self.description,
            "InstanceCount": num_json(self.limit, q),
            "RegisteredCount": num_json(self.registered, q),
            "DeregisteredCount": num_json(self.deregistered, q),
            "Disabled": bool_json(self.disabled, q),
            "CreationTime": time_json(self.created, q),
            "TimeToLiveInHours": num_json(self.ttl_hours, q),
            "IpAddressRange": "0.0.0.0/0",
            "Tags": tags_json(&self.tags, false),
        })
    }
}
