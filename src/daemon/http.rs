//! The metrics endpoint (`[metrics] listen`): `GET /metrics` answers the
//! registry of [`crate::metrics`] in the OpenMetrics text format, `GET
//! /healthz` answers 200 while the dispatch loop is alive and 503 when it
//! has been stuck in one step for [`STALE`].
//!
//! HTTP/1 with hyper on the daemon's tokio runtime; the spool depth is
//! counted at each scrape on a blocking thread. It only reads: nothing an
//! HTTP client sends can change the agent.

use crate::spool::Spool;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the loop may stay inside one step, without the heartbeat of
/// [`crate::progress`] moving, before `/healthz` says it is not alive.
pub const STALE: Duration = Duration::from_secs(30);

/// Whether the dispatch loop is alive: it waits for work (`idle`), or its
/// heartbeat moved within [`STALE`].
#[derive(Debug, Clone)]
pub struct Health {
    idle: Arc<AtomicBool>,
    alive_at: Arc<Mutex<Instant>>,
}

impl Health {
    /// `idle` is set by the loop while it waits for work.
    pub fn new(idle: Arc<AtomicBool>) -> Health {
        Health {
            idle,
            alive_at: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Samples the heartbeat once a second, on the runtime.
    fn spawn_sampler(&self) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut last = crate::progress::count();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let now = crate::progress::count();
                if now != last || me.idle.load(Ordering::Relaxed) {
                    *me.lock() = Instant::now();
                }
                last = now;
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Instant> {
        self.alive_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn alive(&self) -> bool {
        self.idle.load(Ordering::Relaxed) || self.lock().elapsed() < STALE
    }
}

/// Binds `addr` (a start-up error when it cannot) and serves it on the
/// current runtime. Returns the bound address.
pub fn start(addr: SocketAddr, spool: Spool, health: Health) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let bound = listener.local_addr()?;
    health.spawn_sampler();
    tokio::spawn(serve(listener, spool, health));
    Ok(bound)
}

async fn serve(listener: tokio::net::TcpListener, spool: Spool, health: Health) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let spool = spool.clone();
        let health = health.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let spool = spool.clone();
                let health = health.clone();
                async move { Ok::<_, Infallible>(answer(&req, spool, &health).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

async fn answer(req: &Request<Incoming>, spool: Spool, health: &Health) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "GET only\n".into());
    }
    match req.uri().path() {
        "/metrics" => {
            let depth = tokio::task::spawn_blocking(move || spool_files(&spool))
                .await
                .unwrap_or(0);
            crate::metrics::spool_depth(depth);
            text(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                crate::metrics::encode(),
            )
        }
        "/healthz" if health.alive() => text(StatusCode::OK, PLAIN, "ok\n".into()),
        "/healthz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            PLAIN,
            format!(
                "the dispatch loop has made no progress for {} s\n",
                STALE.as_secs()
            ),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            "not found: /metrics or /healthz\n".into(),
        ),
    }
}

/// Files waiting in `spool/new` (names starting with a dot are not
/// events).
fn spool_files(spool: &Spool) -> usize {
    std::fs::read_dir(spool.new_dir()).map_or(0, |d| {
        d.flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alive_while_idle_or_while_the_heartbeat_is_recent() {
        let idle = Arc::new(AtomicBool::new(false));
        let health = Health::new(Arc::clone(&idle));
        assert!(health.alive());
        // Stuck in one step for longer than STALE.
        if let Some(past) = Instant::now().checked_sub(STALE + Duration::from_secs(1)) {
            *health.lock() = past;
            assert!(!health.alive());
            // Waiting for work is alive, however long.
            idle.store(true, Ordering::Relaxed);
            assert!(health.alive());
        }
    }
}
