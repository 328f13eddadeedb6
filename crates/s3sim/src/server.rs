//! The HTTP side: connections, latency, injected faults, and a stats page
//! (`GET /_s3sim/stats`) next to the S3 API.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::Body;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::auth::ClientAddr;
use crate::late::{copies_or_completes, finish, Deferred, Dropped};
use crate::route::ListVersionsRoute;
use crate::xml::{error_document, request_id};
use crate::{Op, Sim};

/// A running server; dropping it does not stop it, [`Server::stop`] does.
pub struct Server {
    pub addr: SocketAddr,
    pub sim: Sim,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }

    /// Waits until the accept loop ends (it does not, unless stopped).
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) {
        shutdown.await;
        self.stop().await;
    }
}

/// Serves `sim` on `listener` until stopped.
pub fn serve(sim: Sim, listener: TcpListener) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let service = {
        let mut b = S3ServiceBuilder::new(sim.clone());
        b.set_auth(sim.clone());
        b.set_access(sim.clone());
        b.set_route(ListVersionsRoute(sim.clone()));
        b.build()
    };
    let (stop, mut stopped) = oneshot::channel();
    let state = sim.clone();
    let task = tokio::spawn(async move {
        let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        loop {
            let (stream, client) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(c) => c,
                    Err(_) => continue,
                },
                _ = &mut stopped => break,
            };
            let _ = stream.set_nodelay(true);
            let sim = state.clone();
            let service = service.clone();
            let http = http.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                    // Who wrote what keeps the client's address.
                    req.extensions_mut().insert(ClientAddr(client.ip()));
                    handle(sim.clone(), service.clone(), req)
                });
                let _ = http.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    Ok(Server {
        addr,
        sim,
        stop,
        task,
    })
}

type Reply = Response<Body>;

async fn handle(sim: Sim, service: S3Service, req: Request<Incoming>) -> Result<Reply, Dropped> {
    sim.count(Op::Requests);
    if req.uri().path() == "/_s3sim/stats" {
        return Ok(text(StatusCode::OK, "text/plain", sim.counters.report()));
    }
    let config = &sim.config;
    let delay = config.latency
        + if config.jitter.is_zero() {
            Duration::ZERO
        } else {
            config.jitter.mul_f64(rand::random::<f64>())
        };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let faults = &config.faults;
    if sim.roll(faults.slow_down) {
        sim.count(Op::InjectedSlowDown);
        return Ok(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
            "Please reduce your request rate.",
        ));
    }
    if sim.roll(faults.internal_error) {
        sim.count(Op::InjectedInternalError);
        return Ok(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        ));
    }
    if copies_or_completes(&req) && sim.roll(faults.copy_200_error) {
        sim.count(Op::InjectedCopy200Error);
        return Ok(error(
            StatusCode::OK,
            "InternalError",
            "We encountered an internal error. Please try again.",
        ));
    }
    let mut response = match hyper::service::Service::call(&service, req).await {
        Ok(r) => r,
        Err(e) => {
            return Ok(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                &format!("{e:?}"),
            ))
        }
    };
    if let Some(deferred) = response.extensions_mut().remove::<Deferred>() {
        return finish(response, deferred).await;
    }
    let reset = sim.roll(faults.reset);
    let slow = !reset && sim.roll(faults.slow_body);
    if !(reset || slow) {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                &e.to_string(),
            ))
        }
    };
    let body = if reset {
        sim.count(Op::InjectedReset);
        Faulty::reset(bytes)
    } else {
        sim.count(Op::InjectedSlowBody);
        Faulty::slow(bytes, faults.slow_body_delay)
    };
    Ok(Response::from_parts(parts, Body::http_body(body)))
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Reply {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r
}

fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    let id = request_id(rand::random());
    let mut r = text(
        status,
        "application/xml",
        error_document(code, message, &id),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        r.headers_mut().insert("x-amz-request-id", v);
    }
    r
}

/// A response body that misbehaves: stops halfway with an error (the
/// connection is reset), or trickles out in pieces.
struct Faulty {
    chunks: Vec<Bytes>,
    delay: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    fail_at_end: bool,
}

impl Faulty {
    fn reset(bytes: Bytes) -> Faulty {
        let half = bytes.len() / 2;
        Faulty {
            chunks: vec![bytes.slice(..half)],
            delay: Duration::ZERO,
            sleep: None,
            fail_at_end: true,
        }
    }

    fn slow(bytes: Bytes, delay: Duration) -> Faulty {
        let piece = bytes.len().div_ceil(4).max(1);
        let mut chunks: Vec<Bytes> = (0..bytes.len())
            .step_by(piece)
            .map(|i| bytes.slice(i..(i + piece).min(bytes.len())))
            .collect();
        chunks.reverse();
        Faulty {
            chunks,
            delay,
            sleep: None,
            fail_at_end: false,
        }
    }
}

impl http_body::Body for Faulty {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if !self.delay.is_zero() {
            let delay = self.delay;
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        match self.chunks.pop() {
            Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            None if self.fail_at_end => {
                self.fail_at_end = false;
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "s3sim: injected connection reset",
                ))))
            }
            None => Poll::Ready(None),
        }
    }
}
