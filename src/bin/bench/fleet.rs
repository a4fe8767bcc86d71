//! The benchmark's fleet and the fewest calls a round of it can make.

use cloud_assistant_exporter::simulator::{Fleet, FleetConfig, RegionSpec};

pub const PLUGINS: [&str; 3] = ["ecs-tool-monitor", "aliyun-service-ops", "oos-cloudmonitor"];
pub const START: i64 = 1_780_000_000;

/// 10 regions; the largest holds 40%, the other nine share the rest.
pub fn fleet_config(size: usize) -> FleetConfig {
    let largest = size * 2 / 5;
    let rest = size - largest;
    // A command history of one invocation per 100 instances (some failing
    // on all or some of their hosts) and two scheduled tasks a region.
    let region = |id: &str, n: usize| RegionSpec::new(id, n).invocations((n / 100).max(1));
    let mut regions = vec![region("bench-00", largest)];
    for i in 1..10 {
        let n = rest / 9 + usize::from(i <= rest % 9);
        regions.push(region(&format!("bench-{i:02}"), n));
    }
    FleetConfig {
        seed: 2024,
        regions,
        plugins: PLUGINS.iter().map(|s| s.to_string()).collect(),
        start: START,
    }
}

/// The fewest calls a cycle can make, per action, and the longest chain of
/// calls that must follow one another (DescribeRegions, then the longest
/// NextToken walk); per region, its own longest NextToken walk.
pub struct Minimum {
    pub regions: u64,
    pub agents: u64,
    pub instances: u64,
    pub plugin_sweeps: u64,
    pub chain: u64,
    pub region_chain: std::collections::HashMap<String, u64>,
}

fn pages(n: usize) -> u64 {
    (n as u64).div_ceil(50).max(1)
}

pub fn minimum(fleet: &Fleet) -> Minimum {
    let mut m = Minimum {
        regions: 1,
        agents: 0,
        instances: 0,
        plugin_sweeps: 0,
        chain: 0,
        region_chain: Default::default(),
    };
    for (id, r) in &fleet.regions {
        let n = r.instances.len();
        m.agents += pages(n);
        m.instances += pages(n);
        m.chain = m.chain.max(pages(n));
        let own = m.region_chain.entry(id.clone()).or_insert(0);
        *own = (*own).max(pages(n));
        for name in PLUGINS {
            let rows = r
                .instances
                .iter()
                .filter(|i| i.plugins.iter().any(|p| p.name == name))
                .count();
            m.plugin_sweeps += pages(rows);
            m.chain = m.chain.max(pages(rows));
            let own = m.region_chain.entry(id.clone()).or_insert(0);
            *own = (*own).max(pages(rows));
        }
    }
    m.chain += 1;
    m
}
