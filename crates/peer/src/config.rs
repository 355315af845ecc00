//! [`PeerConfig`]: everything a peer can be told, (de)serializable with
//! serde, and the serde helpers for durations written like `"30s"`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A peer's settings. Every field has a documented default, so a config file
/// only names what it changes. Durations are written like `"30s"`, `"500ms"`
/// or `"2m"` (see [`duration`]).
///
/// ```
/// use jaunt_peer::PeerConfig;
///
/// let cfg: PeerConfig = serde_json::from_str(r#"{"dial_timeout": "3s", "print_detail": true}"#).unwrap();
/// assert_eq!(cfg.dial_timeout, std::time::Duration::from_secs(3));
/// assert_eq!(cfg.default_body_codec, "json");
/// ```
///
/// In code, build one with [`PeerConfig::builder`] (one setter per field;
/// new fields may be added in minor releases, so the struct cannot be
/// written as a literal outside this crate), and print the effective
/// configuration by serializing it:
///
/// ```
/// use std::time::Duration;
/// use jaunt_peer::PeerConfig;
///
/// let cfg = PeerConfig::builder()
///     .read_timeout(Duration::from_secs(60))
///     .pull_timeout(None)
///     .max_sessions(500)
///     .default_body_codec("protobuf")
///     .build();
/// let printed = serde_json::to_string(&cfg).unwrap();
/// assert!(printed.contains(r#""read_timeout":"1m""#), "{printed}");
/// let back: PeerConfig = serde_json::from_str(&printed).unwrap();
/// assert_eq!(back, cfg);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PeerConfig {
    /// The codec used for bodies when a call names none, by name (`"json"`,
    /// `"protobuf"`, `"plain"`, `"form"`, `"xml"`) or by its one-character
    /// id (`"j"`), as [`PullOptions::codec`](crate::PullOptions::codec)
    /// takes it. Default `"json"`.
    pub default_body_codec: String,
    /// Close a session that sends nothing for this long (an idle or
    /// half-open connection). Default 5 minutes: long enough for any
    /// heartbeat (the heartbeat plugin's `Ping` keeps an idle session alive),
    /// short enough that dead connections do not pile up. `None`: never.
    #[serde(with = "opt_duration")]
    pub read_timeout: Option<Duration>,
    /// Close an accepted session whose first whole frame has not arrived
    /// this long after the connection was accepted (connections that never
    /// speak, slowloris). Connect hooks that read (an auth handshake) wait
    /// at most this long too. Default 10s. `None`: only `read_timeout`.
    #[serde(with = "opt_duration")]
    pub first_frame_timeout: Option<Duration>,
    /// Close a session that started a frame and has not finished it this
    /// long after (a slow-body attack: one byte now and then). The clock
    /// starts again after the session had to wait for its byte budget.
    /// Default 30s, which takes a maximal 16 MiB frame at 4.5 Mbit/s.
    /// `None`: never.
    #[serde(with = "opt_duration")]
    pub frame_timeout: Option<Duration>,
    /// Fail (and close the session) when one write takes longer: a session
    /// whose other side stops reading is closed after this. Default 30s.
    /// `None`: never (a client that stops reading then holds its queue,
    /// its handlers and their bytes until it disconnects).
    #[serde(with = "opt_duration")]
    pub write_timeout: Option<Duration>,
    /// The time budget of a pull that names none (see
    /// `PullOptions::timeout`). Default: none.
    #[serde(with = "opt_duration")]
    pub pull_timeout: Option<Duration>,
    /// How long a dial may take. Default 10s.
    #[serde(with = "duration")]
    pub dial_timeout: Duration,
    /// The largest frame read or written, in bytes. Default 16 MiB.
    pub max_frame_len: usize,
    /// Frames that may wait in one session's write queue. Default 1024.
    /// (The queue is also bounded in bytes: `max_session_memory`.)
    pub write_queue_len: usize,
    /// The most sessions at once; further connections are closed at once.
    /// Default 10,000 (an idle session costs about 7 KiB, so 70 MiB).
    /// `None`: no limit (file descriptors are then the limit).
    pub max_sessions: Option<usize>,
    /// Handlers one session may run at once; the session stops reading
    /// until one finishes (no unbounded spawning). Default 256, like the
    /// concurrent streams an HTTP/2 server allows (Go's: 250): each handler
    /// may end up holding a reply for a client that does not read it, so
    /// this times the reply size bounds such a client's cost.
    pub max_handlers_per_session: usize,
    /// Handlers the whole peer runs at once, shared fairly between sessions
    /// (docs/reliability.md, "Fairness"): a session within its fair share
    /// (`max_handlers` / sessions) always gets a handler; one at or over it
    /// waits while the peer is at the limit. Default 16384.
    pub max_handlers: usize,
    /// The bytes one session may make this peer hold, in bytes: what it
    /// sends (the frame being read, the bodies its handlers hold, counted
    /// after decompression) and, as much again, what waits in its write
    /// queue. A session over it is not read until it is back under (TCP
    /// pushes back on the sender); a single frame larger than this is still
    /// read, alone. Default 8 MiB.
    pub max_session_memory: usize,
    /// The bytes all sessions together may make this peer hold, shared
    /// fairly like `max_handlers`. Default 256 MiB.
    pub max_peer_memory: usize,
    /// Close a connection after this many malformed frames in a row (each is
    /// dropped whole; Go erpc closes on the first). 0: never. Default 16.
    pub max_dropped_frames: u32,
    /// Bodies larger than this many bytes are decoded off the reading task
    /// (on a thread of their own, so other sessions are not held up while a
    /// large body is parsed). Frames with transfer filters (gzip) over this
    /// size on the wire are unpacked that way too. Default 64 KiB: about
    /// 0.14 ms of JSON parsing here, where moving the work off the task
    /// starts to cost less than it saves (docs/benchmarks.md, "Abuse").
    pub inline_body_limit: usize,
    /// The listening sockets' accept backlog. Default: the system's limit
    /// (`net.core.somaxconn`, 4096 on current Linux), as Go does.
    pub listen_backlog: Option<u32>,
    /// What a push does when the session's write queue is full (a slow
    /// consumer). Default: wait up to `slow_consumer_wait`.
    pub slow_consumer: SlowConsumer,
    /// How long a push waits for room with [`SlowConsumer::Wait`]. Default 5s.
    #[serde(with = "duration")]
    pub slow_consumer_wait: Duration,
    /// Close a session this long after it started. Default: never.
    #[serde(with = "opt_duration")]
    pub max_session_age: Option<Duration>,
    /// Whether a session's pulls and pushes are handled concurrently (Go
    /// erpc) or one at a time in arrival order (Tao's worker model). Default
    /// concurrent.
    pub handling: Handling,
    /// Dialed sessions reconnect after losing their connection. Default:
    /// off.
    pub redial: Option<RedialConfig>,
    /// TLS from PEM files (feature `tls`): with `cert` and `key`, `listen`
    /// serves TLS; with `ca`, `dial` speaks TLS. Default: none (plain).
    pub tls: Option<TlsFiles>,
    /// Calls slower than this are logged at WARN. Default: never.
    #[serde(with = "opt_duration")]
    pub slow_call_threshold: Option<Duration>,
    /// Write a run log line for every call (as Go erpc's `print_detail`),
    /// with the meta and body of each message. Default false.
    pub print_detail: bool,
    /// Write a run log line for every call with its cost (as Go erpc's
    /// `count_time`). Default false.
    ///
    /// A run log line is a DEBUG event of target `jaunt::runlog` (WARN past
    /// `slow_call_threshold`, which writes one whatever these switches say):
    /// `PULL-> 127.0.0.1:9090 1.2ms(fast) "/math/add" SEND(seq=2 codec=106) RECV(seq=2 status=0 codec=106)`.
    pub count_time: bool,
    /// At most this many run log lines a second for the peer (0: no limit);
    /// the next line written says in its `suppressed` field how many were
    /// left out. Default 100.
    pub run_log_per_second: u32,
    /// Show callers the causes of internal errors (`Status::internal`: a
    /// handler's I/O, codec or boxed error, a panic). Default false: the
    /// caller gets 500 with the cause "internal error", and the cause is
    /// logged here at WARN with the uri — a public server does not tell
    /// clients about its files, queries or bugs.
    pub expose_internal_errors: bool,
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            default_body_codec: "json".to_owned(),
            read_timeout: Some(Duration::from_secs(5 * 60)),
            first_frame_timeout: Some(Duration::from_secs(10)),
            frame_timeout: Some(Duration::from_secs(30)),
            write_timeout: Some(Duration::from_secs(30)),
            pull_timeout: None,
            dial_timeout: Duration::from_secs(10),
            max_frame_len: jaunt_socket::DEFAULT_MAX_FRAME_LEN,
            write_queue_len: 1024,
            max_sessions: Some(10_000),
            max_handlers_per_session: 256,
            max_handlers: 16384,
            max_session_memory: 8 << 20,
            max_peer_memory: 256 << 20,
            max_dropped_frames: 16,
            inline_body_limit: 64 << 10,
            listen_backlog: None,
            slow_consumer: SlowConsumer::Wait,
            slow_consumer_wait: Duration::from_secs(5),
            max_session_age: None,
            handling: Handling::Concurrent,
            redial: None,
            tls: None,
            slow_call_threshold: None,
            print_detail: false,
            count_time: false,
            run_log_per_second: 100,
            expose_internal_errors: false,
        }
    }
}

