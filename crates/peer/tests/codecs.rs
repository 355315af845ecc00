//! Body codecs chosen per call: one handler served in json, protobuf, plain,
//! form and xml; `X-Accept-Body-Codec` and `set_reply_codec`.

mod common;

use common::{tcp_server, within};
use jaunt_codec::erased_serde;
use jaunt_codec::{ids, EncodeBody, MessageEncode, Pb};
use jaunt_peer::{Peer, PullCtx, PullOptions, Router, Session};
use jaunt_socket::Status;
use serde::{Deserialize, Serialize};

/// The serde form of a point (json, form, xml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i64,
    name: String,
}

/// The protobuf form of the same point.
#[derive(Clone, PartialEq, prost::Message)]
struct PbPoint {
    #[prost(int64, tag = "1")]
    x: i64,
    #[prost(string, tag = "2")]
    name: String,
}

/// The handler's reply: it can be carried by every codec, so the reply codec
/// is whatever the pull (or the handler) picks.
struct Scaled {
    point: Point,
    pb: PbPoint,
    /// The `name:x` text form, used when the pull came in plain.
    text: Option<String>,
}

impl EncodeBody for Scaled {
    fn type_name(&self) -> &'static str {
        "Scaled"
    }

    fn as_serialize(&self) -> Option<&dyn erased_serde::Serialize> {
        match &self.text {
            Some(text) => Some(text),
            None => Some(&self.point),
        }
    }

    fn as_message(&self) -> Option<&dyn MessageEncode> {
        Some(&self.pb)
    }
}

/// One handler for every codec: decodes the argument with the codec the
/// frame names, multiplies `x` by 10 and upper-cases the name, adding the
/// codec it saw (`ANN/j`). `?reply=<c>` makes it set the reply codec.
async fn scale(ctx: PullCtx) -> Result<Scaled, Status> {
    let codec = ctx.body_codec();
    let (point, plain) = match codec {
        ids::PROTOBUF => {
            let Pb(m) = ctx.decode::<Pb<PbPoint>>()?;
            (
                Point {
                    x: m.x,
                    name: m.name,
                },
                false,
            )
        }
        ids::PLAIN => {
            let text: String = ctx.decode()?;
            let (name, x) = text
                .split_once(':')
                .ok_or_else(|| Status::bad_message("want name:x"))?;
            let x = x
                .parse()
                .map_err(|_| Status::bad_message("x is not a number"))?;
            (
                Point {
                    x,
                    name: name.to_owned(),
                },
                true,
            )
        }
        _ => (ctx.decode::<Point>()?, false),
    };
    if let Some(reply) = ctx.query().get("reply") {
        ctx.set_reply_codec(reply.as_bytes()[0]);
    }
    let out = Point {
        x: point.x * 10,
        name: format!("{}/{}", point.name.to_uppercase(), char::from(codec)),
    };
    Ok(Scaled {
        text: plain.then(|| format!("{}:{}", out.name, out.x)),
        pb: PbPoint {
            x: out.x,
            name: out.name.clone(),
        },
        point: out,
    })
}

fn pt(x: i64, name: &str) -> Point {
    Point {
        x,
        name: name.into(),
    }
}

fn opts(codec: u8) -> PullOptions {
    PullOptions::new().codec(codec)
}

async fn setup() -> (Peer, Peer, Session) {
    let mut routes = Router::new();
    routes.pull("/point/scale", scale).unwrap();
    routes
        .pull("/pb/echo", |_: PullCtx, Pb(p): Pb<PbPoint>| async move {
            Ok::<_, Status>(Pb(PbPoint {
                x: -p.x,
                name: p.name + "!",
            }))
        })
        .unwrap();
    let (server, addr) = tcp_server(routes).await;
    let client = Peer::new(Router::new());
    let session = client.dial(&addr).await.unwrap();
    (server, client, session)
}

