//! One authenticated request for a region's action, as every action reads
//! it.

use std::collections::BTreeMap;

use crate::simulator::fleet::SimRegion;
use crate::simulator::state::SimState;

pub(super) struct Call<'a> {
    pub(super) state: &'a SimState,
    /// The request's parameters by name.
    pub(super) map: &'a BTreeMap<&'a str, &'a str>,
    pub(super) region: &'a SimRegion,
    /// `Action|RegionId`: what the page tokens of the action are bound to.
    pub(super) scope: String,
    /// The injected `EndlessToken` fault: every page has a next one.
    pub(super) endless: bool,
    /// The injected `RepeatToken` fault: every page names itself as next.
    pub(super) repeat: bool,
    /// The simulator's clock at the request.
    pub(super) now: i64,
    /// The `InstanceId.N` parameters.
    pub(super) ids: Vec<String>,
}
