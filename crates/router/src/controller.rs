//! Controllers: a type whose methods are routes (see the `jaunt-macros`
//! crate's `#[controller]`, which implements [`Controller`]).

use std::sync::Arc;

use crate::{Group, PullHandler, PushHandler, RouteCtx, RouteError, UriMapper};

/// A value whose methods serve routes under one group named after its type:
/// with HTTP-style names `Math::add` serves `/math/add`, with RPC-style names
/// `Math.Add`. State is shared: every route holds an `Arc` of the controller.
///
/// Implement it with `#[jaunt::controller]` on an `impl` block rather than
/// by hand.
pub trait Controller<P, S>: Send + Sync + 'static {
    /// The type's name as written (`"Math"`); the mapper turns it into the
    /// group prefix.
    const NAME: &'static str;

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

    fn method_uri(&self, method: &str) -> String {
        match self.mapper {
            UriMapper::Http => format!("/{}", crate::to_snake(method)),
            UriMapper::Rpc => crate::to_camel(method),
        }
    }

    /// Registers method `method` (its Rust name) as a pull route.
    pub fn pull<M, H: PullHandler<P, M>>(
        &mut self,
        method: &str,
        handler: H,
    ) -> Result<(), RouteError> {
        let uri = self.method_uri(method);
        self.group.pull(&uri, handler).map(drop)
    }

    /// Registers method `method` (its Rust name) as a push route.
    pub fn push<M, H: PushHandler<S, M>>(
        &mut self,
        method: &str,
        handler: H,
    ) -> Result<(), RouteError> {
        let uri = self.method_uri(method);
        self.group.push(&uri, handler).map(drop)
    }
}

/// The group prefix of a controller type name.
pub(crate) fn controller_prefix(mapper: UriMapper, name: &str) -> String {
    match mapper {
        UriMapper::Http => format!("/{}", crate::to_snake(name)),
        UriMapper::Rpc => crate::to_camel(name),
    }
}
