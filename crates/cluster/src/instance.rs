//! One instance of a service, as registered and discovered.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One running instance of a service: the value stored in the registry (as JSON) and what
/// discovery hands to balanced clients.
///
/// ```
/// use jaunt_cluster::Instance;
///
/// let instance = Instance::new("kv-1", "kv", "10.0.0.7:9090");
/// let json = serde_json::to_string(&instance).unwrap();
/// assert_eq!(serde_json::from_str::<Instance>(&json).unwrap(), instance);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// Unique among the instances of the service (a host name and port, a UUID).
    pub id: String,
    /// The service's name (`kv`): what clients ask for.
    pub service: String,
    /// Where it can be dialed, best first (`host:port` or `unix:/path`); clients dial the
    /// first.
    pub addrs: Vec<String>,
    /// The route prefixes or typed-service names it serves (informational).
    #[serde(default)]
    pub routes: Vec<String>,
    /// Its share of the load relative to the other instances (default 1; 0 takes none).
    #[serde(default = "one")]
    pub weight: u32,
    /// Its version (a release, a build).
    #[serde(default)]
    pub version: String,
    /// Anything else (zone, host...).
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

impl Instance {
    /// An instance `id` of `service` at `addr`, with weight 1 and nothing else.
    pub fn new(id: impl Into<String>, service: impl Into<String>, addr: impl Into<String>) -> Self {
        Instance {
            id: id.into(),
            service: service.into(),
            addrs: vec![addr.into()],
            routes: Vec::new(),
            weight: 1,
            version: String::new(),
            meta: BTreeMap::new(),
        }
    }

    /// The address clients dial: the first one.
    pub fn addr(&self) -> Option<&str> {
        self.addrs.first().map(String::as_str)
    }
}

/// The current instances of a service, by id.
pub type Endpoints = BTreeMap<String, Instance>;
