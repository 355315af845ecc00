//! `PeerConfig` and its parts: serialization round trips (JSON and TOML),
//! the builders, the public duration helpers, and codecs named the same way
//! in calls and in the configuration, through real sockets.

mod common;

use std::time::Duration;

use common::within;
use jaunt_peer::{
    Handling, Peer, PeerConfig, PeerError, PullCtx, PullOptions, RedialConfig, Router,
    SlowConsumer, TlsFiles,
};
use jaunt_socket::{code, Status};

/// A config with every field away from its default, sub-structs included.
fn everything_changed() -> PeerConfig {
    PeerConfig::builder()
        .default_body_codec("protobuf")
        .read_timeout(Duration::from_secs(61))
        .first_frame_timeout(Duration::from_millis(1500))
        .frame_timeout(Duration::from_secs(7))
        .write_timeout(Duration::from_secs(8))
        .pull_timeout(Duration::from_millis(250))
        .dial_timeout(Duration::from_secs(3))
        .max_frame_len(1 << 20)
        .write_queue_len(64)
        .max_sessions(12)
        .max_handlers_per_session(4)
        .max_handlers(40)
        .max_session_memory(1 << 20)
        .max_peer_memory(1 << 24)
        .max_dropped_frames(3)
        .inline_body_limit(4096)
        .listen_backlog(128)
        .slow_consumer(SlowConsumer::Drop)
        .slow_consumer_wait(Duration::from_secs(1))
        .max_session_age(Duration::from_secs(3600))
        .handling(Handling::InOrder)
        .redial(
            RedialConfig::builder()
                .max_attempts(9)
                .interval(Duration::from_millis(20))
                .backoff(1.5)
                .max_interval(Duration::from_secs(2))
                .build(),
        )
        .tls(
            TlsFiles::builder()
                .cert("server.pem")
                .key("server.key")
                .client_ca("clients.pem")
                .ca("ca.pem")
                .server_name("localhost")
                .build(),
        )
        .slow_call_threshold(Duration::from_millis(900))
        .print_detail(true)
        .count_time(true)
        .build()
}

