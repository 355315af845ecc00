//! The percent-encoding shared by the status and meta fields.
//!
//! Encoding keeps `A-Z a-z 0-9 * - . _` and writes every other byte as `%XX`
//! with upper-case hex (so space is `%20`). This is the byte set of the HTML
//! form-submission algorithm that Go erpc's status and meta go through
//! (fasthttp's `AppendQuotedArg`, copied into Go erpc's `utils.Args`): it is
//! neither Go's `url.QueryEscape` (which writes space as `+`, keeps `~` and
//! escapes `*`) nor `url.PathEscape` (which keeps `&`, `=`, `+`, `:` ...).
//! The encoding itself is the `percent-encoding` crate's, with [`QUOTE_SET`].
//!
//! Decoding accepts `%XX` in either case and `+` as a space, and rejects a
//! `%` that is not followed by two hex digits (as Go's `url.QueryUnescape`
//! does; the `percent-encoding` crate's decoder passes such a `%` through and
//! leaves `+` as it is, so decoding stays here).

use std::borrow::Cow;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::ProtoError;

/// The bytes written as `%XX`: every byte but `A-Z a-z 0-9 * - . _` (the
/// `percent-encoding` crate always escapes non-ASCII bytes).
pub(crate) const QUOTE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// The length of `src` once percent-encoded.
// Only the protobuf framing needs lengths before writing.
#[cfg_attr(not(feature = "pb-proto"), allow(dead_code))]
pub(crate) fn quoted_len(src: &[u8]) -> usize {
    percent_encode(src, QUOTE_SET).map(str::len).sum()
}

/// Appends `src`, percent-encoded, to `dst`.
pub(crate) fn quote_into(src: &[u8], dst: &mut BytesMut) {
    // The iterator yields runs of kept bytes whole, and each escape as one
    // three-byte `%XX` string.
    for part in percent_encode(src, QUOTE_SET) {
        dst.extend_from_slice(part.as_bytes());
    }
}

#[inline]
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether `src` holds anything [`unquote`] would change (`%` or `+`).
#[inline]
pub(crate) fn has_escapes(src: &[u8]) -> bool {
    memchr::memchr2(b'%', b'+', src).is_some()
}

/// Decodes a percent-encoded slice, borrowing it when it holds no escapes.
/// The output is never longer than the input.
pub(crate) fn unquote<'a>(src: &'a [u8], field: &'static str) -> Result<Cow<'a, [u8]>, ProtoError> {
    match memchr::memchr2(b'%', b'+', src) {
        None => Ok(Cow::Borrowed(src)),
        Some(first) => unescape(src, first, field).map(Cow::Owned),
    }
}

/// Decodes the percent-encoded `range` of `src`, sharing `src`'s memory when
/// it holds no escapes.
pub(crate) fn unquote_shared(
    src: &Bytes,
    range: Range<usize>,
    field: &'static str,
) -> Result<Bytes, ProtoError> {
    let part = &src[range.clone()];
    match memchr::memchr2(b'%', b'+', part) {
        None => Ok(src.slice(range)),
        Some(first) => unescape(part, first, field).map(Bytes::from),
    }
}

/// Decodes `src`, whose first `%` or `+` is at `first`.
#[cold]
fn unescape(src: &[u8], first: usize, field: &'static str) -> Result<Vec<u8>, ProtoError> {
    let mut out = Vec::with_capacity(src.len());
    out.extend_from_slice(&src[..first]);
    let mut i = first;
    while i < src.len() {
        match src[i] {
            b'%' => {
                let hi = src.get(i + 1).copied().and_then(hex_val);
                let lo = src.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(ProtoError::InvalidPercentEncoding { field }),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                // Copy the run up to the next escape at once.
                let run = memchr::memchr2(b'%', b'+', &src[i..]).unwrap_or(src.len() - i);
                out.extend_from_slice(&src[i..i + run]);
                i += run;
            }
        }
    }
    Ok(out)
}

/// Splits a query string into the byte ranges of its `k=v` pairs' keys and
/// values (a pair without `=` has an empty value, at its end); empty pairs
/// (`a=1&&b=2`) are skipped.
pub(crate) fn pairs(src: &[u8]) -> Pairs<'_> {
    Pairs { src, pos: 0 }
}

/// The iterator of [`pairs`].
pub(crate) struct Pairs<'a> {
    src: &'a [u8],
    pos: usize,
}

impl Pairs<'_> {
    /// Whether no pair is left.
    pub(crate) fn is_done(&self) -> bool {
        self.pos >= self.src.len()
    }
}

