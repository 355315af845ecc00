//! Services and controllers: a type whose methods are routes, named by a
//! [`ServiceSpec`] (see the `jaunt-macros` crate: `#[service]` on a trait and
//! `#[controller]` on an `impl` block both generate a spec and a
//! [`Controller`] implementation).

use std::sync::Arc;

use crate::{Group, PullHandler, PushHandler, RouteCtx, RouteError, UriMapper};

/// Whether a method serves pulls or pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// Request and reply.
    Pull,
    /// One-way.
    Push,
}

/// The names of a service: its own and its methods', each optionally given
/// explicitly (`#[jaunt(uri = "...")]`), which is how server and client
/// agree on uris without depending on Rust type names.
///
/// Names follow the [`UriMapper`]: with HTTP-style names the service
/// `KeyValue` is the prefix `/key_value` and its method `put_all` the segment
/// `/put_all`; with RPC-style names `KeyValue` and `PutAll`. An explicit uri
/// takes the place of the name and is used as written in its own style
/// (`/kv` is HTTP-style, `Kv` RPC-style), converted in the other (`/kv` →
/// `Kv`). The full uri joins the two with the mapper (`/key_value/put_all`,
/// `KeyValue.PutAll`): what Go erpc's `RouteCall` of a struct `KeyValue`
/// with a method `PutAll` registers.
///
/// ```
/// use jaunt_router::{MethodKind, MethodSpec, ServiceSpec, UriMapper};
///
/// static KV: ServiceSpec = ServiceSpec {
///     name: "KeyValue",
///     uri: None,
///     methods: &[
///         MethodSpec { name: "put_all", uri: None, kind: MethodKind::Pull },
///         MethodSpec { name: "get", uri: Some("/fetch"), kind: MethodKind::Pull },
///     ],
/// };
/// assert_eq!(KV.uri(UriMapper::Http, &KV.methods[0]), "/key_value/put_all");
/// assert_eq!(KV.uri(UriMapper::Rpc, &KV.methods[0]), "KeyValue.PutAll");
/// assert_eq!(KV.uri(UriMapper::Http, &KV.methods[1]), "/key_value/fetch");
/// assert_eq!(KV.uri(UriMapper::Rpc, &KV.methods[1]), "KeyValue.Fetch");
/// ```
#[derive(Debug)]
pub struct ServiceSpec {
    /// The service's Rust name (`"KeyValue"`).
    pub name: &'static str,
    /// Its explicit uri prefix, if any (`"/kv"` or `"Kv"`).
    pub uri: Option<&'static str>,
    /// Its routes.
    pub methods: &'static [MethodSpec],
}

/// One route of a [`ServiceSpec`].
#[derive(Debug)]
pub struct MethodSpec {
    /// The method's Rust name (`"put_all"`).
    pub name: &'static str,
    /// Its explicit uri segment, if any (`"/put"` or `"Put"`).
    pub uri: Option<&'static str>,
    /// Pull or push.
    pub kind: MethodKind,
}

impl ServiceSpec {
    /// The group prefix of the service with this naming style.
    pub fn prefix(&self, mapper: UriMapper) -> String {
        styled(mapper, self.uri.unwrap_or(self.name))
    }

    /// The full uri of `method` (one of this service's) with this naming
    /// style.
    pub fn uri(&self, mapper: UriMapper, method: &MethodSpec) -> String {
        mapper.join(&self.prefix(mapper), &method.segment(mapper))
    }
}

impl MethodSpec {
    /// The method's uri within its service.
    pub fn segment(&self, mapper: UriMapper) -> String {
        styled(mapper, self.uri.unwrap_or(self.name))
    }
}

/// A name or explicit uri in the mapper's style: one already in it (`/kv`
/// for HTTP-style, `Kv` for RPC-style) as it is, a Rust name or one in the
/// other style converted (`KvEvents`, `kv_events` → `/kv_events`;
/// `/kv_events` → `KvEvents`).
fn styled(mapper: UriMapper, name: &str) -> String {
    match mapper {
        UriMapper::Http if name.starts_with('/') => name.to_owned(),
        UriMapper::Http => name
            .split('.')
            .filter(|part| !part.is_empty())
            .map(|part| format!("/{}", crate::to_snake(part)))
            .collect(),
        UriMapper::Rpc => name
            .split('/')
            .filter(|part| !part.is_empty())
            .map(crate::to_camel)
            .collect::<Vec<_>>()
            .join("."),
    }
}

/// A value whose methods serve the routes of a [`ServiceSpec`], under one
/// group: with HTTP-style names `Math::add` serves `/math/add`, with
/// RPC-style names `Math.Add`. State is shared: every route holds an `Arc`
/// of the controller.
///
/// Implemented by `#[jaunt::service]` (for the generated `…Server` of a
/// service trait) and `#[jaunt::controller]` (for an `impl` block), rather
/// than by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a Jaunt service or controller",
    label = "not a service",
    note = "register the `…Server` that `#[jaunt::service]` generates (`KvServer::new(my_impl)`), \
            or a type whose `impl` block has `#[jaunt::controller]`"
)]
pub trait Controller<P, S>: Send + Sync + 'static {
    /// The names of the service and its routes.
    const SPEC: &'static ServiceSpec;

    /// Registers every route of the controller.
    fn register(
        self: Arc<Self>,
        routes: &mut ControllerRoutes<'_, '_, P, S>,
    ) -> Result<(), RouteError>;
}

/// Where a [`Controller`] registers its methods: names are mapped with the
/// router's [`UriMapper`].
pub struct ControllerRoutes<'g, 'r, P, S> {
    group: &'g mut Group<'r, P, S>,
    mapper: UriMapper,
}

impl<'g, 'r, P: RouteCtx, S: RouteCtx> ControllerRoutes<'g, 'r, P, S> {
    pub(crate) fn new(group: &'g mut Group<'r, P, S>, mapper: UriMapper) -> Self {
        Self { group, mapper }
    }

    /// Registers `method` as a pull route.
    pub fn pull<M, H: PullHandler<P, M>>(
        &mut self,
        method: &MethodSpec,
        handler: H,
    ) -> Result<(), RouteError> {
        let uri = method.segment(self.mapper);
        self.group.pull(&uri, handler).map(drop)
    }

    /// Registers `method` as a push route.
    pub fn push<M, H: PushHandler<S, M>>(
        &mut self,
        method: &MethodSpec,
        handler: H,
    ) -> Result<(), RouteError> {
        let uri = method.segment(self.mapper);
        self.group.push(&uri, handler).map(drop)
    }
}
