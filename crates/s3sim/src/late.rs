//! Writes whose answer is not the plain one, as S3 gives them:
//!
//! - made late (`--fault-late-commit P`, `--late-commit-ms MS`): the
//!   client gets no answer (the connection is dropped) and the write is
//!   made MS later, its conditions judged then. S3 says a client that
//!   disconnects before the copy's response has ended may or may not see
//!   it made ("Amazon S3 might cancel the copy"; API reference,
//!   CopyObject): whoever gave up does not know what happened;
//! - made slowly (`--copy-delay-ms MS`): CopyObject and
//!   CompleteMultipartUpload answer `200 OK` at once, send whitespace
//!   while they work, and only then the result, or an `<Error>` if the
//!   write failed meanwhile (a condition that no longer holds). S3 does
//!   this for long copies and completions: "After Amazon S3 begins
//!   processing the request, it sends an HTTP response header that
//!   specifies a 200 OK response. While processing is in progress, Amazon
//!   S3 periodically sends white space characters to keep the connection
//!   from timing out" (API reference, CompleteMultipartUpload). The
//!   document starts with its XML declaration, as s3s's own keep-alive
//!   body does, so that it is still one well-formed document;
//! - not made (`--fault-copy-200-error P`): CopyObject, UploadPartCopy and
//!   CompleteMultipartUpload answered `200 OK` with an `<Error>` body
//!   (InternalError), as S3 documents for errors during the copy ("a 200
//!   OK response can contain either a success or an error"; API
//!   reference, CopyObject, UploadPartCopy, CompleteMultipartUpload).
//!
//! A handler that is told (by [`Sim::timing`]) to defer its write returns
//! its response with the write attached ([`Deferred`], a response
//! extension); the server layer ([`finish`]) then answers and makes it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use s3s::{Body, S3Error, S3Response};
use tokio::sync::oneshot;

use crate::store::VersionId;
use crate::xml::{error_document, request_id};
use crate::{Op, Sim};

/// How S3 sends whitespace while a slow write works.
const WHITESPACE_EVERY: Duration = Duration::from_millis(200);

/// When a deferred write is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timing {
    /// No answer; made this much later.
    Late(Duration),
    /// Answered 200 at once, made this much later, then the result.
    Slow(Duration),
}

type Commit = Box<dyn FnOnce() -> Result<(), S3Error> + Send>;

/// A write a handler prepared and left to the server layer.
#[derive(Clone)]
pub(crate) struct Deferred {
    timing: Timing,
    commit: Arc<Mutex<Option<Commit>>>,
}

impl Sim {
    /// Whether the write a request makes is made now (`None`), late or
    /// slowly. `slow`: a CopyObject or CompleteMultipartUpload, which
    /// `--copy-delay-ms` slows.
    pub(crate) fn timing(&self, slow: bool) -> Option<Timing> {
        let faults = &self.config.faults;
        if self.roll(faults.late_commit) {
            self.count(Op::InjectedLateCommit);
            return Some(Timing::Late(faults.late_commit_delay));
        }
        (slow && !self.config.copy_delay.is_zero()).then_some(Timing::Slow(self.config.copy_delay))
    }

    /// A write left to the server layer, to be made as `timing` says.
    /// `commit` makes it, given the version id to use on a versioned
    /// bucket: one reserved now, since a slow write's answer tells it
    /// first. `to_be`: the id the write will get, from the reserved one
    /// (what the answer says).
    pub(crate) fn defer<C, P>(
        &self,
        timing: Timing,
        commit: C,
        to_be: P,
    ) -> (Option<VersionId>, Deferred)
    where
        C: FnOnce(VersionId) -> Result<(), S3Error> + Send + 'static,
        P: FnOnce(VersionId) -> Option<VersionId>,
    {
        let reserved = self.store.new_version_id();
        let deferred = Deferred {
            timing,
            commit: Arc::new(Mutex::new(Some(Box::new(move || commit(reserved))))),
        };
        (to_be(reserved), deferred)
    }
}

/// `output` as a response, carrying its deferred write if it has one.
pub(crate) fn respond<T>(output: T, deferred: Option<Deferred>) -> S3Response<T> {
    let mut response = S3Response::new(output);
    if let Some(d) = deferred {
        response.extensions.insert(d);
    }
    response
}

/// The connection was dropped on purpose: hyper closes it without an
/// answer when the service fails.
#[derive(Debug, thiserror::Error)]
#[error("s3sim: connection dropped without an answer (--fault-late-commit)")]
pub(crate) struct Dropped;

