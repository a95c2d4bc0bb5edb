//! A small forward proxy for the proxy tests, on 127.0.0.1 port 0: `CONNECT host:port`
//! tunnels and absolute-form requests (`GET http://host:port/path`), an optional Basic
//! credential it requires, and a record of what passed through. It reaches 127.0.0.1
//! only: anything else is answered 403, so nothing a test does leaves the machine.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `CONNECT`, `GET`, ...
    pub method: String,
    /// `127.0.0.1:8443` for CONNECT, `http://127.0.0.1:8080/p1/cats.html` for the rest.
    pub target: String,
    /// The `Proxy-Authorization` header as sent, if any.
    pub auth: Option<String>,
}

pub struct ForwardProxy {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ForwardProxy {
    /// A proxy that lets everyone through.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A proxy that answers 407 unless `Proxy-Authorization` is exactly `required`.
    pub fn start_with(required: Option<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_seen, thread_stop) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (seen, required) = (Arc::clone(&thread_seen), required.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &seen, required.as_deref());
                });
            }
        });
        Self { port, seen, stop, thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://USER:PASSWORD@127.0.0.1:PORT`, both percent-encoded as given.
    pub fn url_with(&self, userinfo: &str) -> String {
        format!("http://{userinfo}@127.0.0.1:{}", self.port)
    }

    /// Everything received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A port on 127.0.0.1 with nothing listening: a dead proxy.
pub fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// One client connection: requests one after another until it closes; a tunnel or a
/// forwarded request ends it.
fn serve(conn: TcpStream, seen: &Mutex<Vec<Seen>>, required: Option<&str>) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut client = conn;
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or("").to_string(), words.next().unwrap_or("").to_string());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header.as_str(), ""));
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let auth =
        headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("proxy-authorization")).map(|(_, v)| v.clone());
    seen.lock().unwrap().push(Seen { method: method.clone(), target: target.clone(), auth: auth.clone() });

    if required.is_some() && auth.as_deref() != required {
        let answer = "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        return client.write_all(answer.as_bytes());
    }
    if method == "CONNECT" {
        let Some(upstream) = upstream(&target) else { return forbidden(&mut client) };
        client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
        return pipe(reader, client, upstream);
    }
    // Absolute form: http://127.0.0.1:PORT/path
    let Some(rest) = target.strip_prefix("http://") else { return forbidden(&mut client) };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some(mut upstream) = upstream(authority) else { return forbidden(&mut client) };
    let path = if path.is_empty() { "/" } else { path };
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in &headers {
        let hop = ["proxy-authorization", "proxy-connection", "connection", "keep-alive"];
        if !hop.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    // One request per upstream connection: its answer is whatever comes until it closes.
    head.push_str("Connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes())?;
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer)?;
    client.write_all(&answer)?;
    // The answer says `connection: close` (the upstream answered our close): the client
    // does not reuse this connection, and this end closes it.
    client.shutdown(Shutdown::Both)
}

/// A connection to `authority`, if it is on 127.0.0.1.
fn upstream(authority: &str) -> Option<TcpStream> {
    let (host, port) = authority.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    if host != "127.0.0.1" && host != "localhost" {
        return None;
    }
    TcpStream::connect(("127.0.0.1", port)).ok()
}

fn forbidden(client: &mut TcpStream) -> io::Result<()> {
    client.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

/// Copies both ways until either side closes.
fn pipe(mut from_client: BufReader<TcpStream>, mut client: TcpStream, upstream: TcpStream) -> io::Result<()> {
    let mut up_write = upstream.try_clone()?;
    let mut up_read = upstream;
    let buffered = from_client.buffer().to_vec();
    up_write.write_all(&buffered)?;
    from_client.consume(buffered.len());
    let forward = std::thread::spawn(move || {
        let _ = io::copy(&mut from_client, &mut up_write);
        let _ = up_write.shutdown(Shutdown::Write);
    });
    let _ = io::copy(&mut up_read, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = forward.join();
    Ok(())
}
