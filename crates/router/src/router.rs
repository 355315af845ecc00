//! [`Router`] and [`Group`]: the route table.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;
use std::fmt;
use std::sync::Arc;

use crate::controller::ControllerRoutes;
use crate::handler::{erase_pull, erase_push, ErasedPull, ErasedPush};
use crate::{Controller, PullHandler, PushHandler, RouteCtx, RouteError, UriMapper};

/// Where a route was registered: its full uri and the chain of groups
/// (innermost first) it belongs to. Group-scoped features (plugins) hang off
/// [`GroupInfo`].
#[derive(Debug)]
pub struct RouteInfo {
    uri: String,
    group: Option<Arc<GroupInfo>>,
}

impl RouteInfo {
    /// The description of the unknown-uri fallbacks: no uri, no group.
    pub fn fallback() -> Self {
        Self {
            uri: String::new(),
            group: None,
        }
    }

    /// The full uri the route answers.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The innermost group the route belongs to.
    pub fn group(&self) -> Option<&Arc<GroupInfo>> {
        self.group.as_ref()
    }
}

/// A route group: a prefix, nested in an optional parent group.
#[derive(Debug)]
pub struct GroupInfo {
    prefix: String,
    parent: Option<Arc<GroupInfo>>,
    plugins: Vec<GroupPlugin>,
}

/// A plugin attached to a group, opaque to the router: the peer crate
/// defines what a plugin is and attaches them with its own typed methods.
pub type GroupPlugin = Arc<dyn std::any::Any + Send + Sync>;

impl GroupInfo {
    /// The full prefix (parents' prefixes included).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The enclosing group.
    pub fn parent(&self) -> Option<&Arc<GroupInfo>> {
        self.parent.as_ref()
    }

    /// The plugins attached to this group (not its parents'), in order.
    pub fn plugins(&self) -> &[GroupPlugin] {
        &self.plugins
    }

    /// The plugins of every enclosing group then this one's: outer first.
    pub fn plugin_chain(&self) -> Vec<GroupPlugin> {
        let mut chain = self
            .parent
            .as_ref()
            .map(|p| p.plugin_chain())
            .unwrap_or_default();
        chain.extend(self.plugins.iter().cloned());
        chain
    }
}

/// A registered handler with where it came from.
pub struct Route<H> {
    handler: H,
    info: Arc<RouteInfo>,
}

impl<H> Route<H> {
    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Where the route was registered.
    pub fn info(&self) -> &Arc<RouteInfo> {
        &self.info
    }
}

/// Maps uris to pull and push handlers, with groups and fallbacks for unknown
/// uris.
///
/// `P` and `S` are the pull and push context types: the peer crate fixes them
/// (`jaunt::Router` is this type with the peer's contexts), so handlers are
/// written as `async fn(ctx: PullCtx, arg: T) -> Result<R, Status>`.
///
/// Lookup is by path: the query string (`?n=1`) is not part of the key and is
/// handed to the handler. Registering a uri twice is an error.
pub struct Router<P, S> {
    mapper: UriMapper,
    // Fx hashing: every incoming message looks its path up here, and the
    // keys are the application's own routes (a peer's uris are only looked
    // up, never inserted, so they cannot flood the table).
    pulls: HashMap<String, Route<ErasedPull<P>>, FxBuildHasher>,
    pushes: HashMap<String, Route<ErasedPush<S>>, FxBuildHasher>,
    unknown_pull: Option<Route<ErasedPull<P>>>,
    unknown_push: Option<Route<ErasedPush<S>>>,
}

impl<P, S> fmt::Debug for Router<P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut pulls: Vec<_> = self.pulls.keys().collect();
        let mut pushes: Vec<_> = self.pushes.keys().collect();
        pulls.sort();
        pushes.sort();
        f.debug_struct("Router")
            .field("mapper", &self.mapper)
            .field("pulls", &pulls)
            .field("pushes", &pushes)
            .field("unknown_pull", &self.unknown_pull.is_some())
            .field("unknown_push", &self.unknown_push.is_some())
            .finish()
    }
}

impl<P: RouteCtx, S: RouteCtx> Default for Router<P, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: RouteCtx, S: RouteCtx> Router<P, S> {
    /// An empty router with HTTP-style uris.
    pub fn new() -> Self {
        Self::with_mapper(UriMapper::Http)
    }

    /// An empty router with the given naming style.
    pub fn with_mapper(mapper: UriMapper) -> Self {
        Self {
            mapper,
            pulls: HashMap::default(),
            pushes: HashMap::default(),
            unknown_pull: None,
            unknown_push: None,
        }
    }

    /// The naming style.
    pub fn mapper(&self) -> UriMapper {
        self.mapper
    }

