//! [`Meta`]: the ordered multimap of byte strings every packet carries.

use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::query::{pairs, quote_into, unquote};
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

    /// Parses the wire form. Pairs with an empty key are skipped.
    pub fn parse(src: &[u8]) -> Result<Self, ProtoError> {
        Self::parse_bytes(Bytes::copy_from_slice(src))
    }

    /// Parses the wire form, sharing `src`'s memory where no unescaping is needed.
    pub(crate) fn parse_bytes(src: Bytes) -> Result<Self, ProtoError> {
        let mut meta = Self::new();
        for (key, value) in pairs(&src) {
            let key = unquote(key, "meta key")?;
            if key.is_empty() {
                continue;
            }
            meta.entries.push((key, unquote(value, "meta value")?));
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
    }
}