/// Answers a response whose write was deferred, and makes the write.
pub(crate) async fn finish(
    response: Response<Body>,
    deferred: Deferred,
) -> Result<Response<Body>, Dropped> {
    let Some(commit) = deferred.commit.lock().expect("not poisoned").take() else {
        return Ok(response);
    };
    match deferred.timing {
        Timing::Late(delay) => {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = commit();
            });
            Err(Dropped)
        }
        Timing::Slow(delay) => {
            let (mut parts, body) = response.into_parts();
            let result = match body.collect().await {
                Ok(b) => without_declaration(b.to_bytes()),
                Err(_) => Bytes::new(),
            };
            let (tx, rx) = oneshot::channel();
            // Made whether or not the client waits for the answer.
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let tail = match commit() {
                    Ok(()) => result,
                    Err(e) => error_element(&e),
                };
                let _ = tx.send(tail);
            });
            parts.headers.remove(http::header::CONTENT_LENGTH);
            parts.status = StatusCode::OK;
            Ok(Response::from_parts(
                parts,
                Body::http_body(Trickle {
                    declared: false,
                    result: rx,
                    tick: Box::pin(tokio::time::sleep(WHITESPACE_EVERY)),
                    done: false,
                }),
            ))
        }
    }
}

const DECLARATION: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// An XML document's root element and what follows, without the
/// declaration (which was sent first).
fn without_declaration(doc: Bytes) -> Bytes {
    match doc.windows(2).position(|w| w == b"?>") {
        Some(end) if doc.starts_with(b"<?xml") => {
            let rest = doc.slice(end + 2..);
            let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
            rest.slice(skip..)
        }
        _ => doc,
    }
}

/// The `<Error>` element S3 sends inside a 200 when the write failed.
fn error_element(e: &S3Error) -> Bytes {
    let doc = error_document(
        e.code().as_str(),
        e.message().unwrap_or(""),
        &request_id(rand::random()),
    );
    without_declaration(Bytes::from(doc))
}

/// Whether a request is a CopyObject, UploadPartCopy or
/// CompleteMultipartUpload: the requests S3 may answer 200 with an error.
pub(crate) fn copies_or_completes<B>(req: &Request<B>) -> bool {
    let query = req.uri().query().unwrap_or("");
    match *req.method() {
        Method::PUT => req.headers().contains_key("x-amz-copy-source"),
        Method::POST => query
            .split('&')
            .any(|p| p.split('=').next() == Some("uploadId")),
        _ => false,
    }
}

/// The body of a slow write's answer: the declaration, whitespace while
/// the write is made, then its result.
struct Trickle {
    declared: bool,
    result: oneshot::Receiver<Bytes>,
    tick: Pin<Box<tokio::time::Sleep>>,
    done: bool,
}

impl http_body::Body for Trickle {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if !self.declared {
            self.declared = true;
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(DECLARATION)))));
        }
        match Pin::new(&mut self.result).poll(cx) {
            Poll::Ready(Ok(tail)) => {
                self.done = true;
                return Poll::Ready(Some(Ok(Frame::data(tail))));
            }
            Poll::Ready(Err(_)) => {
                self.done = true;
                return Poll::Ready(Some(Err(std::io::Error::other(
                    "s3sim: the slow write was lost",
                ))));
            }
            Poll::Pending => {}
        }
        match self.tick.as_mut().poll(cx) {
            Poll::Ready(()) => {
                let next = tokio::time::Instant::now() + WHITESPACE_EVERY;
                self.tick.as_mut().reset(next);
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b" ")))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_are_sent_once() {
        let doc = Bytes::from_static(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<A>1</A>");
        assert_eq!(&without_declaration(doc)[..], b"<A>1</A>");
        assert_eq!(
            &without_declaration(Bytes::from_static(b"<A/>"))[..],
            b"<A/>"
        );
    }

    #[test]
    fn copies_and_completions_are_recognised() {
        let req = |method: Method, uri: &str, copy: bool| {
            let mut b = Request::builder().method(method).uri(uri);
            if copy {
                b = b.header("x-amz-copy-source", "b/k");
            }
            b.body(()).unwrap()
        };
        assert!(copies_or_completes(&req(Method::PUT, "/b/k", true)));
        assert!(copies_or_completes(&req(
            Method::PUT,
            "/b/k?partNumber=1&uploadId=u",
            true
        )));
        assert!(copies_or_completes(&req(
            Method::POST,
            "/b/k?uploadId=u",
            false
        )));
        assert!(!copies_or_completes(&req(Method::PUT, "/b/k", false)));
        assert!(!copies_or_completes(&req(
            Method::POST,
            "/b/k?uploads",
            false
        )));
        assert!(!copies_or_completes(&req(Method::POST, "/b?delete", false)));
    }
}