    /// Registers a pull handler for `uri`.
    pub fn pull<M, H: PullHandler<P, M>>(
        &mut self,
        uri: &str,
        handler: H,
    ) -> Result<&mut Self, RouteError> {
        self.add_pull(None, uri, erase_pull(handler))?;
        Ok(self)
    }

    /// Registers a push handler for `uri`.
    pub fn push<M, H: PushHandler<S, M>>(
        &mut self,
        uri: &str,
        handler: H,
    ) -> Result<&mut Self, RouteError> {
        self.add_push(None, uri, erase_push(handler))?;
        Ok(self)
    }

    /// Sets the handler for pulls whose uri has no route. Its context gives
    /// the raw body and decodes it on demand.
    pub fn unknown_pull<M, H: PullHandler<P, M>>(
        &mut self,
        handler: H,
    ) -> Result<&mut Self, RouteError> {
        set_fallback(&mut self.unknown_pull, "pull", erase_pull(handler))?;
        Ok(self)
    }

    /// Sets the handler for pushes whose uri has no route.
    pub fn unknown_push<M, H: PushHandler<S, M>>(
        &mut self,
        handler: H,
    ) -> Result<&mut Self, RouteError> {
        set_fallback(&mut self.unknown_push, "push", erase_push(handler))?;
        Ok(self)
    }

    /// A sub-router whose routes are registered under `prefix`.
    pub fn group(&mut self, prefix: &str) -> Group<'_, P, S> {
        self.group_with(prefix, Vec::new())
    }

    /// A sub-router under `prefix` carrying its own plugins (see the peer
    /// crate's typed `plugin_group`).
    pub fn group_with(&mut self, prefix: &str, plugins: Vec<GroupPlugin>) -> Group<'_, P, S> {
        let prefix = self.mapper.join("", prefix);
        Group {
            router: self,
            info: Arc::new(GroupInfo {
                prefix,
                parent: None,
                plugins,
            }),
        }
    }

    /// Registers every route of a service (the `…Server` that
    /// `#[jaunt::service]` generates) or controller (`#[jaunt::controller]`)
    /// under its group: the service's uri, or its name mapped (`Math` →
    /// `/math`, or `Math` with RPC-style names).
    pub fn service<C: Controller<P, S>>(&mut self, service: C) -> Result<&mut Self, RouteError> {
        self.service_arc(Arc::new(service))
    }

    /// [`service`](Self::service) for a service already shared.
    pub fn service_arc<C: Controller<P, S>>(
        &mut self,
        service: Arc<C>,
    ) -> Result<&mut Self, RouteError> {
        let mapper = self.mapper;
        let mut group = self.group(&C::SPEC.prefix(mapper));
        service.register(&mut ControllerRoutes::new(&mut group, mapper))?;
        Ok(self)
    }

    /// [`service`](Self::service) under teleport's name (a controller is an
    /// `impl` block with `#[jaunt::controller]`).
    pub fn controller<C: Controller<P, S>>(
        &mut self,
        controller: C,
    ) -> Result<&mut Self, RouteError> {
        self.service(controller)
    }

    /// [`controller`](Self::controller) for a controller already shared.
    pub fn controller_arc<C: Controller<P, S>>(
        &mut self,
        controller: Arc<C>,
    ) -> Result<&mut Self, RouteError> {
        self.service_arc(controller)
    }

    /// The pull route for a uri (its query string is ignored).
    pub fn find_pull(&self, uri: &str) -> Option<&Route<ErasedPull<P>>> {
        self.pulls.get(path_of(uri))
    }

    /// The push route for a uri (its query string is ignored).
    pub fn find_push(&self, uri: &str) -> Option<&Route<ErasedPush<S>>> {
        self.pushes.get(path_of(uri))
    }

    /// The fallback for unknown pulls.
    pub fn unknown_pull_route(&self) -> Option<&Route<ErasedPull<P>>> {
        self.unknown_pull.as_ref()
    }

    /// The fallback for unknown pushes.
    pub fn unknown_push_route(&self) -> Option<&Route<ErasedPush<S>>> {
        self.unknown_push.as_ref()
    }

    /// Every registered pull uri, sorted.
    pub fn pull_uris(&self) -> Vec<&str> {
        let mut uris: Vec<_> = self.pulls.keys().map(String::as_str).collect();
        uris.sort_unstable();
        uris
    }

    /// Every registered push uri, sorted.
    pub fn push_uris(&self) -> Vec<&str> {
        let mut uris: Vec<_> = self.pushes.keys().map(String::as_str).collect();
        uris.sort_unstable();
        uris
    }

    fn route_info(
        &self,
        group: Option<&Arc<GroupInfo>>,
        uri: &str,
    ) -> Result<Arc<RouteInfo>, RouteError> {
        let full = match group {
            Some(g) => self.mapper.join(&g.prefix, uri),
            None => match self.mapper {
                UriMapper::Http => self.mapper.join("", uri),
                UriMapper::Rpc => uri.to_owned(),
            },
        };
        let invalid = |reason| RouteError::InvalidUri {
            uri: full.clone(),
            reason,
        };
        if full.is_empty() || full == "/" {
            return Err(invalid("empty uri"));
        }
        if full.contains('?') {
            return Err(invalid("a route uri has no query string"));
        }
        if full.len() > usize::from(u8::MAX) {
            return Err(invalid("longer than 255 bytes"));
        }
        Ok(Arc::new(RouteInfo {
            uri: full,
            group: group.cloned(),
        }))
    }

    fn add_pull(
        &mut self,
        group: Option<&Arc<GroupInfo>>,
        uri: &str,
        handler: ErasedPull<P>,
    ) -> Result<(), RouteError> {
        let info = self.route_info(group, uri)?;
        if self.pulls.contains_key(&info.uri) {
            return Err(RouteError::Duplicate {
                kind: "pull",
                uri: info.uri.clone(),
            });
        }
        self.pulls.insert(info.uri.clone(), Route { handler, info });
        Ok(())
    }

    fn add_push(
        &mut self,
        group: Option<&Arc<GroupInfo>>,
        uri: &str,
        handler: ErasedPush<S>,
    ) -> Result<(), RouteError> {
        let info = self.route_info(group, uri)?;
        if self.pushes.contains_key(&info.uri) {
            return Err(RouteError::Duplicate {
                kind: "push",
                uri: info.uri.clone(),
            });
        }
        self.pushes
            .insert(info.uri.clone(), Route { handler, info });
        Ok(())
    }
}

