//! Just enough HTTP/1.1 for a loopback gateway and a loopback Lambda Runtime API: bounded
//! reading of one request (request line, headers, a `Content-Length` or chunked body) and
//! writing of one response.

use std::io::{self, BufRead, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The largest request line or header line read.
const MAX_LINE: usize = 8 * 1024;

/// The most header bytes read per request, request line included: API Gateway's own limit is
/// 10 KiB of headers.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The most headers read per request.
const MAX_HEADERS: usize = 100;

/// One request as read off the wire.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent: a path with an optional `?query`.
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the client asked to close the connection after this request.
    pub fn wants_close(&self) -> bool {
        self.version == "HTTP/1.0"
            || self.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"))
    }
}

/// Why no request was read.
#[derive(Debug)]
pub enum ReadError {
    /// The connection closed before a request began.
    Closed,
    /// The headers or the body are over their cap: the status to answer and why.
    TooLarge(u16, &'static str),
    /// Not HTTP/1.x as this reader understands it.
    Malformed(&'static str),
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> Self {
        ReadError::Io(error)
    }
}

/// Reads one request, with at most `max_body` bytes of body.
pub fn read_request(reader: &mut impl BufRead, max_body: usize) -> Result<Request, ReadError> {
    let mut budget = MAX_HEADER_BYTES;
    let request_line = loop {
        match read_line(reader, &mut budget)? {
            None => return Err(ReadError::Closed),
            // A stray empty line between requests is allowed (RFC 9112, section 2.2).
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Malformed("bad request line"));
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") || !target.starts_with('/') || !is_token(method)
    {
        return Err(ReadError::Malformed("bad request line"));
    }
    // A target holds no control characters (RFC 9112, section 3.2); one that does would reach
    // the function's rawPath as sent.
    if target.bytes().any(|b| b.is_ascii_control()) {
        return Err(ReadError::Malformed("control character in the target"));
    }

    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?.ok_or(ReadError::Malformed("truncated"))?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(ReadError::TooLarge(431, "too many headers"));
        }
        let (name, value) = line.split_once(':').ok_or(ReadError::Malformed("bad header"))?;
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(ReadError::Malformed("bad header name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }

    let mut request = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        version: version.to_owned(),
        headers,
        body: Vec::new(),
    };
    // A request body is framed by chunks only when chunked is the last transfer coding; any
    // other transfer coding leaves its length unknown (RFC 9112, section 6.3).
    let codings: Vec<String> = request
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|(_, value)| value.split(','))
        .map(|coding| coding.trim().to_ascii_lowercase())
        .filter(|coding| !coding.is_empty())
        .collect();
    if codings.iter().any(|c| c != "chunked") {
        return Err(ReadError::Malformed("a transfer coding other than chunked"));
    }
    let chunked = !codings.is_empty();
    // Framing that two readers could take two ways is refused (RFC 9112, section 6.3).
    let lengths: Vec<&str> = request
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .collect();
    if lengths.windows(2).any(|pair| pair[0] != pair[1]) {
        return Err(ReadError::Malformed("conflicting content-length"));
    }
    if chunked && !lengths.is_empty() {
        return Err(ReadError::Malformed("both transfer-encoding and content-length"));
    }
    if chunked {
        request.body = read_chunked(reader, max_body)?;
    } else if let Some(length) = lengths.first() {
        if length.is_empty() || !length.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ReadError::Malformed("bad content-length"));
        }
        let length: usize =
            length.parse().map_err(|_| ReadError::TooLarge(413, "body too large"))?;
        if length > max_body {
            return Err(ReadError::TooLarge(413, "body too large"));
        }
        request.body = vec![0; length];
        reader.read_exact(&mut request.body)?;
    }
    Ok(request)
}

/// Whether `text` is an HTTP token (RFC 9110, section 5.6.2), as a method must be.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A stream that must move everything asked of it before a fixed instant. A socket's timeout
/// bounds one read or write only, so a client sending or reading a byte every few seconds could
/// hold a connection for hours; this bounds the whole request, or the whole answer.
pub struct Deadline<S> {
    stream: S,
    until: Instant,
}

impl Deadline<TcpStream> {
    pub fn new(stream: TcpStream, within: Duration) -> Self {
        Deadline { stream, until: Instant::now() + within }
    }
}

impl Read for Deadline<TcpStream> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the request took too long"));
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf).map_err(timed_out)
    }
}

