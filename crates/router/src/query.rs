//! [`Query`]: the parsed query string of a uri.

/// The `k=v&k2=v2` part of a uri after `?`, decoded (`+` is a space).
///
/// ```
/// use jaunt_router::Query;
///
/// let q = Query::parse("n=1&m=e&tag=a&tag=b%20c");
/// assert_eq!(q.get("n"), Some("1"));
/// assert_eq!(q.get_all("tag").collect::<Vec<_>>(), ["a", "b c"]);
/// assert_eq!(q.get("missing"), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a query string (without the `?`). Invalid escapes are kept as
    /// they are; invalid UTF-8 is replaced by U+FFFD.
    pub fn parse(query: &str) -> Self {
        Self {
            pairs: form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        }
    }

    /// The query of a full uri (`/a/b?n=1`), empty if it has none.
    pub fn from_uri(uri: &str) -> Self {
        uri.split_once('?')
            .map(|(_, q)| Self::parse(q))
            .unwrap_or_default()
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}
