//! [`Addr`]: where a peer listens or dials — TCP or a Unix socket.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// A TCP address (`127.0.0.1:9090`, `[::1]:0`, `localhost:9090`) or a Unix
/// socket path written `unix:/path/to.sock`.
///
/// ```
/// use jaunt_peer::Addr;
///
/// assert!(matches!("127.0.0.1:9090".parse::<Addr>(), Ok(Addr::Tcp(_))));
/// assert!(matches!("unix:/tmp/j.sock".parse::<Addr>(), Ok(Addr::Unix(_))));
/// assert!("nonsense".parse::<Addr>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Addr {
    /// A TCP socket address.
    Tcp(SocketAddr),
    /// A TCP host name and port, resolved when dialing.
    Host(String, u16),
    /// A Unix domain socket path.
    Unix(PathBuf),
}

/// An address that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid address {0:?}: expected host:port or unix:/path")]
pub struct AddrParseError(String);

impl FromStr for Addr {
    type Err = AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(AddrParseError(s.to_owned()));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Ok(Self::Tcp(sa));
        }
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && !host.contains(':') => port
                .parse()
                .map(|port| Self::Host(host.to_owned(), port))
                .map_err(|_| AddrParseError(s.to_owned())),
            _ => Err(AddrParseError(s.to_owned())),
        }
    }
}

impl From<SocketAddr> for Addr {
    fn from(sa: SocketAddr) -> Self {
        Self::Tcp(sa)
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(sa) => write!(f, "{sa}"),
            Self::Host(host, port) => write!(f, "{host}:{port}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Anything that names an address: an [`Addr`], a `SocketAddr` or a string.
pub trait ToAddr {
    /// The address.
    fn to_addr(&self) -> Result<Addr, AddrParseError>;
}

impl ToAddr for Addr {
    fn to_addr(&self) -> Result<Addr, AddrParseError> {
        Ok(self.clone())
    }
}

impl ToAddr for SocketAddr {
    fn to_addr(&self) -> Result<Addr, AddrParseError> {
        Ok(Addr::Tcp(*self))
    }
}

impl ToAddr for str {
    fn to_addr(&self) -> Result<Addr, AddrParseError> {
        self.parse()
    }
}

impl ToAddr for String {
    fn to_addr(&self) -> Result<Addr, AddrParseError> {
        self.parse()
    }
}

impl<T: ToAddr + ?Sized> ToAddr for &T {
    fn to_addr(&self) -> Result<Addr, AddrParseError> {
        (**self).to_addr()
    }
}
