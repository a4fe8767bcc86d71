//! Typed, quirk-tolerant models of the ECS answers, and one walker per
//! action that pages through a whole region. Walkers only page; the client
//! decides retries, limits and metrics.

pub mod cloud_assistant;
pub mod fields;
pub mod instance_status;
pub mod paging;
pub mod plugins;
pub mod regions;

pub use cloud_assistant::{AgentStatus, walk_cloud_assistant_status};
pub use instance_status::{InstanceStatus, walk_instance_status};
pub use plugins::{PluginStatus, list_plugins_of_instance, walk_plugin_status_by_name};
pub use regions::{Region, describe_regions};

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
