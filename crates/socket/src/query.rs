//! The percent-encoding shared by the status and meta fields.
//!
//! Encoding keeps `A-Z a-z 0-9 * - . _` and writes every other byte as `%XX`
//! with upper-case hex (so space is `%20`). Decoding accepts `%XX` in either
//! case and `+` as a space, and rejects a `%` that is not followed by two hex
//! digits.

use bytes::{BufMut, Bytes, BytesMut};

use crate::ProtoError;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

#[inline]
fn is_kept(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_')
}

/// Appends `src`, percent-encoded, to `dst`.
pub(crate) fn quote_into(src: &[u8], dst: &mut BytesMut) {
    // Fast path: most keys, values and messages need no escaping.
    if src.iter().all(|&b| is_kept(b)) {
        dst.extend_from_slice(src);
        return;
    }
    dst.reserve(src.len() + 8);
    for &b in src {
        if is_kept(b) {
            dst.put_u8(b);
        } else {
            dst.put_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
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

/// Decodes a percent-encoded slice of `src` without copying when it holds no
/// escapes. The output is never longer than the input.
pub(crate) fn unquote(src: Bytes, field: &'static str) -> Result<Bytes, ProtoError> {
    if !src.iter().any(|&b| b == b'%' || b == b'+') {
        return Ok(src);
    }
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
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
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(Bytes::from(out))
}

/// Splits a query string into its `k=v` pairs (a pair without `=` has an
/// empty value); empty pairs (`a=1&&b=2`) are skipped.
pub(crate) fn pairs(src: &Bytes) -> impl Iterator<Item = (Bytes, Bytes)> + '_ {
    src.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(move |pair| {
            let pair = src.slice_ref(pair);
            match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (pair.slice(..eq), pair.slice(eq + 1..)),
                None => (pair, Bytes::new()),
            }
        })
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
        let got = unquote(Bytes::from_static(b"a+b%2f%2F"), "t").unwrap();
        assert_eq!(&got[..], b"a b//");
    }

    #[test]
    fn unquote_rejects_broken_escapes() {
        for bad in [&b"%"[..], b"%2", b"%zz", b"a%g1"] {
            assert!(matches!(
                unquote(Bytes::copy_from_slice(bad), "t"),
                Err(ProtoError::InvalidPercentEncoding { field: "t" })
            ));
        }
    }
}
