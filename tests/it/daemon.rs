//! The daemon end to end: the real binary under a test `NOTIFY_SOCKET`,
//! events from the spool and the socket, a private `named` serving them.

// Tests panic on the unexpected; that is their job.
#![allow(clippy::unwrap_used)]

use crate::support;

use serde_json::{Value, json};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use support::agent::{Daemon, Env, a_event, eventually, list, show, zone};
use zoneagent::spool::Spool;

fn socket_config(env_root: &str) -> String {
    format!(
        "[socket]\npath = {}\n",
        serde_json::to_string(&format!("{env_root}/agent.sock")).unwrap()
    )
}

fn env_with_socket() -> Env {
    // The socket lives in the temp dir, known only once it exists: write
    // the config, then add the section.
    let env = Env::new("");
    let extra = socket_config(env.root.to_str().unwrap());
    let mut text = fs::read_to_string(&env.config).unwrap();
    text.push_str(&extra);
    fs::write(&env.config, text).unwrap();
    env
}

fn submit(env: &Env, event: &Value) {
    let spool = Spool::open(&env.spool(), 1 << 20).unwrap();
    spool.submit(&serde_json::to_vec(event).unwrap()).unwrap();
}

#[test]
fn serves_events_from_the_spool_and_the_socket() {
    let env = env_with_socket();
    let mut daemon = Daemon::start_with(&env, &[("WATCHDOG_USEC", "200000")]);
    // The watchdog is fed from its own thread while the loop is alive.
    daemon.wait_for("WATCHDOG=1");

    // Spool: a snapshot creates the zone.
    let snapshot = json!({"id": "e1", "seq": 1, "type": "zone.snapshot",
        "zone": zone("z1", "live.test", &[("A", "@", "192.0.2.1")])});
    let out = env
        .command(&["submit", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(snapshot.to_string().as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        eventually(10, || env.named.query("live.test", "A") == ["192.0.2.1"]),
        "{}",
        daemon.log_text()
    );

    // Socket: acks after the events are durable, errors at once, in order.
    let mut stream = UnixStream::connect(env.root.join("agent.sock")).unwrap();
    let mut lines = String::new();
    for i in 0..20 {
        lines.push_str(
            &a_event(
                &format!("s{i}"),
                Some(10 + i),
                "z1",
                &format!("r{i}"),
                &format!("h{i}"),
                &format!("192.0.2.{}", 10 + i),
            )
            .to_string(),
        );
        lines.push('\n');
        if i == 5 {
            lines.push_str("{not json\n");
        }
    }
    stream.write_all(lines.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut answers = Vec::new();
    for _ in 0..21 {
        let mut l = String::new();
        reader.read_line(&mut l).unwrap();
        answers.push(serde_json::from_str::<Value>(&l).unwrap());
    }
    assert_eq!(answers[0], json!({"ok": true, "id": "s0"}));
    assert_eq!(answers[6]["ok"], false, "{answers:?}");
    assert_eq!(answers[6]["error_code"], "parse_error");
    assert_eq!(answers[20], json!({"ok": true, "id": "s19"}));
    assert!(
        eventually(10, || env.named.query("h19.live.test", "A")
            == ["192.0.2.29"]),
        "{}",
        daemon.log_text()
    );
    assert_eq!(env.named.query("h0.live.test", "A"), ["192.0.2.10"]);
    // STATUS= follows every pass; the latest one counts the zone.
    while !daemon.wait_for("STATUS=").contains("zones=1") {}

    // SIGHUP re-reads the config and re-renders what it changes; SIGTERM
    // stops cleanly.
    let mut text = fs::read_to_string(&env.config).unwrap();
    text.push_str("[zone]\ndefault_ttl = 900\n");
    fs::write(&env.config, text).unwrap();
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        eventually(10, || daemon.log_text().contains("configuration reloaded")),
        "{}",
        daemon.log_text()
    );
    assert!(
        eventually(10, || fs::read_to_string(env.zone_file("live.test"))
            .unwrap()
            .contains("$TTL 900\n")),
        "{}",
        daemon.log_text()
    );
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    daemon.wait_for("STOPPING=1");
    assert_eq!(daemon.wait_exit(), Some(0));
    assert!(!env.root.join("agent.sock").exists());
    assert!(list(&env.spool().join("new")).is_empty());
}

#[test]
fn a_bad_event_among_good_ones_fails_alone() {
    let env = Env::new("");
    submit(
        &env,
        &json!({"id": "e1", "type": "zone.snapshot", "zone": zone("z", "mixed.test", &[("A", "www", "192.0.2.1")])}),
    );
    submit(&env, &a_event("e2", None, "z", "r2", "a", "192.0.2.2"));
    let spool = Spool::open(&env.spool(), 1 << 20).unwrap();
    spool.submit(b"{\"id\": \"e3\", \"type\": ").unwrap();
    submit(&env, &a_event("e5", None, "z", "r5", "b", "999.1.1.1"));
    submit(&env, &a_event("e6", None, "z", "r6", "c", "192.0.2.6"));
    submit(&env, &a_event("e7", None, "nope", "r7", "d", "192.0.2.7"));

    let out = env.run(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(env.named.query("a.mixed.test", "A"), ["192.0.2.2"]);
    assert_eq!(env.named.query("c.mixed.test", "A"), ["192.0.2.6"]);
    assert_eq!(env.named.query("www.mixed.test", "A"), ["192.0.2.1"]);
    assert!(list(&env.spool().join("new")).is_empty());
    // Only the malformed events fail: the torn file, the bad address and
    // the record for a zone that does not exist (each with its report).
    let failed = list(&env.spool().join("failed"));
    assert_eq!(failed.len(), 6, "{failed:?}");
    let reports: Vec<Value> = failed
        .iter()
        .filter(|f| f.ends_with(".error.json"))
        .map(|f| {
            serde_json::from_str(&fs::read_to_string(env.spool().join("failed").join(f)).unwrap())
                .unwrap()
        })
        .collect();
    let by_id = |id: &str| reports.iter().find(|r| r["id"] == id).cloned();
    assert_eq!(by_id("e5").unwrap()["errors"][0]["field"], "value");
    assert_eq!(by_id("e5").unwrap()["errors"][0]["record"], "r5");
    assert_eq!(by_id("e7").unwrap()["errors"][0]["error_code"], "not_found");
    assert!(
        reports
            .iter()
            .any(|r| r["id"].is_null() && r["errors"][0]["error_code"] == "parse_error"),
        "{reports:?}"
    );
}

/// A CNAME added beside an A record makes the zone held: the A stays
/// served, the event is applied (not failed), and deleting the A then
/// serves the CNAME with no operator action.
#[test]
fn a_conflict_holds_the_zone_until_it_is_resolved() {
    let env = Env::new("");
    submit(
        &env,
        &json!({"id": "e1", "type": "zone.snapshot", "zone": zone("z", "held.test", &[("A", "www", "192.0.2.1")])}),
    );
    assert_eq!(env.run(&["run", "--once"]).status.code(), Some(0));
    let served = env.state_serial("held.test").unwrap();
    submit(
        &env,
        &json!({"id": "e2", "type": "record.created", "zone_uuid": "z",
        "record": {"uuid": "r-cname", "record_type": "CNAME", "name": "www", "value": "x.example.net"}}),
    );
    let out = env.run(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(list(&env.spool().join("new")).is_empty());
    assert!(list(&env.spool().join("failed")).is_empty());
    assert_eq!(env.named.query("www.held.test", "A"), ["192.0.2.1"]);
    assert_eq!(env.state_serial("held.test"), Some(served));
    let status = env.run(&["status", "--json"]);
    let doc: Value = serde_json::from_slice(&status.stdout).unwrap();
    let row = &doc["zones"][0];
    assert_eq!(row["state"], "held", "{doc}");
    assert_eq!(row["errors"][0]["field"], "name", "{doc}");
    assert_eq!(row["held_by"][0], "e2", "{doc}");
    assert_eq!(doc["held"], 1);

    submit(
        &env,
        &json!({"id": "e3", "type": "record.deleted", "zone_uuid": "z", "record_uuid": "z-r0"}),
    );
    let out = env.run(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        env.named.query("www.held.test", "CNAME"),
        ["x.example.net."]
    );
    let doc: Value = serde_json::from_slice(&env.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(doc["zones"][0]["state"], "served", "{doc}");
    assert!(list(&env.spool().join("failed")).is_empty());
}

#[test]
fn replays_and_duplicates_are_no_ops_and_bursts_coalesce() {
    let env = Env::new("");
    submit(
        &env,
        &json!({"id": "e1", "seq": 1, "type": "zone.snapshot", "zone": zone("z", "replay.test", &[])}),
    );
    for i in 0..30 {
        submit(
            &env,
            &a_event(
                &format!("b{i}"),
                Some(2 + i),
                "z",
                &format!("r{i}"),
                &format!("h{i}"),
                "192.0.2.1",
            ),
        );
    }
    let out = env
        .command(&["run", "--once"])
        .env("ZONEAGENT_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("events=31 applied=31") && log.contains("zones_written=1"),
        "{log}"
    );
    let serial = env.state_serial("replay.test").unwrap();

    // The same ids again, an old seq, a delete of a record already gone.
    submit(
        &env,
        &a_event("b3", Some(100), "z", "r99", "x", "192.0.2.99"),
    );
    submit(
        &env,
        &a_event("new", Some(5), "z", "r98", "y", "192.0.2.98"),
    );
    submit(
        &env,
        &json!({"id": "e1", "seq": 1, "type": "zone.snapshot", "zone": zone("z", "replay.test", &[])}),
    );
    let out = env
        .command(&["run", "--once"])
        .env("ZONEAGENT_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("replays=1 duplicates=2"), "{log}");
    assert!(log.contains("zones_written=0"), "{log}");
    assert_eq!(env.state_serial("replay.test"), Some(serial));
    assert!(env.named.query("x.replay.test", "A").is_empty());
    assert!(list(&env.spool().join("failed")).is_empty());
    assert!(list(&env.spool().join("new")).is_empty());
}

#[test]
fn restart_mid_stream_loses_nothing() {
    let env = Env::new("");
    submit(
        &env,
        &json!({"id": "e0", "seq": 1, "type": "zone.snapshot", "zone": zone("z", "restart.test", &[])}),
    );
    let mut daemon = Daemon::start(&env);
    let spool = Spool::open(&env.spool(), 1 << 20).unwrap();
    for i in 0..300u64 {
        let e = a_event(
            &format!("k{i}"),
            Some(2 + i),
            "z",
            &format!("r{i}"),
            &format!("h{i}"),
            "192.0.2.1",
        );
        spool.submit(&serde_json::to_vec(&e).unwrap()).unwrap();
        if i == 150 {
            daemon.signal(nix::sys::signal::Signal::SIGKILL);
            let _ = daemon.wait_exit();
            daemon = Daemon::start(&env);
        }
    }
    assert!(
        eventually(20, || list(&env.spool().join("new")).is_empty()),
        "{}",
        daemon.log_text()
    );
    assert!(eventually(10, || env.named.query("h299.restart.test", "A")
        == ["192.0.2.1"]));
    let state: Value =
        serde_json::from_str(&fs::read_to_string(env.root.join("state/zones/z.json")).unwrap())
            .unwrap();
    assert_eq!(state["zone"]["records"].as_array().unwrap().len(), 300);
    assert_eq!(state["last_seq"], 301);
    for i in [0, 150, 151, 299] {
        assert_eq!(
            env.named.query(&format!("h{i}.restart.test"), "A"),
            ["192.0.2.1"],
            "h{i}"
        );
    }
    assert!(list(&env.spool().join("failed")).is_empty());
    assert!(list(&env.spool().join("tmp")).is_empty());
}

#[test]
fn socket_refuses_peers_not_allowed() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("this test switches uid and needs root (CI runs as root)");
        return;
    }
    let env = env_with_socket();
    let _daemon = Daemon::start(&env);
    let sock = env.root.join("agent.sock");
    // The socket is 0660 by default; let `nobody` reach it so that the
    // credential check, not the file mode, is what refuses.
    fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    fs::set_permissions(
        &env.root,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // The daemon answers a refused peer at once and closes; read first.
    let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n\
        print(s.makefile().readline().strip())\n\
        try:\n    s.sendall(b'{\"id\":\"x\",\"type\":\"zone.deleted\",\"zone_uuid\":\"z\"}\\n')\n\
        except OSError:\n    pass\n";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&sock)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("python3");
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.contains("\"forbidden\""),
        "{answer} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(list(&env.spool().join("new")).is_empty());
}

use std::os::unix::process::CommandExt as _;

/// `spool.max_pass_bytes` bounds what one pass reads: a backlog is worked
/// off in several passes and nothing is left behind.
#[test]
fn a_pass_reads_at_most_max_pass_bytes() {
    let env = Env::new("[spool]\nmax_pass_bytes = 1\n");
    submit(
        &env,
        &json!({"id": "e1", "type": "zone.snapshot", "zone": zone("z", "passes.test", &[])}),
    );
    for i in 0..4 {
        submit(
            &env,
            &a_event(
                &format!("a{i}"),
                None,
                "z",
                &format!("r{i}"),
                &format!("h{i}"),
                "192.0.2.1",
            ),
        );
    }
    let out = env
        .command(&["run", "--once"])
        .env("ZONEAGENT_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(log.matches("batch done events=1 ").count(), 5, "{log}");
    assert!(list(&env.spool().join("new")).is_empty());
    assert_eq!(env.named.query("h3.passes.test", "A"), ["192.0.2.1"]);
}

/// A check that takes seconds (BIND loading a large batch) is progress: the
/// watchdog keeps being fed while the daemon waits for the tool, within the
/// tool's own time limit.
#[test]
fn a_slow_check_keeps_the_watchdog_fed() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = Env::new("");
    let real = support::named::find_tool("named-checkzone", "bind9-utils");
    let slow = env.root.join("slow-checkzone");
    fs::write(
        &slow,
        format!("#!/bin/sh\nsleep 3\nexec {} \"$@\"\n", real.display()),
    )
    .unwrap();
    fs::set_permissions(&slow, fs::Permissions::from_mode(0o755)).unwrap();
    let mut text = fs::read_to_string(&env.config).unwrap();
    text = text.replacen(
        "[bind]\n",
        &format!(
            "[bind]\ncheckzone = {}\n",
            serde_json::to_string(&slow).unwrap()
        ),
        1,
    );
    fs::write(&env.config, text).unwrap();
    let mut daemon = Daemon::start_with(&env, &[("WATCHDOG_USEC", "400000")]);
    daemon.wait_for("WATCHDOG=1");
    submit(
        &env,
        &json!({"id": "w1", "seq": 1, "type": "zone.snapshot",
            "zone": zone("z1", "slow.test", &[("A", "@", "192.0.2.1")])}),
    );
    let began = std::time::Instant::now();
    let mut last = began;
    let mut longest = std::time::Duration::ZERO;
    while env.named.soa_serial("slow.test").is_none() {
        assert!(
            began.elapsed() < std::time::Duration::from_secs(20),
            "{}",
            daemon.log_text()
        );
        daemon.wait_for("WATCHDOG=1");
        let now = std::time::Instant::now();
        longest = longest.max(now - last);
        last = now;
    }
    assert!(began.elapsed() >= std::time::Duration::from_secs(3));
    assert!(
        longest < std::time::Duration::from_secs(2),
        "no WATCHDOG=1 for {longest:?} during the check\n{}",
        daemon.log_text()
    );
}
