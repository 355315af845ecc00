//! Which uris a typed client calls: [`Naming`], resolved per service by a
//! [`UriTable`].

use std::fmt;
use std::sync::{Arc, OnceLock};

use jaunt_router::{ServiceSpec, UriMapper};

/// How a client names a service's routes: the naming style of the server's
/// router, and the group the service is registered under, if any.
///
/// ```
/// use jaunt::service::Naming;
/// use jaunt::router::UriMapper;
///
/// let default = Naming::default(); // HTTP-style: `/kv/get`
/// let rpc = Naming::rpc(); // `Kv.Get`, as Go erpc's RPC mapper names it
/// let nested = Naming::http().under("/api"); // `/api/kv/get`
/// assert_eq!(nested.mapper(), UriMapper::Http);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Naming {
    mapper: UriMapper,
    under: Option<String>,
}

impl Naming {
    /// HTTP-style names (`/kv/get`, the default).
    pub fn http() -> Self {
        Self::new(UriMapper::Http)
    }

    /// RPC-style names (`Kv.Get`).
    pub fn rpc() -> Self {
        Self::new(UriMapper::Rpc)
    }

    /// Names in the given style.
    pub fn new(mapper: UriMapper) -> Self {
        Self {
            mapper,
            under: None,
        }
    }

    /// The service is registered under the group `prefix`
    /// (`router.group(prefix).service(..)`).
    #[must_use]
    pub fn under(mut self, prefix: impl Into<String>) -> Self {
        self.under = Some(prefix.into());
        self
    }

    /// The naming style.
    pub fn mapper(&self) -> UriMapper {
        self.mapper
    }
}

/// The uris of one service's routes, in the order of its methods; cheap to
/// clone.
#[derive(Clone)]
pub struct Uris(Arc<[Box<str>]>);

impl Uris {
    /// The uri of the method at `index` in the service's spec.
    pub fn get(&self, index: usize) -> &str {
        &self.0[index]
    }

    /// All of them.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|uri| &**uri)
    }
}

impl fmt::Debug for Uris {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A service's uris, computed once per naming style (each generated client
/// holds one in a `static`): building a client costs no allocation unless it
/// names a group.
pub struct UriTable {
    spec: &'static ServiceSpec,
    http: OnceLock<Uris>,
    rpc: OnceLock<Uris>,
}

impl UriTable {
    /// The table of `spec`, empty until first used.
    pub const fn new(spec: &'static ServiceSpec) -> Self {
        Self {
            spec,
            http: OnceLock::new(),
            rpc: OnceLock::new(),
        }
    }

    /// The uris a client with this naming calls.
    ///
    /// ```
    /// use jaunt::router::{MethodKind, MethodSpec, ServiceSpec};
    /// use jaunt::service::{Naming, UriTable};
    ///
    /// static SPEC: ServiceSpec = ServiceSpec {
    ///     name: "Kv",
    ///     uri: None,
    ///     methods: &[MethodSpec { name: "get", uri: None, kind: MethodKind::Pull }],
    /// };
    /// static TABLE: UriTable = UriTable::new(&SPEC);
    /// assert_eq!(TABLE.uris(&Naming::http()).get(0), "/kv/get");
    /// assert_eq!(TABLE.uris(&Naming::rpc()).get(0), "Kv.Get");
    /// assert_eq!(TABLE.uris(&Naming::http().under("/api")).get(0), "/api/kv/get");
    /// ```
    pub fn uris(&self, naming: &Naming) -> Uris {
        let mapper = naming.mapper;
        match &naming.under {
            None => {
                let cell = match mapper {
                    UriMapper::Http => &self.http,
                    UriMapper::Rpc => &self.rpc,
                };
                cell.get_or_init(|| self.resolve(mapper, None)).clone()
            }
            Some(prefix) => self.resolve(mapper, Some(prefix)),
        }
    }

    fn resolve(&self, mapper: UriMapper, under: Option<&str>) -> Uris {
        Uris(
            self.spec
                .methods
                .iter()
                .map(|method| {
                    let uri = self.spec.uri(mapper, method);
                    match under {
                        Some(prefix) => mapper.join(&mapper.join("", prefix), &uri),
                        None => mapper.join("", &uri),
                    }
                    .into_boxed_str()
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jaunt_router::{MethodKind, MethodSpec};

    static SPEC: ServiceSpec = ServiceSpec {
        name: "Kv",
        uri: None,
        methods: &[
            MethodSpec {
                name: "get",
                uri: None,
                kind: MethodKind::Pull,
            },
            MethodSpec {
                name: "forget",
                uri: Some("/drop"),
                kind: MethodKind::Push,
            },
        ],
    };
    static TABLE: UriTable = UriTable::new(&SPEC);

    #[test]
    fn tables_list_every_uri_in_order() {
        assert_eq!(Naming::rpc().mapper(), UriMapper::Rpc);
        assert_eq!(Naming::http().mapper(), UriMapper::Http);
        let http = TABLE.uris(&Naming::http());
        assert_eq!(http.iter().collect::<Vec<_>>(), ["/kv/get", "/kv/drop"]);
        assert_eq!(format!("{http:?}"), r#"["/kv/get", "/kv/drop"]"#);
        let rpc = TABLE.uris(&Naming::rpc());
        assert_eq!(rpc.iter().collect::<Vec<_>>(), ["Kv.Get", "Kv.Drop"]);
        let nested = TABLE.uris(&Naming::rpc().under("Api"));
        assert_eq!(nested.get(1), "Api.Kv.Drop");
        // The same table is shared, not rebuilt.
        assert!(Arc::ptr_eq(&http.0, &TABLE.uris(&Naming::default()).0));
    }
}
