//! `zoneagent pull` against a stand-in for the platform's API on
//! 127.0.0.1 (`tests/it/support/api.rs`) and a private `named`: an empty
//! agent is filled with every zone and a second pull writes nothing; the
//! list paginated or plain; slow answers, 5xx, a detail that 404s; 401,
//! 403, malformed bodies; mass removal refused; events that arrive during
//! a pull apply after it.

#![allow(clippy::unwrap_used)]

use crate::support;
use crate::support::api;

use api::ApiServer;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::fs;
use std::time::{Duration, SystemTime};
use support::agent::{Env, show, zone};

const TOKEN: &str = "vps_test_token_0123456789";

/// An agent whose `[api]` points at `server`, with a token file.
fn env_for(server: &ApiServer) -> Env {
    let env = Env::new("");
    let token = env.root.join("token");
    fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let mut text = fs::read_to_string(&env.config).unwrap();
    writeln!(
        text,
        "[api]\nurl = \"{}\"\ntoken_file = {}\ntimeout_seconds = 1\nretries = 2\nconcurrency = 3",
        server.url,
        serde_json::to_string(&token.to_string_lossy()).unwrap()
    )
    .unwrap();
    fs::write(&env.config, text).unwrap();
    env
}

fn zones(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            zone(
                &format!("zone-{i}"),
                &format!("z{i}.example"),
                &[
                    ("A", "@", &format!("192.0.2.{}", i + 1)),
                    ("TXT", "www", "hello"),
                ],
            )
        })
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The JSON error objects a `--json` run printed.
fn errors(out: &std::process::Output) -> Vec<Value> {
    stderr(out)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn mtimes(env: &Env, n: usize) -> Vec<SystemTime> {
    (0..n)
        .map(|i| {
            fs::metadata(env.zone_file(&format!("z{i}.example")))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect()
}

#[test]
fn pull_fills_an_empty_agent_then_is_a_no_op() {
    let server = ApiServer::start(TOKEN);
    server.with(|b| {
        b.zones = zones(5);
        b.gone = vec!["zone-deleted".to_owned()];
        b.page_size = Some(2);
        // Slow once (over the 1 s timeout), then answered: retried.
        b.slow_once.insert(
            "/api/v1/dns-zones/zone-3/".to_owned(),
            Duration::from_millis(2500),
        );
        b.fail_first
            .insert("/api/v1/dns-zones/zone-1/".to_owned(), 2);
    });
    let env = env_for(&server);
    let out = env.run(&["pull", "--json"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = stderr(&out);
    assert!(text.contains("pulled 5 zone(s), 1 skipped"), "{text}");
    assert!(text.contains("wrote 5 zone(s), deleted 0"), "{text}");
    // The 404 detail is reported, in the error shape, not fatal.
    let skipped = errors(&out);
    assert_eq!(skipped.len(), 1, "{text}");
    assert_eq!(skipped[0]["error_code"], "not_found");
    assert!(
        skipped[0]["detail"]
            .as_str()
            .unwrap()
            .contains("zone-deleted")
    );
    // Every page of the list was read; the slow and the failing detail
    // were asked again.
    assert_eq!(
        server.hits("/api/v1/dns-zones/?page="),
        2,
        "{:?}",
        server.with(|b| b.seen.clone())
    );
    assert_eq!(server.hits("/api/v1/dns-zones/zone-3/"), 2);
    assert_eq!(server.hits("/api/v1/dns-zones/zone-1/"), 3);
    // The token went with every request and never into the output.
    assert!(server.with(|b| {
        b.seen
            .iter()
            .all(|(_, a)| a.as_deref() == Some(&format!("Bearer {TOKEN}")))
    }));
    assert!(!text.contains(TOKEN) && !String::from_utf8_lossy(&out.stdout).contains(TOKEN));
    for i in 0..5 {
        let d = format!("z{i}.example");
        let serial = env.state_serial(&d).unwrap();
        assert!(env.served(&d, serial), "{}", env.named.log_tail(20));
        assert_eq!(env.named.query(&d, "A"), [format!("192.0.2.{}", i + 1)]);
    }
    let before = mtimes(&env, 5);

    // The same zones as a plain array (the spec's example): nothing to do.
    server.with(|b| b.page_size = None);
    let out = env.run(&["pull"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stderr(&out).contains("wrote 0 zone(s), deleted 0"),
        "{}",
        show(&out)
    );
    assert_eq!(mtimes(&env, 5), before);
    assert_eq!(fs::read_dir(env.spool().join("new")).unwrap().count(), 0);

    // The dry run of a change says what would change and changes nothing.
    server.with(|b| {
        b.zones[0]["records"][0]["value"] = json!("198.51.100.1");
        b.zones.pop();
    });
    let out = env.run(&["pull", "--dry-run"]);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("would change z0.example"), "{}", show(&out));
    assert!(stdout.contains("would remove z4.example"), "{}", show(&out));
    assert_eq!(mtimes(&env, 5), before);
    // And applied: one zone written, one removed.
    let out = env.run(&["pull"]);
    assert!(
        stderr(&out).contains("wrote 1 zone(s), deleted 1"),
        "{}",
        show(&out)
    );
    assert_eq!(env.named.query("z0.example", "A"), ["198.51.100.1"]);
}

#[test]
fn errors_are_clear_and_change_nothing() {
    let server = ApiServer::start(TOKEN);
    server.with(|b| b.zones = zones(4));
    let env = env_for(&server);
    let out = env.run(&["pull"]);
    assert!(out.status.success(), "{}", show(&out));
    let pull = |extra: &[&str]| {
        let mut args = vec!["pull", "--json"];
        args.extend_from_slice(extra);
        let out = env.run(&args);
        let e = errors(&out);
        assert!(!stderr(&out).contains(TOKEN), "{}", show(&out));
        (out, e)
    };

    // 401: a wrong token.
    let bad = env.root.join("bad-token");
    fs::write(&bad, "vps_wrong").unwrap();
    let (out, e) = pull(&["--token-file", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(e[0]["error_code"], "unauthorized", "{}", show(&out));
    assert!(
        e[0]["detail"]
            .as_str()
            .unwrap()
            .contains("Invalid API token")
    );

    // 403 names the missing permission.
    server.with(|b| b.forbidden = Some("Token lacks dns:list permission".to_owned()));
    let (out, e) = pull(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(e[0]["error_code"], "forbidden");
    assert!(
        e[0]["detail"].as_str().unwrap().contains("lacks dns:list"),
        "{e:?}"
    );
    server.with(|b| b.forbidden = None);

    // A malformed list and a malformed detail name what is wrong.
    server.with(|b| {
        b.body_override
            .insert("/api/v1/dns-zones/".into(), r#"{"count": 4}"#.into())
    });
    let (_, e) = pull(&[]);
    assert_eq!(e[0]["error_code"], "parse_error");
    assert_eq!(e[0]["field"], "results");
    server.with(|b| {
        b.body_override.clear();
        b.body_override.insert(
            "/api/v1/dns-zones/zone-2/".into(),
            r#"{"uuid": "zone-2", "domain": "z2.example", "records": [{"uuid": "r"}]}"#.into(),
        );
    });
    let (out, e) = pull(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(e[0]["error_code"], "parse_error", "{e:?}");
    assert!(
        e[0]["field"].as_str().unwrap().starts_with("records[0]"),
        "{e:?}"
    );
    assert!(e[0]["detail"].as_str().unwrap().contains("zone-2"), "{e:?}");
    server.with(|b| b.body_override.clear());

    // 5xx that does not stop: retried (bounded), then a clear failure.
    server.with(|b| b.fail_first.insert("/api/v1/dns-zones/".into(), 100));
    let (out, e) = pull(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(e[0]["error_code"], "unavailable");
    assert!(
        e[0]["detail"].as_str().unwrap().contains("3 attempt(s)"),
        "{e:?}"
    );
    server.with(|b| b.fail_first.clear());

    // Nothing above touched the zones.
    for i in 0..4 {
        assert!(env.zone_file(&format!("z{i}.example")).exists());
    }
    assert_eq!(fs::read_dir(env.spool().join("new")).unwrap().count(), 0);

    // An API that lists one zone of four: refused, unless allowed.
    server.with(|b| b.zones.truncate(1));
    let (out, e) = pull(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert_eq!(e[0]["error_code"], "mass_deletion_refused");
    assert!(env.zone_file("z3.example").exists());
    let (out, _) = pull(&["--allow-mass-delete"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stderr(&out).contains("deleted 3"), "{}", show(&out));
    assert!(!env.zone_file("z3.example").exists());
}

/// An event that arrives while the pull runs (here: while the API
/// answers the list, before the details) applies after the pulled state,
/// so a stale detail does not undo it.
#[test]
fn events_during_a_pull_apply_after_it() {
    let server = ApiServer::start(TOKEN);
    server.with(|b| b.zones = zones(2));
    let env = env_for(&server);
    let out = env.run(&["pull"]);
    assert!(out.status.success(), "{}", show(&out));

    let event = json!({"id": "evt-during-pull", "type": "record.created", "zone_uuid": "zone-0",
        "record": {"uuid": "rec-new", "record_type": "A", "name": "new", "value": "203.0.113.5",
                   "ttl": 300, "priority": null}});
    let path = env.root.join("event.json");
    fs::write(&path, event.to_string()).unwrap();
    let submit = env.command(&["submit", path.to_str().unwrap()]);
    let submit = std::sync::Mutex::new(submit);
    let hook = move || {
        let out = submit.lock().unwrap().output().unwrap();
        assert!(out.status.success());
    };
    server.with(|b| {
        b.on_request
            .insert("/api/v1/dns-zones/".into(), Box::new(hook));
        // The detail still lacks the new record (the API is behind).
        b.zones[1]["records"][0]["value"] = json!("198.51.100.2");
    });
    let out = env.run(&["pull"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stderr(&out).contains("applied 2 event(s)"),
        "{}",
        show(&out)
    );
    let serial = env.state_serial("z0.example").unwrap();
    assert!(env.served("z0.example", serial));
    assert_eq!(env.named.query("new.z0.example", "A"), ["203.0.113.5"]);
    assert_eq!(env.named.query("z1.example", "A"), ["198.51.100.2"]);
}

/// With a daemon running: it pulls by itself every `api.resync_seconds`,
/// and a `pull` from the command line is handed to it through the spool.
#[test]
fn the_daemon_pulls_periodically_and_takes_a_pull_from_the_command_line() {
    use support::agent::{Daemon, eventually};
    let server = ApiServer::start(TOKEN);
    server.with(|b| b.zones = zones(3));
    let env = env_for(&server);
    let mut text = fs::read_to_string(&env.config).unwrap();
    text.push_str("resync_seconds = 1\n");
    fs::write(&env.config, text).unwrap();
    let daemon = Daemon::start(&env);
    let answers = |d: &str, a: &str| env.named.query(d, "A") == [a.to_owned()];
    assert!(
        eventually(20, || answers("z2.example", "192.0.2.3")),
        "{}",
        daemon.log_text()
    );
    // A change on the platform arrives with the next periodic pull.
    server.with(|b| b.zones[1]["records"][0]["value"] = json!("198.51.100.9"));
    assert!(
        eventually(20, || answers("z1.example", "198.51.100.9")),
        "{}",
        daemon.log_text()
    );

    // The command line hands its sync to the running daemon.
    server.with(|b| b.zones[0]["records"][0]["value"] = json!("198.51.100.7"));
    let out = env.run(&["pull"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stderr(&out).contains("handed to the running agent"),
        "{}",
        show(&out)
    );
    assert!(
        eventually(20, || answers("z0.example", "198.51.100.7")),
        "{}",
        daemon.log_text()
    );
    assert!(!daemon.log_text().contains(TOKEN));
}

/// The same pull over HTTPS (rustls on both ends), trusting the test's CA
/// through `api.ca_file`; without it the certificate is refused.
#[test]
fn pull_over_https() {
    let (server, ca) = ApiServer::start_tls(TOKEN);
    server.with(|b| b.zones = zones(2));
    let env = env_for(&server);
    let (out, e) = {
        let out = env.run(&["pull", "--json"]);
        let e = errors(&out);
        (out, e)
    };
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(e[0]["error_code"], "unavailable", "{e:?}");
    let ca_file = env.root.join("ca.pem");
    fs::write(&ca_file, ca).unwrap();
    let mut text = fs::read_to_string(&env.config).unwrap();
    writeln!(
        text,
        "ca_file = {}",
        serde_json::to_string(&ca_file.to_string_lossy()).unwrap()
    )
    .unwrap();
    fs::write(&env.config, text).unwrap();
    let out = env.run(&["pull"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stderr(&out).contains("wrote 2 zone(s)"), "{}", show(&out));
    assert_eq!(env.named.query("z1.example", "A"), ["192.0.2.2"]);
}

/// With a daemon running, an event it applies while a `pull` fetches is
/// kept: the pulled (older) copy of that zone does not overwrite it.
#[test]
fn with_a_daemon_an_event_during_the_pull_is_kept() {
    use support::agent::{Daemon, eventually};
    let server = ApiServer::start(TOKEN);
    server.with(|b| b.zones = zones(2));
    let env = env_for(&server);
    let out = env.run(&["pull"]);
    assert!(out.status.success(), "{}", show(&out));
    let daemon = Daemon::start(&env);

    let event = json!({"id": "evt-during-pull", "type": "record.created", "zone_uuid": "zone-0",
        "record": {"uuid": "rec-new", "record_type": "A", "name": "new", "value": "203.0.113.5",
                   "ttl": 300, "priority": null}});
    let path = env.root.join("event.json");
    fs::write(&path, event.to_string()).unwrap();
    let submit = std::sync::Mutex::new(env.command(&["submit", path.to_str().unwrap()]));
    server.with(|b| {
        b.on_request.insert(
            "/api/v1/dns-zones/".into(),
            Box::new(move || assert!(submit.lock().unwrap().output().unwrap().status.success())),
        );
        // Slow, under the timeout: the daemon applies the event meanwhile.
        b.slow_once.insert(
            "/api/v1/dns-zones/zone-1/".into(),
            Duration::from_millis(800),
        );
        b.zones[1]["records"][0]["value"] = json!("198.51.100.2");
    });
    let out = env.run(&["pull"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stderr(&out).contains("(1 zone(s) kept their newer state)"),
        "{}\n{}",
        show(&out),
        daemon.log_text()
    );
    // The sync applied (z1 changed) and the event's record is still there.
    assert!(
        eventually(20, || env.named.query("z1.example", "A")
            == ["198.51.100.2"]),
        "{}",
        daemon.log_text()
    );
    assert_eq!(env.named.query("new.z0.example", "A"), ["203.0.113.5"]);
}
