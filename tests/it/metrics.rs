//! The metrics endpoint end to end: the real daemon with `[metrics] listen`
//! on a loopback port, events of every fate through the spool, a private
//! `named` serving them; the scrape is read with a Prometheus text parser
//! and its counts must be what the test sent.

// Tests panic on the unexpected; that is their job.
#![allow(clippy::unwrap_used)]

use crate::support;

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use support::agent::{Daemon, Env, a_event, eventually, zone};
use zoneagent::spool::Spool;

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// One HTTP/1.1 GET; returns the status code and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of the sample `metric` whose label `key` is `value` (or the
/// only sample when `key` is empty).
fn value(scrape: &prometheus_parse::Scrape, metric: &str, key: &str, want: &str) -> Option<f64> {
    use prometheus_parse::Value as V;
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && (key.is_empty() || s.labels.get(key) == Some(want)))
        .map(|s| match &s.value {
            V::Counter(v) | V::Gauge(v) | V::Untyped(v) => *v,
            V::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
            V::Summary(_) => f64::NAN,
        })
}

fn submit(spool: &Spool, event: &Value) {
    spool.submit(&serde_json::to_vec(event).unwrap()).unwrap();
}

#[test]
fn the_scrape_counts_what_was_sent() {
    let port = free_port();
    let env = Env::new(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    let mut daemon = Daemon::start(&env);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let spool = Spool::open(&env.spool(), 1 << 20).unwrap();

    // Before any event: the endpoint answers, every series is there at 0.
    let (status, body) = get(addr, "/healthz");
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    let first = parse(&body);
    assert_eq!(
        value(&first, "zoneagent_events_total", "fate", "applied"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        value(
            &first,
            "zoneagent_build_info",
            "version",
            env!("CARGO_PKG_VERSION")
        ),
        Some(1.0),
        "{body}"
    );

    // Five applied (one of them holds its zone), two failed, one
    // duplicate, one replay.
    submit(
        &spool,
        &json!({"id": "e1", "seq": 1, "type": "zone.snapshot",
                "zone": zone("z1", "counted.test", &[("A", "www", "192.0.2.1")])}),
    );
    submit(
        &spool,
        &a_event("e2", Some(2), "z1", "r2", "two", "192.0.2.2"),
    );
    spool.submit(b"{\"id\": \"e3\", \"type\": ").unwrap();
    submit(
        &spool,
        &a_event("e4", Some(3), "z1", "r4", "bad", "999.1.1.1"),
    );
    submit(
        &spool,
        &json!({"id": "e5", "seq": 1, "type": "zone.snapshot",
                "zone": zone("z2", "held.test", &[("A", "www", "192.0.2.5")])}),
    );
    assert!(
        eventually(15, || env.named.query("two.counted.test", "A")
            == ["192.0.2.2"]
            && env.named.query("www.held.test", "A") == ["192.0.2.5"]),
        "{}",
        daemon.log_text()
    );
    // A CNAME beside the A record: well-formed, applied, the zone is held.
    submit(
        &spool,
        &json!({"id": "e6", "seq": 2, "type": "record.created", "zone_uuid": "z2",
                "record": {"uuid": "r6", "record_type": "CNAME", "name": "www",
                           "value": "elsewhere.test.", "ttl": 300}}),
    );
    submit(
        &spool,
        &a_event("e2", Some(4), "z1", "r7", "dup", "192.0.2.7"),
    );
    submit(
        &spool,
        &a_event("e8", Some(5), "z1", "r8", "five", "192.0.2.8"),
    );
    assert!(
        eventually(15, || env.named.query("five.counted.test", "A")
            == ["192.0.2.8"]),
        "{}",
        daemon.log_text()
    );
    // Older than what the zone has applied by now: a replay.
    submit(
        &spool,
        &a_event("e9", Some(3), "z1", "r9", "old", "192.0.2.9"),
    );

    let want = [
        ("applied", 5.0),
        ("failed", 2.0),
        ("duplicate", 1.0),
        ("replay", 1.0),
    ];
    let mut last = String::new();
    let settled = eventually(20, || {
        let (status, body) = get(addr, "/metrics");
        let s = parse(&body);
        last = body;
        status == 200
            && want
                .iter()
                .all(|(fate, n)| value(&s, "zoneagent_events_total", "fate", fate) == Some(*n))
            && value(&s, "zoneagent_zones", "state", "held") == Some(1.0)
            && value(&s, "zoneagent_zones", "state", "served") == Some(1.0)
            && value(&s, "zoneagent_zones", "state", "pending") == Some(0.0)
    });
    assert!(settled, "{last}\n{}", daemon.log_text());
    assert!(env.named.query("old.counted.test", "A").is_empty());

    let s = parse(&last);
    // Every phase of a deploy was timed, and so was the way from the spool
    // to named.
    for phase in ["render", "check", "install", "reload", "confirm"] {
        let count = value(&s, "zoneagent_deploy_duration_seconds", "phase", phase);
        assert!(
            count.is_some_and(|c| c >= 1.0),
            "{phase}: {count:?}\n{last}"
        );
    }
    let served = value(&s, "zoneagent_event_to_served_seconds", "", "");
    assert!(served.is_some_and(|c| c >= 2.0), "{served:?}\n{last}");
    let at = value(&s, "zoneagent_last_deploy_timestamp_seconds", "", "").unwrap();
    assert!(at > 1.7e9, "{last}");
    assert_eq!(
        value(&s, "zoneagent_rndc_failures_total", "", ""),
        Some(0.0),
        "{}",
        daemon.log_text()
    );
    assert_eq!(value(&s, "zoneagent_spool_depth", "", ""), Some(0.0));

    let (status, _) = get(addr, "/healthz");
    assert_eq!(status, 200);
    let (status, _) = get(addr, "/nothing");
    assert_eq!(status, 404);

    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    daemon.wait_for("STOPPING=1");
    assert_eq!(daemon.wait_exit(), Some(0));
}

#[test]
fn a_remote_listen_address_is_refused_unless_allowed() {
    let env = Env::new("[metrics]\nlisten = \"0.0.0.0:9853\"\n");
    let out = env.run(&["run", "--once"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("metrics.allow_remote"), "{stderr}");
}
