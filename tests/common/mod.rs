//! Test harness: a real S3 server on a loopback port, buckets seeded through
//! the AWS SDK, the real `s3rewind` binary, and the real catalog file.
//!
//! The server is our own s3sim, started in this process (the default, or
//! `S3REWIND_TEST_SERVER=s3sim`), or moto (`S3REWIND_TEST_SERVER=moto`,
//! from `.venv/`, which `just setup` makes). One server serves a whole test
//! binary; every test uses buckets of its own.
#![allow(dead_code)]

pub mod fixture;
pub mod hostile;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};

pub const ACCESS_KEY: &str = "s3rewind-test";
pub const SECRET_KEY: &str = "s3rewind-test-secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Moto,
    S3sim,
}

pub struct Server {
    pub kind: ServerKind,
    pub endpoint: String,
    running: Running,
}

enum Running {
    InProcess(Mutex<Option<s3sim::Server>>),
    Child(Mutex<Child>),
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local addr")
        .port()
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// The test binary's S3 server, started on first use.
pub fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        let kind = match std::env::var("S3REWIND_TEST_SERVER").as_deref() {
            Ok("s3sim") | Ok("") | Err(_) => ServerKind::S3sim,
            Ok("moto") => ServerKind::Moto,
            Ok(other) => panic!("S3REWIND_TEST_SERVER={other}: expected moto or s3sim"),
        };
        start_server(kind, &[])
    })
}

/// Starts a server of its own. s3sim runs in this process, on the
/// harness's runtime, and takes `extra` flags (faults, seeding: see
/// `s3sim --help`). moto runs under a shell that kills it when our stdin
/// pipe closes, i.e. when this test process exits, however it exits.
/// Dropping the returned server stops it sooner.
pub fn start_server(kind: ServerKind, extra: &[&str]) -> Server {
    match kind {
        ServerKind::S3sim => {
            use clap::Parser;
            let mut args = vec![
                "s3sim",
                "--listen",
                "127.0.0.1:0",
                "--access-key",
                ACCESS_KEY,
                "--secret-key",
                SECRET_KEY,
            ];
            args.extend_from_slice(extra);
            let options = s3sim::Options::parse_from(args);
            let server = runtime().block_on(options.serve()).expect("start s3sim");
            Server {
                kind,
                endpoint: format!("http://{}", server.addr),
                running: Running::InProcess(Mutex::new(Some(server))),
            }
        }
        ServerKind::Moto => {
            assert!(extra.is_empty(), "moto takes no flags");
            start_moto()
        }
    }
}

fn start_moto() -> Server {
    let port = free_port();
    let moto = std::env::var("S3REWIND_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join(".venv/bin/moto_server"));
    assert!(
        moto.exists(),
        "moto_server not found at {}: run `just setup` (or set S3REWIND_MOTO_SERVER)",
        moto.display()
    );
    let command = format!("{} -H 127.0.0.1 -p {port}", moto.display());
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{command} >/dev/null 2>&1 & pid=$!; cat >/dev/null; kill $pid"
        ))
        .stdin(Stdio::piped())
        .spawn()
        .expect("start moto");
    let deadline = Instant::now() + Duration::from_secs(60);
    // Wait for the port to accept connections (the server is starting up).
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("moto exited during start-up: {status}");
        }
        assert!(Instant::now() < deadline, "moto did not start within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        kind: ServerKind::Moto,
        endpoint: format!("http://127.0.0.1:{port}"),
        running: Running::Child(Mutex::new(child)),
    }
}

impl Server {
    /// The state of an in-process s3sim, to change it as time would
    /// (an Intelligent-Tiering version moving to an archive tier).
    pub fn sim(&self) -> s3sim::Sim {
        match &self.running {
            Running::InProcess(server) => server
                .lock()
                .unwrap()
                .as_ref()
                .expect("running")
                .sim
                .clone(),
            Running::Child(_) => panic!("only an in-process s3sim can be reached into"),
        }
    }

