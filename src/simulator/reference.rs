//! What the vendor's reference says about states and agent versions,
//! written here on its own rather than taken from the exporter's `api`: a
//! misreading of the documents on either side then fails a test instead
//! of being mirrored by both.

/// ListPluginStatus: "PluginStatus: NotInstalled, Installed, Running,
/// Stopped, Crashed, Removed, Unknown".
pub const PLUGIN_STATES: [&str; 7] = [
    "NotInstalled",
    "Installed",
    "Running",
    "Stopped",
    "Crashed",
    "Removed",
    "Unknown",
];

/// DescribeInstanceStatus: "Pending, Running, Starting, Stopping, Stopped".
pub const INSTANCE_STATES: [&str; 5] = ["Pending", "Running", "Starting", "Stopping", "Stopped"];

/// A dotted agent version as numbers (`2.2.3.344` → `[2, 2, 3, 344]`);
/// `None` for anything else.
fn numbers(version: &str) -> Option<Vec<u64>> {
    version
        .trim()
        .split('.')
        .map(|p| p.parse::<u64>().ok())
        .collect()
}

/// `version` is `min` or newer, comparing part by part; a missing part
/// counts as 0, an unreadable version as too old.
fn at_least(version: &str, min: &[u64]) -> bool {
    let Some(v) = numbers(version) else {
        return false;
    };
    let len = v.len().max(min.len());
    let pad =
        |x: &[u64]| -> Vec<u64> { (0..len).map(|i| x.get(i).copied().unwrap_or(0)).collect() };
    pad(&v) >= pad(min)
}

/// ListPluginStatus answers only agents of "Linux 2.2.3.344 or later,
/// Windows 2.1.3.344 or later".
pub fn answers_plugin_status(os_type: &str, version: &str) -> bool {
    if os_type.eq_ignore_ascii_case("windows") {
        at_least(version, &[2, 1, 3, 344])
    } else if os_type.eq_ignore_ascii_case("linux") {
        at_least(version, &[2, 2, 3, 344])
    } else {
        false
    }
}

/// Session Manager needs "Linux 2.2.3.189 or later, Windows 2.1.3.189 or
/// later".
pub fn supports_session_manager(os_type: &str, version: &str) -> bool {
    if os_type.eq_ignore_ascii_case("windows") {
        at_least(version, &[2, 1, 3, 189])
    } else {
        at_least(version, &[2, 2, 3, 189])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_part_by_part() {
        assert!(answers_plugin_status("Linux", "2.2.3.344"));
        assert!(answers_plugin_status("linux", "2.2.4.1"));
        assert!(answers_plugin_status("Linux", "2.10.0.0"));
        assert!(!answers_plugin_status("Linux", "2.2.3.343"));
        assert!(!answers_plugin_status("Linux", "2.1.9.999"));
        assert!(answers_plugin_status("Windows", "2.1.3.344"));
        assert!(!answers_plugin_status("Windows", "2.1.3.256"));
        assert!(!answers_plugin_status("FreeBSD", "9.9.9.9"));
        assert!(!answers_plugin_status("Linux", "latest"));
        assert!(supports_session_manager("Linux", "2.2.3.189"));
        assert!(!supports_session_manager("Windows", "2.1.3.188"));
    }
}
