//! [`Meta`]: the ordered multimap of byte strings every packet carries.

use std::fmt;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::query::{has_escapes, pairs, quote_into, quoted_len, unquote_shared};
use crate::ProtoError;

/// Metadata of a packet: an ordered list of key/value byte strings in which a
/// key may repeat.
///
/// On the wire it is a query string (`k=v&k2=v2`, both sides
/// percent-encoded; a pair with an empty value is written as the bare key).
///
/// ```
/// use jaunt_socket::Meta;
///
/// let mut meta = Meta::new();
/// meta.add("tag", "a");
/// meta.add("tag", "b");
/// meta.set("user", "ann lee");
/// assert_eq!(meta.get("tag"), Some(&b"a"[..]));
/// assert_eq!(meta.get_all("tag").count(), 2);
/// assert_eq!(meta.to_query(), "tag=a&tag=b&user=ann%20lee");
/// assert_eq!(Meta::parse(meta.to_query().as_bytes()).unwrap(), meta);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Meta {
    entries: Vec<(Bytes, Bytes)>,
}

impl Meta {
    /// An empty meta (allocates nothing).
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of entries (a repeated key counts each time).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Appends an entry, keeping any existing ones with the same key.
    pub fn add(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.entries.push((
            Bytes::copy_from_slice(key.as_ref()),
            Bytes::copy_from_slice(value.as_ref()),
        ));
    }

    /// Appends an entry without copying.
    pub fn add_bytes(&mut self, key: Bytes, value: Bytes) {
        self.entries.push((key, value));
    }

    /// Sets `key` to exactly one `value`: the first entry with that key is
    /// replaced in place and the others are removed; if there was none the
    /// entry is appended.
    pub fn set(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let key = key.as_ref();
        let value = Bytes::copy_from_slice(value.as_ref());
        match self.entries.iter().position(|(k, _)| k == key) {
            Some(first) => {
                self.entries[first].1 = value;
                let mut index = 0;
                self.entries.retain(|(k, _)| {
                    let keep = index <= first || k != key;
                    index += 1;
                    keep
                });
            }
            None => self.entries.push((Bytes::copy_from_slice(key), value)),
        }
    }

