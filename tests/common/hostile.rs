//! A server that answers like S3 where it must and lies where a test wants
//! it to: a few dozen lines of HTTP/1.1 on a loopback port, each request
//! answered by the test's function of its path and query.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// What the server answers: (HTTP status, body).
pub type Answer = (u16, String);

pub struct Hostile {
    pub endpoint: String,
}

/// Starts a server whose every request `GET /bucket?query` is answered by
/// `answer(query)`; GetBucketVersioning is answered as S3 would (Enabled).
pub fn start(answer: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Hostile {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let answer = answer.clone();
            std::thread::spawn(move || serve(stream, &*answer));
        }
    });
    Hostile { endpoint }
}

fn serve(stream: TcpStream, answer: &dyn Fn(&str) -> Answer) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let target = request_line.split(' ').nth(1).unwrap_or("/");
        let query = target.split_once('?').map_or("", |(_, q)| q);
        let (status, body) = if query.split('&').any(|p| p == "versioning") {
            (
                200,
                "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
                    .to_owned(),
            )
        } else {
            answer(query)
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nx-amz-request-id: hostile\r\n\r\n",
            body.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(body.as_bytes()).is_err() {
            return;
        }
    }
}

/// The value of `name` in a query string, URL-decoded.
pub fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A ListVersionsResult page: `entries` are (key, version id), each a
/// 3-byte version listed newest first, URL-encoded as requested.
pub fn listing(entries: &[(&str, &str)], next: Option<(&str, &str)>) -> String {
    let mut body = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix></Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType>",
    );
    body.push_str(&format!("<IsTruncated>{}</IsTruncated>", next.is_some()));
    if let Some((k, v)) = next {
        body.push_str(&format!(
            "<NextKeyMarker>{k}</NextKeyMarker><NextVersionIdMarker>{v}</NextVersionIdMarker>"
        ));
    }
    for (i, (key, version)) in entries.iter().enumerate() {
        body.push_str(&version_xml(key, version, "3", i == 0));
    }
    body.push_str("</ListVersionsResult>");
    body
}

/// One `<Version>` element.
pub fn version_xml(key: &str, version: &str, size: &str, latest: bool) -> String {
    format!(
        "<Version><Key>{key}</Key><VersionId>{version}</VersionId><IsLatest>{latest}</IsLatest><LastModified>2024-05-01T00:00:00.000Z</LastModified><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Version>"
    )
}
