//! What went wrong, and the exit code it ends with.

use std::fmt;
use std::process::ExitCode;

use jaunt::{code, Status};

/// The exit codes, as `--help` prints them.
pub const HELP: &str = "\
Exit codes:
  0   success
  1   the call failed with a status not listed below (the status is printed)
  2   bad command line (unknown flag, bad value)
  3   bad local input: unreadable --data file or --config, --data not valid JSON for codec json
  4   could not connect: dial refused or timed out, TLS handshake failed (status 105, 100)
  5   unauthorized: the server refused the --auth credentials, or answered 401
  6   the connection was lost before the reply (status 102, 104)
  7   timed out waiting for the reply (status 408)
  8   no such route: not found or not allowed (status 404, 405)
  9   bad request (status 400)
  10  server error (status 5xx)
  `jaunt bench` exits 1 when any call failed.";

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// Bad local input (a file, the body, the config).
    Input(String),
    /// The server (or the connection) answered with this status.
    Status(Status),
    /// The server refused the credentials during the dial.
    Unauthorized(Status),
}

impl Failure {
    /// The process exit code (see [`HELP`]).
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Input(_) => 3,
            Failure::Unauthorized(_) => 5,
            Failure::Status(status) => status_exit_code(status.code()),
        })
    }
}

/// The exit code of a call that ended with status `code`.
pub fn status_exit_code(status: i32) -> u8 {
    match status {
        code::OK => 0,
        code::DIAL_FAILED | code::WRONG_CONN => 4,
        code::UNAUTHORIZED => 5,
        code::CONN_CLOSED | code::WRITE_FAILED => 6,
        code::HANDLE_TIMEOUT => 7,
        code::NOT_FOUND | code::MTYPE_NOT_ALLOWED => 8,
        code::BAD_MESSAGE => 9,
        500..=599 => 10,
        _ => 1,
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Input(message) => f.write_str(message),
            Failure::Status(status) => write!(f, "status {}", describe(status)),
            Failure::Unauthorized(status) => {
                write!(
                    f,
                    "the server refused the credentials: {}",
                    describe(status)
                )
            }
        }
    }
}

/// `404 (Not Found): no route /x` — the code, its text and the cause.
pub fn describe(status: &Status) -> String {
    let mut text = format!("{} ({})", status.code(), status.msg());
    if let Some(cause) = status.cause().filter(|c| !c.is_empty()) {
        text.push_str(": ");
        text.push_str(cause);
    }
    text
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Failure::Status(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_code_maps_as_the_help_says() {
        let cases = [
            (code::OK, 0),
            (code::DIAL_FAILED, 4),
            (code::WRONG_CONN, 4),
            (code::UNAUTHORIZED, 5),
            (code::CONN_CLOSED, 6),
            (code::WRITE_FAILED, 6),
            (code::HANDLE_TIMEOUT, 7),
            (code::NOT_FOUND, 8),
            (code::MTYPE_NOT_ALLOWED, 8),
            (code::BAD_MESSAGE, 9),
            (code::INTERNAL_SERVER_ERROR, 10),
            (code::BAD_GATEWAY, 10),
            (599, 10),
            (600, 1),
            (code::UNKNOWN_ERROR, 1),
            (418, 1),
        ];
        for (status, exit) in cases {
            assert_eq!(status_exit_code(status), exit, "status {status}");
            if exit != 1 {
                assert!(
                    HELP.contains(&format!("\n  {exit} ")),
                    "{exit} is documented"
                );
            }
        }
        assert_eq!(Failure::Input("x".into()).exit_code(), ExitCode::from(3));
        assert_eq!(
            Failure::Unauthorized(Status::new(401, "no")).exit_code(),
            ExitCode::from(5)
        );
    }

    #[test]
    fn a_status_is_described_with_its_cause() {
        let status = Status::new(code::NOT_FOUND, "no route /x");
        let text = describe(&status);
        assert!(text.starts_with("404 ("), "{text}");
        assert!(text.contains("no route /x"), "{text}");
    }
}