    /// Requests of one kind an in-process s3sim has served.
    pub fn served(&self, op: s3sim::Op) -> u64 {
        match &self.running {
            Running::InProcess(server) => server
                .lock()
                .unwrap()
                .as_ref()
                .map_or(0, |s| s.sim.counters.get(op)),
            Running::Child(_) => panic!("only an in-process s3sim counts requests"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        match &self.running {
            Running::InProcess(server) => {
                if let Some(server) = server.lock().ok().and_then(|mut s| s.take()) {
                    runtime().block_on(server.stop());
                }
            }
            // Closing the shell's stdin makes it kill the server.
            Running::Child(child) => {
                if let Ok(mut child) = child.lock() {
                    drop(child.stdin.take());
                    let _ = child.wait();
                }
            }
        }
    }
}

/// s3sim with a bucket `seeded` of `keys` keys × `versions` entries over
/// the prefixes `p000/`…`p003/` (a share `markers` of them delete markers),
/// the same for the same arguments: its seed fixes contents and version
/// ids. `extra` adds s3sim flags (faults, latency).
pub fn seeded_server(keys: u32, versions: u32, markers: f64, seed: u32, extra: &[&str]) -> Server {
    let (keys, versions, markers, seed) = (
        keys.to_string(),
        versions.to_string(),
        markers.to_string(),
        seed.to_string(),
    );
    let mut args = vec![
        "--seed-bucket",
        "seeded",
        "--seed-keys",
        &keys,
        "--seed-versions",
        &versions,
        "--seed-prefixes",
        "4",
        "--seed-markers",
        &markers,
        "--seed",
        &seed,
    ];
    args.extend_from_slice(extra);
    start_server(ServerKind::S3sim, &args)
}

/// `scan s3://seeded` on `server`, prefix by prefix (`p000/`…`p003/`),
/// `page_size` entries a page.
pub fn seeded_scan_args(server: &Server, page_size: &str) -> Vec<String> {
    let mut args: Vec<String> = ["scan", "s3://seeded", "--endpoint-url", &server.endpoint]
        .map(str::to_owned)
        .to_vec();
    args.extend(["--page-size".to_owned(), page_size.to_owned()]);
    for p in 0..4 {
        args.extend(["--prefix".to_owned(), format!("p{p:03}/")]);
    }
    args
}

/// `args` as the `&str`s the run functions take.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// A restore plan named `r` to the time `share` of the way through the
/// catalog's entries (oldest first); returns that time.
pub fn plan_restore_within(catalog: &Path, share: f64) -> i64 {
    let t: i64 = catalog_scalar(
        catalog,
        &format!(
            "SELECT mtime FROM entries ORDER BY mtime LIMIT 1 OFFSET (SELECT CAST(count(*) * {share} AS INTEGER) FROM entries)"
        ),
    );
    s3rewind_ok(
        catalog,
        &[
            "plan",
            "restore",
            "--to",
            &model::time::format_time(t),
            "--name",
            "r",
        ],
    );
    t
}

/// A server slow enough (20 ms a request) to act on a command while it
/// runs: moto is, as it is; the shared s3sim answers in microseconds, so a
/// test gets an s3sim of its own, kept alive in `own`.
pub fn slow_server(own: &mut Option<Server>) -> &Server {
    if server().kind == ServerKind::S3sim {
        own.insert(start_server(ServerKind::S3sim, &["--latency-ms", "20"]))
    } else {
        server()
    }
}

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

pub fn client() -> aws_sdk_s3::Client {
    client_for(server())
}

pub fn client_for(server: &Server) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "test",
        ))
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&server.endpoint)
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(10))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A bucket name no other test uses.
pub fn unique_bucket(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}-{}",
        tag,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One entry as the catalog and S3 see it: (key, version id, is delete marker, is latest).
pub type Entry = (String, String, bool, bool);

/// A bucket that remembers every write, so tests know what a listing must
/// hold without asking the server.
pub struct Bucket {
    pub name: String,
    pub client: aws_sdk_s3::Client,
    pub kind: ServerKind,
    /// Per key, every entry oldest first: (version id, is marker).
    pub history: HashMap<String, Vec<(String, bool)>>,
    /// Per key, the second in which its last write finished (moto only keeps
    /// seconds, see `settle`).
    last_write: HashMap<String, (u64, bool)>,
}

pub fn unix_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
}

impl Bucket {
    pub fn new(tag: &str, versioned: bool) -> Bucket {
        Bucket::on(server(), &unique_bucket(tag), versioned)
    }

