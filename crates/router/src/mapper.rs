//! How names become uris: teleport's two styles.

/// How route names (group prefixes, controller type and method names) are
/// turned into uris.
///
/// ```
/// use jaunt_router::UriMapper;
///
/// assert_eq!(UriMapper::Http.route("MathV2", "AddAll"), "/math_v2/add_all");
/// assert_eq!(UriMapper::Rpc.route("math_v2", "add_all"), "MathV2.AddAll");
/// assert_eq!(UriMapper::Http.join("/api", "/math/add"), "/api/math/add");
/// assert_eq!(UriMapper::Rpc.join("Api", "Math.Add"), "Api.Math.Add");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UriMapper {
    /// `/aaa/xx_zz`: slash-separated snake_case (the default).
    #[default]
    Http,
    /// `Aaa.XxZz`: dot-separated CamelCase.
    Rpc,
}

impl UriMapper {
    /// The uri of method `method` of a controller (or group) named `owner`.
    pub fn route(self, owner: &str, method: &str) -> String {
        match self {
            Self::Http => format!("/{}/{}", to_snake(owner), to_snake(method)),
            Self::Rpc => format!("{}.{}", to_camel(owner), to_camel(method)),
        }
    }

    /// Puts `prefix` in front of `uri`.
    pub fn join(self, prefix: &str, uri: &str) -> String {
        match self {
            Self::Http => {
                let prefix = prefix.trim_end_matches('/');
                let uri = uri.trim_matches('/');
                match (prefix.is_empty(), uri.is_empty()) {
                    (true, _) => format!("/{uri}"),
                    (false, true) => normalize_http(prefix),
                    (false, false) => format!("{}/{uri}", normalize_http(prefix)),
                }
            }
            Self::Rpc => {
                let prefix = prefix.trim_matches('.');
                let uri = uri.trim_start_matches('.');
                match (prefix.is_empty(), uri.is_empty()) {
                    (true, _) => uri.to_owned(),
                    (false, true) => prefix.to_owned(),
                    (false, false) => format!("{prefix}.{uri}"),
                }
            }
        }
    }
}

fn normalize_http(prefix: &str) -> String {
    if prefix.starts_with('/') {
        prefix.to_owned()
    } else {
        format!("/{prefix}")
    }
}

/// `XxZz` → `xx_zz`, `HTTPServer` → `http_server`; snake_case stays as it is.
pub fn to_snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None | Some('_') => false,
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) => p.is_uppercase() && next.is_some_and(char::is_lowercase),
            };
            if boundary {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `xx_zz` → `XxZz`; CamelCase stays as it is.
pub fn to_camel(name: &str) -> String {
    name.split('_')
        .filter(|s| !s.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_and_camel() {
        for (camel, snake) in [
            ("Math", "math"),
            ("XxZz", "xx_zz"),
            ("HTTPServer", "http_server"),
            ("AddV2", "add_v2"),
            ("already_snake", "already_snake"),
        ] {
            assert_eq!(to_snake(camel), snake);
        }
        assert_eq!(to_camel("xx_zz"), "XxZz");
        assert_eq!(to_camel("Math"), "Math");
    }

    #[test]
    fn joins() {
        assert_eq!(UriMapper::Http.join("", "/a"), "/a");
        assert_eq!(UriMapper::Http.join("g/", "a"), "/g/a");
        assert_eq!(UriMapper::Http.join("/g", ""), "/g");
        assert_eq!(UriMapper::Rpc.join("", "A.B"), "A.B");
    }
}
