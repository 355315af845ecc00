//! The serving side: routes served by a `tower::Service`
//! ([`RoutesExt::route_service`], [`ServiceRoute`]), handlers wrapped in
//! tower layers ([`layered`], [`HandlerService`]) and groups whose pull
//! routes all get a layer ([`RoutesExt::layered_group`], [`LayeredGroup`]).

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::future::{MapOk, TryFutureExt};
use jaunt_codec::{erased_serde, EncodeBody, MessageEncode, RawBody};
use jaunt_peer::{Group, PullCtx, Router};
use jaunt_router::{BoxFuture, PullHandler, PullOutput, RouteCtx, RouteError};
use jaunt_socket::Status;
use tower::layer::util::Stack;
use tower::{BoxError, Layer, Service, ServiceExt};

use crate::into_status;

/// A reply body of any type, as a handler produced it (the response of a
/// [`HandlerService`]): encoded with the reply's codec like a handler's
/// return value.
pub struct ReplyBody(Box<dyn EncodeBody + Send>);

impl ReplyBody {
    /// Wraps a value to encode.
    pub fn new<T: EncodeBody + Send + 'static>(value: T) -> Self {
        Self(Box::new(value))
    }
}

impl fmt::Debug for ReplyBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReplyBody")
            .field(&self.0.type_name())
            .finish()
    }
}

impl EncodeBody for ReplyBody {
    fn type_name(&self) -> &'static str {
        self.0.type_name()
    }

    fn as_serialize(&self) -> Option<&dyn erased_serde::Serialize> {
        self.0.as_serialize()
    }

    fn as_message(&self) -> Option<&dyn MessageEncode> {
        self.0.as_message()
    }

    fn as_raw(&self) -> Option<&RawBody> {
        self.0.as_raw()
    }
}

/// A pull handler as a `tower::Service<PullCtx>`, so tower layers can wrap
/// it (see [`layered`]). It decodes the argument, runs the plugins'
/// post-read-body hooks and the handler, as the router would; its response
/// is the handler's value ([`ReplyBody`]), its error the handler's status.
/// Always ready.
pub struct HandlerService<H, M> {
    handler: H,
    _shape: PhantomData<fn() -> M>,
}

impl<H, M> HandlerService<H, M> {
    /// Wraps `handler`.
    pub fn new(handler: H) -> Self
    where
        H: PullHandler<PullCtx, M>,
    {
        Self {
            handler,
            _shape: PhantomData,
        }
    }
}

impl<H: Clone, M> Clone for HandlerService<H, M> {
    fn clone(&self) -> Self {
        Self {
            handler: self.handler.clone(),
            _shape: PhantomData,
        }
    }
}

impl<H, M> fmt::Debug for HandlerService<H, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerService")
            .field("handler", &std::any::type_name::<H>())
            .finish()
    }
}

type IntoReplyBody = fn(Box<dyn EncodeBody + Send>) -> ReplyBody;

impl<H, M> Service<PullCtx> for HandlerService<H, M>
where
    H: PullHandler<PullCtx, M>,
{
    type Response = ReplyBody;
    type Error = Status;
    type Future = MapOk<BoxFuture<PullOutput>, IntoReplyBody>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, ctx: PullCtx) -> Self::Future {
        self.handler.call(ctx).map_ok(ReplyBody as IntoReplyBody)
    }
}

/// Tells [`ServiceRoute`]'s handler shape apart from the router's own
/// (function and closure) handlers; never named by users.
#[derive(Debug)]
pub enum ServiceShape {}

/// A pull route served by a `tower::Service<PullCtx>`: register it with
/// `router.pull(uri, ServiceRoute::new(svc))` or
/// [`RoutesExt::route_service`].
///
/// The service's response is encoded as the reply body (any serde value,
/// a protobuf message in `Pb`, a `RawBody`, a [`ReplyBody`]), its error
/// becomes the reply's status with [`into_status`] (a tower timeout is 408,
/// a load-shed rejection 500 "overloaded").
///
/// Each pull is served by a clone of the service, made ready then called
/// (as axum and tonic do): middleware whose clones share their state
/// (concurrency limits, load-shed, timeouts, a `Buffer`) applies across
/// pulls; one whose clones do not (`RateLimit`) needs a `Buffer` in front
/// to be shared.
pub struct ServiceRoute<S> {
    service: Arc<Mutex<S>>,
    run_hooks: bool,
}

