//! tower's errors as Jaunt statuses: [`into_status`], [`status_of`] and
//! [`StatusLayer`].
//!
//! tower's middleware reports its own failures as boxed errors
//! ([`BoxError`]); a Jaunt caller or handler expects a [`Status`]:
//! [`into_status`] has the mapping.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use jaunt_socket::{code, Status};
use tower::{BoxError, Layer, Service};

/// The cause of the status a tower timeout maps to.
pub const TIMEOUT_CAUSE: &str = "timed out (tower timeout layer)";

/// The cause of the status a tower load-shed rejection maps to.
pub const OVERLOADED_CAUSE: &str = "overloaded: shed by the tower load-shed layer";

/// The status for an error a tower stack produced, by the wire format's
/// table of codes:
///
/// | tower error | status |
/// |---|---|
/// | a [`Status`] (boxed, or the source of a wrapper such as a buffer's `ServiceError`) | itself |
/// | [`timeout::error::Elapsed`](tower::timeout::error::Elapsed), tokio's `Elapsed`, an I/O `TimedOut` | 408 handle timeout ([`TIMEOUT_CAUSE`]) |
/// | [`load_shed::error::Overloaded`](tower::load_shed::error::Overloaded) | 500 with cause [`OVERLOADED_CAUSE`] (`overloaded: ...`, as the overloader plugin rejects) |
/// | [`buffer::error::Closed`](tower::buffer::error::Closed) | 102 connection closed |
/// | anything else | 500, cause private ([`Status::internal`]) |
///
/// ```
/// use jaunt_socket::{code, Status};
/// use jaunt_tower::into_status;
///
/// let elapsed: tower::BoxError = Box::new(tower::timeout::error::Elapsed::new());
/// assert_eq!(into_status(elapsed).code(), code::HANDLE_TIMEOUT);
/// let shed: tower::BoxError = Box::new(tower::load_shed::error::Overloaded::new());
/// assert_eq!(into_status(shed).code(), code::INTERNAL_SERVER_ERROR);
/// let own: tower::BoxError = Box::new(Status::not_found("no such key"));
/// assert_eq!(into_status(own), Status::not_found("no such key"));
/// ```
pub fn into_status(error: BoxError) -> Status {
    match error.downcast::<Status>() {
        Ok(status) => *status,
        Err(error) => status_of(&*error).unwrap_or_else(|| Status::internal(error)),
    }
}

/// The status a tower error stands for, looking through its chain of
/// sources; `None` when nothing in the chain is known (the caller then
/// decides: [`into_status`] answers 500).
pub fn status_of(error: &(dyn std::error::Error + 'static)) -> Option<Status> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(status) = known(error) {
            return Some(status);
        }
        next = error.source();
    }
    None
}

fn known(error: &(dyn std::error::Error + 'static)) -> Option<Status> {
    if let Some(status) = error.downcast_ref::<Status>() {
        return Some(status.clone());
    }
    if error.is::<tower::timeout::error::Elapsed>() || error.is::<tokio::time::error::Elapsed>() {
        return Some(Status::handle_timeout(TIMEOUT_CAUSE));
    }
    if let Some(io) = error.downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::TimedOut {
            return Some(Status::handle_timeout(io.to_string()));
        }
    }
    if error.is::<tower::load_shed::error::Overloaded>() {
        return Some(Status::standard(
            code::INTERNAL_SERVER_ERROR,
            OVERLOADED_CAUSE,
        ));
    }
    if error.is::<tower::buffer::error::Closed>() {
        return Some(Status::conn_closed("the buffered service is gone"));
    }
    None
}

/// A layer turning the errors of the service it wraps (any error a tower
/// stack makes, `Into<BoxError>`) into [`Status`] with [`into_status`]: put
/// it outermost so the whole stack fails with Jaunt statuses.
///
/// ```
/// use std::time::Duration;
/// use jaunt_tower::{PullRequest, SessionService, StatusLayer};
/// use tower::ServiceBuilder;
///
/// fn stack(
///     session: jaunt_peer::Session,
/// ) -> impl tower::Service<PullRequest, Response = jaunt_peer::Reply, Error = jaunt_socket::Status> {
///     ServiceBuilder::new()
///         .layer(StatusLayer)
///         .timeout(Duration::from_secs(1))
///         .service(SessionService::new(session))
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusLayer;

impl<S> Layer<S> for StatusLayer {
    type Service = StatusService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StatusService { inner }
    }
}

/// The service [`StatusLayer`] makes: errors become [`Status`].
#[derive(Debug, Clone)]
pub struct StatusService<S> {
    inner: S,
}

impl<S> StatusService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, to change.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, R> Service<R> for StatusService<S>
where
    S: Service<R>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = Status;
    type Future = StatusFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        self.inner.poll_ready(cx).map_err(|e| into_status(e.into()))
    }

    fn call(&mut self, request: R) -> Self::Future {
        StatusFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`StatusService`].
    #[derive(Debug)]
    pub struct StatusFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, T, E> Future for StatusFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .inner
            .poll(cx)
            .map_err(|e| into_status(e.into()))
    }
}
