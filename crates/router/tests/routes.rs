//! Route registration and lookup, with a stand-in context.

use bytes::Bytes;
use jaunt_codec::{DecodeBody, Registry};
use jaunt_router::{RouteCtx, RouteError, Router, UriMapper};
use jaunt_socket::Status;

/// A context carrying a JSON body.
struct Ctx(Bytes);

impl RouteCtx for Ctx {
    fn decode_body<T: DecodeBody>(&self) -> Result<T, Status> {
        Registry::with_defaults()
            .decode(b'j', &self.0)
            .map_err(|e| Status::bad_message(e.to_string()))
    }
}

type TestRouter = Router<Ctx, Ctx>;

async fn add(_: Ctx, args: Vec<i64>) -> Result<i64, Status> {
    Ok(args.iter().sum())
}

async fn ping(_: Ctx) -> Result<&'static str, Status> {
    Ok("pong")
}

async fn note(_: Ctx, _text: String) {}

fn encode_json(value: &dyn jaunt_codec::EncodeBody) -> String {
    let bytes = Registry::with_defaults().encode(b'j', value).unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn typed_handlers_decode_their_argument_and_encode_their_result() {
    let mut router = TestRouter::new();
    router
        .pull("/math/add", add)
        .unwrap()
        .pull("/ping", ping)
        .unwrap();
    let route = router
        .find_pull("/math/add?x=1")
        .expect("query string is not part of the key");
    let out = (route.handler())(Ctx(Bytes::from_static(b"[1,2,39]")))
        .await
        .unwrap();
    assert_eq!(encode_json(&*out), "42");
    let out = (router.find_pull("/ping").unwrap().handler())(Ctx(Bytes::new()))
        .await
        .unwrap();
    assert_eq!(encode_json(&*out), "\"pong\"");
}

#[tokio::test]
async fn an_undecodable_argument_is_400_before_the_handler_runs() {
    let mut router = TestRouter::new();
    router.pull("/math/add", add).unwrap();
    let route = router.find_pull("/math/add").unwrap();
    let err = match (route.handler())(Ctx(Bytes::from_static(b"\"text\""))).await {
        Err(status) => status,
        Ok(_) => panic!("a string is not a Vec<i64>"),
    };
    assert_eq!(err.code(), jaunt_socket::code::BAD_MESSAGE);
}

#[tokio::test]
async fn push_handlers_return_unit_or_result() {
    let mut router = TestRouter::new();
    router
        .push("/note", note)
        .unwrap()
        .push("/fail", |_: Ctx| async {
            Err::<(), _>(Status::new(1001, "no"))
        })
        .unwrap();
    let ok =
        (router.find_push("/note").unwrap().handler())(Ctx(Bytes::from_static(b"\"x\""))).await;
    assert!(ok.is_ok());
    let err = (router.find_push("/fail").unwrap().handler())(Ctx(Bytes::new())).await;
    assert_eq!(err.unwrap_err().code(), 1001);
}

#[test]
fn groups_nest_and_record_their_prefix() {
    let mut router = TestRouter::new();
    {
        let mut api = router.group("/api");
        let mut v1 = api.group("v1/");
        v1.pull("/add", add).unwrap();
    }
    let route = router.find_pull("/api/v1/add").expect("nested group route");
    let group = route.info().group().expect("registered in a group");
    assert_eq!(group.prefix(), "/api/v1");
    assert_eq!(group.parent().unwrap().prefix(), "/api");
    assert_eq!(router.pull_uris(), ["/api/v1/add"]);
}

#[test]
fn registering_a_uri_twice_is_an_error() {
    let mut router = TestRouter::new();
    router.pull("/a", add).unwrap();
    assert_eq!(
        router.pull("a", add).err(),
        Some(RouteError::Duplicate {
            kind: "pull",
            uri: "/a".into()
        })
    );
    // The same uri may serve a pull and a push.
    router.push("/a", note).unwrap();
    assert!(router.group("/").push("/a", note).is_err());
    router.unknown_pull(ping).unwrap();
    assert_eq!(
        router.unknown_pull(ping).err(),
        Some(RouteError::DuplicateFallback { kind: "pull" })
    );
}

#[test]
fn invalid_uris_are_refused() {
    let mut router = TestRouter::new();
    assert!(matches!(
        router.pull("", add),
        Err(RouteError::InvalidUri { .. })
    ));
    assert!(matches!(
        router.pull("/a?x=1", add),
        Err(RouteError::InvalidUri { .. })
    ));
    let long = format!("/{}", "x".repeat(255));
    assert!(matches!(
        router.pull(&long, add),
        Err(RouteError::InvalidUri { .. })
    ));
}

#[test]
fn rpc_style_names() {
    let mut router = TestRouter::with_mapper(UriMapper::Rpc);
    router.group("Math").pull("Add", add).unwrap();
    assert!(router.find_pull("Math.Add").is_some());
    assert_eq!(UriMapper::Rpc.route("math", "xx_zz"), "Math.XxZz");
}

#[test]
fn fallbacks_are_separate_from_routes() {
    let mut router = TestRouter::new();
    assert!(router.unknown_pull_route().is_none());
    router
        .unknown_pull(ping)
        .unwrap()
        .unknown_push(|_: Ctx| async {})
        .unwrap();
    assert!(router.unknown_pull_route().is_some());
    assert!(router.unknown_push_route().is_some());
    assert!(router.find_pull("/nope").is_none());
}

/// A hand-written controller, as `#[jaunt::controller]` generates them.
struct MathV2 {
    offset: i64,
}

impl MathV2 {
    async fn add_all(&self, _ctx: &Ctx, args: Vec<i64>) -> Result<i64, Status> {
        Ok(args.iter().sum::<i64>() + self.offset)
    }
}

impl jaunt_router::Controller<Ctx, Ctx> for MathV2 {
    const SPEC: &'static jaunt_router::ServiceSpec = &jaunt_router::ServiceSpec {
        name: "MathV2",
        uri: None,
        methods: &[jaunt_router::MethodSpec {
            name: "add_all",
            uri: None,
            kind: jaunt_router::MethodKind::Pull,
        }],
    };

    fn register(
        self: std::sync::Arc<Self>,
        routes: &mut jaunt_router::ControllerRoutes<'_, '_, Ctx, Ctx>,
    ) -> Result<(), RouteError> {
        let this = self.clone();
        routes.pull(&Self::SPEC.methods[0], move |ctx: Ctx, args: Vec<i64>| {
            let this = this.clone();
            async move { this.add_all(&ctx, args).await }
        })
    }
}

