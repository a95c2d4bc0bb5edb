//! A real `redis-server` for the tests (Debian's `redis-server` package; `.ci/run`
//! installs it), started here on a unix socket in a temporary folder (no port to race
//! for, nothing on the network), without persistence, and stopped with its process
//! group. One per test process: each test uses a job of its own.
//!
//! Without `redis-server` the tests print a line and pass; under `CI=true` they fail.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long redis-server may take to answer PING once started (milliseconds usually).
const READY_WITHIN: Duration = Duration::from_secs(20);

pub struct RedisServer {
    /// `redis+unix:///…/redis.sock`, for `RedisFrontier::connect`.
    pub url: String,
    /// The socket, the config and the log; removed by the watchdog once redis is dead.
    dir: TempDir,
    /// The watchdog shell (leader of the server's process group), for kill and wait.
    child: Child,
    /// The watchdog's stdin: when it closes (this test process ending in any way, even
    /// without destructors, as the shared server in a static never is dropped) the
    /// watchdog kills the server. Held only to be closed.
    _lifeline: ChildStdin,
}

impl RedisServer {
    /// Starts a server and waits until it answers PING.
    pub fn start() -> Result<RedisServer, String> {
        let program = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string());
        let version = Command::new(&program).arg("--version").output();
        if !version.is_ok_and(|o| o.status.success()) {
            return Err(format!("`{program} --version` does not run: install Debian's redis-server"));
        }
        let dir = tempfile::Builder::new().prefix("redis-").tempdir().map_err(|e| e.to_string())?;
        let socket = dir.path().join("redis.sock");
        let args: Vec<String> = vec![
            // No TCP at all: the socket only.
            "--port".into(),
            "0".into(),
            "--unixsocket".into(),
            socket.display().to_string(),
            "--unixsocketperm".into(),
            "700".into(),
            // Nothing on disk: a test's job lives as long as the server.
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--dir".into(),
            dir.path().display().to_string(),
            "--daemonize".into(),
            "no".into(),
            "--logfile".into(),
            dir.path().join("redis.log").display().to_string(),
        ];
        // A shell leading the process group: it runs redis and exits when redis does (so
        // `try_wait` sees a crash), while a reader of its stdin kills redis once that
        // closes. (Asynchronous lists read /dev/null unless told otherwise, hence fd 3.)
        let script = r#"redis="$1"; shift; exec 3<&0; "$redis" "$@" </dev/null & r=$!; { read _ <&3; kill -9 "$r"; } & wait "$r"; rm -rf "$DIR_TO_REMOVE""#;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&program)
            .args(&args)
            .env("DIR_TO_REMOVE", dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let lifeline = child.stdin.take().expect("piped");
        let url = format!("redis+unix://{}", socket.display());
        let mut server = RedisServer { url, dir, child, _lifeline: lifeline };
        server.wait_ready(&socket)?;
        Ok(server)
    }

    /// Polls PING on the socket within [`READY_WITHIN`] (a hang guard: it answers in
    /// milliseconds); fails early, with the log, if redis exits.
    fn wait_ready(&mut self, socket: &Path) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return Err(format!("redis-server exited while starting:\n{}", self.log_tail()));
            }
            if ping(socket).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!("redis-server did not answer PING within {READY_WITHIN:?}:\n{}", self.log_tail()))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The socket's path.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }
}

/// One PING, answered `+PONG`.
fn ping(socket: &Path) -> std::io::Result<()> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(b"PING\r\n")?;
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply)?;
    match &reply {
        b"+PONG\r\n" => Ok(()),
        _ => Err(std::io::Error::other("not PONG")),
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
    }
}

/// The server the tests of this process share, or None (with a printed note) when it
/// cannot start outside CI. Under `CI=true` a server that cannot start fails the test.
pub fn server() -> Option<&'static RedisServer> {
    static SERVER: OnceLock<Result<RedisServer, String>> = OnceLock::new();
    match SERVER.get_or_init(RedisServer::start) {
        Ok(server) => Some(server),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("redis-server must run under CI: {e}")
        }
        Err(e) => {
            eprintln!("skipped: no Redis ({e})");
            None
        }
    }
}

/// A job name no other test of this process uses.
pub fn job(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{tag}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A TCP relay on 127.0.0.1 to a test server's socket that holds every chunk, each way,
/// `delay` before passing it on: Redis answering slowly, as across a slow network. It
/// runs on a thread and runtime of its own, so a test thread that blocks cannot hold it
/// up (a blocked caller then waits out the delay, rather than hanging).
pub struct SlowRelay {
    /// `redis://127.0.0.1:PORT/`, for a client to connect through the relay.
    pub url: String,
    /// Dropped with the relay: its runtime stops, and its connections with it.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl SlowRelay {
    pub fn start(server: &RedisServer, delay: Duration) -> SlowRelay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port on 127.0.0.1");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!("redis://{}/", listener.local_addr().expect("an address"));
        let socket = server.socket();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let accept = async {
                    while let Ok((tcp, _)) = listener.accept().await {
                        let Ok(unix) = tokio::net::UnixStream::connect(&socket).await else { continue };
                        let ((tcp_in, tcp_out), (unix_in, unix_out)) = (tcp.into_split(), unix.into_split());
                        tokio::spawn(forward(tcp_in, unix_out, delay));
                        tokio::spawn(forward(unix_in, tcp_out, delay));
                    }
                };
                futures_util::future::select(std::pin::pin!(accept), stopped).await;
            });
        });
        SlowRelay { url, _stop: stop }
    }
}

/// Passes what `from` sends on to `to`, each chunk `delay` late, until either side closes.
async fn forward(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = vec![0; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        tokio::time::sleep(delay).await;
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