    /// The first value of `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<&[u8]> {
        let key = key.as_ref();
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// The first value of `key`, if it is UTF-8.
    pub fn get_str(&self, key: impl AsRef<[u8]>) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `key`, in order.
    pub fn get_all<'a>(
        &'a self,
        key: &'a (impl AsRef<[u8]> + ?Sized),
    ) -> impl Iterator<Item = &'a [u8]> + 'a {
        let key = key.as_ref();
        self.entries
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// Removes every entry of `key`; returns how many there were.
    pub fn remove(&mut self, key: impl AsRef<[u8]>) -> usize {
        let key = key.as_ref();
        let before = self.entries.len();
        self.entries.retain(|(k, _)| k != key);
        before - self.entries.len()
    }

    /// Every entry, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The wire form, e.g. `a=1&b=x%20y`.
    pub fn to_query(&self) -> String {
        let mut out = BytesMut::new();
        self.write_query(&mut out);
        // Only ASCII is ever written.
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Appends the wire form to `dst`.
    pub fn write_query(&self, dst: &mut BytesMut) {
        for (i, (key, value)) in self.entries.iter().enumerate() {
            if i > 0 {
                dst.extend_from_slice(b"&");
            }
            quote_into(key, dst);
            if !value.is_empty() {
                dst.extend_from_slice(b"=");
                quote_into(value, dst);
            }
        }
    }

    /// The length of the wire form, as [`write_query`](Self::write_query) writes it.
    // Only the protobuf framing needs lengths before writing.
    #[cfg_attr(not(feature = "pb-proto"), allow(dead_code))]
    pub(crate) fn query_len(&self) -> usize {
        self.entries
            .iter()
            .map(|(key, value)| {
                let value_len = if value.is_empty() {
                    0
                } else {
                    1 + quoted_len(value)
                };
                quoted_len(key) + value_len
            })
            .sum::<usize>()
            + self.entries.len().saturating_sub(1)
    }

    /// Parses the wire form. Pairs with an empty key are skipped.
    pub fn parse(src: &[u8]) -> Result<Self, ProtoError> {
        if src.is_empty() {
            return Ok(Self::new());
        }
        Self::parse_shared(&Bytes::copy_from_slice(src), 0..src.len())
    }

    /// Parses the wire form in `src[range]`, sharing `src`'s memory where no
    /// unescaping is needed.
    pub(crate) fn parse_shared(src: &Bytes, range: Range<usize>) -> Result<Self, ProtoError> {
        let query = &src[range.clone()];
        let mut pairs = pairs(query);
        let Some(first) = pairs.next() else {
            return Ok(Self::new());
        };
        // Most metas hold a single pair: allocate for exactly one then.
        let mut meta = Self {
            entries: Vec::with_capacity(if pairs.is_done() { 1 } else { 4 }),
        };
        // One scan for escapes for the whole query: usually there are none.
        let escaped = has_escapes(query);
        let shift = |r: Range<usize>| r.start + range.start..r.end + range.start;
        for (key, value) in std::iter::once(first).chain(pairs) {
            // A key that is empty on the wire is empty once unescaped.
            if key.is_empty() {
                continue;
            }
            let (key, value) = (shift(key), shift(value));
            let entry = if escaped {
                let key = unquote_shared(src, key, "meta key")?;
                (key, unquote_shared(src, value, "meta value")?)
            } else {
                (src.slice(key), src.slice(value))
            };
            meta.entries.push(entry);
        }
        Ok(meta)
    }
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(K, V)> for Meta {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut meta = Self::new();
        for (k, v) in iter {
            meta.add(k, v);
        }
        meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_all_and_keeps_position() {
        let mut m: Meta = [("a", "1"), ("b", "2"), ("a", "3")].into_iter().collect();
        m.set("a", "9");
        assert_eq!(
            m.iter().collect::<Vec<_>>(),
            vec![(&b"a"[..], &b"9"[..]), (b"b", b"2")]
        );
        m.set("c", "");
        assert_eq!(m.to_query(), "a=9&b=2&c");
        assert_eq!(m.remove("a"), 1);
        assert_eq!(m.get("a"), None);
    }

    #[test]
    fn bare_keys_and_escapes_roundtrip() {
        let m = Meta::parse(b"flag&x=a%26b%3Dc&&=skipped&y=").unwrap();
        assert_eq!(m.get("flag"), Some(&b""[..]));
        assert_eq!(m.get_str("x"), Some("a&b=c"));
        assert_eq!(m.get("y"), Some(&b""[..]));
        assert_eq!(m.len(), 3);
        assert_eq!(m.query_len(), m.to_query().len());
        let m = Meta::parse(b"a=1&b&c=x+y").unwrap();
        assert_eq!(
            m.iter().collect::<Vec<_>>(),
            vec![(&b"a"[..], &b"1"[..]), (b"b", b""), (b"c", b"x y")]
        );
        assert_eq!(m.query_len(), m.to_query().len());
        assert_eq!(Meta::new().query_len(), 0);
        assert!(Meta::parse(b"").unwrap().is_empty());
        assert!(matches!(
            Meta::parse(b"a=1&k%zz=2"),
            Err(ProtoError::InvalidPercentEncoding { field: "meta key" })
        ));
        assert!(matches!(
            Meta::parse(b"a=%"),
            Err(ProtoError::InvalidPercentEncoding {
                field: "meta value"
            })
        ));
    }

    #[test]
    fn parse_shared_slices_the_parent() {
        let src = Bytes::from_static(b"xxauthor=jaunt-bench&k=a%20b&&yy");
        let m = Meta::parse_shared(&src, 2..30).unwrap();
        assert_eq!(
            m.iter().collect::<Vec<_>>(),
            vec![(&b"author"[..], &b"jaunt-bench"[..]), (b"k", b"a b")]
        );
        // Unescaped parts point into `src`.
        let (key, _) = &m.entries[0];
        assert_eq!(key.as_ptr(), src[2..].as_ptr());
    }
}
