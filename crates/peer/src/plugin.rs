//! Plugins: named hooks at every stage of a connection and of each message.
//!
//! A plugin implements [`RoutePlugin`] (the hooks around one route's
//! messages) and, to be a peer-wide plugin, [`Plugin`] (the connection-level
//! hooks as well). Every hook has a no-op default, so a plugin writes only
//! the hooks it needs. `docs/plugins.md` gives the order of every hook in the
//! life of a connection and of a pull, push and reply.
//!
//! Peer plugins are registered with [`PeerBuilder::plugin`](crate::PeerBuilder::plugin)
//! and see every hook of every session. Group plugins are attached to a
//! route group with [`PluginGroups::plugin_group`]; being [`RoutePlugin`]s,
//! they can only have route hooks, and they run for that group's routes
//! only, after the peer plugins, outer groups before inner ones.
//!
//! A hook that returns an error status stops the chain (later plugins do not
//! run that hook). What the error then does is documented on each hook.

use std::sync::Arc;

use async_trait::async_trait;
use jaunt_router::{GroupPlugin, RouteInfo};
use jaunt_socket::{Packet, Status};

use crate::{Addr, Group, PullCtx, PushCtx, Router, Session};

/// Whether a route serves pulls or pushes (for [`RoutePlugin::post_reg`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// A pull route.
    Pull,
    /// A push route.
    Push,
}

/// The hooks around the messages of a route. A group plugin implements only
/// this trait; a peer plugin implements it and [`Plugin`].
#[async_trait]
pub trait RoutePlugin: Send + Sync + 'static {
    /// The plugin's name, unique among the plugins a route sees.
    fn name(&self) -> &str;

    /// Once per route when the peer is built. An error fails the build.
    fn post_reg(&self, route: &RouteInfo, kind: RouteKind) -> Result<(), Status> {
        let _ = (route, kind);
        Ok(())
    }

    /// A pull's route is known; its body is not decoded yet and may be
    /// replaced (`packet.body`, `packet.body_codec`). An error is replied and
    /// the handler does not run.
    async fn pre_read_pull_body(
        &self,
        session: &Session,
        packet: &mut Packet,
    ) -> Result<(), Status> {
        let _ = (session, packet);
        Ok(())
    }

    /// A pull's argument was decoded; the handler runs next. An error is
    /// replied and the handler does not run.
    async fn post_read_pull_body(&self, ctx: &PullCtx) -> Result<(), Status> {
        let _ = ctx;
        Ok(())
    }

    /// A reply is about to be written (it may be changed). An error replaces
    /// it with an error reply carrying that status.
    async fn pre_write_reply(&self, session: &Session, reply: &mut Packet) -> Result<(), Status> {
        let _ = (session, reply);
        Ok(())
    }

    /// A reply was queued for writing. An error is only logged.
    async fn post_write_reply(&self, session: &Session, reply: &Packet) -> Result<(), Status> {
        let _ = (session, reply);
        Ok(())
    }

    /// A push's route is known; its body may be replaced. An error drops the
    /// push (logged) and the handler does not run.
    async fn pre_read_push_body(
        &self,
        session: &Session,
        packet: &mut Packet,
    ) -> Result<(), Status> {
        let _ = (session, packet);
        Ok(())
    }

    /// A push's argument was decoded; the handler runs next. An error drops
    /// the push (logged).
    async fn post_read_push_body(&self, ctx: &PushCtx) -> Result<(), Status> {
        let _ = ctx;
        Ok(())
    }
}

/// The connection-level hooks of a peer-wide plugin.
#[async_trait]
pub trait Plugin: RoutePlugin {
    /// The peer listens on `addr`. An error stops that listener and is
    /// returned by `listen`.
    async fn post_listen(&self, addr: &Addr) -> Result<(), Status> {
        let _ = addr;
        Ok(())
    }

    /// A dial (or redial) to `addr` is about to start. An error fails the
    /// dial with status 105 carrying it as the cause.
    async fn pre_dial(&self, addr: &Addr, is_redial: bool) -> Result<(), Status> {
        let _ = (addr, is_redial);
        Ok(())
    }

    /// A dialed connection is up; no message has been read yet. The hook may
    /// talk on the session first ([`Session::handshake_recv`] reads a
    /// frame, [`Session::send_packet`] writes one). An error closes the
    /// session and the dial fails with status 105 carrying the error.
    async fn post_dial(&self, session: &Session, is_redial: bool) -> Result<(), Status> {
        let _ = (session, is_redial);
        Ok(())
    }

    /// An accepted connection is up; no message has been read yet (the hook
    /// may use [`Session::handshake_recv`]). An error closes the session.
    async fn post_accept(&self, session: &Session) -> Result<(), Status> {
        let _ = session;
        Ok(())
    }

