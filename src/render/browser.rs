//! The machine's Chromium: found ([`locate`]), started headless on a private profile
//! with the DevTools pipe on fds 3 and 4 ([`Browser::launch`]), and ended on every way
//! out of the tool.
//!
//! Ending it is layered, because no one layer covers every path: dropping [`Browser`]
//! kills its process group and deletes its profile (a normal end, an error, a stopped
//! Arbiter); the group is also in [`LIVE`], which [`kill_all`] empties at the end of
//! `main` and the panic hook empties on a panic of the main thread; and the browser is started with
//! `PR_SET_PDEATHSIG`, so the kernel kills it if the thread that started it dies
//! without any of that running (SIGKILL of the tool).

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::rc::Rc;
use std::sync::{Mutex, Once};
use std::time::Duration;

use rustix::process::{Pid, Signal};
use serde_json::json;
use tokio::net::unix::pipe;

use super::cdp::Cdp;

/// What the tool looks for on PATH when no browser is named, in this order.
pub const CANDIDATES: [&str; 4] = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];

/// The variable naming a browser, after `--browser` and `BROWSER` in the settings.
pub const CHROMIUM_VARIABLE: &str = "CHROMIUM";

/// What to install, in the words every "no browser" message uses.
pub const INSTALL_HINT: &str = "install Chromium (Debian/Ubuntu: apt install chromium) or name it with --browser PATH, BROWSER or CHROMIUM";

/// The browser to run: `named` (a flag or setting, already chosen by precedence), else
/// `$CHROMIUM`, else the first of [`CANDIDATES`] on `path`. `None` when there is none.
pub fn locate(
    named: Option<&Path>,
    chromium_var: Option<OsString>,
    path: Option<OsString>,
) -> Option<PathBuf> {
    if let Some(named) = named {
        return Some(named.to_path_buf());
    }
    if let Some(var) = chromium_var.filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(var));
    }
    let path = path?;
    CANDIDATES.iter().find_map(|name| {
        std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| is_executable(candidate))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// How to start the browser: what the run's settings say about its requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Launch {
    pub program: PathBuf,
    pub user_agent: String,
    /// `--proxy-server`'s value (`scheme://host:port`), when the run uses a proxy.
    pub proxy: Option<String>,
    /// `--proxy-bypass-list`'s value.
    pub proxy_bypass: Option<String>,
    /// `--insecure`: the browser does not check certificates either.
    pub insecure: bool,
    /// SHA-256 of the SubjectPublicKeyInfo of each extra CA (`--ca-cert`), base64:
    /// Chromium trusts a chain holding one of them (`--ignore-certificate-errors-spki-list`),
    /// the one way to add a root without writing an NSS database.
    pub spki_hashes: Vec<String>,
    /// How long the browser may take to answer its first command.
    pub start_timeout: Duration,
}

impl Launch {
    /// The command-line flags, profile aside.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "--headless",
            "--remote-debugging-pipe",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            // A closed network refuses the browser's own background connections, many at
            // a time: none is wanted anyway.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--mute-audio",
            "--hide-scrollbars",
            "--window-size=1280,900",
            // A page that eats memory fails on its own heap limit before the machine's.
            "--js-flags=--max-old-space-size=512",
        ]
        .map(String::from)
        .to_vec();
        // Chromium refuses to run as root with its sandbox on; as any other user, keep it.
        if rustix::process::geteuid().is_root() {
            args.push("--no-sandbox".into());
        }
        args.push(format!("--user-agent={}", self.user_agent));
        if let Some(proxy) = &self.proxy {
            args.push(format!("--proxy-server={proxy}"));
        }
        if let Some(bypass) = &self.proxy_bypass {
            args.push(format!("--proxy-bypass-list={bypass}"));
        }
        if self.insecure {
            args.push("--ignore-certificate-errors".into());
        } else if !self.spki_hashes.is_empty() {
            args.push(format!("--ignore-certificate-errors-spki-list={}", self.spki_hashes.join(",")));
        }
        args
    }
}

/// Why a browser could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("cannot start {program}: {reason}")]
    Spawn { program: String, reason: String },
    #[error("{program} did not answer within {secs} s of starting")]
    NoAnswer { program: String, secs: u64 },
}

/// A running browser: its process group, its profile, its protocol connection. Dropped,
/// it kills the group and deletes the profile.
pub struct Browser {
    pub cdp: Rc<Cdp>,
    child: tokio::process::Child,
    group: i32,
    /// Deleted on drop, after the group is dead.
    profile: Option<tempfile::TempDir>,
    /// The browser's TMPDIR: inside the profile, or in /tmp when the profile's path is
    /// too long for a socket in it. Deleted with the profile.
    scratch: Option<tempfile::TempDir>,
}

