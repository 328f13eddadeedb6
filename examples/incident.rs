//! The whole s3rewind story on an in-memory S3, in one process:
//!
//! ```sh
//! cargo run --release --example incident
//! ```
//!
//! An S3 server (s3sim) starts on a loopback port; a versioned bucket of
//! hotel, city and logo images gets three good generations, a second apart,
//! then a bad job overwrites, deletes and re-uploads what it should not
//! have, and leaves hundreds of scratch files behind. Then the
//! commands an operator types, exactly as typed: scan, status, plan restore
//! to the last good second, plan show, a review query, apply — and a check,
//! key by key, that the bucket is back.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};

const BUCKET: &str = "demo-photos";
const KEYS: usize = 20;
/// Scratch files the bad job leaves behind.
const JUNK: usize = 600;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let server = runtime.block_on(async {
        use clap::Parser;
        s3sim::Options::parse_from([
            "s3sim",
            "--listen",
            "127.0.0.1:0",
            "--access-key",
            "demo",
            "--secret-key",
            "demo-secret",
        ])
        .serve()
        .await
        .expect("start s3sim")
    });
    let endpoint = format!("http://{}", server.addr);
    let work = std::env::temp_dir().join("s3rewind-incident");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("a work directory");
    let catalog = work.join("catalog.db");
    // What `s3rewind` reads from the environment, as an operator would set it.
    for (name, value) in [
        ("AWS_ACCESS_KEY_ID", "demo"),
        ("AWS_SECRET_ACCESS_KEY", "demo-secret"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("S3REWIND_CATALOG", catalog.to_str().expect("a UTF-8 path")),
    ] {
        std::env::set_var(name, value);
    }

    step(&format!("an S3 server at {endpoint}; seeding s3://{BUCKET}: three generations of images, then a bad job"));
    let s3 = client(&endpoint);
    let (t, at_t) = runtime.block_on(seed(&s3));
    println!("the bucket was right at T = {t}");

    let url = format!("s3://{BUCKET}");
    let review = "SELECT action, count(*) AS actions FROM plan_review WHERE plan = 'incident' AND key LIKE 'hotels/%' GROUP BY action";
    let report = work.join("incident.html");
    let report = report.to_str().expect("a UTF-8 path");
    for command in [
        vec!["check", &url],
        vec!["scan", &url],
        vec!["status"],
        vec!["timeline", "--by", "second"],
        vec!["plan", "restore", "--to", &t, "--name", "incident"],
        vec!["plan", "show", "incident"],
        vec!["sql", review],
        vec!["report", "incident", "--out", report],
        vec!["check", "--plan", "incident"],
        vec!["apply", "incident", "--yes"],
    ] {
        run(&command);
    }

    step("is the bucket back to T?");
    let now = runtime.block_on(current_state(&s3));
    let wrong: Vec<_> = at_t
        .iter()
        .filter(|(key, body)| now.get(*key) != Some(*body))
        .map(|(key, _)| key.clone())
        .collect();
    if !wrong.is_empty() {
        eprintln!(
            "NOT restored: {} keys, the first {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(10)]
        );
        std::process::exit(1);
    }
    println!(
        "the bucket is back: all {} keys hold what they held at T ({} live, {} deleted)",
        at_t.len(),
        at_t.values().filter(|b| b.is_some()).count(),
        at_t.values().filter(|b| b.is_none()).count()
    );
    run(&["status"]);
    println!(
        "\ncatalog: {} (query it with sqlite3; see docs/review.md)",
        catalog.display()
    );
    runtime.block_on(server.stop());
}

fn step(what: &str) {
    println!("\n\x1b[1m== {what}\x1b[0m");
}

/// Runs one s3rewind command line, as typed; stops the story if it fails.
fn run(args: &[&str]) {
    step(&format!("s3rewind {}", args.join(" ")));
    let code = s3rewind::execute(std::iter::once("s3rewind").chain(args.iter().copied()));
    if code != 0 {
        eprintln!("s3rewind {} exited with {code}", args.join(" "));
        std::process::exit(i32::from(code));
    }
}

