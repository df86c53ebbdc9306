//! HTTP as the tests speak it: a small blocking client over reqwest's async one, and requests
//! over a raw socket for what HTTP clients refuse to send or hide (paths with `..`, responses
//! read while they are still arriving).

use reqwest::{Body, Method};
use std::time::Duration;

pub struct Blocking {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

pub struct Req<'a> {
    b: &'a Blocking,
    req: reqwest::RequestBuilder,
}

#[derive(Debug)]
pub struct Res {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Res {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

pub fn blocking_client() -> Blocking {
    Blocking {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        client: reqwest::Client::new(),
    }
}

impl Blocking {
    pub fn get(&self, url: &str) -> Req<'_> {
        self.request(Method::GET, url)
    }
    pub fn request(&self, m: Method, url: &str) -> Req<'_> {
        Req {
            b: self,
            req: self.client.request(m, url),
        }
    }
}

impl Req<'_> {
    pub fn header(self, k: &str, v: &str) -> Self {
        Req {
            b: self.b,
            req: self.req.header(k, v),
        }
    }
    pub fn body(self, body: impl Into<Body>) -> Self {
        Req {
            b: self.b,
            req: self.req.body(body),
        }
    }
    pub fn json(self, v: &serde_json::Value) -> Self {
        self.header("content-type", "application/json")
            .body(serde_json::to_vec(v).unwrap())
    }
    pub fn send(self) -> reqwest::Result<Res> {
        self.b.rt.block_on(async {
            let r = self.req.send().await?;
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.bytes().await?.to_vec();
            Ok(Res { status, headers, body })
        })
    }
}

pub use blocking_client as http;

/// A GET over a raw socket, returned as soon as the response head and the first body bytes have
/// arrived, so that a test can act while the rest is still in flight.
pub struct Download {
    socket: std::net::TcpStream,
    pub status: u16,
    pub content_length: usize,
    /// The body bytes read so far.
    pub body: Vec<u8>,
}

impl Download {
    pub fn start(port: u16, path: &str) -> Download {
        use std::io::{Read, Write};
        let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        // A bound, not a timing assertion: a server that never sends fails instead of hanging.
        socket.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            socket,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = socket.read(&mut chunk).expect("the response starts");
            assert!(
                n > 0,
                "connection closed before the body: {}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n")
                && buf.len() > end + 4
            {
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
                let content_length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .expect("a content-length");
                return Download {
                    socket,
                    status,
                    content_length,
                    body: buf[end + 4..].to_vec(),
                };
            }
        }
    }

    /// Reads what arrives next (up to `max` bytes); how many bytes that was (0 at the end).
    pub fn read_some(&mut self, max: usize) -> usize {
        use std::io::Read;
        let mut chunk = vec![0u8; max];
        match self.socket.read(&mut chunk) {
            Ok(n) => {
                self.body.extend_from_slice(&chunk[..n]);
                n
            }
            Err(_) => 0,
        }
    }

    /// Reads until the server closes the connection or breaks it off; the body received.
    pub fn finish(mut self) -> Vec<u8> {
        use std::io::Read;
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.socket.read(&mut chunk) {
                Ok(0) | Err(_) => return self.body,
                Ok(n) => self.body.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// One HTTP/1.1 request over a raw socket, with the path sent exactly as given (HTTP clients
/// normalize `..` and `%2e%2e` away, attackers do not).
pub fn raw_request(port: u16, method: &str, path: &str, body: &[u8]) -> Res {
    raw_request_with(port, method, path, &[], body)
}

/// [`raw_request`] with extra request headers; the response as it came (only de-chunked), so no
/// client decompresses it either.
pub fn raw_request_with(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Res {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading everything; a reset then is fine.
    let _ = s.write_all(body);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP response");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    for line in head.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            headers.append(
                reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                v.trim().parse().unwrap(),
            );
        }
    }
    let mut body = buf[split + 4..].to_vec();
    if headers.get("transfer-encoding").is_some_and(|v| v == "chunked") {
        body = dechunk(&body);
    }
    Res { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[nl + 2 + size + 2..];
    }
}
