//! [`Stub`]: the seam between a typed client and what carries its calls.

use std::future::Future;
use std::sync::Arc;

use jaunt_codec::EncodeBody;
use jaunt_peer::{PullOptions, Reply, Session};
use jaunt_socket::Status;

/// What carries a typed client's calls: a pull (request, reply) and a push
/// (one way), each to a uri with an argument encoded by the carrier and
/// per-call options.
///
/// [`Session`] implements it by sending on its connection. A client that
/// balances over many sessions, retries, or serves the call in process
/// implements the same two methods, and every generated client works on top
/// of it unchanged.
///
/// ```
/// use jaunt::prelude::*;
/// use jaunt::service::Stub;
///
/// /// A stub that adds a meta entry to every call, then sends it on.
/// struct Tagged<S>(S);
///
/// impl<S: Stub> Stub for Tagged<S> {
///     async fn pull<A: jaunt::codec::EncodeBody + Sync>(
///         &self, uri: &str, args: &A, opts: PullOptions,
///     ) -> Result<Reply, Status> {
///         self.0.pull(uri, args, opts.meta("tag", "1")).await
///     }
///
///     async fn push<A: jaunt::codec::EncodeBody + Sync>(
///         &self, uri: &str, args: &A, opts: PullOptions,
///     ) -> Result<(), Status> {
///         self.0.push(uri, args, opts.meta("tag", "1")).await
///     }
/// }
/// ```
pub trait Stub: Send + Sync {
    /// Pulls `uri` with `args` and waits for the reply; an error status from
    /// the other side, or a local failure, is the `Err`.
    fn pull<A: EncodeBody + Sync>(
        &self,
        uri: &str,
        args: &A,
        opts: PullOptions,
    ) -> impl Future<Output = Result<Reply, Status>> + Send;

    /// Pushes `args` to `uri`; returns once the message is queued.
    fn push<A: EncodeBody + Sync>(
        &self,
        uri: &str,
        args: &A,
        opts: PullOptions,
    ) -> impl Future<Output = Result<(), Status>> + Send;
}

impl Stub for Session {
    fn pull<A: EncodeBody + Sync>(
        &self,
        uri: &str,
        args: &A,
        opts: PullOptions,
    ) -> impl Future<Output = Result<Reply, Status>> + Send {
        self.pull_with(uri, args, opts)
    }

    fn push<A: EncodeBody + Sync>(
        &self,
        uri: &str,
        args: &A,
        opts: PullOptions,
    ) -> impl Future<Output = Result<(), Status>> + Send {
        self.push_with(uri, args, opts)
    }
}

/// A stub behind a reference or an `Arc` is a stub (`KvClient::new(&session)`).
macro_rules! forward_stub {
    ($($ty:ty),*) => {$(
        impl<T: Stub> Stub for $ty {
            fn pull<A: EncodeBody + Sync>(
                &self,
                uri: &str,
                args: &A,
                opts: PullOptions,
            ) -> impl Future<Output = Result<Reply, Status>> + Send {
                (**self).pull(uri, args, opts)
            }

            fn push<A: EncodeBody + Sync>(
                &self,
                uri: &str,
                args: &A,
                opts: PullOptions,
            ) -> impl Future<Output = Result<(), Status>> + Send {
                (**self).push(uri, args, opts)
            }
        }
    )*};
}

forward_stub!(&T, Arc<T>);