/// TLS for [`Peer::listen`](crate::Peer::listen) and
/// [`Peer::dial`](crate::Peer::dial), from PEM files.
///
/// ```
/// let cfg: jaunt_peer::PeerConfig = serde_json::from_str(
///     r#"{"tls": {"cert": "server.pem", "key": "server.key", "ca": "ca.pem", "server_name": "localhost"}}"#,
/// ).unwrap();
/// assert!(cfg.tls.unwrap().ca.is_some());
///
/// let files = jaunt_peer::TlsFiles::builder().ca("ca.pem").server_name("localhost").build();
/// assert_eq!(files.ca.as_deref(), Some(std::path::Path::new("ca.pem")));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsFiles {
    /// This peer's certificate chain: with `key`, listeners serve TLS (and,
    /// with `ca`, dials present it as a client certificate).
    pub cert: Option<PathBuf>,
    /// This peer's private key.
    pub key: Option<PathBuf>,
    /// Listeners require client certificates signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// Dials speak TLS and trust servers signed by this CA.
    pub ca: Option<PathBuf>,
    /// The name the server's certificate must carry; default: the host (or
    /// IP) of the dialed address.
    pub server_name: Option<String>,
}

/// How a dialed session reconnects after losing its connection.
///
/// The first attempt is immediate; then attempts wait `interval`, growing by
/// `backoff` each time up to `max_interval`.
///
/// ```
/// use std::time::Duration;
/// use jaunt_peer::{PeerConfig, RedialConfig};
///
/// let redial = RedialConfig::builder()
///     .max_attempts(5)
///     .interval(Duration::from_millis(50))
///     .build();
/// let cfg = PeerConfig::builder().redial(redial).build();
/// assert_eq!(cfg.redial.unwrap().max_attempts, Some(5));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedialConfig {
    /// Attempts before the session is closed; `None`: no limit. Default: none.
    pub max_attempts: Option<u32>,
    /// Wait after the first failed attempt. Default 200ms.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Each wait is the previous one times this (at least 1). Default 2.
    pub backoff: f64,
    /// The longest wait. Default 10s.
    #[serde(with = "duration")]
    pub max_interval: Duration,
}

