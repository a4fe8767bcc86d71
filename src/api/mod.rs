//! Typed, quirk-tolerant models of the ECS answers, and one walker per
//! action that pages through a whole region. Walkers only page; the client
//! decides retries, limits and metrics.

pub mod activations;
pub mod cloud_assistant;
pub mod fields;
pub mod instance_status;
pub mod instances;
pub mod invocations;
pub mod managed_instances;
pub mod page;
pub mod paging;
pub mod plugins;
pub mod regions;
pub mod tags;

pub use activations::{Activation, walk_activations};
pub use cloud_assistant::{AgentStatus, walk_cloud_assistant_status};
pub use instance_status::{InstanceStatus, walk_instance_status};
pub use instances::{InstanceInfo, walk_instance_info};
pub use managed_instances::{ManagedInstance, walk_managed_instances};
pub use plugins::{PluginStatus, list_plugins_of_instance, walk_plugin_status_by_name};
pub use regions::{Region, describe_regions};
pub use tags::{Tags, tag_label_name, tag_label_names};

/// The instance states DescribeInstanceStatus documents.
pub const INSTANCE_STATES: &[&str] = &["Pending", "Running", "Starting", "Stopping", "Stopped"];
/// The plugin states ListPluginStatus documents.
pub const PLUGIN_STATES: &[&str] = &[
    "NotInstalled",
    "Installed",
    "Running",
    "Stopped",
    "Crashed",
    "Removed",
    "Unknown",
];

/// Items per page for every paged action (the documented maximum).
pub const PAGE_SIZE: usize = 50;
pub use crate::client::MAX_PAGES;

/// The body of an answer, for the models' tests.
#[cfg(test)]
pub(crate) fn body_of(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON")
}
