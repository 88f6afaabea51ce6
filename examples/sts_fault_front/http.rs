//! Just enough HTTP/1.1 for an STS Query-API front: requests with a
//! `Content-Length` (or chunked) body on keep-alive connections, answers
//! with a `Content-Length`, and a forwarding client that asks the upstream
//! for `Connection: close` and reads to the end. No dependency beyond tokio,
//! so the front costs no extra compile time.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request head or body the front accepts.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The client asked to close the connection after this request.
    pub fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type".to_string(), content_type.to_string())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Response::new(status, "application/json", value.to_string())
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Reads one line (up to `\n`) of at most `limit` bytes, without the line end.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = (&mut *reader)
        .take(limit as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > limit {
        return Err(invalid("header line too long"));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| invalid("header line is not UTF-8"))
}

async fn read_headers<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    let mut total = 0;
    loop {
        let line = read_line(reader, MAX_HEAD)
            .await?
            .ok_or_else(|| invalid("connection closed in the headers"))?;
        if line.is_empty() {
            return Ok(headers);
        }
        total += line.len();
        if total > MAX_HEAD {
            return Err(invalid("headers too long"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("malformed header line {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
}

async fn read_body<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    headers: &[(String, String)],
) -> io::Result<Vec<u8>> {
    if header(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        let mut body = Vec::new();
        loop {
            let line = read_line(reader, 1024)
                .await?
                .ok_or_else(|| invalid("connection closed in a chunk"))?;
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers, then an empty line.
                while !read_line(reader, MAX_HEAD)
                    .await?
                    .unwrap_or_default()
                    .is_empty()
                {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(invalid("body too large"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).await?;
            read_line(reader, 2).await?;
        }
    }
    let length = match header(headers, "content-length") {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| invalid("bad Content-Length"))?,
        None => 0,
    };
    if length > MAX_BODY {
        return Err(invalid("body too large"));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(body)
}

/// Reads the next request of a connection; `None` when the client closed it.
pub async fn read_request<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Option<Request>> {
    let line = loop {
        match read_line(reader, MAX_HEAD).await? {
            None => return Ok(None),
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("malformed request line {line:?}")));
    };
    let (method, target) = (method.to_string(), target.to_string());
    let headers = read_headers(reader).await?;
    let body = read_body(reader, &headers).await?;
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Headers that describe one hop, not the message: never copied across.
fn hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "content-length",
        "transfer-encoding",
        "keep-alive",
        "host",
        "expect",
        "te",
        "upgrade",
        "proxy-connection",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

pub async fn write_response<W: AsyncWrite + Unpin>(
    writer: &mut W,
    response: &Response,
    close: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in response.headers.iter().filter(|(n, _)| !hop_by_hop(n)) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes()).await?;
    writer.write_all(&response.body).await?;
    writer.flush().await
}

/// Sends `request` to `upstream` (`host:port`) on a fresh connection and
/// returns its answer.
pub async fn forward(upstream: &str, request: &Request, timeout: Duration) -> io::Result<Response> {
    let exchange = async {
        let mut stream = TcpStream::connect(upstream).await?;
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {upstream}\r\n",
            request.method, request.target
        );
        for (name, value) in request.headers.iter().filter(|(n, _)| !hop_by_hop(n)) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            request.body.len()
        ));
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&request.body).await?;
        stream.flush().await?;
        let mut reader = tokio::io::BufReader::new(stream);
        let status_line = read_line(&mut reader, MAX_HEAD)
            .await?
            .ok_or_else(|| invalid("upstream closed without answering"))?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| invalid(format!("malformed status line {status_line:?}")))?;
        let headers = read_headers(&mut reader).await?;
        let body = if header(&headers, "transfer-encoding").is_some()
            || header(&headers, "content-length").is_some()
        {
            read_body(&mut reader, &headers).await?
        } else {
            let mut body = Vec::new();
            reader.read_to_end(&mut body).await?;
            body
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "upstream did not answer in time"))?
}

/// Decodes an `application/x-www-form-urlencoded` string.
pub fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Binds 127.0.0.1:`port` (0: any free port).
pub async fn listen(port: u16) -> Result<tokio::net::TcpListener, String> {
    let address = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))
}

/// Prints `listening on ADDRESS` (what the tests wait for), then hands
/// every connection to `serve`, on a task of its own, until SIGTERM or
/// SIGINT.
pub async fn accept_until_signal<F, Fut>(
    listener: tokio::net::TcpListener,
    serve: F,
) -> Result<(), String>
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    use std::io::Write;
    use tokio::signal::unix::{SignalKind, signal};
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    println!("listening on {address}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve(stream));
                }
                Err(e) => eprintln!("accept: {e}"),
            },
            _ = terminate.recv() => {
                eprintln!("stopping on SIGTERM");
                return Ok(());
            }
            _ = interrupt.recv() => {
                eprintln!("stopping on SIGINT");
                return Ok(());
            }
        }
    }
}

/// `host:port` of an upstream given as `flag` (`http://127.0.0.1:PORT`):
/// only the loopback interface, so that nothing leaves this machine.
pub fn loopback(flag: &str, url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{flag} {url:?}: expected http://127.0.0.1:PORT"))?;
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| format!("{flag} {url:?}: no port"))?;
    if !matches!(host, "127.0.0.1" | "localhost") {
        return Err(format!(
            "{flag} {url:?}: only 127.0.0.1 is allowed, so that nothing leaves this machine"
        ));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{flag} {url:?}: bad port"))?;
    Ok(format!("127.0.0.1:{port}"))
}

/// A request id in AWS's form (a UUID), for `x-amzn-RequestId`.
pub fn request_id() -> String {
    let hex = |n: usize| {
        (0..n)
            .map(|_| format!("{:x}", fastrand::u8(0..16)))
            .collect::<String>()
    };
    format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12))
}