impl<S> Clone for ServiceRoute<S> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
            run_hooks: self.run_hooks,
        }
    }
}

impl<S> fmt::Debug for ServiceRoute<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceRoute")
            .field("service", &std::any::type_name::<S>())
            .finish()
    }
}

impl<S> ServiceRoute<S> {
    /// Serves pulls with `service`. The peer's post-read-body plugin hooks
    /// run before the service is called.
    pub fn new(service: S) -> Self {
        Self {
            service: Arc::new(Mutex::new(service)),
            run_hooks: true,
        }
    }

    /// A service wrapping a [`HandlerService`], which runs the hooks itself.
    fn wrapping_handler(service: S) -> Self {
        Self {
            service: Arc::new(Mutex::new(service)),
            run_hooks: false,
        }
    }

    fn service(&self) -> S
    where
        S: Clone,
    {
        self.service
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl<S> PullHandler<PullCtx, ServiceShape> for ServiceRoute<S>
where
    S: Service<PullCtx> + Clone + Send + 'static,
    S::Response: EncodeBody + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    fn call(&self, ctx: PullCtx) -> BoxFuture<PullOutput> {
        let service = self.service();
        let before = match self.run_hooks {
            true => ctx.before_handler(),
            false => None,
        };
        Box::pin(async move {
            if let Some(before) = before {
                before.await?;
            }
            match service.oneshot(ctx).await {
                Ok(reply) => Ok(Box::new(reply) as Box<dyn EncodeBody + Send>),
                Err(error) => Err(into_status(error.into())),
            }
        })
    }
}

/// A pull handler wrapped in a tower layer: register the result like any
/// handler. The layer sees the pull as a `Service<PullCtx>`
/// ([`HandlerService`]); its errors become statuses with [`into_status`].
///
/// ```
/// use std::time::Duration;
/// use jaunt_peer::{PullCtx, Router};
/// use jaunt_socket::Status;
/// use jaunt_tower::layered;
/// use tower::timeout::TimeoutLayer;
///
/// async fn slow(_: PullCtx, n: u64) -> Result<u64, Status> {
///     tokio::time::sleep(Duration::from_millis(n)).await;
///     Ok(n)
/// }
///
/// let mut router = Router::new();
/// // Past 100ms the caller gets 408.
/// router.pull("/slow", layered(TimeoutLayer::new(Duration::from_millis(100)), slow)).unwrap();
/// ```
pub fn layered<L, H, M>(layer: L, handler: H) -> ServiceRoute<L::Service>
where
    H: PullHandler<PullCtx, M>,
    L: Layer<HandlerService<H, M>>,
{
    ServiceRoute::wrapping_handler(layer.layer(HandlerService::new(handler)))
}

/// Routes served by tower services, and groups with tower layers: methods
/// for [`Router`] and [`Group`].
///
/// ```
/// use std::time::Duration;
/// use jaunt_peer::{PullCtx, Router};
/// use jaunt_socket::Status;
/// use jaunt_tower::RoutesExt;
/// use tower::limit::GlobalConcurrencyLimitLayer;
/// use tower::{service_fn, ServiceBuilder};
///
/// let mut router = Router::new();
/// // A route served by a tower service.
/// let double = service_fn(|ctx: PullCtx| async move {
///     let n: i64 = ctx.decode()?;
///     Ok::<_, Status>(n * 2)
/// });
/// router.route_service("/double", ServiceBuilder::new().timeout(Duration::from_secs(1)).service(double)).unwrap();
/// // Every pull route of /jobs/... shares at most 4 handlers running.
/// let mut jobs = router.layered_group("/jobs", GlobalConcurrencyLimitLayer::new(4));
/// jobs.pull("/run", |_: PullCtx, id: u64| async move { Ok::<_, Status>(id) }).unwrap();
/// jobs.pull("/stop", |_: PullCtx, id: u64| async move { Ok::<_, Status>(id) }).unwrap();
/// assert!(router.find_pull("/jobs/run").is_some());
/// ```
pub trait RoutesExt {
    /// Registers `service` for pulls of `uri` (see [`ServiceRoute`]).
    fn route_service<S>(&mut self, uri: &str, service: S) -> Result<&mut Self, RouteError>
    where
        S: Service<PullCtx> + Clone + Send + 'static,
        S::Response: EncodeBody + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static;