    /// A bucket of this name on `server` (created unless it exists).
    pub fn on(server: &Server, name: &str, versioned: bool) -> Bucket {
        let name = name.to_owned();
        let client = client_for(server);
        let kind = server.kind;
        runtime().block_on(async {
            match client.create_bucket().bucket(&name).send().await {
                Ok(_) => {}
                Err(e)
                    if aws_sdk_s3::error::ProvideErrorMetadata::code(&e)
                        == Some("BucketAlreadyOwnedByYou") => {}
                Err(e) => panic!("create bucket {name}: {e:?}"),
            }
        });
        let bucket = Bucket {
            name,
            client,
            kind,
            history: HashMap::new(),
            last_write: HashMap::new(),
        };
        if versioned {
            bucket.set_versioning(BucketVersioningStatus::Enabled);
        }
        bucket
    }

    pub fn set_versioning(&self, status: BucketVersioningStatus) {
        runtime().block_on(async {
            self.client
                .put_bucket_versioning()
                .bucket(&self.name)
                .versioning_configuration(VersioningConfiguration::builder().status(status).build())
                .send()
                .await
                .expect("put bucket versioning");
        });
    }

    pub fn url(&self) -> String {
        format!("s3://{}", self.name)
    }

    /// moto lists a page's versions before its delete markers and keeps only
    /// whole seconds, so a version and a marker of one key written in the
    /// same second cannot be ordered from its listing. Real S3 and s3sim
    /// interleave them; for moto, writes of a different kind to the same key
    /// wait for the next second.
    fn settle(&self, key: &str, is_marker: bool) {
        if self.kind != ServerKind::Moto {
            return;
        }
        if let Some(&(second, was_marker)) = self.last_write.get(key) {
            if was_marker != is_marker {
                wait_for_second_after(second);
            }
        }
    }

    fn record(&mut self, key: &str, version_id: String, is_marker: bool) {
        self.history
            .entry(key.to_owned())
            .or_default()
            .push((version_id, is_marker));
        self.last_write
            .insert(key.to_owned(), (unix_now().as_secs(), is_marker));
    }

    pub fn put(&mut self, key: &str, body: &[u8]) -> String {
        self.settle(key, false);
        let out = runtime().block_on(async {
            self.client
                .put_object()
                .bucket(&self.name)
                .key(key)
                .body(ByteStream::from(body.to_vec()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("put {key:?}: {e:?}"))
        });
        let version = out.version_id().unwrap_or("null").to_owned();
        self.record(key, version.clone(), false);
        version
    }

    /// A version uploaded in parts (its ETag `<md5>-N`).
    pub fn put_parts(&mut self, key: &str, parts: &[Vec<u8>]) {
        runtime().block_on(async {
            let up = self
                .client
                .create_multipart_upload()
                .bucket(&self.name)
                .key(key)
                .send()
                .await
                .expect("create upload");
            let id = up.upload_id().expect("an upload id");
            let mut done = Vec::new();
            for (n, part) in parts.iter().enumerate() {
                let n = n as i32 + 1;
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.name)
                    .key(key)
                    .upload_id(id)
                    .part_number(n)
                    .body(ByteStream::from(part.clone()))
                    .send()
                    .await
                    .expect("upload part");
                done.push(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(n)
                        .e_tag(out.e_tag().expect("a part ETag"))
                        .build(),
                );
            }
            self.client
                .complete_multipart_upload()
                .bucket(&self.name)
                .key(key)
                .upload_id(id)
                .multipart_upload(
                    aws_sdk_s3::types::CompletedMultipartUpload::builder()
                        .set_parts(Some(done))
                        .build(),
                )
                .send()
                .await
                .expect("complete upload");
        });
    }

    /// A version encrypted with SSE-KMS (its ETag no MD5).
    pub fn put_kms(&mut self, key: &str, body: &[u8]) {
        runtime().block_on(async {
            self.client
                .put_object()
                .bucket(&self.name)
                .key(key)
                .body(ByteStream::from(body.to_vec()))
                .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                .send()
                .await
                .expect("put with SSE-KMS");
        });
    }

    /// A plain DELETE: adds a delete marker on a versioned bucket.
    pub fn delete(&mut self, key: &str) -> String {
        self.settle(key, true);
        let out = runtime().block_on(async {
            self.client
                .delete_object()
                .bucket(&self.name)
                .key(key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("delete {key:?}: {e:?}"))
        });
        let version = out.version_id().unwrap_or("null").to_owned();
        self.record(key, version.clone(), true);
        version
    }