/// The longest profile path the browser's TMPDIR may sit under: the socket Chromium makes
/// there (`/t??????/org.chromium.Chromium.??????/SingletonSocket`, 53 bytes) must fit in
/// a socket address's 108 bytes with its NUL, and a little to spare.
const MAX_SCRATCH_PARENT: usize = 48;

impl Browser {
    /// Starts the browser and waits until it answers.
    pub async fn launch(launch: &Launch) -> Result<Self, StartError> {
        let program = launch.program.display().to_string();
        let spawn_error = |reason: String| StartError::Spawn { program: program.clone(), reason };
        let profile = tempfile::Builder::new()
            .prefix("image-scraper-")
            .tempdir()
            .map_err(|e| spawn_error(format!("no private profile folder: {e}")))?;
        let (browser_reads, to_browser) = pipe_pair().map_err(|e| spawn_error(e.to_string()))?;
        let (from_browser, browser_writes) = pipe_pair().map_err(|e| spawn_error(e.to_string()))?;
        let (browser_reads_fd, browser_writes_fd) = (browser_reads.as_raw_fd(), browser_writes.as_raw_fd());

        // The browser's own temporary files and anything it would put in a home folder
        // go inside the profile too, so deleting it leaves nothing of the browser's
        // behind, whatever way it ended.
        let (data, home) = (profile.path().join("data"), profile.path().join("home"));
        for dir in [&data, &home] {
            std::fs::create_dir(dir).map_err(|e| spawn_error(format!("no private profile folder: {e}")))?;
        }
        // Chromium puts a unix socket in its TMPDIR, and aborts when the socket's path is
        // longer than a socket address holds (108 bytes): a deep TMPDIR gets a short one
        // in /tmp instead, deleted with the profile.
        let scratch = match profile.path().as_os_str().len() <= MAX_SCRATCH_PARENT {
            true => tempfile::Builder::new().prefix("t").tempdir_in(profile.path()),
            false => tempfile::Builder::new().prefix("image-scraper-").tempdir_in("/tmp"),
        }
        .map_err(|e| spawn_error(format!("no private temporary folder: {e}")))?;
        let tmp = scratch.path().to_path_buf();
        let mut command = tokio::process::Command::new(&launch.program);
        command
            .args(launch.args())
            .arg(format!("--user-data-dir={}", data.display()))
            .env("TMPDIR", &tmp)
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_CACHE_HOME")
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: between fork and exec only async-signal-safe system calls run: dup and
        // dup2 (placing the pipe ends on the fds the browser expects: moved above 4
        // first, so one cannot overwrite the other) and prctl.
        unsafe {
            command.pre_exec(move || {
                let reads = rustix::io::fcntl_dupfd_cloexec(borrowed(browser_reads_fd), 10)?;
                let writes = rustix::io::fcntl_dupfd_cloexec(borrowed(browser_writes_fd), 10)?;
                dup_onto(&reads, 3)?;
                dup_onto(&writes, 4)?;
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| spawn_error(e.to_string()))?;
        // Ours are closed now: the browser's pipe ends live only in the browser, so its
        // exit closes the pipe and the reader sees it.
        drop((browser_reads, browser_writes));
        let group = child.id().unwrap_or_default() as i32;
        register(group);
        let to_browser = pipe::Sender::from_owned_fd(to_browser).map_err(|e| spawn_error(e.to_string()))?;
        let from_browser =
            pipe::Receiver::from_owned_fd(from_browser).map_err(|e| spawn_error(e.to_string()))?;
        let browser = Self {
            cdp: Cdp::start(to_browser, from_browser),
            child,
            group,
            profile: Some(profile),
            scratch: Some(scratch),
        };
        let answered = tokio::time::timeout(
            launch.start_timeout,
            browser.cdp.call(None, "Browser.getVersion", json!({})),
        )
        .await;
        let mut browser = browser;
        match answered {
            Ok(Ok(_)) => Ok(browser),
            Ok(Err(_)) => {
                let status = browser.child.wait().await.map_or_else(|e| e.to_string(), |s| s.to_string());
                Err(spawn_error(format!("it ended before answering ({status})")))
            }
            Err(_) => Err(StartError::NoAnswer { program, secs: launch.start_timeout.as_secs() }),
        }
    }

    /// The browser's process id (its group's too).
    pub fn pid(&self) -> i32 {
        self.group
    }

    pub fn is_gone(&self) -> bool {
        self.cdp.is_gone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(self.group);
        unregister(self.group);
        // Reaped before the profile goes, so the browser is not writing into it. Polled:
        // a drop may run on any thread, runtime or none, and a process's exit cannot be
        // awaited here; half a second at most, on the system's clock the browser lives by.
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        reap_group(self.group, Duration::from_millis(500));
        if let Some(scratch) = self.scratch.take() {
            let _ = scratch.close();
        }
        if let Some(profile) = self.profile.take() {
            let _ = profile.close();
        }
    }
}

fn pipe_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    Ok((read, write))
}

fn borrowed(fd: i32) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: only in the child between fork and exec, where the parent's fds are open.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// `dup2(from, to)`, which clears close-on-exec on `to`: the one fd the browser keeps.
fn dup_onto(from: &OwnedFd, to: i32) -> std::io::Result<()> {
    // SAFETY: in the child between fork and exec; `to` is 3 or 4, replaced whatever it
    // held, and never closed by us (forgotten below).
    let mut target = unsafe { OwnedFd::from_raw_fd(to) };
    let result = rustix::io::dup2(from, &mut target);
    std::mem::forget(target);
    Ok(result?)
}

/// Process groups of the browsers alive in this process.
static LIVE: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn register(group: i32) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // The browser's own children come to us when it dies, so [`reap_group`] can reap
        // them: no zombie of the browser's is left for a `pgrep` after the run.
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Only the main thread's panic ends the process with no destructor run. A
            // worker's is caught and counted, and the renderer's own Arbiter unwinds,
            // dropping its browser: killing every browser then would fail the renders
            // of a run that goes on.
            if std::thread::current().name() == Some("main") {
                kill_all();
            }
            previous(info);
        }));
    });
    if let Ok(mut live) = LIVE.lock() {
        live.push(group);
    }
}

