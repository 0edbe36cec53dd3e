//! Disk trouble: writes that fail (a full file system, a read-only one, a
//! path the agent cannot write) leave the served zone and the spool intact;
//! the daemon reports them, keeps running and retries until it succeeds.

#![allow(clippy::unwrap_used)]

use crate::support;

use serde_json::json;
use std::fs;
use std::process::Command;
use support::agent::{Daemon, Env, a_event, eventually, list, show, zone};
use zoneagent::spool::Spool;

fn submit(env: &Env, event: &serde_json::Value) {
    Spool::open(&env.spool(), 1 << 24)
        .unwrap()
        .submit(event.to_string().as_bytes())
        .unwrap();
}

fn served_a(env: &Env, name: &str) -> Vec<String> {
    env.named.query(name, "A")
}

#[test]
fn a_write_that_fails_is_retried_and_loses_nothing() {
    let env = Env::new("");
    submit(
        &env,
        &json!({"id": "e1", "type": "zone.snapshot", "zone": zone("z", "disk.test", &[("A", "www", "192.0.2.1")])}),
    );
    let mut daemon = Daemon::start(&env);
    assert!(
        eventually(10, || served_a(&env, "www.disk.test") == ["192.0.2.1"]),
        "{}",
        daemon.log_text()
    );

    // The temporary file's name is taken by a directory: the write fails
    // (EISDIR, root or not).
    let blocker = env.root.join("zones/.disk.test.zone.new");
    fs::create_dir(&blocker).unwrap();
    submit(&env, &a_event("e2", None, "z", "r2", "www2", "192.0.2.2"));
    assert!(
        eventually(10, || daemon
            .log_text()
            .contains("batch failed; events stay in the spool")),
        "{}",
        daemon.log_text()
    );
    assert_eq!(
        list(&env.spool().join("new")).len(),
        1,
        "the event stays in the spool"
    );
    assert!(list(&env.spool().join("failed")).is_empty());
    assert_eq!(
        served_a(&env, "www.disk.test"),
        ["192.0.2.1"],
        "the old zone is still served"
    );
    assert!(served_a(&env, "www2.disk.test").is_empty());

    fs::remove_dir(&blocker).unwrap();
    assert!(
        eventually(40, || served_a(&env, "www2.disk.test") == ["192.0.2.2"]),
        "{}",
        daemon.log_text()
    );
    assert!(eventually(10, || list(&env.spool().join("new")).is_empty()));
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon kept running"
    );
}

/// Unmounts when dropped, also when the test panics.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A real small file system: full, then read-only, then healthy again.
/// Needs root (mount), which CI has.
#[test]
fn full_and_read_only_file_systems() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("this test mounts a tmpfs and needs root (CI runs as root)");
        return;
    }
    let env = Env::new("");
    let zones = env.root.join("zones");
    fs::create_dir_all(&zones).unwrap();
    let mount = |args: &[&str]| Command::new("mount").args(args).status().unwrap().success();
    assert!(
        mount(&[
            "-t",
            "tmpfs",
            "-o",
            "size=64k",
            "tmpfs",
            zones.to_str().unwrap()
        ]),
        "mount tmpfs"
    );
    let _unmount = Unmount(zones.clone());

    submit(
        &env,
        &json!({"id": "e1", "type": "zone.snapshot", "zone": zone("z", "full.test", &[("A", "www", "192.0.2.1")])}),
    );
    let mut daemon = Daemon::start(&env);
    assert!(
        eventually(10, || served_a(&env, "www.full.test") == ["192.0.2.1"]),
        "{}",
        daemon.log_text()
    );
    let before = fs::read_to_string(zones.join("full.test.zone")).unwrap();

    // Full: 100 KiB of TXT does not fit in 64 KiB.
    let big: Vec<serde_json::Value> = (0..40)
        .map(|i| json!({"uuid": format!("t{i}"), "record_type": "TXT", "name": format!("t{i}"), "value": "x".repeat(2500)}))
        .collect();
    let mut z = zone("z", "full.test", &[("A", "www", "192.0.2.9")]);
    z["records"].as_array_mut().unwrap().extend(big);
    submit(
        &env,
        &json!({"id": "e2", "type": "zone.snapshot", "zone": z}),
    );
    assert!(
        eventually(10, || daemon.log_text().contains("No space left")),
        "{}",
        daemon.log_text()
    );
    assert_eq!(
        fs::read_to_string(zones.join("full.test.zone")).unwrap(),
        before,
        "old file intact"
    );
    assert_eq!(served_a(&env, "www.full.test"), ["192.0.2.1"]);
    assert_eq!(list(&env.spool().join("new")).len(), 1);

    // Read-only: still refused, still intact.
    assert!(mount(&[
        "-o",
        "remount,ro,size=1m",
        zones.to_str().unwrap()
    ]));
    assert!(
        eventually(40, || daemon.log_text().contains("Read-only file system")),
        "{}",
        daemon.log_text()
    );
    assert_eq!(
        fs::read_to_string(zones.join("full.test.zone")).unwrap(),
        before
    );
    assert_eq!(list(&env.spool().join("new")).len(), 1);

    // Healthy again: the retry lands it.
    assert!(mount(&[
        "-o",
        "remount,rw,size=1m",
        zones.to_str().unwrap()
    ]));
    assert!(
        eventually(40, || served_a(&env, "www.full.test") == ["192.0.2.9"]),
        "{}",
        daemon.log_text()
    );
    assert_eq!(env.named.query("t39.full.test", "TXT").len(), 1);
    // The event leaves the spool right after the state is saved and named
    // confirmed, which is just after the answer above.
    assert!(eventually(10, || list(&env.spool().join("new")).is_empty()));
    assert!(list(&env.spool().join("failed")).is_empty());
    assert!(daemon.child.try_wait().unwrap().is_none());
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0));
}

/// A batch holds one file open at a time: an import of more zones than the
/// process may open files writes them all (each zone is a temporary file
/// for the check, a zone file and a state record).
#[test]
fn an_import_of_more_zones_than_open_files_allowed() {
    const ZONES: usize = 300;
    let env = Env::new("");
    let zones: Vec<serde_json::Value> = (0..ZONES)
        .map(|i| {
            zone(
                &format!("z{i}"),
                &format!("fd{i}.test"),
                &[("A", "www", "192.0.2.1")],
            )
        })
        .collect();
    let dump = env.root.join("many.json");
    fs::write(&dump, serde_json::to_vec(&zones).unwrap()).unwrap();
    // The shell lowers the limit, then becomes the agent.
    let agent = env.command(&["import", dump.to_str().unwrap()]);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
        .arg(agent.get_program())
        .args(agent.get_args());
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    for i in [0, ZONES / 2, ZONES - 1] {
        assert!(env.zone_file(&format!("fd{i}.test")).is_file());
    }
    assert_eq!(
        fs::read_dir(env.root.join("state/zones")).unwrap().count(),
        ZONES
    );
}
