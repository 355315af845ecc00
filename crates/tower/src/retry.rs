//! [`RetryOn`]: a `tower::retry::Policy` retrying idempotent pulls that
//! failed with given status codes.

use std::future::Ready;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use jaunt_peer::Reply;
use jaunt_socket::{code, Status};
use tokio::time::Sleep;
use tower::retry::Policy;
use tower::BoxError;

use crate::{status_of, PullRequest};

/// Retries a pull marked [idempotent](PullRequest::idempotent) when it
/// fails with one of the given status codes, up to a number of retries,
/// optionally waiting between attempts. A pull not marked idempotent is
/// never retried (nor cloned): making it twice might do harm.
///
/// Works on a stack failing with [`Status`] (a [`SessionService`], or any
/// stack under a [`StatusLayer`](crate::StatusLayer)) and on one failing
/// with tower's `BoxError` (the status is looked for with
/// [`status_of`]: a tower timeout counts as 408, a load-shed rejection as
/// 500).
///
/// ```
/// use std::time::Duration;
/// use jaunt_socket::code;
/// use jaunt_tower::{RetryOn, SessionService};
/// use tower::ServiceBuilder;
///
/// fn retrying(session: jaunt_peer::Session) -> tower::retry::Retry<RetryOn, SessionService> {
///     ServiceBuilder::new()
///         .retry(RetryOn::new([code::CONN_CLOSED, code::HANDLE_TIMEOUT], 2)
///             .backoff(Duration::from_millis(20)))
///         .service(SessionService::new(session))
/// }
/// ```
///
/// [`SessionService`]: crate::SessionService
#[derive(Debug, Clone)]
pub struct RetryOn {
    codes: Arc<[i32]>,
    retries_left: usize,
    backoff: Option<Duration>,
}

impl RetryOn {
    /// Retries on any of `codes`, at most `retries` times per pull.
    pub fn new(codes: impl IntoIterator<Item = i32>, retries: usize) -> Self {
        Self {
            codes: codes.into_iter().collect(),
            retries_left: retries,
            backoff: None,
        }
    }

    /// Retries when the connection failed before the reply: 102 (closed),
    /// 104 (write failed), 105 (dial failed) — the codes the cluster's
    /// balanced client fails over on.
    pub fn connection_failures(retries: usize) -> Self {
        Self::new(
            [code::CONN_CLOSED, code::WRITE_FAILED, code::DIAL_FAILED],
            retries,
        )
    }

    /// Waits this long before each retry.
    #[must_use]
    pub fn backoff(mut self, wait: Duration) -> Self {
        self.backoff = Some(wait);
        self
    }

    /// The codes retried on.
    pub fn codes(&self) -> &[i32] {
        &self.codes
    }

    /// The retries left (tower clones the policy for each request: this is
    /// per pull).
    pub fn retries_left(&self) -> usize {
        self.retries_left
    }

    fn decide(&mut self, request: &PullRequest, status: &Status) -> Option<RetryWait> {
        if !request.is_idempotent()
            || self.retries_left == 0
            || !self.codes.contains(&status.code())
        {
            return None;
        }
        self.retries_left -= 1;
        Some(match self.backoff {
            Some(wait) if !wait.is_zero() => Either::Right(tokio::time::sleep(wait)),
            _ => Either::Left(std::future::ready(())),
        })
    }
}

/// What [`RetryOn`] waits for before a retry: nothing, or its backoff.
pub type RetryWait = Either<Ready<()>, Sleep>;

impl Policy<PullRequest, Reply, Status> for RetryOn {
    type Future = RetryWait;

    fn retry(
        &mut self,
        request: &mut PullRequest,
        result: &mut Result<Reply, Status>,
    ) -> Option<RetryWait> {
        match result {
            Ok(_) => None,
            Err(status) => self.decide(request, status),
        }
    }

    fn clone_request(&mut self, request: &PullRequest) -> Option<PullRequest> {
        request.is_idempotent().then(|| request.clone())
    }
}

impl Policy<PullRequest, Reply, BoxError> for RetryOn {
    type Future = RetryWait;

    fn retry(
        &mut self,
        request: &mut PullRequest,
        result: &mut Result<Reply, BoxError>,
    ) -> Option<RetryWait> {
        match result {
            Ok(_) => None,
            Err(error) => {
                let status = status_of(&**error)?;
                self.decide(request, &status)
            }
        }
    }

    fn clone_request(&mut self, request: &PullRequest) -> Option<PullRequest> {
        request.is_idempotent().then(|| request.clone())
    }
}