/// The default config and one with every field changed serialize to JSON
/// and back equal; durations are the humantime strings that deserialize.
#[test]
fn config_round_trips_through_json() {
    let default = PeerConfig::default();
    let json = serde_json::to_value(&default).unwrap();
    println!("{}", serde_json::to_string_pretty(&json).unwrap());
    assert_eq!(json["read_timeout"], "5m");
    assert_eq!(json["first_frame_timeout"], "10s");
    assert_eq!(json["dial_timeout"], "10s");
    assert_eq!(json["pull_timeout"], serde_json::Value::Null);
    assert_eq!(json["slow_consumer"], "wait");
    assert_eq!(json["handling"], "concurrent");
    assert_eq!(json["default_body_codec"], "json");
    let back: PeerConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, default);

    let changed = everything_changed();
    assert_ne!(changed, default);
    let text = serde_json::to_string(&changed).unwrap();
    assert!(
        text.contains(r#""first_frame_timeout":"1s 500ms""#),
        "{text}"
    );
    assert!(text.contains(r#""interval":"20ms""#), "{text}");
    let back: PeerConfig = serde_json::from_str(&text).unwrap();
    assert_eq!(back, changed);

    // `None` where the default is `Some` survives too (as null).
    let never = PeerConfig::builder()
        .read_timeout(None)
        .max_sessions(None)
        .build();
    let back: PeerConfig = serde_json::from_str(&serde_json::to_string(&never).unwrap()).unwrap();
    assert_eq!(back, never);
}

/// The same through TOML (which has no null: a `None` field is left out,
/// which reads back as `None` wherever the default is `None`).
#[test]
fn config_round_trips_through_toml() {
    for config in [PeerConfig::default(), everything_changed()] {
        let text = toml::to_string(&config).unwrap();
        println!("{text}");
        let back: PeerConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, config);
    }
    let text = toml::to_string(&everything_changed()).unwrap();
    assert!(text.contains("read_timeout = \"1m 1s\""), "{text}");
    assert!(text.contains("[redial]"), "{text}");
}

/// Each builder setter sets its field and leaves the others at their
/// defaults; `into_builder` starts from a given config.
#[test]
fn builders_set_their_fields() {
    let built = PeerConfig::builder()
        .write_queue_len(7)
        .pull_timeout(Duration::from_secs(2))
        .print_detail(true)
        .build();
    let mut expected = PeerConfig::default();
    expected.write_queue_len = 7;
    expected.pull_timeout = Some(Duration::from_secs(2));
    expected.print_detail = true;
    assert_eq!(built, expected);

    let changed = everything_changed();
    assert_eq!(changed.default_body_codec, "protobuf");
    assert_eq!(changed.read_timeout, Some(Duration::from_secs(61)));
    assert_eq!(changed.max_sessions, Some(12));
    assert_eq!(changed.listen_backlog, Some(128));
    assert_eq!(changed.handling, Handling::InOrder);
    assert_eq!(changed.slow_consumer, SlowConsumer::Drop);
    let redial = changed.redial.clone().unwrap();
    assert_eq!(
        (
            redial.max_attempts,
            redial.interval,
            redial.backoff,
            redial.max_interval
        ),
        (
            Some(9),
            Duration::from_millis(20),
            1.5,
            Duration::from_secs(2)
        )
    );
    let tls = changed.tls.clone().unwrap();
    assert_eq!(
        tls.client_ca.as_deref(),
        Some(std::path::Path::new("clients.pem"))
    );
    assert_eq!(tls.server_name.as_deref(), Some("localhost"));

    let again = changed.clone().into_builder().count_time(false).build();
    assert!(!again.count_time);
    assert_eq!(again.max_handlers, 40);
    assert_eq!(RedialConfig::builder().build(), RedialConfig::default());
    assert_eq!(TlsFiles::builder().build(), TlsFiles::default());
}

/// The public duration helpers in a user's own struct.
#[test]
fn duration_helpers_in_a_users_struct() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Mine {
        #[serde(with = "jaunt_peer::config::duration")]
        every: Duration,
        #[serde(with = "jaunt_peer::config::opt_duration", default)]
        grace: Option<Duration>,
    }
    let mine = Mine {
        every: Duration::from_millis(90_250),
        grace: Some(Duration::from_secs(2)),
    };
    let text = serde_json::to_string(&mine).unwrap();
    assert_eq!(text, r#"{"every":"1m 30s 250ms","grace":"2s"}"#);
    assert_eq!(serde_json::from_str::<Mine>(&text).unwrap(), mine);
    assert!(serde_json::from_str::<Mine>(r#"{"every":"soon"}"#).is_err());
}

/// Echoes its argument as a string, with the codec it came in as.
fn echo_routes() -> Router {
    let mut routes = Router::new();
    routes
        .pull("/echo", |ctx: PullCtx, text: String| async move {
            Ok::<_, Status>(format!("{text} as {}", char::from(ctx.body_codec())))
        })
        .unwrap();
    routes
}

/// Calls name codecs like the config does: `.codec("json")`,
/// `.codec("plain")` and `.accept_codec("plain")` work through a socket, as
/// do the ids; a name the peer does not know fails the call with 400
/// before anything is sent, and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_name_codecs_like_the_config() {
    within(async {
        let server = Peer::new(echo_routes());
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::new(Router::new());
        let s = client.dial(&addr).await.unwrap();

        let r = s
            .pull_with("/echo", &"a", PullOptions::new().codec("json"))
            .await
            .unwrap();
        assert_eq!(r.codec(), b'j');
        assert_eq!(r.decode::<String>().unwrap(), "a as j");

        let r = s
            .pull_with("/echo", &"b", PullOptions::new().codec("plain"))
            .await
            .unwrap();
        assert_eq!(r.decode::<String>().unwrap(), "b as s");

        let r = s
            .pull_with(
                "/echo",
                &"c",
                PullOptions::new().codec(b'j').accept_codec("plain"),
            )
            .await
            .unwrap();
        assert_eq!(r.codec(), b's');
        assert_eq!(r.decode::<String>().unwrap(), "c as j");

        // A one-character name is the id.
        let r = s
            .pull_with("/echo", &"d", PullOptions::new().codec("s"))
            .await
            .unwrap();
        assert_eq!(r.decode::<String>().unwrap(), "d as s");

        for opts in [
            PullOptions::new().codec("yaml"),
            PullOptions::new().accept_codec("yaml"),
            PullOptions::new().codec(String::from("yaml")),
        ] {
            let err = s.pull_with("/echo", &"e", opts).await.unwrap_err();
            assert_eq!(err.code(), code::BAD_MESSAGE, "{err}");
            assert!(err.to_string().contains("yaml"), "{err}");
        }
        let err = s
            .push_with("/echo", &"f", PullOptions::new().codec("yaml"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::BAD_MESSAGE, "{err}");
        let err = s
            .async_pull("/echo", &"g", PullOptions::new().codec("yaml"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::BAD_MESSAGE, "{err}");

        let r = s.pull("/echo", &"still").await.unwrap();
        assert_eq!(r.decode::<String>().unwrap(), "still as j");

        client.close().await;
        server.close().await;
    })
    .await;
}

/// The config's default codec by name or by id; an unknown one is a build
/// error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_names_the_default_codec_by_name_or_id() {
    within(async {
        let server = Peer::new(echo_routes());
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        for (codec, expected) in [("plain", "x as s"), ("s", "x as s"), ("j", "x as j")] {
            let client = Peer::builder(Router::new())
                .config(PeerConfig::builder().default_body_codec(codec).build())
                .build()
                .unwrap();
            let s = client.dial(&addr).await.unwrap();
            let r = s.pull("/echo", &"x").await.unwrap();
            assert_eq!(r.decode::<String>().unwrap(), expected, "{codec}");
            client.close().await;
        }
        let refused = Peer::builder(Router::new())
            .config(PeerConfig::builder().default_body_codec("yaml").build())
            .build();
        assert!(matches!(refused, Err(PeerError::UnknownCodec(name)) if name == "yaml"));
        server.close().await;
    })
    .await;
}