#[tokio::test]
async fn controllers_register_under_their_type_name() {
    let mut router = TestRouter::new();
    router.controller(MathV2 { offset: 100 }).unwrap();
    router
        .group("/api")
        .controller(MathV2 { offset: 0 })
        .unwrap();
    assert_eq!(
        router.pull_uris(),
        ["/api/math_v2/add_all", "/math_v2/add_all"]
    );
    let route = router.find_pull("/math_v2/add_all").unwrap();
    let out = (route.handler())(Ctx(Bytes::from_static(b"[1,2]")))
        .await
        .unwrap();
    assert_eq!(encode_json(&*out), "103", "the controller's state is used");
    assert!(
        router.controller(MathV2 { offset: 0 }).is_err(),
        "registered twice"
    );

    let mut rpc = TestRouter::with_mapper(UriMapper::Rpc);
    rpc.controller(MathV2 { offset: 0 }).unwrap();
    assert_eq!(rpc.pull_uris(), ["MathV2.AddAll"]);
}

/// An error type a handler's `?` converts into `Status`.
async fn read_file(_: Ctx, path: String) -> Result<String, std::io::Error> {
    std::fs::read_to_string(path)
}

/// A boxed error, what `?` makes of any error.
async fn parse(_: Ctx, text: String) -> Result<i64, Box<dyn std::error::Error + Send + Sync>> {
    Ok(text.parse::<i64>()?)
}