fn client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "demo",
            "demo-secret",
            None,
            None,
            "example",
        ))
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

type State = BTreeMap<String, Option<String>>;

/// The incident; returns T (the last second the bucket was right) and
/// every key's content at T (`None`: absent).
async fn seed(s3: &aws_sdk_s3::Client) -> (String, State) {
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("create bucket");
    s3.put_bucket_versioning()
        .bucket(BUCKET)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("enable versioning");
    let mut state = State::new();
    let put = |key: String, body: String| async move {
        s3.put_object()
            .bucket(BUCKET)
            .key(&key)
            .body(ByteStream::from(body.clone().into_bytes()))
            .send()
            .await
            .expect("put");
        (key, body)
    };
    let delete = |key: String| async move {
        s3.delete_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await
            .expect("delete");
    };
    for generation in 0..3 {
        // A generation a second: the bucket's usual pace, for `timeline`.
        next_second(unix_now().as_secs()).await;
        for i in 0..KEYS {
            for (key, body) in [
                put(
                    format!("hotels/{i:04}.jpg"),
                    format!("hotel {i} v{generation}"),
                )
                .await,
                put(
                    format!("cities/{i:04}.jpg"),
                    format!("city {i} v{generation}"),
                )
                .await,
            ] {
                state.insert(key, Some(body));
            }
        }
        for i in 0..KEYS / 4 {
            let (key, body) = put(
                format!("logos/{i:04}.png"),
                format!("logo {i} v{generation}"),
            )
            .await;
            state.insert(key, Some(body));
        }
    }
    // LastModified has one-second resolution: T is a whole second, and the
    // mistake starts in the next one.
    let t = unix_now().as_secs();
    let at_t = state.clone();
    next_second(t).await;
    for i in (0..KEYS).step_by(2) {
        put(
            format!("hotels/{i:04}.jpg"),
            "OVERWRITTEN BY MISTAKE".into(),
        )
        .await;
    }
    for i in (0..KEYS).step_by(3) {
        delete(format!("cities/{i:04}.jpg")).await;
    }
    for i in 0..KEYS / 4 {
        delete(format!("logos/{i:04}.png")).await;
        put(format!("logos/{i:04}.png"), "RE-UPLOADED WRONG LOGO".into()).await;
    }
    let mut at_t = at_t;
    for i in 0..KEYS / 2 {
        let (key, _) = put(format!("hotels/new-{i:04}.jpg"), "SHOULD NOT EXIST".into()).await;
        at_t.insert(key, None);
    }
    // And it dumps its scratch files into the bucket: a burst of writes.
    for i in 0..JUNK {
        let (key, _) = put(format!("tmp/export-{i:04}.part"), "scratch".into()).await;
        at_t.insert(key, None);
    }
    (model::time::format_time(t as i64), at_t)
}

/// Every key's current content (`None`: deleted), as GET answers.
async fn current_state(s3: &aws_sdk_s3::Client) -> State {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_object_versions()
            .bucket(BUCKET)
            .set_key_marker(token.take())
            .send()
            .await
            .expect("list");
        keys.extend(
            page.versions()
                .iter()
                .filter_map(|v| v.key().map(str::to_owned)),
        );
        keys.extend(
            page.delete_markers()
                .iter()
                .filter_map(|m| m.key().map(str::to_owned)),
        );
        if !page.is_truncated().unwrap_or(false) {
            break;
        }
        token = page.next_key_marker().map(str::to_owned);
    }
    keys.sort();
    keys.dedup();
    let mut state = State::new();
    for key in keys {
        let body = match s3.get_object().bucket(BUCKET).key(&key).send().await {
            Ok(out) => Some(
                String::from_utf8_lossy(&out.body.collect().await.expect("body").into_bytes())
                    .into_owned(),
            ),
            Err(_) => None,
        };
        state.insert(key, body);
    }
    state
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
}

async fn next_second(t: u64) {
    while unix_now().as_secs() <= t {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