    /// Permanently deletes one version or delete marker.
    pub fn delete_version(&mut self, key: &str, version_id: &str) {
        runtime().block_on(async {
            self.client
                .delete_object()
                .bucket(&self.name)
                .key(key)
                .version_id(version_id)
                .send()
                .await
                .unwrap_or_else(|e| panic!("delete {key:?} version {version_id}: {e:?}"))
        });
        let history = self.history.get_mut(key).expect("a key this bucket wrote");
        history.retain(|(v, _)| v != version_id);
    }

    /// A key whose only entries are delete markers (S3 writes a marker even
    /// for a key that does not exist; moto does not, so the version under the
    /// markers is written and then removed).
    pub fn markers_only(&mut self, key: &str, markers: usize) {
        let version = self.put(key, b"gone");
        for _ in 0..markers {
            self.delete(key);
        }
        self.delete_version(key, &version);
    }

    /// What a complete listing must hold, keys ascending, newest first.
    pub fn expected(&self) -> Vec<Entry> {
        let mut keys: Vec<&String> = self.history.keys().collect();
        keys.sort();
        let mut out = Vec::new();
        for key in keys {
            // A write of version id `null` replaces the earlier `null`.
            let mut seen = std::collections::HashSet::new();
            let entries: Vec<_> = self.history[key]
                .iter()
                .rev()
                .filter(|(v, _)| seen.insert(v.clone()))
                .collect();
            for (i, (version, is_marker)) in entries.into_iter().enumerate() {
                out.push((key.clone(), version.clone(), *is_marker, i == 0));
            }
        }
        out
    }

    /// The bucket's current listing, straight from the server (all pages).
    pub fn listing(&self) -> Vec<Entry> {
        runtime().block_on(async {
            let mut out = Vec::new();
            let (mut km, mut vm) = (None::<String>, None::<String>);
            loop {
                let page = self
                    .client
                    .list_object_versions()
                    .bucket(&self.name)
                    .set_key_marker(km.clone())
                    .set_version_id_marker(vm.clone())
                    .send()
                    .await
                    .expect("list versions");
                for v in page.versions() {
                    out.push((
                        v.key().unwrap_or_default().to_owned(),
                        v.version_id().unwrap_or_default().to_owned(),
                        false,
                        v.is_latest().unwrap_or_default(),
                    ));
                }
                for m in page.delete_markers() {
                    out.push((
                        m.key().unwrap_or_default().to_owned(),
                        m.version_id().unwrap_or_default().to_owned(),
                        true,
                        m.is_latest().unwrap_or_default(),
                    ));
                }
                if !page.is_truncated().unwrap_or_default() {
                    break;
                }
                km = page.next_key_marker().map(str::to_owned);
                vm = page.next_version_id_marker().map(str::to_owned);
            }
            out.sort();
            out
        })
    }

    /// The current content of a key (its latest version), None if it is deleted.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        runtime().block_on(async {
            match self
                .client
                .get_object()
                .bucket(&self.name)
                .key(key)
                .send()
                .await
            {
                Ok(out) => Some(
                    out.body
                        .collect()
                        .await
                        .expect("body")
                        .into_bytes()
                        .to_vec(),
                ),
                Err(_) => None,
            }
        })
    }
}

/// Seconds since the epoch, after waiting for the next second to begin, so
/// that everything written before is at or before the returned T and
/// everything written after is later.
pub fn mark_t() -> String {
    let now = unix_now().as_secs();
    wait_for_second_after(now);
    model::time::format_time(now as i64)
}

/// Waits until the wall clock is past the given Unix second.
pub fn wait_for_second_after(second: u64) {
    while unix_now().as_secs() <= second {
        let to_next = 1000 - unix_now().subsec_millis() as u64;
        std::thread::sleep(Duration::from_millis(to_next.min(1000) + 5));
    }
}

/// A temporary directory with a catalog path in it.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn catalog(&self) -> PathBuf {
        self.dir.path().join("catalog.db")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The real binary, pointed at a catalog and, once a test has started it,
/// at the test server (offline commands start none).
pub fn s3rewind_command(catalog: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3rewind"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("S3REWIND_CATALOG", catalog)
        .stdin(Stdio::null());
    if let Some(server) = SERVER.get() {
        cmd.env("AWS_ENDPOINT_URL", &server.endpoint);
    }
    cmd
}

