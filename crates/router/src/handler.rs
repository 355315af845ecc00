//! Handlers: plain async functions and closures, type-erased for the route
//! table.
//!
//! A pull handler takes a context and, optionally, a typed argument decoded
//! from the body with whichever codec the frame names, and returns
//! `Result<T, Status>`. A push handler alike returns `()` or
//! `Result<(), Status>`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use jaunt_codec::{DecodeBody, EncodeBody};
use jaunt_socket::Status;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a pull handler produces: a value to encode as the reply body, or an
/// error status.
pub type PullOutput = Result<Box<dyn EncodeBody + Send>, Status>;

/// What a push handler produces.
pub type PushOutput = Result<(), Status>;

/// What the router needs from a handler context: decoding the body into the
/// handler's argument type.
pub trait RouteCtx: Send + 'static {
    /// Decodes the incoming body as `T` with the codec the frame names; a
    /// failure is the status to reply (400 for an undecodable body).
    fn decode_body<T: DecodeBody>(&self) -> Result<T, Status>;

    /// Work to run after the argument was decoded and before the handler
    /// (the peer runs its plugins' post-read-body hooks here); an error
    /// status is the outcome and the handler does not run. `None`: nothing
    /// to run.
    fn before_handler(&self) -> Option<BoxFuture<Result<(), Status>>> {
        None
    }
}

/// Runs `before` (if any), then the handler future built by `handler`.
fn then_handle<T, Fut>(
    before: Option<BoxFuture<Result<(), Status>>>,
    handler: impl FnOnce() -> Fut + Send + 'static,
) -> BoxFuture<Result<T, Status>>
where
    Fut: Future<Output = Result<T, Status>> + Send + 'static,
    T: Send + 'static,
{
    match before {
        None => Box::pin(handler()),
        Some(before) => Box::pin(async move {
            before.await?;
            handler().await
        }),
    }
}

/// A pull handler stored in the route table.
pub type ErasedPull<Cx> = Arc<dyn Fn(Cx) -> BoxFuture<PullOutput> + Send + Sync>;
/// A push handler stored in the route table.
pub type ErasedPush<Cx> = Arc<dyn Fn(Cx) -> BoxFuture<PushOutput> + Send + Sync>;

/// Anything that can serve pulls: `async fn(Cx, T) -> Result<R, E>` or
/// `async fn(Cx) -> Result<R, E>` (functions or closures), where `T` is
/// decoded from the body, `R` encoded as the reply and `E` is `Status` or
/// converts into it (`io::Error`, boxed errors, ...). `M` only tells the
/// shapes apart.
///
/// A closure that only ever returns `Ok(..)` names no error type: write
/// `Ok::<_, Status>(..)` or give the closure a return type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot serve pulls",
    label = "not a pull handler",
    note = "a pull handler is an `async fn(ctx: PullCtx) -> Result<R, E>` or \
            `async fn(ctx: PullCtx, arg: T) -> Result<R, E>` (or such a closure): `T` is \
            decoded from the body (serde or protobuf), `R` is encoded as the reply, `E` is \
            `Status` or converts into it; the future must be `Send`"
)]
pub trait PullHandler<Cx, M>: Clone + Send + Sync + 'static {
    /// Runs the handler.
    fn call(&self, cx: Cx) -> BoxFuture<PullOutput>;
}

/// Anything that can serve pushes: `async fn(Cx, T)` or `async fn(Cx)`,
/// returning `()` or `Result<(), E>` (`E` is `Status` or converts into it).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot serve pushes",
    label = "not a push handler",
    note = "a push handler is an `async fn(ctx: PushCtx)` or `async fn(ctx: PushCtx, arg: T)` \
            (or such a closure) returning `()` or `Result<(), E>` where `E` converts into \
            `Status`; `T` is decoded from the body; the future must be `Send`"
)]
pub trait PushHandler<Cx, M>: Clone + Send + Sync + 'static {
    /// Runs the handler.
    fn call(&self, cx: Cx) -> BoxFuture<PushOutput>;
}

