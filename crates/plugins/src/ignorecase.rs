//! Case-insensitive uris: the path of every incoming pull and push is
//! lower-cased before it is routed, so `/Math/ADD?X=1` reaches the route
//! `/math/add` (the query string is left as it is: the handler sees `X=1`).
//!
//! **Routes must be registered in lower case**: a route whose path has an
//! upper-case letter could never be reached, so the peer refuses to build
//! with one (`PeerError::Plugin` naming the route). The default
//! [`UriMapper`](jaunt_router::UriMapper) already produces lower-case uris
//! for controllers. Lower-casing is Unicode-aware, as Go's `strings.ToLower`
//! (which Go erpc's ignorecase plugin uses).
//!
//! Put this plugin before plugins that look at uris (rate limits, metrics),
//! so they see the lower-cased ones. Uris of outgoing pulls and pushes are
//! not changed.
//!
//! ```
//! use jaunt::prelude::*;
//! use jaunt::plugins::ignorecase::IgnoreCase;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let mut routes = Router::new();
//! routes.pull("/math/add", |_: PullCtx, args: Vec<i64>| async move {
//!     Ok::<_, Status>(args.iter().sum::<i64>())
//! }).unwrap();
//! let server = Peer::builder(routes).plugin(IgnoreCase).build().unwrap();
//! let addr = server.listen("127.0.0.1:0").await.unwrap();
//!
//! let client = Peer::new(Router::new());
//! let session = client.dial(&addr).await.unwrap();
//! let sum: i64 = session.pull("/Math/ADD", &vec![1, 2]).await.unwrap().decode().unwrap();
//! assert_eq!(sum, 3);
//!
//! client.close().await;
//! server.close().await;
//! # });
//! ```

use async_trait::async_trait;
use jaunt_peer::{Plugin, RouteKind, RoutePlugin, Session};
use jaunt_router::RouteInfo;
use jaunt_socket::{Packet, Status};

/// The ignorecase plugin (see the [module docs](self)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IgnoreCase;

/// Lower-cases the path of `uri` in place, leaving the query string alone.
///
/// ```
/// let mut uri = String::from("/Math/ADD?X=1");
/// jaunt::plugins::ignorecase::lower_path(&mut uri);
/// assert_eq!(uri, "/math/add?X=1");
/// ```
pub fn lower_path(uri: &mut String) {
    let end = uri.find('?').unwrap_or(uri.len());
    let path = &uri[..end];
    if path.is_ascii() {
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            uri[..end].make_ascii_lowercase();
        }
        return;
    }
    let lower = path.to_lowercase();
    if lower != path {
        uri.replace_range(..end, &lower);
    }
}

#[async_trait]
impl RoutePlugin for IgnoreCase {
    fn name(&self) -> &str {
        "ignorecase"
    }

    fn post_reg(&self, route: &RouteInfo, _kind: RouteKind) -> Result<(), Status> {
        let path = route.uri().split('?').next().unwrap_or_default();
        if path.to_lowercase() != path {
            return Err(Status::bad_message(format!(
                "route {path} has upper-case letters: with ignorecase it is unreachable; register {} instead",
                path.to_lowercase()
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl Plugin for IgnoreCase {
    async fn post_read_pull_header(
        &self,
        _session: &Session,
        pull: &mut Packet,
    ) -> Result<(), Status> {
        lower_path(&mut pull.uri);
        Ok(())
    }

    async fn post_read_push_header(
        &self,
        _session: &Session,
        push: &mut Packet,
    ) -> Result<(), Status> {
        lower_path(&mut push.uri);
        Ok(())
    }
}