fn unregister(group: i32) {
    if let Ok(mut live) = LIVE.lock() {
        live.retain(|g| *g != group);
    }
}

/// Reaps what is left of a killed browser's group: its renderer and helper processes,
/// reparented to this process (a child subreaper, see [`register`]) when the browser
/// died, instead of lingering as zombies until init collects them. Gives up after
/// `within`, or at once when none is left.
fn reap_group(group: i32, within: Duration) {
    let Some(pid) = Pid::from_raw(group) else { return };
    // Polled, on the system's clock: a blocking wait for the group could not give up
    // after `within`, and a real browser's processes end in real time.
    let deadline = std::time::Instant::now() + within;
    loop {
        match rustix::process::waitpgid(pid, rustix::process::WaitOptions::NOHANG) {
            Ok(Some(_)) => continue,
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => return,
        }
    }
}

fn kill_group(group: i32) {
    if let Some(pid) = Pid::from_raw(group) {
        let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    }
}

/// Kills every browser this process started and has not ended: the last thing `main`
/// does, and what a panic does first.
pub fn kill_all() {
    let groups = match LIVE.lock() {
        Ok(mut live) => std::mem::take(&mut *live),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    for group in &groups {
        kill_group(*group);
    }
    for group in groups {
        reap_group(group, Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_browser_wins_then_the_variable_then_path_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str, mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        };
        make("chromium", 0o644); // not executable: passed over
        let chrome = make("google-chrome", 0o755);
        let path = Some(dir.path().as_os_str().to_owned());
        assert_eq!(locate(None, None, path.clone()), Some(chrome));
        assert_eq!(locate(None, Some("/opt/c".into()), path.clone()), Some(PathBuf::from("/opt/c")));
        assert_eq!(locate(Some(Path::new("/x/b")), Some("/opt/c".into()), path), Some(PathBuf::from("/x/b")));
        assert_eq!(locate(None, Some("".into()), Some("/nonexistent".into())), None);
    }

    #[test]
    fn flags_carry_the_runs_user_agent_proxy_and_trust() {
        let launch = Launch {
            user_agent: "ua/1".into(),
            proxy: Some("http://127.0.0.1:3128".into()),
            proxy_bypass: Some("localhost".into()),
            spki_hashes: vec!["AAA=".into()],
            ..Launch::default()
        };
        let args = launch.args();
        for want in [
            "--user-agent=ua/1",
            "--proxy-server=http://127.0.0.1:3128",
            "--proxy-bypass-list=localhost",
            "--ignore-certificate-errors-spki-list=AAA=",
            "--remote-debugging-pipe",
            "--headless",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} missing from {args:?}");
        }
        assert!(!args.iter().any(|a| a == "--ignore-certificate-errors"));
        let insecure = Launch { insecure: true, ..launch }.args();
        assert!(insecure.iter().any(|a| a == "--ignore-certificate-errors"));
    }
}
