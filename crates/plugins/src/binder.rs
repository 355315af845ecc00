//! Declarative validation of handler arguments, before the handler runs.
//!
//! Wrap a handler's argument type in [`Valid`]: the body is decoded as the
//! inner type, then checked with [`validator::Validate`] (rules written as
//! `#[validate(...)]` attributes with `#[derive(Validate)]`, or an
//! implementation of your own). Invalid input never reaches the handler:
//! the caller gets status 400 (bad message) whose cause names every failing
//! field, e.g. `... invalid: age: range; name: length (1..=32)`. It works
//! the same for push arguments (an invalid push is dropped and logged).
//!
//! Deriving `Validate` needs the `validator` crate as a dependency of your
//! own crate (the derive refers to it by name):
//! `validator = { version = "0.20", features = ["derive"] }`.
//!
//! Why an argument wrapper and not a plugin hook: hooks see a message's
//! encoded body (bytes and a codec id), not the typed argument, which only
//! exists once the router decodes it for the handler. Validating in a hook
//! would mean decoding twice and knowing each route's argument type; the
//! wrapper is part of decoding, so it costs nothing more, works with any
//! codec, and the handler's signature says what it may assume.
//!
//! ```
//! use jaunt::prelude::*;
//! use jaunt::plugins::binder::Valid;
//! use serde::Deserialize;
//! use validator::Validate;
//!
//! #[derive(Deserialize, Validate)]
//! struct NewUser {
//!     #[validate(length(min = 1, max = 32))]
//!     name: String,
//!     #[validate(range(min = 18))]
//!     age: u32,
//! }
//!
//! async fn create(_: PullCtx, Valid(user): Valid<NewUser>) -> Result<String, Status> {
//!     Ok(format!("welcome, {} ({})", user.name, user.age))
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let mut routes = Router::new();
//! routes.pull("/users/create", create).unwrap();
//! let server = Peer::new(routes);
//! let addr = server.listen("127.0.0.1:0").await.unwrap();
//! let client = Peer::new(Router::new());
//! let session = client.dial(&addr).await.unwrap();
//!
//! let bad = serde_json::json!({"name": "", "age": 30});
//! let err = session.pull("/users/create", &bad).await.unwrap_err();
//! assert_eq!(err.code(), code::BAD_MESSAGE);
//! assert!(err.cause().unwrap().contains("name"));
//!
//! client.close().await;
//! server.close().await;
//! # });
//! ```

use std::fmt;

use bytes::Bytes;
use jaunt_codec::erased_serde;
use jaunt_codec::{DecodeBody, SinkError};
use validator::ValidationErrorsKind;
pub use validator::{Validate, ValidationError, ValidationErrors};

/// A handler argument that is decoded as `T` and then validated: a handler
/// taking `Valid<T>` only runs with input that passed `T`'s rules.
///
/// It is a plain wrapper: destructure it in the signature
/// (`Valid(user): Valid<NewUser>`), or use [`into_inner`](Self::into_inner)
/// or `Deref`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Valid<T>(pub T);

impl<T> Valid<T> {
    /// The validated value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Valid<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Valid<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// Runs `T`'s rules on a decoded value.
fn checked<T: Validate>(value: T) -> Result<Valid<T>, SinkError> {
    match value.validate() {
        Ok(()) => Ok(Valid(value)),
        Err(errors) => Err(SinkError::decode(Invalid(errors))),
    }
}

// `Valid<T>` does not implement `Deserialize`, so this does not overlap the
// codec crate's implementation for every `DeserializeOwned` type.
impl<T: DecodeBody + Validate> DecodeBody for Valid<T> {
    fn type_name() -> &'static str {
        T::type_name()
    }

    fn from_deserializer(de: &mut dyn erased_serde::Deserializer<'_>) -> Result<Self, SinkError> {
        checked(T::from_deserializer(de)?)
    }

    fn from_message(body: &Bytes) -> Result<Self, SinkError> {
        checked(T::from_message(body)?)
    }
}

/// Why a value was refused: its validation errors. Its message names every
/// failing field (nested ones with their path, `address.city`,
/// `items[2].qty`), sorted, each with its rule (and message, if the rule
/// has one).
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid(pub ValidationErrors);

impl Invalid {
    /// The failing fields' paths, sorted.
    pub fn fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        flatten(&self.0, "", &mut out);
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        out.into_iter().map(|(path, _)| path).collect()
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut failures = Vec::new();
        flatten(&self.0, "", &mut failures);
        failures.sort();
        f.write_str("invalid: ")?;
        for (i, (path, what)) in failures.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{path}: {what}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

/// Collects `(field path, rule description)` for every error in `errors`.
fn flatten(errors: &ValidationErrors, prefix: &str, out: &mut Vec<(String, String)>) {
    for (field, kind) in errors.errors() {
        let path = match (prefix.is_empty(), field.as_ref()) {
            // Struct-level rules (`#[validate(schema(...))]`) have no field.
            (_, "__all__") if prefix.is_empty() => "(struct)".to_owned(),
            (_, "__all__") => prefix.to_owned(),
            (true, field) => field.to_owned(),
            (false, field) => format!("{prefix}.{field}"),
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for error in list {
                    out.push((path.clone(), describe(error)));
                }
            }
            ValidationErrorsKind::Struct(inner) => flatten(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    flatten(inner, &format!("{path}[{index}]"), out);
                }
            }
        }
    }
}

/// A rule's code, its bounds (`min`, `max`, `equal`) and its message.
fn describe(error: &ValidationError) -> String {
    let mut text = error.code.to_string();
    let param = |name: &str| error.params.get(name).cloned();
    let bounds = match (param("min"), param("max"), param("equal")) {
        (_, _, Some(eq)) => Some(format!("= {eq}")),
        (Some(min), Some(max), None) => Some(format!("{min}..={max}")),
        (Some(min), None, None) => Some(format!(">= {min}")),
        (None, Some(max), None) => Some(format!("<= {max}")),
        (None, None, None) => None,
    };
    if let Some(bounds) = bounds {
        text.push_str(&format!(" ({bounds})"));
    }
    if let Some(message) = &error.message {
        text.push_str(&format!(": {message}"));
    }
    text
}