#[tokio::test]
async fn handlers_may_return_any_error_that_converts_into_a_status() {
    let mut router = TestRouter::new();
    router.pull("/read", read_file).unwrap();
    router.pull("/parse", parse).unwrap();
    router
        .push("/io", |_: Ctx| async {
            Err::<(), _>(std::io::Error::other("disk on fire"))
        })
        .unwrap();
    let run = |uri: &str, body: &'static [u8]| {
        let route = router.find_pull(uri).unwrap();
        (route.handler())(Ctx(Bytes::from_static(body)))
    };
    let err = run("/read", br#""/no/such/file""#).await.err().unwrap();
    assert_eq!(err.code(), jaunt_socket::code::INTERNAL_SERVER_ERROR);
    assert!(err.is_cause_private());
    let err = run("/parse", br#""x""#).await.err().unwrap();
    assert_eq!(err.code(), jaunt_socket::code::INTERNAL_SERVER_ERROR);
    assert_eq!(err.cause(), Some("invalid digit found in string"));
    let ok = run("/parse", br#""7""#).await.ok().unwrap();
    assert_eq!(encode_json(&*ok), "7");
    let push = router.find_push("/io").unwrap();
    let err = (push.handler())(Ctx(Bytes::new())).await.unwrap_err();
    assert_eq!(err.cause(), Some("disk on fire"));
}

/// Explicit uris are used as written in their own style and converted in the
/// other; names are mapped.
#[test]
fn service_specs_name_routes_in_either_style() {
    use jaunt_router::{MethodKind, MethodSpec, ServiceSpec};
    static SPEC: ServiceSpec = ServiceSpec {
        name: "KvStore",
        uri: Some("/kv_v2"),
        methods: &[
            MethodSpec {
                name: "put_all",
                uri: None,
                kind: MethodKind::Pull,
            },
            MethodSpec {
                name: "get",
                uri: Some("Fetch.One"),
                kind: MethodKind::Push,
            },
        ],
    };
    assert_eq!(
        SPEC.uri(UriMapper::Http, &SPEC.methods[0]),
        "/kv_v2/put_all"
    );
    assert_eq!(SPEC.uri(UriMapper::Rpc, &SPEC.methods[0]), "KvV2.PutAll");
    assert_eq!(
        SPEC.uri(UriMapper::Http, &SPEC.methods[1]),
        "/kv_v2/fetch/one"
    );
    assert_eq!(SPEC.uri(UriMapper::Rpc, &SPEC.methods[1]), "KvV2.Fetch.One");
    static RPC: ServiceSpec = ServiceSpec {
        name: "ignored",
        uri: Some("Kv"),
        methods: &[],
    };
    assert_eq!(RPC.prefix(UriMapper::Rpc), "Kv");
    assert_eq!(RPC.prefix(UriMapper::Http), "/kv");
}

/// A hand-written controller with a push route.
struct Notes;

impl jaunt_router::Controller<Ctx, Ctx> for Notes {
    const SPEC: &'static jaunt_router::ServiceSpec = &jaunt_router::ServiceSpec {
        name: "Notes",
        uri: None,
        methods: &[jaunt_router::MethodSpec {
            name: "add",
            uri: Some("/append"),
            kind: jaunt_router::MethodKind::Push,
        }],
    };

    fn register(
        self: std::sync::Arc<Self>,
        routes: &mut jaunt_router::ControllerRoutes<'_, '_, Ctx, Ctx>,
    ) -> Result<(), RouteError> {
        routes.push(&Self::SPEC.methods[0], |_: Ctx, _: String| async {})
    }
}

#[test]
fn controllers_register_pushes_under_their_uris() {
    let mut router = TestRouter::new();
    router.service(Notes).unwrap();
    assert_eq!(router.push_uris(), ["/notes/append"]);
    assert!(router.pull_uris().is_empty());
    assert!(router.service(Notes).is_err(), "registered twice");
}
