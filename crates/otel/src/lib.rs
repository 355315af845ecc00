//! OpenTelemetry for Jaunt peers: the W3C trace context of every pull and
//! push carried in the frame's meta, so that one trace follows a call
//! through every peer it crosses.
//!
//! The peers' spans (`jaunt.client`, `jaunt.server`, see `jaunt-peer`) are
//! `tracing` spans; `tracing-opentelemetry` turns them into OpenTelemetry
//! spans (named `{service}/{method}` after their `otel.name`, of kind client
//! or server after `otel.kind`). [`W3cPropagator`] is the
//! [`TracePropagator`] that writes a sent call's context into its meta
//! (`traceparent`, `tracestate`: keys a Go erpc peer passes on untouched) and
//! makes a served call's context the parent of its server span.
//!
//! ```
//! use std::sync::Arc;
//! use jaunt_peer::{Peer, Router};
//! use opentelemetry::trace::TracerProvider as _;
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let provider = SdkTracerProvider::builder().build();
//! let subscriber = tracing_subscriber::registry()
//!     .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("my-service")));
//! let _guard = tracing::subscriber::set_default(subscriber);
//!
//! let peer = Peer::builder(Router::new())
//!     .trace_propagator(Arc::new(jaunt_otel::W3cPropagator::new()))
//!     .build()
//!     .unwrap();
//! # drop(peer);
//! ```

use jaunt_peer::TracePropagator;
use jaunt_socket::Meta;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use jaunt_peer::{TRACEPARENT_META, TRACESTATE_META};

/// Carries the W3C trace context (`traceparent`, `tracestate`) in meta;
/// by default with OpenTelemetry's [`TraceContextPropagator`], or with any
/// other text map propagator ([`with`](Self::with)).
pub struct W3cPropagator {
    inner: Box<dyn TextMapPropagator + Send + Sync>,
}

impl W3cPropagator {
    /// The W3C trace context propagator.
    pub fn new() -> Self {
        Self::with(TraceContextPropagator::new())
    }

    /// Another text map propagator (B3, Jaeger, a composite...): its keys go
    /// into meta as they are.
    pub fn with(propagator: impl TextMapPropagator + Send + Sync + 'static) -> Self {
        Self {
            inner: Box::new(propagator),
        }
    }
}

impl Default for W3cPropagator {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for W3cPropagator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("W3cPropagator").finish_non_exhaustive()
    }
}

/// Writes propagation fields into a message's meta.
struct MetaInjector<'a>(&'a mut Meta);

impl Injector for MetaInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.set(key, value);
    }
}

/// Reads propagation fields from a message's meta (a key that is not
/// UTF-8 is not one of them).
struct MetaExtractor<'a>(&'a Meta);

impl Extractor for MetaExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get_str(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter_map(|(key, _)| std::str::from_utf8(key).ok())
            .collect()
    }
}

impl TracePropagator for W3cPropagator {
    fn inject(&self, span: &Span, meta: &mut Meta) {
        self.inner
            .inject_context(&span.context(), &mut MetaInjector(meta));
    }

    fn extract(&self, meta: &Meta, span: &Span) {
        let parent = self.inner.extract(&MetaExtractor(meta));
        // A frame without (or with a malformed) traceparent gives an empty
        // context: the server span then starts a trace of its own.
        let _ = span.set_parent(parent);
    }
}