/// Routes registered under a prefix; groups nest.
pub struct Group<'r, P, S> {
    router: &'r mut Router<P, S>,
    info: Arc<GroupInfo>,
}

impl<P: RouteCtx, S: RouteCtx> Group<'_, P, S> {
    /// The group's full prefix.
    pub fn prefix(&self) -> &str {
        &self.info.prefix
    }

    /// The group's description, shared by its routes.
    pub fn info(&self) -> &Arc<GroupInfo> {
        &self.info
    }

    /// Registers a pull handler for `prefix + uri`.
    pub fn pull<M, H: PullHandler<P, M>>(
        &mut self,
        uri: &str,
        handler: H,
    ) -> Result<&mut Self, RouteError> {
        self.router
            .add_pull(Some(&self.info), uri, erase_pull(handler))?;
        Ok(self)
    }

    /// Registers a push handler for `prefix + uri`.
    pub fn push<M, H: PushHandler<S, M>>(
        &mut self,
        uri: &str,
        handler: H,
    ) -> Result<&mut Self, RouteError> {
        self.router
            .add_push(Some(&self.info), uri, erase_push(handler))?;
        Ok(self)
    }

    /// Registers every route of a service or controller in its group (see
    /// [`Router::service`]), nested in this group.
    pub fn service<C: Controller<P, S>>(&mut self, service: C) -> Result<&mut Self, RouteError> {
        self.service_arc(Arc::new(service))
    }

    /// [`service`](Self::service) for a service already shared.
    pub fn service_arc<C: Controller<P, S>>(
        &mut self,
        service: Arc<C>,
    ) -> Result<&mut Self, RouteError> {
        let mapper = self.router.mapper;
        let mut group = self.group(&C::SPEC.prefix(mapper));
        service.register(&mut ControllerRoutes::new(&mut group, mapper))?;
        Ok(self)
    }

    /// [`service`](Self::service) under teleport's name.
    pub fn controller<C: Controller<P, S>>(
        &mut self,
        controller: C,
    ) -> Result<&mut Self, RouteError> {
        self.service(controller)
    }

    /// A nested group under `prefix`.
    pub fn group(&mut self, prefix: &str) -> Group<'_, P, S> {
        self.group_with(prefix, Vec::new())
    }

    /// A nested group under `prefix` carrying its own plugins (after this
    /// group's).
    pub fn group_with(&mut self, prefix: &str, plugins: Vec<GroupPlugin>) -> Group<'_, P, S> {
        let full = self.router.mapper.join(&self.info.prefix, prefix);
        Group {
            info: Arc::new(GroupInfo {
                prefix: full,
                parent: Some(self.info.clone()),
                plugins,
            }),
            router: self.router,
        }
    }
}

/// Sets a fallback once.
fn set_fallback<H>(
    slot: &mut Option<Route<H>>,
    kind: &'static str,
    handler: H,
) -> Result<(), RouteError> {
    if slot.is_some() {
        return Err(RouteError::DuplicateFallback { kind });
    }
    *slot = Some(Route {
        handler,
        info: Arc::new(RouteInfo::fallback()),
    });
    Ok(())
}

/// The uri without its query string.
pub fn path_of(uri: &str) -> &str {
    uri.split_once('?').map_or(uri, |(path, _)| path)
}
