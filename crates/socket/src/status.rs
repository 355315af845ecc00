//! [`Status`]: the outcome of a pull, carried in every frame.

use std::borrow::Cow;
use std::fmt;

use bytes::BytesMut;

use crate::query::{pairs, quote_into, quoted_len, unquote};
use crate::ProtoError;

/// The standard status codes of the erpc protocol. User-defined codes should
/// be above 1000.
pub mod code {
    /// An error of unknown kind.
    pub const UNKNOWN_ERROR: i32 = -1;
    /// Success.
    pub const OK: i32 = 0;
    /// An operation used outside the stage that allows it.
    pub const INVALID_OPERATION: i32 = 1;
    /// A connection that cannot be served.
    pub const WRONG_CONN: i32 = 100;
    /// Writing on a closed session; pending pulls when the connection drops.
    pub const CONN_CLOSED: i32 = 102;
    /// A socket write error or deadline.
    pub const WRITE_FAILED: i32 = 104;
    /// Dial, redial or the dial-side handshake failed.
    pub const DIAL_FAILED: i32 = 105;
    /// The body cannot be decoded, the uri is empty, or validation failed.
    pub const BAD_MESSAGE: i32 = 400;
    /// The first message of an authenticated session is not an auth message.
    pub const UNAUTHORIZED: i32 = 401;
    /// No handler for the uri, and no fallback.
    pub const NOT_FOUND: i32 = 404;
    /// Unknown message type.
    pub const MTYPE_NOT_ALLOWED: i32 = 405;
    /// The handler did not finish in time.
    pub const HANDLE_TIMEOUT: i32 = 408;
    /// The handler panicked, or the request was rejected by overload control.
    pub const INTERNAL_SERVER_ERROR: i32 = 500;
    /// A proxied upstream failed.
    pub const BAD_GATEWAY: i32 = 502;

    /// The standard message of a standard code (as Go erpc writes it).
    pub fn text(code: i32) -> Option<&'static str> {
        Some(match code {
            UNKNOWN_ERROR => "Unknown Error",
            OK => "",
            INVALID_OPERATION => "Invalid Operation",
            WRONG_CONN => "Wrong Connection",
            CONN_CLOSED => "Connection Closed",
            WRITE_FAILED => "Write Failed",
            DIAL_FAILED => "Dial Failed",
            BAD_MESSAGE => "Bad Message",
            UNAUTHORIZED => "Unauthorized",
            NOT_FOUND => "Not Found",
            MTYPE_NOT_ALLOWED => "Message Type Not Allowed",
            HANDLE_TIMEOUT => "Handle Timeout",
            INTERNAL_SERVER_ERROR => "Internal Server Error",
            BAD_GATEWAY => "Bad Gateway",
            _ => return None,
        })
    }
}

/// The outcome of an operation: a code, a message and an optional cause.
///
/// On the wire it is a query string, `code=404&msg=Not%20Found&cause=`: the
/// message is written only when it is not empty, the cause only when present
/// (standard statuses carry an empty cause, as Go erpc's do).
///
/// ```
/// use jaunt_socket::{code, Status};
///
/// let st = Status::not_found("no route /a/b");
/// assert_eq!(st.code(), code::NOT_FOUND);
/// assert_eq!(st.to_query(), "code=404&msg=Not%20Found&cause=no%20route%20%2Fa%2Fb");
/// assert_eq!(Status::parse(st.to_query().as_bytes()).unwrap(), st);
/// assert!(Status::ok().is_ok());
/// ```
///
/// Handlers return it for their failures, usually through `?`: the errors
/// handlers meet convert into it — I/O errors, timeouts, boxed errors and
/// (with features) serde_json and anyhow errors become 500 (408 for a
/// timeout) with [`Status::internal`], whose cause is kept from the caller
/// unless the peer is told to show it (`PeerConfig::expose_internal_errors`):
///
/// ```
/// use jaunt_socket::{code, Status};
///
/// fn read_config() -> Result<String, Status> {
///     Ok(std::fs::read_to_string("/no/such/file")?)
/// }
/// let err = read_config().unwrap_err();
/// assert_eq!(err.code(), code::INTERNAL_SERVER_ERROR);
/// assert!(err.is_cause_private());
/// ```
#[derive(Clone, Default)]
pub struct Status {
    code: i32,
    msg: Cow<'static, str>,
    cause: Option<String>,
    /// The cause describes a failure inside this process: not for callers.
    /// Not on the wire, not compared.
    private: bool,
}

