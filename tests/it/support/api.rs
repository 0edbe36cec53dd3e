//! A stand-in for the platform's REST API on 127.0.0.1: the two endpoints
//! `pull` reads (`GET /api/v1/dns-zones/` and `GET
//! /api/v1/dns-zones/{uuid}/`), the Bearer token, the error shape, and the
//! misbehaviours the tests need (pagination, slow answers, 5xx, a detail
//! that 404s, malformed bodies). Plain `std::net`, one thread per
//! connection; stopped and joined on drop.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the server answers; change it between pulls through
/// [`ApiServer::with`].
#[derive(Default)]
pub struct Behaviour {
    /// Zone details in list order.
    pub zones: Vec<Value>,
    /// Listed but their detail answers 404 (deleted meanwhile).
    pub gone: Vec<String>,
    /// The token that is accepted.
    pub token: String,
    /// Paginate the list this many per page (`count`/`next`/`results`).
    pub page_size: Option<usize>,
    /// Answer 403 with this detail to every request.
    pub forbidden: Option<String>,
    /// Paths whose first request waits this long before answering.
    pub slow_once: HashMap<String, Duration>,
    /// Paths answered 503 this many times first.
    pub fail_first: HashMap<String, usize>,
    /// Paths answered with this body (status 200) instead.
    pub body_override: HashMap<String, String>,
    /// Runs when a path is requested, before the answer (once).
    pub on_request: HashMap<String, Box<dyn FnOnce() + Send>>,
    /// Every request: (path, Authorization header).
    pub seen: Vec<(String, Option<String>)>,
}

pub struct ApiServer {
    pub url: String,
    state: Arc<Mutex<Behaviour>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ApiServer {
    pub fn start(token: &str) -> ApiServer {
        ApiServer::start_with(token, None)
    }

    /// The same over HTTPS (rustls) with a certificate for 127.0.0.1
    /// issued by a fresh CA; returns the CA's PEM too.
    pub fn start_tls(token: &str) -> (ApiServer, String) {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(
            ca_params,
            rcgen::KeyPair::generate().expect("key"),
        )
        .expect("ca");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .expect("params")
            .signed_by(&key, &*ca)
            .expect("cert");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("server config");
        let mut server = ApiServer::start_with(token, Some(Arc::new(config)));
        server.url = server.url.replacen("http://", "https://", 1);
        (server, ca.pem())
    }

    fn start_with(token: &str, tls: Option<Arc<rustls::ServerConfig>>) -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(Behaviour {
            token: token.to_owned(),
            ..Behaviour::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&state), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let s = Arc::clone(&s);
                    let tls = tls.clone();
                    std::thread::spawn(move || {
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                        match tls {
                            None => handle(conn, &s),
                            Some(config) => {
                                if let Ok(session) = rustls::ServerConnection::new(config) {
                                    handle(rustls::StreamOwned::new(session, conn), &s);
                                }
                            }
                        }
                    });
                }
            }
        });
        ApiServer {
            url: format!("http://{addr}"),
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Behaviour) -> R) -> R {
        f(&mut self.state.lock().expect("lock"))
    }

    /// Requests seen so far for paths starting with `prefix`.
    pub fn hits(&self, prefix: &str) -> usize {
        self.with(|b| b.seen.iter().filter(|(p, _)| p.starts_with(prefix)).count())
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let addr = self.url.split("://").nth(1).unwrap_or_default().to_owned();
        let _ = TcpStream::connect(addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn error_body(detail: &str, code: &str) -> String {
    json!({"detail": detail, "error_code": code, "field": null}).to_string()
}

fn handle(mut conn: impl Read + Write, state: &Mutex<Behaviour>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.lines();
    let target = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let auth = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_owned());
    let (status, body) = answer(&target, auth.as_deref(), state);
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body.as_bytes());
    let _ = conn.flush();
}

fn answer(target: &str, auth: Option<&str>, state: &Mutex<Behaviour>) -> (u16, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (slow, hook) = {
        let mut b = state.lock().expect("lock");
        b.seen.push((target.to_owned(), auth.map(str::to_owned)));
        (b.slow_once.remove(path), b.on_request.remove(path))
    };
    if let Some(hook) = hook {
        hook();
    }
    if let Some(d) = slow {
        std::thread::sleep(d);
    }
    let mut b = state.lock().expect("lock");
    if auth != Some(format!("Bearer {}", b.token).as_str()) {
        return (
            401,
            error_body("Invalid API token", "authentication_failed"),
        );
    }
    if let Some(d) = &b.forbidden {
        return (403, error_body(d, "permission_denied"));
    }
    if let Some(n) = b.fail_first.get_mut(path)
        && *n > 0
    {
        *n -= 1;
        return (503, error_body("try later", "unavailable"));
    }
    if let Some(body) = b.body_override.get(path) {
        return (200, body.clone());
    }
    if path == "/api/v1/dns-zones/" {
        let listed: Vec<Value> =
            b.zones
                .iter()
                .map(|z| {
                    json!({"uuid": z["uuid"], "domain": z["domain"], "created_at": z["created_at"],
                       "record_count": z["records"].as_array().map_or(0, Vec::len)})
                })
                .chain(b.gone.iter().map(
                    |u| json!({"uuid": u, "domain": format!("{u}.example"), "record_count": 0}),
                ))
                .collect();
        return match b.page_size {
            None => (200, Value::Array(listed).to_string()),
            Some(size) => {
                let page: usize = query
                    .strip_prefix("page=")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(1);
                let start = (page - 1) * size;
                let results: Vec<Value> = listed.iter().skip(start).take(size).cloned().collect();
                let next = (start + size < listed.len()).then(|| format!("?page={}", page + 1));
                (
                    200,
                    json!({"count": listed.len(), "next": next, "previous": null, "results": results})
                        .to_string(),
                )
            }
        };
    }
    if let Some(uuid) = path
        .strip_prefix("/api/v1/dns-zones/")
        .and_then(|r| r.strip_suffix('/'))
        && let Some(z) = b.zones.iter().find(|z| z["uuid"] == uuid)
    {
        return (200, z.to_string());
    }
    (404, error_body("Zone not found", "not_found"))
}