impl Write for Deadline<TcpStream> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the answer took too long"));
        }
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf).map_err(timed_out)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// A socket timeout shows as `WouldBlock` on some systems and `TimedOut` on others; at a
/// deadline both mean the same.
fn timed_out(error: io::Error) -> io::Error {
    match error.kind() {
        io::ErrorKind::WouldBlock => io::Error::new(io::ErrorKind::TimedOut, "deadline passed"),
        _ => error,
    }
}

/// One line without its line ending, charged to `budget`; `None` at the end of the stream.
fn read_line(reader: &mut impl BufRead, budget: &mut usize) -> Result<Option<String>, ReadError> {
    let mut line = Vec::new();
    let cap = MAX_LINE.min(*budget) + 1;
    let read = reader.take(cap as u64).read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if read >= cap {
            ReadError::TooLarge(431, "header line too long")
        } else {
            ReadError::Malformed("truncated")
        });
    }
    *budget = budget.saturating_sub(read);
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map(Some).map_err(|_| ReadError::Malformed("header is not UTF-8"))
}

fn read_chunked(reader: &mut impl BufRead, max_body: usize) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    let mut budget = MAX_HEADER_BYTES;
    loop {
        let line = read_line(reader, &mut budget)?.ok_or(ReadError::Malformed("truncated"))?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| ReadError::Malformed("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(reader, &mut budget)?
                .ok_or(ReadError::Malformed("truncated"))?
                .is_empty()
            {}
            return Ok(body);
        }
        if body.len() + size > max_body {
            return Err(ReadError::TooLarge(413, "body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return Err(ReadError::Malformed("bad chunk"));
        }
    }
}

/// Writes one response with a `Content-Length`; `close` adds `Connection: close`. A `HEAD`
/// request's response keeps its headers and drops the body.
pub fn write_response(
    writer: &mut impl Write,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    head: bool,
    close: bool,
) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
    for (name, value) in headers {
        let framing = ["content-length", "transfer-encoding", "connection"];
        if framing.iter().any(|f| name.eq_ignore_ascii_case(f)) {
            continue;
        }
        // A value with a line break would split the response; such a header is dropped.
        if value.contains(['\r', '\n']) || name.contains(['\r', '\n', ':']) {
            continue;
        }
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head {
        out.extend_from_slice(body);
    }
    writer.write_all(&out)?;
    writer.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Request, ReadError> {
        read_request(&mut io::BufReader::new(bytes), 16)
    }

    #[test]
    fn requests_are_read_with_length_or_chunks() {
        let request =
            read(b"POST /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").unwrap();
        assert_eq!((request.method.as_str(), request.target.as_str()), ("POST", "/a?b"));
        assert_eq!(request.body, b"abc");
        let chunked = read(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, b"abc");
    }

    #[test]
    fn oversized_and_malformed_requests_are_refused() {
        assert!(matches!(
            read(b"POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n"),
            Err(ReadError::TooLarge(413, _))
        ));
        let long = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(MAX_LINE));
        assert!(matches!(read(long.as_bytes()), Err(ReadError::TooLarge(431, _))));
        assert!(matches!(read(b"GET http://x/ HTTP/1.1\r\n\r\n"), Err(ReadError::Malformed(_))));
        assert!(matches!(read(b""), Err(ReadError::Closed)));
    }

    #[test]
    fn ambiguous_framing_and_methods_that_are_not_tokens_are_refused() {
        for bad in [
            &b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\nab",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n0\r\n\r\n",
            "G\u{a0}ET / HTTP/1.1\r\n\r\n".as_bytes(),
            b"G(ET / HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nab",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\nab",
            b"GET /a\x1bb HTTP/1.1\r\n\r\n",
            b"GET /a\x00b HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.9\r\n\r\n",
        ] {
            assert!(matches!(read(bad), Err(ReadError::Malformed(_))), "{bad:?}");
        }
        // The same length twice is one length.
        let twice = read(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab");
        assert_eq!(twice.unwrap().body, b"ab");
    }

    #[test]
    fn a_request_sent_slowly_is_cut_off_at_the_deadline() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let sender = std::thread::spawn(move || {
            let mut client = TcpStream::connect(address).unwrap();
            // One byte every 100 ms: each read is quick, the whole request is not.
            for byte in b"GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa" {
                if client.write_all(&[*byte]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let (stream, _) = listener.accept().unwrap();
        let started = Instant::now();
        let mut reader = io::BufReader::new(Deadline::new(stream, Duration::from_millis(500)));
        let result = read_request(&mut reader, 16);
        assert!(matches!(result, Err(ReadError::Io(ref e)) if e.kind() == io::ErrorKind::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(reader);
        sender.join().unwrap();
    }
}
