//! Reading an HTTP/1.1 response that was read to EOF (`Connection: close`).
//!
//! Pure: the bytes come in whole, so the framing rules (status line,
//! headers, `Content-Length`, chunked bodies) are tested without sockets.

/// A parsed response.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// The reason phrase (may be empty).
    pub(crate) reason: String,
    /// Headers in order, names as sent.
    pub(crate) headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// Parses a whole response; the error says what was wrong with it.
    pub(crate) fn parse(raw: &[u8]) -> Result<Response, String> {
        let end = find(raw, b"\r\n\r\n").ok_or("the response ended inside its headers")?;
        let head = std::str::from_utf8(&raw[..end]).map_err(|_| "the response headers are not UTF-8")?;
        let rest = &raw[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let (status, reason) = parse_status_line(status_line)?;
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':').ok_or_else(|| format!("bad header line {line:?}"))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        let mut response = Response { status, reason, headers, body: Vec::new() };
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|te| te.split(',').any(|t| t.trim().eq_ignore_ascii_case("chunked")));
        response.body = if chunked {
            decode_chunked(rest)?
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().map_err(|_| format!("bad Content-Length {len:?}"))?;
            if rest.len() < len {
                return Err(format!("the body ended after {} of {len} bytes", rest.len()));
            }
            rest[..len].to_vec()
        } else {
            rest.to_vec()
        };
        Ok(response)
    }

    /// The first header named `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

fn parse_status_line(line: &str) -> Result<(u16, String), String> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x response: {:?}", truncate(line, 60)));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    Ok((status, parts.next().unwrap_or_default().to_string()))
}

/// Decodes a `Transfer-Encoding: chunked` body: hex sizes (extensions
/// ignored), each chunk followed by CRLF, ended by a zero-size chunk and
/// optional trailers, which are dropped.
pub(crate) fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or("a chunk size line is cut off")?;
        let line = std::str::from_utf8(&data[..line_end]).map_err(|_| "a chunk size is not text")?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            return Err(format!("a chunk of {size} bytes is cut off"));
        }
        if &data[size..size + 2] != b"\r\n" {
            return Err("a chunk does not end with CRLF".into());
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// At most `max` characters of `text`, marked when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_length_response_parses() {
        let raw = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nContent-Length: 5\r\n\r\nhello-extra";
        let r = Response::parse(raw).unwrap();
        assert_eq!((r.status, r.reason.as_str()), (404, "Not Found"));
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.body, b"hello");
        assert!(!r.is_success());
    }

    #[test]
    fn a_body_without_length_runs_to_eof() {
        let r = Response::parse(b"HTTP/1.0 200\r\n\r\n{}\n").unwrap();
        assert_eq!((r.status, r.reason.as_str(), r.body.as_slice()), (200, "", &b"{}\n"[..]));
        assert!(r.is_success());
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let r = Response::parse(raw).unwrap();
        assert_eq!(String::from_utf8(r.body).unwrap(), "Wikipedia in\r\n\r\nchunks.");
        assert_eq!(decode_chunked(b"0\r\n\r\n").unwrap(), b"");
        assert!(decode_chunked(b"5\r\nabc").unwrap_err().contains("cut off"));
        assert!(decode_chunked(b"zz\r\n").unwrap_err().contains("bad chunk size"));
        assert!(decode_chunked(b"3\r\nabcX\r\n0\r\n\r\n").unwrap_err().contains("CRLF"));
        assert!(decode_chunked(b"3\r\nabc\r\n").unwrap_err().contains("cut off"));
    }

    #[test]
    fn broken_responses_are_errors() {
        assert!(Response::parse(b"").unwrap_err().contains("headers"));
        assert!(Response::parse(b"SSH-2.0-OpenSSH\r\n\r\n").unwrap_err().contains("not an HTTP"));
        assert!(Response::parse(b"HTTP/1.1 abc\r\n\r\n").unwrap_err().contains("status line"));
        assert!(Response::parse(b"HTTP/1.1 200 OK\r\nnocolon\r\n\r\n").unwrap_err().contains("header"));
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        assert!(Response::parse(short).unwrap_err().contains("3 of 10"));
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hi", 2), "hi");
    }
}