/// Runs s3rewind against `server` (a server of the test's own).
pub fn s3rewind_at(server: &Server, catalog: &Path, args: &[&str]) -> Output {
    s3rewind_command(catalog)
        .env("AWS_ENDPOINT_URL", &server.endpoint)
        .args(args)
        .output()
        .expect("run s3rewind")
}

/// The same, asserting it succeeded; returns stdout.
#[track_caller]
pub fn s3rewind_at_ok(server: &Server, catalog: &Path, args: &[&str]) -> String {
    succeeded(s3rewind_at(server, catalog, args), args)
}

/// `out`'s stdout, once it is seen that the run succeeded.
#[track_caller]
fn succeeded(out: Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "s3rewind {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs s3rewind to completion.
pub fn s3rewind(catalog: &Path, args: &[&str]) -> Output {
    s3rewind_command(catalog)
        .args(args)
        .output()
        .expect("run s3rewind")
}

/// Runs s3rewind and asserts it succeeded; returns stdout.
#[track_caller]
pub fn s3rewind_ok(catalog: &Path, args: &[&str]) -> String {
    succeeded(s3rewind(catalog, args), args)
}

/// Runs s3rewind and asserts it failed; returns stderr.
#[track_caller]
pub fn s3rewind_err(catalog: &Path, args: &[&str]) -> String {
    let out = s3rewind(catalog, args);
    assert!(
        !out.status.success(),
        "s3rewind {args:?} should have failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every entry in a catalog, keys ascending, each key newest first (by `seq`).
pub fn catalog_entries(catalog: &Path) -> Vec<Entry> {
    let conn = rusqlite::Connection::open(catalog).expect("open catalog");
    let mut stmt = conn
        .prepare(
            "SELECT key, version_id, 0, is_latest, seq FROM objects \
             UNION ALL SELECT key, version_id, 1, is_latest, seq FROM delete_markers \
             ORDER BY 1, 5",
        )
        .expect("query catalog");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// The entries the catalog's scan listed (not what apply made since), and
/// the ones apply removed, keys ascending, each key newest first.
pub fn scanned_entries(catalog: &Path) -> Vec<Entry> {
    let conn = rusqlite::Connection::open(catalog).expect("open catalog");
    let mut stmt = conn
        .prepare(
            "SELECT key, version_id, is_marker, is_latest FROM entry_history \
             WHERE added_rev IS NULL ORDER BY key, seq",
        )
        .expect("query catalog");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Each key's newest entry at `t` in the catalog: Some((version id, etag)) if
/// it is a version, None if it is a delete marker or the key did not exist.
pub fn state_at(catalog: &std::path::Path, t: i64) -> BTreeMap<String, Option<(String, String)>> {
    let conn = rusqlite::Connection::open(catalog).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT k.key,
                    (SELECT CASE h.is_marker WHEN 0 THEN h.version_id END FROM key_history h
                     WHERE h.key_id = k.id AND h.last_modified_unix <= ?1 ORDER BY h.seq LIMIT 1),
                    (SELECT CASE h.is_marker WHEN 0 THEN h.etag END FROM key_history h
                     WHERE h.key_id = k.id AND h.last_modified_unix <= ?1 ORDER BY h.seq LIMIT 1)
             FROM keys k",
        )
        .unwrap();
    stmt.query_map([t], |r| {
        let v: Option<String> = r.get(1)?;
        let e: Option<String> = r.get(2)?;
        Ok((r.get(0)?, v.zip(e)))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The bucket after a restore plan of `catalog` (a scan of the bucket) to
/// `t` was applied, read back by a fresh scan into `now`: every key's
/// newest entry has the content of its entry at `t` (or is a delete marker
/// where the key was absent or deleted then), the entries removed are
/// exactly the planned marker removals, and each copy and each new marker
/// happened exactly once. And the catalog followed apply: what it holds
/// now is what the fresh scan found.
#[track_caller]
pub fn assert_restored_exactly(catalog: &Path, t: i64, now: &Path) {
    let (before, after) = (scanned_entries(catalog), catalog_entries(now));
    assert!(
        catalog_entries(catalog) == after,
        "the catalog does not hold what apply left in the bucket"
    );
    let now = state_at(now, i64::MAX);
    for (key, want) in state_at(catalog, t) {
        let got = now.get(&key).unwrap_or_else(|| panic!("{key} vanished"));
        assert_eq!(
            got.as_ref().map(|(_, etag)| etag),
            want.as_ref().map(|(_, etag)| etag),
            "{key}"
        );
    }
    let ids = |l: &[Entry]| -> std::collections::HashSet<(String, String)> {
        l.iter().map(|e| (e.0.clone(), e.1.clone())).collect()
    };
    let (was, is) = (ids(&before), ids(&after));
    let removed: std::collections::HashSet<_> = was.difference(&is).cloned().collect();
    assert_eq!(removed, planned_marker_removals(catalog), "removed entries");
    let markers: std::collections::HashSet<(&str, &str)> = after
        .iter()
        .filter(|e| e.2)
        .map(|e| (e.0.as_str(), e.1.as_str()))
        .collect();
    let (mut new_versions, mut new_markers) = (0i64, 0i64);
    for (k, v) in is.difference(&was) {
        match markers.contains(&(k.as_str(), v.as_str())) {
            true => new_markers += 1,
            false => new_versions += 1,
        }
    }
    let planned = |kind: &str| -> i64 {
        catalog_scalar(
            catalog,
            &format!("SELECT count(*) FROM actions WHERE kind = '{kind}'"),
        )
    };
    assert_eq!(
        new_versions,
        planned("copy_version"),
        "one new version per copy"
    );
    assert_eq!(
        new_markers,
        planned("add_delete_marker"),
        "one new marker per add_delete_marker"
    );
}

/// (key, version id) of every delete marker the catalog's plans remove.
pub fn planned_marker_removals(catalog: &Path) -> std::collections::HashSet<(String, String)> {
    let conn = rusqlite::Connection::open(catalog).expect("open catalog");
    let mut stmt = conn
        .prepare("SELECT key, version_id FROM actions WHERE kind = 'delete_marker'")
        .expect("query actions");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .map(Result::unwrap)
        .collect()
}

/// One scalar from the catalog.
pub fn catalog_scalar<T: rusqlite::types::FromSql>(catalog: &Path, sql: &str) -> T {
    let conn = rusqlite::Connection::open(catalog).expect("open catalog");
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Starts s3rewind without waiting; stdout and stderr are captured.
pub fn spawn_s3rewind(catalog: &Path, args: &[&str]) -> Child {
    s3rewind_command(catalog)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn s3rewind")
}

/// A count from the catalog while another process writes it: 0 while the
/// catalog does not exist yet or is busy.
pub fn catalog_count(catalog: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(catalog)
        .and_then(|c| c.query_row(sql, [], |r| r.get(0)))
        .unwrap_or(0)
}

/// Runs s3rewind with `args` and kills it with SIGKILL — no chance to clean
/// up — once `sql` (a count read from the catalog) reaches `at`. Fails if
/// the command ends on its own before.
#[track_caller]
pub fn kill_at(catalog: &Path, args: &[&str], sql: &str, at: i64) {
    let mut child = spawn_s3rewind(catalog, args);
    let mut ended = false;
    wait_until(
        &format!("`{sql}` to reach {at}"),
        Duration::from_secs(120),
        || {
            if let Ok(Some(_)) = child.try_wait() {
                ended = true;
                return true;
            }
            catalog_count(catalog, sql) >= at
        },
    );
    assert!(
        !ended,
        "s3rewind {args:?} ended before `{sql}` reached {at}: {}",
        stderr_of(&mut child)
    );
    child.kill().expect("kill -9");
    child.wait().expect("reap the child");
}

/// Reads a child's stderr to the end (for failure messages).
pub fn stderr_of(child: &mut Child) -> String {
    let mut out = String::new();
    if let Some(err) = child.stderr.take() {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// Polls until `condition` holds or the deadline passes; the condition is
/// re-read from its source each time, so this waits for a state, not a time.
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `path` with `suffix` added to its file name (`catalog.db-wal`).
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A file's length and a hash of its bytes, or None if it does not exist
/// (to prove it unchanged without printing it when it is not).
pub fn snapshot(path: &Path) -> Option<(usize, u64)> {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(path).ok()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some((bytes.len(), hasher.finish()))
}