    /// A group under `prefix` whose pull routes are all wrapped in `layer`
    /// (applied to each route: a layer whose services keep their own state,
    /// such as `ConcurrencyLimitLayer`, limits each route on its own; use
    /// `GlobalConcurrencyLimitLayer` for one limit over the group).
    fn layered_group<L: Clone>(&mut self, prefix: &str, layer: L) -> LayeredGroup<'_, L>;
}

macro_rules! routes_ext_impl {
    ($ty:ty) => {
        impl RoutesExt for $ty {
            fn route_service<S>(&mut self, uri: &str, service: S) -> Result<&mut Self, RouteError>
            where
                S: Service<PullCtx> + Clone + Send + 'static,
                S::Response: EncodeBody + Send + 'static,
                S::Error: Into<BoxError>,
                S::Future: Send + 'static,
            {
                self.pull(uri, ServiceRoute::new(service))
            }

            fn layered_group<L: Clone>(&mut self, prefix: &str, layer: L) -> LayeredGroup<'_, L> {
                LayeredGroup {
                    group: self.group(prefix),
                    layer,
                }
            }
        }
    };
}

routes_ext_impl!(Router);
routes_ext_impl!(Group<'_>);

/// A route group whose pull routes are wrapped in a tower layer
/// ([`RoutesExt::layered_group`]). Nested groups keep the layer;
/// [`layer`](Self::layer) adds one inside it. Push routes are not layered:
/// register them on the plain group ([`routes`](Self::routes)).
pub struct LayeredGroup<'r, L> {
    group: Group<'r>,
    layer: L,
}

impl<L> fmt::Debug for LayeredGroup<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayeredGroup")
            .field("prefix", &self.group.prefix())
            .field("layer", &std::any::type_name::<L>())
            .finish()
    }
}

impl<'r, L: Clone> LayeredGroup<'r, L> {
    /// The group's full prefix.
    pub fn prefix(&self) -> &str {
        self.group.prefix()
    }

    /// The plain group (its routes are not layered).
    pub fn routes(&mut self) -> &mut Group<'r> {
        &mut self.group
    }

    /// Registers a pull handler for `prefix + uri`, wrapped in the layer.
    pub fn pull<M, H>(&mut self, uri: &str, handler: H) -> Result<&mut Self, RouteError>
    where
        H: PullHandler<PullCtx, M>,
        L: Layer<HandlerService<H, M>>,
        L::Service: Service<PullCtx> + Clone + Send + 'static,
        <L::Service as Service<PullCtx>>::Response: EncodeBody + Send + 'static,
        <L::Service as Service<PullCtx>>::Error: Into<BoxError>,
        <L::Service as Service<PullCtx>>::Future: Send + 'static,
    {
        self.group.pull(uri, layered(self.layer.clone(), handler))?;
        Ok(self)
    }

    /// Registers `service` for pulls of `prefix + uri`, wrapped in the
    /// layer.
    pub fn route_service<S>(&mut self, uri: &str, service: S) -> Result<&mut Self, RouteError>
    where
        L: Layer<S>,
        L::Service: Service<PullCtx> + Clone + Send + 'static,
        <L::Service as Service<PullCtx>>::Response: EncodeBody + Send + 'static,
        <L::Service as Service<PullCtx>>::Error: Into<BoxError>,
        <L::Service as Service<PullCtx>>::Future: Send + 'static,
    {
        self.group
            .pull(uri, ServiceRoute::new(self.layer.layer(service)))?;
        Ok(self)
    }

    /// A nested group under `prefix` with the same layer.
    pub fn group(&mut self, prefix: &str) -> LayeredGroup<'_, L> {
        LayeredGroup {
            group: self.group.group(prefix),
            layer: self.layer.clone(),
        }
    }

    /// Adds `inner` inside this group's layer (the group's layer wraps it).
    pub fn layer<I: Clone>(self, inner: I) -> LayeredGroup<'r, Stack<I, L>> {
        LayeredGroup {
            group: self.group,
            layer: Stack::new(inner, self.layer),
        }
    }
}