/// What a push handler may return: `()` or `Result<(), E>` where `E`
/// converts into `Status`.
#[diagnostic::on_unimplemented(
    message = "a push handler cannot return `{Self}`",
    note = "a push has no reply: return `()` or `Result<(), E>` where `E` converts into `Status`"
)]
pub trait IntoPushOutput {
    /// Converts to the push outcome.
    fn into_push_output(self) -> PushOutput;
}

impl IntoPushOutput for () {
    fn into_push_output(self) -> PushOutput {
        Ok(())
    }
}

impl<E: Into<Status>> IntoPushOutput for Result<(), E> {
    fn into_push_output(self) -> PushOutput {
        self.map_err(Into::into)
    }
}

fn boxed_reply<R: EncodeBody + Send + 'static, E: Into<Status>>(reply: Result<R, E>) -> PullOutput {
    match reply {
        Ok(r) => Ok(Box::new(r)),
        Err(e) => Err(e.into()),
    }
}

impl<F, Fut, Cx, T, R, E> PullHandler<Cx, (T, E)> for F
where
    F: Fn(Cx, T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    E: Into<Status> + 'static,
    Cx: RouteCtx,
    T: DecodeBody + Send + 'static,
    R: EncodeBody + Send + 'static,
{
    fn call(&self, cx: Cx) -> BoxFuture<PullOutput> {
        match cx.decode_body::<T>() {
            Ok(arg) => {
                let handler = self.clone();
                then_handle(cx.before_handler(), move || {
                    let fut = handler(cx, arg);
                    async move { boxed_reply(fut.await) }
                })
            }
            Err(status) => Box::pin(std::future::ready(Err(status))),
        }
    }
}

impl<F, Fut, Cx, R, E> PullHandler<Cx, (E,)> for F
where
    F: Fn(Cx) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    E: Into<Status> + 'static,
    Cx: RouteCtx,
    R: EncodeBody + Send + 'static,
{
    fn call(&self, cx: Cx) -> BoxFuture<PullOutput> {
        let handler = self.clone();
        then_handle(cx.before_handler(), move || {
            let fut = handler(cx);
            async move { boxed_reply(fut.await) }
        })
    }
}

impl<F, Fut, Cx, T, O> PushHandler<Cx, (T,)> for F
where
    F: Fn(Cx, T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = O> + Send + 'static,
    O: IntoPushOutput,
    Cx: RouteCtx,
    T: DecodeBody + Send + 'static,
{
    fn call(&self, cx: Cx) -> BoxFuture<PushOutput> {
        match cx.decode_body::<T>() {
            Ok(arg) => {
                let handler = self.clone();
                then_handle(cx.before_handler(), move || {
                    let fut = handler(cx, arg);
                    async move { fut.await.into_push_output() }
                })
            }
            Err(status) => Box::pin(std::future::ready(Err(status))),
        }
    }
}

impl<F, Fut, Cx, O> PushHandler<Cx, ()> for F
where
    F: Fn(Cx) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = O> + Send + 'static,
    O: IntoPushOutput,
    Cx: RouteCtx,
{
    fn call(&self, cx: Cx) -> BoxFuture<PushOutput> {
        let handler = self.clone();
        then_handle(cx.before_handler(), move || {
            let fut = handler(cx);
            async move { fut.await.into_push_output() }
        })
    }
}

pub(crate) fn erase_pull<Cx: RouteCtx, M, H: PullHandler<Cx, M>>(handler: H) -> ErasedPull<Cx> {
    Arc::new(move |cx| handler.call(cx))
}

pub(crate) fn erase_push<Cx: RouteCtx, M, H: PushHandler<Cx, M>>(handler: H) -> ErasedPush<Cx> {
    Arc::new(move |cx| handler.call(cx))
}
