use thiserror::Error;

/// Why a route could not be registered.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// A pull (or push) handler is already registered for this uri.
    #[error("a {kind} handler is already registered for {uri:?}")]
    Duplicate {
        /// `"pull"` or `"push"`.
        kind: &'static str,
        /// The uri.
        uri: String,
    },
    /// A fallback for unknown pulls (or pushes) is already set.
    #[error("the unknown-{kind} fallback is already set")]
    DuplicateFallback {
        /// `"pull"` or `"push"`.
        kind: &'static str,
    },
    /// The uri cannot be routed (empty, has a query string, or is longer than
    /// the 255 bytes the raw framing can carry).
    #[error("invalid route uri {uri:?}: {reason}")]
    InvalidUri {
        /// The uri.
        uri: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}
