//! The cluster layer's errors.

/// What can go wrong in the cluster layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The registry or discovery backend cannot be reached (etcd down, DNS failing).
    #[error("{backend} is unreachable: {reason}")]
    Unreachable {
        /// `etcd`, `dns`...
        backend: &'static str,
        /// What failed.
        reason: String,
    },
    /// A registry value is not a valid [`Instance`](crate::Instance).
    #[error("malformed registry entry {key}: {reason}")]
    Malformed {
        /// The key of the entry.
        key: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A bad setting (an empty service name, a bad address).
    #[error("bad cluster setting: {0}")]
    Config(String),
}
