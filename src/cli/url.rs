//! The node URL an operator types: `http://host:port[/prefix]`.
//!
//! Only plain HTTP: the admin API is meant for a private network or an SSH
//! tunnel, and the CLI carries no TLS stack. A bare `host:port` (what
//! `admin.address` in the node's config looks like) is read as `http://`.

use std::fmt;

/// Where a node's admin API lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BaseUrl {
    /// Host name or IP address; an IPv6 address without brackets.
    pub(crate) host: String,
    /// TCP port (80 when the URL names none).
    pub(crate) port: u16,
    /// Path prefix without a trailing slash, `""` or `/admin`: a reverse
    /// proxy may mount the API below the root.
    pub(crate) prefix: String,
}

impl BaseUrl {
    /// Parses an operator-typed URL; the error says what to type instead.
    pub(crate) fn parse(text: &str) -> Result<BaseUrl, String> {
        let text = text.trim();
        let rest = if let Some(rest) = strip_prefix_ci(text, "http://") {
            rest
        } else if strip_prefix_ci(text, "https://").is_some() {
            return Err(format!(
                "{text}: https is not supported; the admin API speaks plain HTTP \
                 (reach a remote node through a private network or an SSH tunnel)"
            ));
        } else if text.contains("://") {
            return Err(format!("{text}: only http:// URLs are supported"));
        } else {
            text
        };
        if rest.contains(['?', '#']) {
            return Err(format!("{text}: a node URL takes no query or fragment"));
        }
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
        if authority.contains('@') {
            return Err(format!("{text}: credentials do not belong in the URL; use --client-id/--client-secret"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| format!("{text}: not a host[:port]"))?;
        let port = match port {
            None => 80,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("{text}: bad port {p:?}"))?,
        };
        if host.is_empty() {
            return Err(format!("{text}: no host"));
        }
        Ok(BaseUrl { host: host.to_string(), port, prefix: path.trim_end_matches('/').to_string() })
    }

    /// The `Host` header value: IPv6 addresses go back into brackets.
    pub(crate) fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The request target for an API path such as `/v1/peers`.
    pub(crate) fn target(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.host_header(), self.prefix)
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match authority.split_once(':') {
        Some((_, p)) if p.contains(':') => None,
        Some((h, p)) => Some((h, Some(p))),
        None => Some((authority, None)),
    }
}

/// Percent-encodes one path segment (a peer id the operator typed), so a
/// stray `/` or `?` cannot reach another route.
pub(crate) fn encode_segment(text: &str) -> String {
    encode(text, b"-._~")
}

/// `application/x-www-form-urlencoded` encoding of one key or value.
pub(crate) fn encode_form(text: &str) -> String {
    encode(text, b"-._*")
}

fn encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(host: &str, port: u16, prefix: &str) -> BaseUrl {
        BaseUrl { host: host.into(), port, prefix: prefix.into() }
    }

    #[test]
    fn urls_parse_with_defaults_and_prefixes() {
        assert_eq!(BaseUrl::parse("http://127.0.0.1:8080").unwrap(), url("127.0.0.1", 8080, ""));
        assert_eq!(BaseUrl::parse("HTTP://node-1/").unwrap(), url("node-1", 80, ""));
        assert_eq!(BaseUrl::parse("http://h:81/admin/").unwrap(), url("h", 81, "/admin"));
        assert_eq!(BaseUrl::parse("10.0.0.2:8080").unwrap(), url("10.0.0.2", 8080, ""));
        let v6 = BaseUrl::parse("http://[::1]:9000/x").unwrap();
        assert_eq!(v6, url("::1", 9000, "/x"));
        assert_eq!(v6.host_header(), "[::1]:9000");
        assert_eq!(v6.to_string(), "http://[::1]:9000/x");
        assert_eq!(v6.target("/v1/peers"), "/x/v1/peers");
    }

    #[test]
    fn unsupported_urls_say_why() {
        assert!(BaseUrl::parse("https://h:8443").unwrap_err().contains("https is not supported"));
        assert!(BaseUrl::parse("ftp://h").unwrap_err().contains("only http://"));
        assert!(BaseUrl::parse("http://h:0").unwrap_err().contains("bad port"));
        assert!(BaseUrl::parse("http://h:99999").unwrap_err().contains("bad port"));
        assert!(BaseUrl::parse("http://u:p@h:1").unwrap_err().contains("credentials"));
        assert!(BaseUrl::parse("http://h:1/?a=b").is_err());
        assert!(BaseUrl::parse("http://:80").is_err());
        assert!(BaseUrl::parse("http://::1:80").is_err());
    }

    #[test]
    fn segments_and_forms_are_escaped() {
        assert_eq!(encode_segment("p3f0c-1"), "p3f0c-1");
        assert_eq!(encode_segment("../self?x"), "..%2Fself%3Fx");
        assert_eq!(encode_form("a b&c=d+é"), "a%20b%26c%3Dd%2B%C3%A9");
    }
}
