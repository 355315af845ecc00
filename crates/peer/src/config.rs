//! [`PeerConfig`]: everything a peer can be told, deserializable with serde.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A peer's settings. Every field has a documented default, so a config file
/// only names what it changes. Durations are written like `"30s"`, `"500ms"`
/// or `"2m"`.
///
/// ```
/// use jaunt_peer::PeerConfig;
///
/// let cfg: PeerConfig = serde_json::from_str(r#"{"dial_timeout": "3s", "print_detail": true}"#).unwrap();
/// assert_eq!(cfg.dial_timeout, std::time::Duration::from_secs(3));
/// assert_eq!(cfg.default_body_codec, "json");
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeerConfig {
    /// Name of the codec used for bodies when a call names none. Default `"json"`.
    pub default_body_codec: String,
    /// Close a session that sends nothing for this long (an idle or
    /// half-open connection). Default 5 minutes: long enough for any
    /// heartbeat (the heartbeat plugin's `Ping` keeps an idle session alive),
    /// short enough that dead connections do not pile up. `None`: never.
    #[serde(deserialize_with = "opt_duration")]
    pub read_timeout: Option<Duration>,
    /// Close an accepted session whose first whole frame has not arrived
    /// this long after the connection was accepted (connections that never
    /// speak, slowloris). Connect hooks that read (an auth handshake) wait
    /// at most this long too. Default 10s. `None`: only `read_timeout`.
    #[serde(deserialize_with = "opt_duration")]
    pub first_frame_timeout: Option<Duration>,
    /// Close a session that started a frame and has not finished it this
    /// long after (a slow-body attack: one byte now and then). The clock
    /// starts again after the session had to wait for its byte budget.
    /// Default 30s, which takes a maximal 16 MiB frame at 4.5 Mbit/s.
    /// `None`: never.
    #[serde(deserialize_with = "opt_duration")]
    pub frame_timeout: Option<Duration>,
    /// Fail (and close the session) when one write takes longer: a session
    /// whose other side stops reading is closed after this. Default 30s.
    /// `None`: never (a client that stops reading then holds its queue,
    /// its handlers and their bytes until it disconnects).
    #[serde(deserialize_with = "opt_duration")]
    pub write_timeout: Option<Duration>,
    /// The time budget of a pull that names none (see
    /// `PullOptions::timeout`). Default: none.
    #[serde(deserialize_with = "opt_duration")]
    pub pull_timeout: Option<Duration>,
    /// How long a dial may take. Default 10s.
    #[serde(deserialize_with = "duration")]
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
    #[serde(deserialize_with = "duration")]
    pub slow_consumer_wait: Duration,
    /// Close a session this long after it started. Default: never.
    #[serde(deserialize_with = "opt_duration")]
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
    #[serde(deserialize_with = "opt_duration")]
    pub slow_call_threshold: Option<Duration>,
    /// Log meta and body of every message (at DEBUG). Default false.
    pub print_detail: bool,
    /// Log the cost of every call (at DEBUG). Default false.
    pub count_time: bool,
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
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedialConfig {
    /// Attempts before the session is closed; `None`: no limit. Default: none.
    pub max_attempts: Option<u32>,
    /// Wait after the first failed attempt. Default 200ms.
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    /// Each wait is the previous one times this (at least 1). Default 2.
    pub backoff: f64,
    /// The longest wait. Default 10s.
    #[serde(deserialize_with = "duration")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handling {
    /// Every pull and push in its own task, concurrently.
    Concurrent,
    /// One at a time, in arrival order (replies are still read at once, so a
    /// handler may pull back to its caller).
    InOrder,
}

fn duration<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(de)?;
    humantime::parse_duration(&text).map_err(serde::de::Error::custom)
}

fn opt_duration<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(de)?
        .map(|text| humantime::parse_duration(&text).map_err(serde::de::Error::custom))
        .transpose()
}