impl Iterator for Pairs<'_> {
    type Item = (Range<usize>, Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let start = self.pos;
            let rest = self.src.get(start..)?;
            if rest.is_empty() {
                self.pos = usize::MAX;
                return None;
            }
            let end = match memchr::memchr(b'&', rest) {
                Some(amp) => {
                    self.pos = start + amp + 1;
                    start + amp
                }
                None => {
                    self.pos = usize::MAX;
                    self.src.len()
                }
            };
            if start == end {
                continue;
            }
            return Some(match memchr::memchr(b'=', &self.src[start..end]) {
                Some(eq) => (start..start + eq, start + eq + 1..end),
                None => (start..end, end..end),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_keeps_the_safe_set_and_escapes_the_rest() {
        let mut out = BytesMut::new();
        quote_into(b"aZ09*-._ ~+&=%/\xe2\x9c\x93", &mut out);
        assert_eq!(&out[..], b"aZ09*-._%20%7E%2B%26%3D%25%2F%E2%9C%93");
    }

    #[test]
    fn unquote_accepts_plus_and_either_hex_case() {
        let got = unquote(b"a+b%2f%2F", "t").unwrap();
        assert_eq!(&got[..], b"a b//");
        let src = Bytes::from_static(b"xx+y%41zz");
        assert_eq!(&unquote_shared(&src, 2..7, "t").unwrap()[..], b" yA");
        assert_eq!(&unquote_shared(&src, 7..9, "t").unwrap()[..], b"zz");
        assert!(matches!(
            unquote(b"plain", "t").unwrap(),
            Cow::Borrowed(b"plain")
        ));
    }

    #[test]
    fn unquote_rejects_broken_escapes() {
        for bad in [&b"%"[..], b"%2", b"%zz", b"a%g1", b"ab+%", b"a%4"] {
            assert!(matches!(
                unquote(bad, "t"),
                Err(ProtoError::InvalidPercentEncoding { field: "t" })
            ));
            let src = Bytes::copy_from_slice(bad);
            assert!(matches!(
                unquote_shared(&src, 0..bad.len(), "t"),
                Err(ProtoError::InvalidPercentEncoding { field: "t" })
            ));
        }
    }

    /// Go erpc's quoting of one byte, from its documented rule (the HTML
    /// form-submission set of fasthttp's `AppendQuotedArg`), written out
    /// independently of [`QUOTE_SET`].
    fn go_quoted(b: u8) -> String {
        let kept = b.is_ascii_uppercase()
            || b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || b == b'*'
            || b == b'-'
            || b == b'.'
            || b == b'_';
        if kept {
            char::from(b).to_string()
        } else {
            format!("%{b:02X}")
        }
    }

    #[test]
    fn every_byte_is_quoted_as_go_erpc_does() {
        let mut kept = 0;
        for b in 0..=255u8 {
            let mut out = BytesMut::new();
            quote_into(&[b], &mut out);
            let want = go_quoted(b);
            assert_eq!(&out[..], want.as_bytes(), "byte {b:#04x}");
            assert_eq!(quoted_len(&[b]), want.len(), "byte {b:#04x}");
            kept += usize::from(want.len() == 1);
            // And back.
            assert_eq!(&unquote(&out, "t").unwrap()[..], &[b], "byte {b:#04x}");
        }
        // 26 + 26 + 10 + 4.
        assert_eq!(kept, 66);
        // All of them at once, and in the middle of runs.
        let all: Vec<u8> = (0..=255).collect();
        let mut out = BytesMut::new();
        quote_into(&all, &mut out);
        let want: String = all.iter().map(|&b| go_quoted(b)).collect();
        assert_eq!(&out[..], want.as_bytes());
        assert_eq!(quoted_len(&all), want.len());
        // Space is %20, never `+`; `~` is escaped, `*` is not (unlike
        // url.QueryEscape).
        let mut out = BytesMut::new();
        quote_into(b"a b~c*d", &mut out);
        assert_eq!(&out[..], b"a%20b%7Ec*d");
    }

    #[test]
    fn pairs_split_like_the_query_grammar() {
        let split = |src: &[u8]| -> Vec<(Vec<u8>, Vec<u8>)> {
            pairs(src)
                .map(|(k, v)| (src[k].to_vec(), src[v].to_vec()))
                .collect()
        };
        let p = |k: &str, v: &str| (k.as_bytes().to_vec(), v.as_bytes().to_vec());
        assert_eq!(split(b""), vec![]);
        assert_eq!(split(b"&&"), vec![]);
        assert_eq!(split(b"a"), vec![p("a", "")]);
        assert_eq!(
            split(b"&a=1&&b==2&c&=d&"),
            vec![p("a", "1"), p("b", "=2"), p("c", ""), p("", "d")]
        );
        // Against the obvious implementation on every short string over a
        // small alphabet.
        let alphabet = b"a=&";
        for len in 0..=6u32 {
            for n in 0..3usize.pow(len) {
                let mut s = Vec::new();
                let mut m = n;
                for _ in 0..len {
                    s.push(alphabet[m % 3]);
                    m /= 3;
                }
                let expected: Vec<_> = s
                    .split(|&b| b == b'&')
                    .filter(|p| !p.is_empty())
                    .map(|pair| match pair.iter().position(|&b| b == b'=') {
                        Some(eq) => (pair[..eq].to_vec(), pair[eq + 1..].to_vec()),
                        None => (pair.to_vec(), Vec::new()),
                    })
                    .collect();
                assert_eq!(split(&s), expected, "{:?}", String::from_utf8_lossy(&s));
            }
        }
    }
}