/// The same uri called in each codec: the handler decodes with the codec the
/// frame names and the reply comes back in that codec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_handler_in_every_codec() {
    within(async {
        let (server, client, s) = setup().await;

        // json (the default codec).
        let r = s.pull("/point/scale", &pt(1, "ann")).await.unwrap();
        assert_eq!(r.codec(), ids::JSON);
        assert_eq!(&r.body()[..], br#"{"x":10,"name":"ANN/j"}"#);
        assert_eq!(r.decode::<Point>().unwrap(), pt(10, "ANN/j"));

        // protobuf, with a prost message wrapped in Pb.
        let arg = Pb(PbPoint {
            x: 2,
            name: "bob".into(),
        });
        let r = s
            .pull_with("/point/scale", &arg, opts(ids::PROTOBUF))
            .await
            .unwrap();
        assert_eq!(r.codec(), ids::PROTOBUF);
        let Pb(back) = r.decode::<Pb<PbPoint>>().unwrap();
        assert_eq!((back.x, back.name.as_str()), (20, "BOB/p"));
        // A serde type cannot be read out of a protobuf body.
        assert_eq!(r.decode::<Point>().unwrap_err().code(), 400);

        // plain: a String.
        let r = s
            .pull_with("/point/scale", &"cat:3", opts(ids::PLAIN))
            .await
            .unwrap();
        assert_eq!(r.codec(), ids::PLAIN);
        assert_eq!(&r.body()[..], b"CAT/s:30");
        assert_eq!(r.decode::<String>().unwrap(), "CAT/s:30");

        // form.
        let r = s
            .pull_with("/point/scale", &pt(4, "dan"), opts(ids::FORM))
            .await
            .unwrap();
        assert_eq!(r.codec(), ids::FORM);
        assert_eq!(&r.body()[..], b"x=40&name=DAN%2Ff");
        assert_eq!(r.decode::<Point>().unwrap(), pt(40, "DAN/f"));

        // xml.
        let r = s
            .pull_with("/point/scale", &pt(5, "eve"), opts(ids::XML))
            .await
            .unwrap();
        assert_eq!(r.codec(), ids::XML);
        assert_eq!(&r.body()[..], b"<Point><x>50</x><name>EVE/x</name></Point>");
        assert_eq!(r.decode::<Point>().unwrap(), pt(50, "EVE/x"));

        // A typed protobuf handler.
        let arg = Pb(PbPoint {
            x: 8,
            name: "pb".into(),
        });
        let r = s
            .pull_with("/pb/echo", &arg, opts(ids::PROTOBUF))
            .await
            .unwrap();
        let Pb(back) = r.decode::<Pb<PbPoint>>().unwrap();
        assert_eq!((back.x, back.name.as_str()), (-8, "pb!"));
        // The same handler cannot read json: 400.
        let err = s.pull("/pb/echo", &pt(1, "j")).await.unwrap_err();
        assert_eq!(err.code(), 400);

        client.close().await;
        server.close().await;
    })
    .await;
}

/// `accept_codec` asks for the reply's codec; `set_reply_codec` in the
/// handler wins over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_codec_and_set_reply_codec() {
    within(async {
        let (server, client, s) = setup().await;

        // json in, protobuf out.
        let r = s
            .pull_with(
                "/point/scale",
                &pt(1, "ann"),
                PullOptions::new().accept_codec(ids::PROTOBUF),
            )
            .await
            .unwrap();
        assert_eq!(r.codec(), ids::PROTOBUF);
        let Pb(back) = r.decode::<Pb<PbPoint>>().unwrap();
        assert_eq!((back.x, back.name.as_str()), (10, "ANN/j"));

        // form in, xml out.
        let r = s
            .pull_with(
                "/point/scale",
                &pt(2, "bo"),
                opts(ids::FORM).accept_codec(ids::XML),
            )
            .await
            .unwrap();
        assert_eq!(r.codec(), ids::XML);
        assert_eq!(r.decode::<Point>().unwrap(), pt(20, "BO/f"));

        // protobuf in, json out.
        let arg = Pb(PbPoint {
            x: 3,
            name: "cy".into(),
        });
        let r = s
            .pull_with(
                "/point/scale",
                &arg,
                opts(ids::PROTOBUF).accept_codec(ids::JSON),
            )
            .await
            .unwrap();
        assert_eq!(r.codec(), ids::JSON);
        assert_eq!(r.decode::<Point>().unwrap(), pt(30, "CY/p"));

        // The handler's choice overrides the accepted codec.
        let r = s
            .pull_with(
                "/point/scale?reply=x",
                &pt(4, "di"),
                PullOptions::new().accept_codec(ids::PROTOBUF),
            )
            .await
            .unwrap();
        assert_eq!(r.codec(), ids::XML);
        assert_eq!(r.decode::<Point>().unwrap(), pt(40, "DI/j"));
        let r = s
            .pull_with("/point/scale?reply=f", &arg, opts(ids::PROTOBUF))
            .await
            .unwrap();
        assert_eq!(r.codec(), ids::FORM);
        assert_eq!(r.decode::<Point>().unwrap(), pt(30, "CY/p"));

        // Asking for a codec that cannot carry the reply (a struct as plain)
        // is the server's failure to encode: 500, and the session goes on.
        let err = s
            .pull_with(
                "/point/scale",
                &pt(5, "ed"),
                PullOptions::new().accept_codec(ids::PLAIN),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), 500);
        assert!(err.cause().unwrap_or_default().contains("encode"), "{err}");
        // An unregistered codec too.
        let err = s
            .pull_with(
                "/point/scale",
                &pt(5, "ed"),
                PullOptions::new().accept_codec(ids::THRIFT),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), 500);

        let r = s.pull("/point/scale", &pt(6, "fi")).await.unwrap();
        assert_eq!(r.decode::<Point>().unwrap(), pt(60, "FI/j"));

        client.close().await;
        server.close().await;
    })
    .await;
}