    /// A pull is about to be written (it may be changed). An error fails the
    /// pull with that status; nothing is sent.
    async fn pre_write_pull(&self, session: &Session, pull: &mut Packet) -> Result<(), Status> {
        let _ = (session, pull);
        Ok(())
    }

    /// A pull was queued for writing. An error is only logged.
    async fn post_write_pull(&self, session: &Session, pull: &Packet) -> Result<(), Status> {
        let _ = (session, pull);
        Ok(())
    }

    /// A push is about to be written (it may be changed). An error fails the
    /// push with that status; nothing is sent.
    async fn pre_write_push(&self, session: &Session, push: &mut Packet) -> Result<(), Status> {
        let _ = (session, push);
        Ok(())
    }

    /// A push was queued for writing. An error is only logged.
    async fn post_write_push(&self, session: &Session, push: &Packet) -> Result<(), Status> {
        let _ = (session, push);
        Ok(())
    }

    /// The session is about to wait for its next frame. An error closes the
    /// session.
    async fn pre_read_header(&self, session: &Session) -> Result<(), Status> {
        let _ = session;
        Ok(())
    }

    /// A pull arrived; it is not routed yet, so the uri and meta may be
    /// rewritten. An error is replied and no handler runs.
    async fn post_read_pull_header(
        &self,
        session: &Session,
        pull: &mut Packet,
    ) -> Result<(), Status> {
        let _ = (session, pull);
        Ok(())
    }

    /// A push arrived; not routed yet. An error drops the push (logged).
    async fn post_read_push_header(
        &self,
        session: &Session,
        push: &mut Packet,
    ) -> Result<(), Status> {
        let _ = (session, push);
        Ok(())
    }

    /// A reply arrived, not yet handed to its pull. An error becomes the
    /// pull's outcome.
    async fn post_read_reply_header(
        &self,
        session: &Session,
        reply: &mut Packet,
    ) -> Result<(), Status> {
        let _ = (session, reply);
        Ok(())
    }

    /// A reply's body may be replaced before the puller decodes it. An error
    /// becomes the pull's outcome.
    async fn pre_read_reply_body(
        &self,
        session: &Session,
        reply: &mut Packet,
    ) -> Result<(), Status> {
        let _ = (session, reply);
        Ok(())
    }

    /// A reply is about to be handed to its pull. An error becomes the
    /// pull's outcome.
    async fn post_read_reply_body(&self, session: &Session, reply: &Packet) -> Result<(), Status> {
        let _ = (session, reply);
        Ok(())
    }

    /// The session closed (for any reason). Runs once per session.
    async fn post_disconnect(&self, session: &Session) {
        let _ = session;
    }
}

/// A route's plugins: the peer's, then its groups', outer first.
pub(crate) type RouteChain = Arc<[Arc<dyn RoutePlugin>]>;

/// Attaching group plugins to routers and groups.
pub trait PluginGroups {
    /// A group under `prefix` whose routes also run `plugins` (route hooks
    /// only), after the peer's plugins and the enclosing groups'.
    fn plugin_group(&mut self, prefix: &str, plugins: Vec<Arc<dyn RoutePlugin>>) -> Group<'_>;
}

fn wrap(plugins: Vec<Arc<dyn RoutePlugin>>) -> Vec<GroupPlugin> {
    plugins
        .into_iter()
        .map(|p| Arc::new(p) as GroupPlugin)
        .collect()
}

impl PluginGroups for Router {
    fn plugin_group(&mut self, prefix: &str, plugins: Vec<Arc<dyn RoutePlugin>>) -> Group<'_> {
        self.group_with(prefix, wrap(plugins))
    }
}

impl PluginGroups for Group<'_> {
    fn plugin_group(&mut self, prefix: &str, plugins: Vec<Arc<dyn RoutePlugin>>) -> Group<'_> {
        self.group_with(prefix, wrap(plugins))
    }
}

/// The route plugins of a route: `peer` then its groups' plugins.
pub(crate) fn route_chain(
    peer: &[Arc<dyn Plugin>],
    route: &RouteInfo,
) -> Vec<Arc<dyn RoutePlugin>> {
    let mut chain: Vec<Arc<dyn RoutePlugin>> = peer.iter().map(|p| upcast(p.clone())).collect();
    if let Some(group) = route.group() {
        chain.extend(
            group
                .plugin_chain()
                .iter()
                .filter_map(|p| p.downcast_ref::<Arc<dyn RoutePlugin>>().cloned()),
        );
    }
    chain
}

/// `Arc<dyn Plugin>` as `Arc<dyn RoutePlugin>`.
pub(crate) fn upcast(plugin: Arc<dyn Plugin>) -> Arc<dyn RoutePlugin> {
    plugin
}
