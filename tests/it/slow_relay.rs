//! A TCP relay on 127.0.0.1 that holds back every piece of a server's answer for a
//! while: a slow S3 (or any server) without touching the server. What the client sends
//! goes through at once, so an 8 MiB part costs one delay, not one per piece.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// A relay to one server. Its threads live as long as the test binary: each ends when
/// its connection does, the accepting one never.
pub struct SlowRelay {
    /// Where clients connect instead of the server.
    pub addr: SocketAddr,
}

impl SlowRelay {
    /// Relays to `server`, holding back each piece of its answers by `delay`.
    pub fn start(server: SocketAddr, delay: Duration) -> SlowRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(upstream) = TcpStream::connect(server) else { continue };
                let (client_read, upstream_read) =
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                std::thread::spawn(move || pipe(client_read, upstream, Duration::ZERO));
                std::thread::spawn(move || pipe(upstream_read, client, delay));
            }
        });
        SlowRelay { addr }
    }
}

/// Copies `from` into `to`, each piece `delay` late, until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // The fault this relay is for, not a wait for an event.
        std::thread::sleep(delay);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