impl PartialEq for Status {
    fn eq(&self, other: &Self) -> bool {
        (self.code, &self.msg, &self.cause) == (other.code, &other.msg, &other.cause)
    }
}

impl Eq for Status {}

macro_rules! standard_constructors {
    ($($(#[$doc:meta])* $name:ident => $code:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(cause: impl Into<String>) -> Self {
                Self::standard(code::$code, cause)
            }
        )*
    };
}

impl Status {
    /// Success: `code=0`.
    pub const fn ok() -> Self {
        Self {
            code: code::OK,
            msg: Cow::Borrowed(""),
            cause: None,
            private: false,
        }
    }

    /// A status with any code, message and no cause.
    pub fn new(code: i32, msg: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            msg: msg.into(),
            cause: None,
            private: false,
        }
    }

    /// A standard code with its standard message and the given cause (an
    /// empty string gives the `&cause=` that Go erpc writes).
    pub fn standard(code: i32, cause: impl Into<String>) -> Self {
        Self {
            code,
            msg: Cow::Borrowed(code::text(code).unwrap_or("")),
            cause: Some(cause.into()),
            private: false,
        }
    }

    standard_constructors! {
        /// 400: the body cannot be decoded or failed validation.
        bad_message => BAD_MESSAGE;
        /// 401: not authenticated.
        unauthorized => UNAUTHORIZED;
        /// 404: no handler for the uri.
        not_found => NOT_FOUND;
        /// 405: message type not allowed.
        mtype_not_allowed => MTYPE_NOT_ALLOWED;
        /// 408: the handler did not finish in time.
        handle_timeout => HANDLE_TIMEOUT;
        /// 502: a proxied upstream failed.
        bad_gateway => BAD_GATEWAY;
        /// 102: the connection is closed.
        conn_closed => CONN_CLOSED;
        /// 104: writing to the connection failed.
        write_failed => WRITE_FAILED;
        /// 105: dialing failed.
        dial_failed => DIAL_FAILED;
        /// 100: a connection that cannot be served.
        wrong_conn => WRONG_CONN;
        /// 1: an operation used outside the stage that allows it.
        invalid_operation => INVALID_OPERATION;
        /// -1: an error of unknown kind.
        unknown_error => UNKNOWN_ERROR;
    }

    /// 500 for a failure inside this process (a handler's error, a panic, a
    /// reply that cannot be encoded): `error` is the cause, marked private —
    /// a peer replying with it shows callers only "internal error" and logs
    /// the cause, unless `PeerConfig::expose_internal_errors` is set.
    ///
    /// ```
    /// use jaunt_socket::Status;
    ///
    /// let parsed: Result<u16, Status> = "70000".parse::<u16>().map_err(Status::internal);
    /// let status = parsed.unwrap_err();
    /// assert_eq!(status.cause(), Some("number too large to fit in target type"));
    /// assert!(status.is_cause_private());
    /// assert_eq!(status.clone().hide_private_cause().cause(), Some("internal error"));
    /// ```
    pub fn internal(error: impl fmt::Display) -> Self {
        let mut status = Self::standard(code::INTERNAL_SERVER_ERROR, error.to_string());
        status.private = true;
        status
    }

    /// Whether the cause is for this process only ([`Status::internal`]).
    pub fn is_cause_private(&self) -> bool {
        self.private
    }

    /// The status as callers may see it: a private cause is replaced with
    /// "internal error".
    #[must_use]
    pub fn hide_private_cause(mut self) -> Self {
        if self.private {
            self.cause = Some("internal error".to_owned());
            self.private = false;
        }
        self
    }

    /// Sets the cause (a public one: see [`Status::internal`]).
    #[must_use]
    pub fn with_cause(mut self, cause: impl Into<String>) -> Self {
        self.cause = Some(cause.into());
        self.private = false;
        self
    }

    /// The code.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// The message (empty for OK).
    pub fn msg(&self) -> &str {
        &self.msg
    }

    /// The cause, if any.
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }

    /// Whether this is success (code 0).
    pub fn is_ok(&self) -> bool {
        self.code == code::OK
    }

    /// `Ok(())` for success, `Err(self)` otherwise.
    pub fn into_result(self) -> Result<(), Status> {
        if self.is_ok() {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// The wire form, e.g. `code=404&msg=Not%20Found&cause=`.
    pub fn to_query(&self) -> String {
        let mut out = BytesMut::new();
        self.write_query(&mut out);
        // Only ASCII is ever written.
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Appends the wire form to `dst`.
    pub fn write_query(&self, dst: &mut BytesMut) {
        if self.code == code::OK && self.msg.is_empty() && self.cause.is_none() {
            dst.extend_from_slice(b"code=0");
            return;
        }
        let mut buf = itoa::Buffer::new();
        dst.extend_from_slice(b"code=");
        dst.extend_from_slice(buf.format(self.code).as_bytes());
        if !self.msg.is_empty() {
            dst.extend_from_slice(b"&msg=");
            quote_into(self.msg.as_bytes(), dst);
        }
        if let Some(cause) = &self.cause {
            dst.extend_from_slice(b"&cause=");
            quote_into(cause.as_bytes(), dst);
        }
    }

    /// The length of the wire form, as [`write_query`](Self::write_query) writes it.
    // Only the protobuf framing needs lengths before writing.
    #[cfg_attr(not(feature = "pb-proto"), allow(dead_code))]
    pub(crate) fn query_len(&self) -> usize {
        let mut len = "code=".len() + itoa::Buffer::new().format(self.code).len();
        if !self.msg.is_empty() {
            len += "&msg=".len() + quoted_len(self.msg.as_bytes());
        }
        if let Some(cause) = &self.cause {
            len += "&cause=".len() + quoted_len(cause.as_bytes());
        }
        len
    }

    /// Parses the wire form. An empty input is OK; unknown keys are ignored;
    /// the first occurrence of a key wins. Message and cause bytes that are
    /// not UTF-8 are replaced with U+FFFD rather than rejected.
    pub fn parse(src: &[u8]) -> Result<Self, ProtoError> {
        if src == b"code=0" {
            return Ok(Self::ok());
        }
        let (mut code, mut msg, mut cause) = (None, None, None);
        for (key, value) in pairs(src) {
            let value = &src[value];
            match &src[key] {
                b"code" if code.is_none() => {
                    let text = unquote(value, "status code")?;
                    let parsed = std::str::from_utf8(&text)
                        .ok()
                        .and_then(|t| t.parse::<i32>().ok())
                        .ok_or(ProtoError::InvalidStatusCode)?;
                    code = Some(parsed);
                }
                b"msg" if msg.is_none() => msg = Some(lossy(&unquote(value, "status msg")?)),
                b"cause" if cause.is_none() => {
                    cause = Some(lossy(&unquote(value, "status cause")?));
                }
                _ => {}
            }
        }
        Ok(Self {
            code: code.unwrap_or(code::OK),
            msg: Cow::Owned(msg.unwrap_or_default()),
            cause,
            private: false,
        })
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Status")
            .field("code", &self.code)
            .field("msg", &self.msg)
            .field("cause", &self.cause)
            .finish()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status {}", self.code)?;
        if !self.msg.is_empty() {
            write!(f, " {}", self.msg)?;
        }
        match self.cause.as_deref() {
            Some(cause) if !cause.is_empty() => write!(f, ": {cause}"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for Status {}

/// An I/O failure in a handler: 500 (408 for `TimedOut`), cause private.
impl From<std::io::Error> for Status {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::TimedOut {
            Self::handle_timeout(e.to_string())
        } else {
            Self::internal(e)
        }
    }
}

/// A boxed error (`Box<dyn Error + Send + Sync>`, what `?` makes of most
/// errors): 500, cause private. A boxed `Status` stays itself.
impl From<Box<dyn std::error::Error + Send + Sync>> for Status {
    fn from(e: Box<dyn std::error::Error + Send + Sync>) -> Self {
        match e.downcast::<Status>() {
            Ok(status) => *status,
            Err(e) => Self::internal(e),
        }
    }
}

/// A boxed error that is not `Send`: 500, cause private.
impl From<Box<dyn std::error::Error>> for Status {
    fn from(e: Box<dyn std::error::Error>) -> Self {
        match e.downcast::<Status>() {
            Ok(status) => *status,
            Err(e) => Self::internal(e),
        }
    }
}

/// A deadline passed (`tokio::time::timeout`): 408.
impl From<tokio::time::error::Elapsed> for Status {
    fn from(e: tokio::time::error::Elapsed) -> Self {
        Self::handle_timeout(e.to_string())
    }
}

/// A JSON failure in a handler: 500, cause private.
#[cfg(feature = "json-proto")]
impl From<serde_json::Error> for Status {
    fn from(e: serde_json::Error) -> Self {
        Self::internal(e)
    }
}

/// An `anyhow` error (feature `anyhow`): 500, cause private (with its
/// chain of causes). A `Status` inside stays itself.
#[cfg(feature = "anyhow")]
impl From<anyhow::Error> for Status {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<Status>() {
            Ok(status) => status,
            Err(e) => Self::internal(format_args!("{e:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_vectors() {
        let st = Status::parse(b"code=1001&msg=custom%20failure&cause=bad%20thing%20%26%20more%3D1%20%252F%20%E2%9C%93").unwrap();
        assert_eq!(st.code(), 1001);
        assert_eq!(st.msg(), "custom failure");
        assert_eq!(st.cause(), Some("bad thing & more=1 %2F ✓"));
        let nf = Status::not_found("");
        assert_eq!(nf.to_query(), "code=404&msg=Not%20Found&cause=");
        assert_eq!(
            Status::parse(b"code=404&msg=Not%20Found&cause=").unwrap(),
            nf
        );
        assert_eq!(Status::ok().to_query(), "code=0");
        assert_eq!(Status::new(0, "").to_query(), "code=0");
        assert_eq!(Status::new(0, "fine").to_query(), "code=0&msg=fine");
        assert_eq!(Status::ok().with_cause("").to_query(), "code=0&cause=");
        for st in [
            Status::ok(),
            Status::ok().with_cause("x"),
            Status::not_found("no route /a/b"),
            Status::new(-123_456, "neg ✓"),
            Status::new(i32::MIN, ""),
        ] {
            assert_eq!(st.query_len(), st.to_query().len(), "{st:?}");
        }
    }

    #[test]
    fn lenient_forms() {
        assert_eq!(Status::parse(b"").unwrap(), Status::ok());
        let st = Status::parse(b"x=1&code=7&code=9&msg=a+b&&msg=zz").unwrap();
        assert_eq!((st.code(), st.msg(), st.cause()), (7, "a b", None));
    }

    #[test]
    fn bad_code_and_escape_are_errors() {
        assert!(matches!(
            Status::parse(b"code=x"),
            Err(ProtoError::InvalidStatusCode)
        ));
        assert!(matches!(
            Status::parse(b"code=99999999999"),
            Err(ProtoError::InvalidStatusCode)
        ));
        assert!(matches!(
            Status::parse(b"code=1&msg=%G0"),
            Err(ProtoError::InvalidPercentEncoding { .. })
        ));
    }

    /// The standard codes and texts, as Go erpc defines them.
    #[test]
    fn standard_codes_and_texts() {
        for (code, value, text) in [
            (code::UNKNOWN_ERROR, -1, "Unknown Error"),
            (code::OK, 0, ""),
            (code::INVALID_OPERATION, 1, "Invalid Operation"),
            (code::WRONG_CONN, 100, "Wrong Connection"),
            (code::CONN_CLOSED, 102, "Connection Closed"),
            (code::WRITE_FAILED, 104, "Write Failed"),
            (code::DIAL_FAILED, 105, "Dial Failed"),
            (code::BAD_MESSAGE, 400, "Bad Message"),
            (code::UNAUTHORIZED, 401, "Unauthorized"),
            (code::NOT_FOUND, 404, "Not Found"),
            (code::MTYPE_NOT_ALLOWED, 405, "Message Type Not Allowed"),
            (code::HANDLE_TIMEOUT, 408, "Handle Timeout"),
            (code::INTERNAL_SERVER_ERROR, 500, "Internal Server Error"),
            (code::BAD_GATEWAY, 502, "Bad Gateway"),
        ] {
            assert_eq!(code, value);
            assert_eq!(code::text(code), Some(text), "{code}");
            assert_eq!(Status::standard(code, "").msg(), text);
        }
        assert_eq!(code::text(1001), None);
    }

    #[test]
    fn success_errors_and_privacy() {
        assert!(Status::ok().into_result().is_ok());
        let nf = Status::not_found("x");
        assert!(!nf.is_ok());
        assert_eq!(nf.clone().into_result(), Err(nf.clone()));
        assert!(!nf.is_cause_private());
        assert_ne!(nf, Status::not_found("y"), "the cause is compared");
        assert_ne!(nf, Status::bad_message("x"), "the code is compared");
        assert_ne!(
            Status::new(7, "a"),
            Status::new(7, "b"),
            "the message is compared"
        );
        // Privacy is not on the wire and not compared.
        let private = Status::internal("disk on fire");
        assert!(private.is_cause_private());
        assert_eq!(
            private,
            Status::parse(private.to_query().as_bytes()).unwrap()
        );
        let shown = private.clone().hide_private_cause();
        assert!(!shown.is_cause_private());
        assert_eq!(shown.cause(), Some("internal error"));
        assert_eq!(nf.clone().hide_private_cause(), nf, "a public cause stays");
        assert!(!private.with_cause("now public").is_cause_private());
    }

    #[test]
    fn errors_convert() {
        let io: Status = std::io::Error::other("no disk").into();
        assert_eq!(
            (io.code(), io.cause()),
            (code::INTERNAL_SERVER_ERROR, Some("no disk"))
        );
        assert!(io.is_cause_private());
        let late: Status = std::io::Error::from(std::io::ErrorKind::TimedOut).into();
        assert_eq!(late.code(), code::HANDLE_TIMEOUT);
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Status::not_found("n"));
        assert_eq!(
            Status::from(boxed),
            Status::not_found("n"),
            "a boxed status stays itself"
        );
        let boxed: Box<dyn std::error::Error + Send + Sync> = "plain".into();
        assert_eq!(Status::from(boxed).code(), code::INTERNAL_SERVER_ERROR);
        let local: Box<dyn std::error::Error> = Box::new(Status::unauthorized("u"));
        assert_eq!(Status::from(local).code(), code::UNAUTHORIZED);
        let local: Box<dyn std::error::Error> = "plain".into();
        assert!(Status::from(local).is_cause_private());
        #[cfg(feature = "json-proto")]
        {
            let json: Status = serde_json::from_str::<u8>("x").unwrap_err().into();
            assert_eq!(json.code(), code::INTERNAL_SERVER_ERROR);
        }
    }

    #[tokio::test]
    async fn an_elapsed_deadline_is_408() {
        let elapsed = tokio::time::timeout(std::time::Duration::ZERO, std::future::pending::<()>())
            .await
            .unwrap_err();
        assert_eq!(Status::from(elapsed).code(), code::HANDLE_TIMEOUT);
    }

    #[test]
    fn the_first_cause_wins_and_debug_shows_all() {
        let st = Status::parse(b"code=1&cause=first&cause=second").unwrap();
        assert_eq!(st.cause(), Some("first"));
        assert_eq!(
            format!("{st:?}"),
            r#"Status { code: 1, msg: "", cause: Some("first") }"#
        );
        // An empty cause is not shown.
        assert_eq!(Status::not_found("").to_string(), "status 404 Not Found");
    }

    #[test]
    fn display() {
        assert_eq!(
            Status::not_found("x").to_string(),
            "status 404 Not Found: x"
        );
        assert_eq!(Status::new(1001, "boom").to_string(), "status 1001 boom");
    }
}
