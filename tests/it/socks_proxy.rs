//! A small SOCKS5 proxy for the proxy tests, on 127.0.0.1 port 0 (RFC 1928, `CONNECT`
//! only): no authentication, or RFC 1929 username/password it requires, and a record of
//! each connection asked for: the target as sent, and whether it was a name (what
//! `socks5h://` sends) or an address (`socks5://`). It reaches this machine only: a
//! target that is not a loopback address or `localhost` is refused (reply 2, "not
//! allowed by ruleset"), so nothing a test does leaves the machine; a loopback target is
//! reached on 127.0.0.1, where the tests' servers listen.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One connection the proxy was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `localhost:8080` (a name sent) or `127.0.0.1:8080` (an address sent).
    pub target: String,
    /// Whether the client sent a name (address type 3), not an address.
    pub domain: bool,
    /// The username the client authenticated with, if it did.
    pub user: Option<String>,
}

/// What a client must present.
#[derive(Clone)]
struct Required {
    user: String,
    password: String,
}

#[derive(Default)]
struct Record {
    seen: Vec<Seen>,
    /// Username/password attempts refused.
    refused: usize,
}

pub struct SocksProxy {
    port: u16,
    record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SocksProxy {
    /// A proxy that asks for no authentication.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A proxy that requires this username and password (RFC 1929).
    pub fn with_password(user: &str, password: &str) -> Self {
        Self::start_with(Some(Required { user: user.into(), password: password.into() }))
    }

    fn start_with(required: Option<Required>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let record = Arc::new(Mutex::new(Record::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_record, thread_stop) = (Arc::clone(&record), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (record, required) = (Arc::clone(&thread_record), required.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &record, required.as_ref());
                });
            }
        });
        Self { port, record, stop, thread: Some(thread) }
    }

    /// `SCHEME://127.0.0.1:PORT` (`socks5`, `socks5h`).
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `SCHEME://USERINFO@127.0.0.1:PORT`, the user info as given (percent-encoded).
    pub fn url_with(&self, scheme: &str, userinfo: &str) -> String {
        format!("{scheme}://{userinfo}@127.0.0.1:{}", self.port)
    }

    /// Every connection asked for so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.record.lock().unwrap().seen.clone()
    }

    /// How many username/password attempts were refused.
    pub fn refused(&self) -> usize {
        self.record.lock().unwrap().refused
    }
}

impl Drop for SocksProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_vec(conn: &mut TcpStream, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    conn.read_exact(&mut buf)?;
    Ok(buf)
}

fn read_byte(conn: &mut TcpStream) -> io::Result<u8> {
    Ok(read_vec(conn, 1)?[0])
}

/// One client connection: the handshake, then the relay until either side closes.
fn serve(mut conn: TcpStream, record: &Mutex<Record>, required: Option<&Required>) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    // Greeting: version, the methods offered.
    if read_byte(&mut conn)? != 5 {
        return Ok(());
    }
    let count = read_byte(&mut conn)? as usize;
    let methods = read_vec(&mut conn, count)?;
    let mut user = None;
    match required {
        None if methods.contains(&0) => conn.write_all(&[5, 0])?,
        Some(required) if methods.contains(&2) => {
            conn.write_all(&[5, 2])?;
            // RFC 1929: version 1, username, password, each after its length.
            let _version = read_byte(&mut conn)?;
            let len = read_byte(&mut conn)? as usize;
            let name = String::from_utf8_lossy(&read_vec(&mut conn, len)?).into_owned();
            let len = read_byte(&mut conn)? as usize;
            let password = String::from_utf8_lossy(&read_vec(&mut conn, len)?).into_owned();
            if name != required.user || password != required.password {
                record.lock().unwrap().refused += 1;
                conn.write_all(&[1, 1])?;
                return conn.shutdown(Shutdown::Both);
            }
            conn.write_all(&[1, 0])?;
            user = Some(name);
        }
        _ => return conn.write_all(&[5, 0xff]),
    }
    // Request: version, command, reserved, address type, address, port.
    let head = read_vec(&mut conn, 4)?;
    let (host, domain) = match head[3] {
        1 => (IpAddr::from(<[u8; 4]>::try_from(read_vec(&mut conn, 4)?).unwrap()).to_string(), false),
        4 => (IpAddr::from(<[u8; 16]>::try_from(read_vec(&mut conn, 16)?).unwrap()).to_string(), false),
        3 => {
            let len = read_byte(&mut conn)? as usize;
            (String::from_utf8_lossy(&read_vec(&mut conn, len)?).into_owned(), true)
        }
        _ => return conn.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0]),
    };
    let port = u16::from_be_bytes(<[u8; 2]>::try_from(read_vec(&mut conn, 2)?).unwrap());
    let target = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        _ => format!("{host}:{port}"),
    };
    record.lock().unwrap().seen.push(Seen { target, domain, user });
    if head[1] != 1 {
        return conn.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
    }
    let loopback = host == "localhost"
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST));
    let upstream = if loopback { TcpStream::connect(("127.0.0.1", port)).ok() } else { None };
    let Some(upstream) = upstream else {
        // 2: not allowed (elsewhere); 5: refused (nothing listening).
        let code = if loopback { 5 } else { 2 };
        return conn.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
    };
    conn.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
    pipe(conn, upstream)
}

/// Copies both ways until either side closes.
fn pipe(client: TcpStream, upstream: TcpStream) -> io::Result<()> {
    let (mut client_read, mut up_write) = (client.try_clone()?, upstream.try_clone()?);
    let (mut up_read, mut client_write) = (upstream, client);
    let forward = std::thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut up_write);
        let _ = up_write.shutdown(Shutdown::Write);
    });
    let _ = io::copy(&mut up_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Both);
    let _ = forward.join();
    Ok(())
}
