//! `s3sim-ceiling`: how fast an S3 endpoint serves ListObjectVersions pages
//! to a client that does nothing with them — the ceiling a real lister's
//! rate is read against. It signs each request (SigV4), follows the
//! markers with a substring search instead of an XML parser, counts the
//! entries and throws the page away.

use std::time::{Instant, SystemTime};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use clap::Parser;
use futures::stream::{self, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// List every version under P prefixes (p000/, p001/, …), C at a time,
/// and print versions per second.
#[derive(Debug, Parser)]
struct Args {
    #[arg(long)]
    endpoint: String,
    #[arg(long)]
    bucket: String,
    /// Number of prefixes p000/… to list; 0 lists the whole bucket as one.
    #[arg(long, default_value_t = 0)]
    prefixes: u32,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    #[arg(long, default_value = "s3sim")]
    access_key: String,
    #[arg(long, default_value = "s3sim-secret")]
    secret_key: String,
}

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

/// Query values go out percent-encoded (markers come back form-encoded).
fn query_value(decoded_form: &str) -> String {
    let mut out = String::new();
    for &b in decoded_form.replace('+', " ").as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'%' => out.push('%'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn list_prefix(http: &Http, args: &Args, prefix: String) -> u64 {
    let identity = aws_credential_types::Credentials::new(
        &args.access_key,
        &args.secret_key,
        None,
        None,
        "ceiling",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
    settings.uri_path_normalization_mode =
        aws_sigv4::http_request::UriPathNormalizationMode::Disabled;
    let mut markers: Option<(String, String)> = None;
    let mut entries = 0u64;
    loop {
        let mut query = format!(
            "encoding-type=url&max-keys=1000&prefix={}&versions=",
            query_value(&prefix)
        );
        if let Some((key, version)) = &markers {
            query = format!(
                "encoding-type=url&key-marker={}&max-keys=1000&prefix={}&version-id-marker={}&versions=",
                query_value(key),
                query_value(&prefix),
                query_value(version)
            );
        }
        let uri = format!("{}/{}?{}", args.endpoint, args.bucket, query);
        let mut request = http::Request::get(&uri)
            .body(Empty::<Bytes>::new())
            .expect("request");
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("s3")
            .time(SystemTime::now())
            .settings(settings.clone())
            .build()
            .expect("signing params")
            .into();
        let signable =
            SignableRequest::new("GET", &uri, std::iter::empty(), SignableBody::Bytes(&[]))
                .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let response = http.request(request).await.expect("response");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let text = std::str::from_utf8(&body).expect("utf-8");
        assert!(status.is_success(), "{status}: {text}");
        entries += text.matches("</VersionId>").count() as u64;
        if between(text, "<IsTruncated>", "</IsTruncated>") != Some("true") {
            return entries;
        }
        markers = Some((
            between(text, "<NextKeyMarker>", "</NextKeyMarker>")
                .expect("NextKeyMarker")
                .to_owned(),
            between(text, "<NextVersionIdMarker>", "</NextVersionIdMarker>")
                .unwrap_or("")
                .to_owned(),
        ));
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let prefixes: Vec<String> = match args.prefixes {
        0 => vec![String::new()],
        n => (0..n).map(s3sim::seed::prefix_name).collect(),
    };
    let started = Instant::now();
    let total: u64 = stream::iter(prefixes)
        .map(|p| list_prefix(&http, &args, p))
        .buffer_unordered(args.concurrency.max(1))
        .fold(0, |a, b| async move { a + b })
        .await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{total} entries in {secs:.2} s: {:.0} entries/s",
        total as f64 / secs
    );
}
