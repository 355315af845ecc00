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

/// Anything that can serve pulls: `async fn(Cx, T) -> Result<R, Status>` or
/// `async fn(Cx) -> Result<R, Status>` (functions or closures). `M` only
/// tells the two shapes apart.
pub trait PullHandler<Cx, M>: Clone + Send + Sync + 'static {
    /// Runs the handler.
    fn call(&self, cx: Cx) -> BoxFuture<PullOutput>;
}

/// Anything that can serve pushes: `async fn(Cx, T)` or `async fn(Cx)`,
/// returning `()` or `Result<(), Status>`.
pub trait PushHandler<Cx, M>: Clone + Send + Sync + 'static {
    /// Runs the handler.
    fn call(&self, cx: Cx) -> BoxFuture<PushOutput>;
}

/// What a push handler may return.
pub trait IntoPushOutput {
    /// Converts to the push outcome.
    fn into_push_output(self) -> PushOutput;
}

impl IntoPushOutput for () {
    fn into_push_output(self) -> PushOutput {
        Ok(())
    }
}

impl IntoPushOutput for Result<(), Status> {
    fn into_push_output(self) -> PushOutput {
        self
    }
}

fn boxed_reply<R: EncodeBody + Send + 'static>(reply: Result<R, Status>) -> PullOutput {
    reply.map(|r| Box::new(r) as Box<dyn EncodeBody + Send>)
}

impl<F, Fut, Cx, T, R> PullHandler<Cx, (T,)> for F
where
    F: Fn(Cx, T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Status>> + Send + 'static,
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

impl<F, Fut, Cx, R> PullHandler<Cx, ()> for F
where
    F: Fn(Cx) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Status>> + Send + 'static,
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
