//! What a call sends: the uri, the body and its codec, meta, a deadline, gzip.

use std::io::{IsTerminal, Read};
use std::time::Duration;

use clap::Args;
use jaunt::codec::Registry;
use jaunt::{codec_ids, CodecRef, PullOptions, RawBody};

use crate::exit::Failure;

/// The transfer filter id of gzip.
const GZIP: u8 = b'g';

/// The options of one request (`call`, `push`, and each call of `bench`).
#[derive(Debug, Clone, Args)]
pub struct RequestOpts {
    /// The uri, e.g. `/math/add?x=1`.
    pub uri: String,
    /// The body: text as it is (JSON for the default codec), `@FILE` for a file's contents,
    /// `@-` for stdin. Without --data, a body piped to stdin is sent; none otherwise.
    #[arg(long, value_name = "BODY")]
    pub data: Option<String>,
    /// The body's codec: json (default), plain, protobuf, form, xml, or any one-letter id.
    /// A body is sent as given; with json it must be valid JSON.
    #[arg(long, value_name = "NAME")]
    pub codec: Option<String>,
    /// Meta to send, `KEY=VALUE` (repeatable).
    #[arg(long = "meta", short = 'm', value_name = "KEY=VALUE", value_parser = key_value)]
    pub meta: Vec<(String, String)>,
    /// How long to wait for the reply (e.g. 500ms, 10s, 1m); the deadline travels to the
    /// server.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Compress the request with gzip (transfer filter `g`).
    #[arg(long)]
    pub gzip: bool,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

impl RequestOpts {
    /// The codec id of the body: `--codec`, else `default`.
    pub fn codec_id(&self, codecs: &Registry, default: u8) -> Result<u8, Failure> {
        let Some(name) = &self.codec else {
            return Ok(default);
        };
        match codecs.resolve(&CodecRef::from(name.clone())) {
            Ok(codec) => Ok(codec.id()),
            // A codec only the server knows (Go's thrift, say): the body goes as it is.
            Err(_) if name.len() == 1 && name.is_ascii() => Ok(name.as_bytes()[0]),
            Err(e) => Err(Failure::Input(format!("--codec {name}: {e}"))),
        }
    }

    /// The body to send: `--data`, or what stdin holds when it is not a terminal, or none.
    pub fn body(&self, codecs: &Registry) -> Result<RawBody, Failure> {
        let bytes = match self.data.as_deref() {
            Some("@-") => read_stdin()?,
            Some(text) => match text.strip_prefix('@') {
                Some(path) => std::fs::read(path)
                    .map_err(|e| Failure::Input(format!("cannot read --data @{path}: {e}")))?,
                None => text.as_bytes().to_vec(),
            },
            None if !std::io::stdin().is_terminal() => read_stdin()?,
            None => Vec::new(),
        };
        let codec = self.codec_id(codecs, codec_ids::JSON)?;
        if codec == codec_ids::JSON && !bytes.iter().all(u8::is_ascii_whitespace) {
            serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
                .map_err(|e| Failure::Input(format!("the body is not valid JSON: {e}")))?;
        }
        Ok(RawBody::new(codec, bytes))
    }

    /// The call's options: meta, deadline, gzip.
    pub fn options(&self) -> PullOptions {
        let mut opts = PullOptions::new().timeout(self.timeout);
        for (key, value) in &self.meta {
            opts = opts.meta(key, value);
        }
        if self.gzip {
            opts = opts.xfer(GZIP);
        }
        opts
    }
}

fn read_stdin() -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::Input(format!("cannot read stdin: {e}")))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_is_key_equals_value() {
        assert_eq!(key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(key_value("a="), Ok(("a".into(), String::new())));
        assert!(key_value("=b").is_err());
        assert!(key_value("ab").is_err());
    }
}
