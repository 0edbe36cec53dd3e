//! Operating the agent: `doctor`, the start-up check of `run`, and hung
//! tools, against a private `named` on loopback.

// Tests panic on the unexpected; that is their job.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::fs;
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};
use support::agent::{Daemon, Env, a_event, eventually, show, zone};
use zoneagent::spool::Spool;

/// An Env whose config also names the private named's configuration.
fn env() -> Env {
    let env = Env::new("");
    let conf = env.named.dir().join("named.conf");
    set_bind_key(&env, "named_conf", &serde_json::to_string(&conf).unwrap());
    env
}

/// Adds `key = value` to the config's `[bind]` table, replacing the key if
/// it is there.
fn set_bind_key(env: &Env, key: &str, value: &str) {
    let text = fs::read_to_string(&env.config).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with(&format!("{key} = ")))
        .map(str::to_owned)
        .collect();
    let at = lines.iter().position(|l| l == "[bind]").unwrap() + 1;
    lines.insert(at, format!("{key} = {value}"));
    fs::write(&env.config, lines.join("\n") + "\n").unwrap();
}

/// A loopback port where nothing listens (free a moment ago).
fn dead_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn submit(env: &Env, event: &serde_json::Value) {
    let spool = Spool::open(&env.spool(), 1 << 20).unwrap();
    spool.submit(&serde_json::to_vec(event).unwrap()).unwrap();
}

