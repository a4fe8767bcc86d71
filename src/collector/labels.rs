//! Rows whose label values would not make a sane series are dropped before
//! they reach the page, each kind warned about once and counted: a value
//! longer than 256 bytes, or a plugin name outside `[A-Za-z0-9._-]`. The
//! renderer escapes whatever it is given; this keeps an odd API answer from
//! making series nobody can query or that blow up the page.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::IntCounterVec;

use crate::api::invocations::Invocation;
use crate::api::{
    Activation, AgentStatus, InstanceInfo, InstanceStatus, ManagedInstance, PluginStatus,
};

/// The longest label value a row may carry.
pub const MAX_LABEL_BYTES: usize = crate::validate::MAX_LABEL_BYTES;

/// `rows_dropped_total{reason}` (see `own_metrics`), and which
/// reasons were already logged.
pub(super) struct Dropped {
    counter: IntCounterVec,
    warned: Mutex<HashSet<&'static str>>,
}

const LONG: &str = "label_too_long";
const PLUGIN: &str = "plugin_name";

fn long(v: &str) -> bool {
    v.len() > MAX_LABEL_BYTES
}

fn long_opt(v: &Option<std::sync::Arc<str>>) -> bool {
    v.as_deref().is_some_and(long)
}

impl Dropped {
    pub(super) fn new(registry: &prometheus::Registry) -> prometheus::Result<Self> {
        let counter = IntCounterVec::new(crate::own_metrics::ROWS_DROPPED.opts(), &["reason"])?;
        for r in [LONG, PLUGIN] {
            counter.with_label_values(&[r]);
        }
        registry.register(Box::new(counter.clone()))?;
        Ok(Dropped {
            counter,
            warned: Mutex::new(HashSet::new()),
        })
    }

    /// Keeps the rows `ok` says are fine; counts (and once logs) the rest.
    fn keep<T>(&self, rows: &mut Vec<T>, what: &str, ok: impl Fn(&T) -> Result<(), &'static str>) {
        rows.retain(|r| match ok(r) {
            Ok(()) => true,
            Err(reason) => {
                self.counter.with_label_values(&[reason]).inc();
                let first = self
                    .warned
                    .lock()
                    .map(|mut w| w.insert(reason))
                    .unwrap_or(false);
                if first {
                    tracing::warn!(reason, rows = what, "the API returned a row whose labels cannot be served; dropping such rows (counted in rows_dropped_total)");
                }
                false
            }
        });
    }

    pub(super) fn agents(&self, rows: &mut Vec<AgentStatus>) {
        self.keep(rows, "agents", |a| {
            let bad = long(&a.instance_id) || long_opt(&a.version) || long_opt(&a.os_type);
            if bad { Err(LONG) } else { Ok(()) }
        });
    }

    pub(super) fn instances(&self, rows: &mut Vec<InstanceStatus>) {
        self.keep(rows, "instances", |i| {
            if long(&i.instance_id) || long(&i.status) {
                Err(LONG)
            } else {
                Ok(())
            }
        });
    }

    pub(super) fn plugins(&self, rows: &mut Vec<PluginStatus>) {
        self.keep(rows, "plugins", |p| {
            if crate::validate::plugin_name(&p.name).is_err() {
                Err(PLUGIN)
            } else if long(&p.instance_id)
                || long(&p.name)
                || long(&p.status)
                || long_opt(&p.version)
            {
                Err(LONG)
            } else {
                Ok(())
            }
        });
    }

    pub(super) fn info(&self, rows: &mut Vec<InstanceInfo>) {
        self.keep(rows, "instance info", |i| {
            let bad = long(&i.instance_id)
                || long_opt(&i.name)
                || long_opt(&i.zone_id)
                || long_opt(&i.instance_type)
                || i.tags.iter().any(|(_, v)| long(v));
            if bad { Err(LONG) } else { Ok(()) }
        });
    }

    pub(super) fn managed(&self, rows: &mut Vec<ManagedInstance>) {
        self.keep(rows, "managed instances", |m| {
            let bad = long(&m.instance_id)
                || long_opt(&m.name)
                || long_opt(&m.hostname)
                || long_opt(&m.agent_version)
                || long_opt(&m.os_type)
                || m.tags.iter().any(|(_, v)| long(v));
            if bad { Err(LONG) } else { Ok(()) }
        });
    }

    pub(super) fn activations(&self, rows: &mut Vec<Activation>) {
        self.keep(rows, "activation codes", |a| {
            if long(&a.activation_id) {
                Err(LONG)
            } else {
                Ok(())
            }
        });
    }

    /// Invocations with a label value too long to serve (its id, command
    /// name, schedule or any run's instance, status or error code).
    pub(super) fn invocations(&self, rows: &mut Vec<Invocation>) {
        self.keep(rows, "invocations", |i| {
            let bad = long(&i.invoke_id)
                || long_opt(&i.command_name)
                || long_opt(&i.frequency)
                || long_opt(&i.repeat_mode)
                || i.instances.iter().any(|r| {
                    long(&r.instance_id) || long_opt(&r.status) || long_opt(&r.error_code)
                });
            if bad { Err(LONG) } else { Ok(()) }
        });
    }

    #[cfg(test)]
    pub(super) fn count(&self, reason: &str) -> u64 {
        self.counter.with_label_values(&[reason]).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn plugin(name: &str, version: &str) -> PluginStatus {
        PluginStatus {
            instance_id: "i-1".into(),
            name: name.into(),
            version: Some(Arc::from(version)),
            status: "Running".into(),
            first_heartbeat: None,
            last_heartbeat: None,
        }
    }

    #[test]
    fn odd_rows_are_dropped_and_counted() {
        let d = Dropped::new(&prometheus::Registry::new()).expect("metrics");
        let mut rows = vec![
            plugin("ecs-tool-monitor", "1.0"),
            plugin("bad name/with\"quote", "1.0"),
            plugin("ok.name_2", &"v".repeat(300)),
            plugin("fine", &"v".repeat(256)),
        ];
        d.plugins(&mut rows);
        let names: Vec<&str> = rows.iter().map(|p| &*p.name).collect();
        assert_eq!(names, ["ecs-tool-monitor", "fine"]);
        assert_eq!(d.count(PLUGIN), 1);
        assert_eq!(d.count(LONG), 1);
        let mut agents = vec![
            AgentStatus {
                instance_id: "i-1".into(),
                ..Default::default()
            },
            AgentStatus {
                instance_id: Arc::from("i-".repeat(200).as_str()),
                ..Default::default()
            },
        ];
        d.agents(&mut agents);
        assert_eq!(agents.len(), 1);
        assert_eq!(d.count(LONG), 2);
    }
}