impl Default for RedialConfig {
    fn default() -> Self {
        Self {
            max_attempts: None,
            interval: Duration::from_millis(200),
            backoff: 2.0,
            max_interval: Duration::from_secs(10),
        }
    }
}

/// What a push does when the session's write queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlowConsumer {
    /// Wait for room, up to `slow_consumer_wait`; then fail with 104.
    Wait,
    /// Fail at once with 104; the push is not sent.
    Drop,
    /// Close the session (status 102).
    Close,
}

/// How a session runs the handlers of the other side's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handling {
    /// Every pull and push in its own task, concurrently.
    Concurrent,
    /// One at a time, in arrival order (replies are still read at once, so a
    /// handler may pull back to its caller).
    InOrder,
}

/// Generates a builder: `$builder` wraps a default `$config`, with one
/// setter per field named after it. Fields marked `as into` take anything
/// that converts into their type (`&str` for a `String`, `Duration` or
/// `None` for an `Option<Duration>`); `T as some` marks an `Option<T>` field
/// whose setter takes anything that converts into `T` (`&str` for a path);
/// the others take their type (so integer literals infer).
macro_rules! builder {
    (
        $(#[$meta:meta])*
        $builder:ident for $config:ident {
            $( $field:ident: $ty:ty $(as $conv:ident)? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default)]
        #[must_use]
        pub struct $builder {
            config: $config,
        }

        impl $config {
            #[doc = concat!("A builder starting from the default [`", stringify!($config), "`].")]
            pub fn builder() -> $builder {
                $builder::default()
            }

            #[doc = concat!("A builder starting from this [`", stringify!($config), "`] (to change a loaded configuration).")]
            pub fn into_builder(self) -> $builder {
                $builder { config: self }
            }
        }

        impl From<$config> for $builder {
            fn from(config: $config) -> Self {
                Self { config }
            }
        }

        impl $builder {
            #[doc = concat!("The [`", stringify!($config), "`].")]
            #[must_use]
            pub fn build(self) -> $config {
                self.config
            }

            $( builder!(@setter $config, $field, $ty $(, $conv)?); )*
        }
    };
    (@setter $config:ident, $field:ident, $ty:ty, into) => {
        #[doc = concat!("Sets [`", stringify!($config), "::", stringify!($field), "`].")]
        pub fn $field(mut self, value: impl Into<$ty>) -> Self {
            self.config.$field = value.into();
            self
        }
    };
    (@setter $config:ident, $field:ident, $ty:ty, some) => {
        #[doc = concat!("Sets [`", stringify!($config), "::", stringify!($field), "`] to `Some(value)`.")]
        pub fn $field(mut self, value: impl Into<$ty>) -> Self {
            self.config.$field = Some(value.into());
            self
        }
    };
    (@setter $config:ident, $field:ident, $ty:ty) => {
        #[doc = concat!("Sets [`", stringify!($config), "::", stringify!($field), "`].")]
        pub fn $field(mut self, value: $ty) -> Self {
            self.config.$field = value;
            self
        }
    };
}

builder! {
    /// Builds a [`PeerConfig`]: `PeerConfig::builder().read_timeout(..).build()`.
    /// Fields not set keep their defaults.
    PeerConfigBuilder for PeerConfig {
        default_body_codec: String as into,
        read_timeout: Option<Duration> as into,
        first_frame_timeout: Option<Duration> as into,
        frame_timeout: Option<Duration> as into,
        write_timeout: Option<Duration> as into,
        pull_timeout: Option<Duration> as into,
        dial_timeout: Duration,
        max_frame_len: usize,
        write_queue_len: usize,
        max_sessions: Option<usize> as into,
        max_handlers_per_session: usize,
        max_handlers: usize,
        max_session_memory: usize,
        max_peer_memory: usize,
        max_dropped_frames: u32,
        inline_body_limit: usize,
        listen_backlog: Option<u32> as into,
        slow_consumer: SlowConsumer,
        slow_consumer_wait: Duration,
        max_session_age: Option<Duration> as into,
        handling: Handling,
        redial: Option<RedialConfig> as into,
        tls: Option<TlsFiles> as into,
        slow_call_threshold: Option<Duration> as into,
        print_detail: bool,
        count_time: bool,
        run_log_per_second: u32,
        expose_internal_errors: bool,
    }
}

builder! {
    /// Builds a [`TlsFiles`]: `TlsFiles::builder().ca("ca.pem").build()`.
    TlsFilesBuilder for TlsFiles {
        cert: PathBuf as some,
        key: PathBuf as some,
        client_ca: PathBuf as some,
        ca: PathBuf as some,
        server_name: String as some,
    }
}

builder! {
    /// Builds a [`RedialConfig`]: `RedialConfig::builder().max_attempts(3).build()`.
    RedialConfigBuilder for RedialConfig {
        max_attempts: Option<u32> as into,
        interval: Duration,
        backoff: f64,
        max_interval: Duration,
    }
}

/// Serde helpers for a [`Duration`] written as a human-readable string:
/// `"30s"`, `"500ms"`, `"2m"`, `"1h 30m"` (parsed and printed with
/// [`humantime`]; what is printed parses back to the same duration). For
/// your own configuration structs, with `#[serde(with = ...)]`:
///
/// ```
/// use std::time::Duration;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct AppConfig {
///     #[serde(with = "jaunt_peer::config::duration")]
///     poll_every: Duration,
///     // `default` lets the field be left out (then `None`).
///     #[serde(with = "jaunt_peer::config::opt_duration", default)]
///     grace: Option<Duration>,
/// }
///
/// let cfg: AppConfig = serde_json::from_str(r#"{"poll_every": "1m 30s"}"#).unwrap();
/// assert_eq!(cfg, AppConfig { poll_every: Duration::from_secs(90), grace: None });
/// assert_eq!(serde_json::to_string(&cfg).unwrap(), r#"{"poll_every":"1m 30s","grace":null}"#);
/// ```
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `value` like `"1m 30s"`.
    pub fn serialize<S: Serializer>(value: &Duration, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(&humantime::format_duration(*value))
    }

    /// Reads a duration like `"30s"`, `"500ms"` or `"1h 30m"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(de)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde helpers for an `Option<Duration>` written as a human-readable
/// string, or null for `None`; see [`duration`](mod@duration). Add
/// `#[serde(default)]` too to let the field be left out.
pub mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `Some(value)` like `"30s"`, `None` as null.
    pub fn serialize<S: Serializer>(value: &Option<Duration>, ser: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => ser.serialize_some(&humantime::format_duration(*value).to_string()),
            None => ser.serialize_none(),
        }
    }

    /// Reads a duration like `"30s"`, or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(de)?
            .map(|text| humantime::parse_duration(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}