/// Lets the bind user (named) reach everything under the test's root, as
/// the package's directories do.
fn open_up(root: &Path) {
    for entry in walk(root) {
        let m = fs::metadata(&entry).unwrap();
        let mode = if m.is_dir() { 0o755 } else { 0o644 };
        fs::set_permissions(&entry, fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_owned()];
    if dir.is_dir() {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else if p.is_file() {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn doctor_on_a_healthy_setup_prints_all_ok() {
    let env = env();
    let out = env.import(&serde_json::json!([zone(
        "z1",
        "healthy.test",
        &[("A", "www", "192.0.2.1")]
    )]));
    assert!(out.status.success(), "{}", show(&out));
    fs::create_dir_all(env.spool()).unwrap();
    open_up(&env.root);
    let out = env.run(&["doctor"]);
    let text = stdout(&out);
    eprintln!("{text}");
    assert!(out.status.success(), "{}", show(&out));
    for line in text.lines() {
        assert!(line.starts_with("ok "), "not ok: {line}\n{text}");
    }
    for key in [
        "bind.server",
        "bind.rndc",
        "paths.include",
        "bind.named_conf",
    ] {
        assert!(
            text.contains(&format!(" {key} ")),
            "{key} not checked:\n{text}"
        );
    }
    assert!(text.contains("for 1 of 1 served zone"), "{text}");
    let json = env.run(&["doctor", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["failures"], 0, "{doc}");
    assert_eq!(
        doc["checks"].as_array().unwrap().len(),
        text.lines().count()
    );
}

#[test]
fn doctor_fails_when_nothing_answers_at_bind_server() {
    let env = env();
    let port = dead_port();
    set_bind_key(&env, "server", &format!("\"127.0.0.1:{port}\""));
    let started = Instant::now();
    let out = env.run(&["doctor"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = stdout(&out);
    eprintln!("{text}");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let line = text
        .lines()
        .find(|l| l.starts_with("FAIL bind.server"))
        .unwrap_or_else(|| panic!("no FAIL bind.server line:\n{text}"));
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(line.contains("nothing listens"), "{line}");
    // rndc itself works.
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok ") && l.contains("bind.rndc")),
        "{text}"
    );
    let json = env.run(&["doctor", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let server = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "bind.server")
        .unwrap();
    assert_eq!(server["level"], "fail", "{doc}");
}

#[test]
fn run_refuses_to_start_when_rndc_works_but_bind_server_is_wrong() {
    let env = env();
    set_bind_key(&env, "server", &format!("\"127.0.0.1:{}\"", dead_port()));
    submit(
        &env,
        &a_event("e1", Some(1), "z1", "r1", "www", "192.0.2.1"),
    );
    let started = Instant::now();
    let out = env.run(&["run", "--once"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(78), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bind.server"), "{err}");
    // Nothing was taken from the spool.
    assert_eq!(fs::read_dir(env.spool().join("new")).unwrap().count(), 1);
}

#[test]
fn run_starts_and_retries_while_named_is_down() {
    let mut env = env();
    env.named.stop();
    let mut daemon = Daemon::start(&env);
    assert!(
        daemon.log_text().contains("named is down"),
        "{}",
        daemon.log_text()
    );
    let snapshot = serde_json::json!({"id": "e1", "type": "zone.snapshot",
        "zone": zone("z1", "later.test", &[("A", "www", "192.0.2.7")])});
    submit(&env, &snapshot);
    assert!(
        eventually(10, || env.zone_file("later.test").exists()),
        "{}",
        daemon.log_text()
    );
    env.named.restart();
    assert!(
        eventually(40, || env.named.query("www.later.test", "A")
            == ["192.0.2.7"]),
        "not served after named came back\n{}",
        daemon.log_text()
    );
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0));
}

#[test]
fn a_hung_rndc_is_killed_and_reported_with_its_argv() {
    let env = env();
    let fake = env.root.join("hung-rndc");
    let pid_file = env.root.join("hung-rndc.pid");
    fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 60\n",
            pid_file.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    set_bind_key(&env, "rndc", &serde_json::to_string(&[&fake]).unwrap());
    set_bind_key(&env, "tool_timeout", "1.0");
    let started = Instant::now();
    let out = env.import(&serde_json::json!([zone(
        "z1",
        "hung.test",
        &[("A", "www", "192.0.2.1")]
    )]));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did not finish within"), "{err}");
    assert!(err.contains(&fake.display().to_string()), "{err}");
    // The file is installed; the reload is left for a retry.
    assert!(env.zone_file("hung.test").exists());
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        eventually(5, || !Path::new(&format!("/proc/{pid}")).exists()),
        "the hung rndc (pid {pid}) was not killed"
    );
}

/// `run --once` of one snapshot event; returns the output and how long it
/// took.
fn run_once_with(env: &Env, id: &str, address: &str) -> (std::process::Output, Duration) {
    let snapshot = serde_json::json!({"id": id, "type": "zone.snapshot",
        "zone": zone("z1", "once.test", &[("A", "www", address)])});
    submit(env, &snapshot);
    let started = Instant::now();
    let out = env.run(&["run", "--once"]);
    let took = started.elapsed();
    // One wait for confirmation, not one per retry.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("named has not loaded every zone yet"),
        "{err}"
    );
    assert!(
        err.matches("did not serve the new serial").count() <= 1,
        "{err}"
    );
    (out, took)
}

#[test]
fn run_once_is_bounded_and_tells_why_a_reload_is_unconfirmed() {
    let mut env = env();
    set_bind_key(&env, "confirm_timeout", "2.0");
    // Healthy: served and confirmed, exit 0.
    let (out, _) = run_once_with(&env, "e1", "192.0.2.1");
    assert!(out.status.success(), "{}", show(&out));
    let real_rndc = fs::read_to_string(&env.config).unwrap();

    // rndc "works" but tells named nothing: the old serial stays served.
    set_bind_key(&env, "rndc", "[\"/bin/true\"]");
    let (out, took) = run_once_with(&env, "e2", "192.0.2.2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(
        err.contains("answers with another serial for once.test"),
        "{err}"
    );

    // named does not have the zone at all: REFUSED.
    fs::write(env.root.join("named.conf.zoneagent"), "").unwrap();
    assert!(env.named.rndc(&["reconfig"]).status.success());
    let (out, took) = run_once_with(&env, "e3", "192.0.2.3");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(err.contains("answers REFUSED for once.test"), "{err}");
    eprintln!("{err}");

    // named is down: rndc fails, nothing answers; the agent says so.
    fs::write(&env.config, &real_rndc).unwrap();
    env.named.stop();
    let (out, took) = run_once_with(&env, "e4", "192.0.2.4");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(err.contains("named is down"), "{err}");
    assert!(err.contains("does not answer at 127.0.0.1:"), "{err}");
}

/// A DNS server on loopback that answers REFUSED to everything (another
/// server than the one that loads the agent's zones), until `stop`.
fn refusing_server(
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (u16, std::thread::JoinHandle<()>) {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut reply = Message::new(
                query.metadata.id,
                MessageType::Response,
                query.metadata.op_code,
            );
            reply.metadata.response_code = ResponseCode::Refused;
            reply.add_queries(query.queries.clone());
            let _ = socket.send_to(&reply.to_vec().unwrap(), from);
        }
    });
    (port, handle)
}

#[test]
fn run_refuses_to_start_when_bind_server_answers_for_none_of_the_zones() {
    let env = env();
    let out = env.import(&serde_json::json!([zone(
        "z1",
        "served.test",
        &[("A", "www", "192.0.2.1")]
    )]));
    assert!(out.status.success(), "{}", show(&out));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (port, server) = refusing_server(std::sync::Arc::clone(&stop));
    set_bind_key(&env, "server", &format!("\"127.0.0.1:{port}\""));
    let out = env.run(&["run", "--once"]);
    let doctor = env.run(&["doctor"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bind.server"), "{err}");
    assert!(err.contains("for none of the served zones"), "{err}");
    let text = stdout(&doctor);
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL bind.server") && l.contains("REFUSED for served.test")),
        "{text}"
    );
}

/// A crash between an install and named's reconfig leaves a zone file named
/// never loaded: the right named (rndc reaches it, and it has no such zone)
/// is not a wrong `bind.server`. The agent starts with a warning and its
/// first pass loads the zone.
#[test]
fn run_starts_when_named_has_not_loaded_the_installed_zones_yet() {
    let env = env();
    let out = env.import(&serde_json::json!([zone(
        "z1",
        "loaded.test",
        &[("A", "www", "192.0.2.1")]
    )]));
    assert!(out.status.success(), "{}", show(&out));
    // Named forgets it (its include emptied and reconfigured), as when the
    // agent died after installing the file but before named was told.
    let include = env.root.join("named.conf.zoneagent");
    let listed = fs::read_to_string(&include).unwrap();
    fs::write(&include, "").unwrap();
    let r = env.named.rndc(&["reconfig"]);
    assert!(r.status.success(), "{}", show(&r));
    fs::write(&include, listed).unwrap();
    assert!(eventually(10, || env
        .named
        .soa_serial("loaded.test")
        .is_none()));
    let doctor = env.run(&["doctor"]);
    let text = stdout(&doctor);
    assert!(
        text.lines().any(|l| l.starts_with("warn bind.server")
            && l.contains("rndc says named has no zone")),
        "{text}"
    );
    // The include lists the zone and no reload is pending: only the start's
    // reconfig brings it back.
    let mut daemon = Daemon::start(&env);
    assert!(
        eventually(10, || env.named.soa_serial("loaded.test").is_some()),
        "{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert!(
        log.contains("named has not loaded the installed zones; reconfiguring it"),
        "{log}"
    );
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0));
}

/// An install cut short before its records were saved leaves a file no
/// zone owns: the restart removes it, keeps the served zone, and starts.
#[test]
fn a_restart_removes_the_file_of_an_install_that_never_finished() {
    let env = env();
    let out = env.import(&serde_json::json!([zone(
        "z1",
        "kept.test",
        &[("A", "www", "192.0.2.1")]
    )]));
    assert!(out.status.success(), "{}", show(&out));
    let kept = fs::read_to_string(env.zone_file("kept.test")).unwrap();
    fs::write(
        env.zone_file("orphan.test"),
        kept.replace("kept.test", "orphan.test"),
    )
    .unwrap();
    fs::write(
        env.root.join("state/installing.json"),
        r#"["orphan.test","kept.test"]"#,
    )
    .unwrap();
    let out = env.run(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("removed the file of an install that never finished"),
        "{err}"
    );
    assert!(!env.zone_file("orphan.test").exists());
    // The list of an older release, read and replaced by inflight.json,
    // which is gone too once nothing is in flight.
    assert!(!env.root.join("state/installing.json").exists());
    assert!(!env.root.join("state/inflight.json").exists());
    assert!(env.zone_file("kept.test").exists());
    assert!(env.named.soa_serial("kept.test").is_some());
}

#[test]
fn a_hung_checker_fails_the_run_and_refuses_no_zone() {
    let env = env();
    let fake = env.root.join("hung-checkzone");
    fs::write(&fake, "#!/bin/sh\nexec sleep 60\n").unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    set_bind_key(&env, "checkzone", &serde_json::to_string(&fake).unwrap());
    set_bind_key(&env, "tool_timeout", "1.0");
    let out = env.import(&serde_json::json!([zone(
        "z1",
        "slowcheck.test",
        &[("A", "www", "192.0.2.1")]
    )]));
    // A failure at run time (1), to be retried; not invalid input (2).
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did not finish within"), "{err}");
    assert!(!env.zone_file("slowcheck.test").exists());
}
