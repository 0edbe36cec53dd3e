//! `zoneagent verify` against a private `named`: a file edited by hand and
//! reloaded, a deleted zone file, and a record changed through `nsupdate`
//! on a zone that allows it are each found, and `--repair` removes them.

#![allow(clippy::unwrap_used)]

use crate::support;

use serde_json::Value;
use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use support::agent::{Env, show, zone};

const TRANSFER: &str = "allow-transfer { 127.0.0.1; };";

fn reports(env: &Env, extra: &[&str]) -> (std::process::Output, Vec<Value>) {
    let mut args = vec!["verify", "--json"];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    let r = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out, r)
}

fn of<'a>(reports: &'a [Value], domain: &str) -> &'a Value {
    reports.iter().find(|r| r["domain"] == domain).unwrap()
}

fn import(env: &Env) {
    let dump = serde_json::json!([
        zone(
            "z1",
            "one.example",
            &[("A", "www", "192.0.2.1"), ("TXT", "@", "v=spf1 -all")]
        ),
        zone("z2", "two.example", &[("A", "@", "192.0.2.2")]),
    ]);
    let out = env.import(&dump);
    assert!(out.status.success(), "{}", show(&out));
    for d in ["one.example", "two.example"] {
        assert!(env.served(d, env.state_serial(d).unwrap()));
    }
}

#[test]
fn hand_edit_and_deleted_file_are_found_and_repaired() {
    let env = Env::new(&format!("[zone]\noptions = \"{TRANSFER}\"\n"));
    import(&env);
    let (out, r) = reports(&env, &[]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        r.iter()
            .all(|z| z["file"] == "same" && z["different"].as_array().unwrap().is_empty()),
        "{r:?}"
    );

    // A hand edit, loaded by named: the A of www changed, a record added.
    let path = env.zone_file("one.example");
    let text = fs::read_to_string(&path).unwrap();
    let edited = text.replace("192.0.2.1", "203.0.113.66") + "hand 300 IN A 203.0.113.67\n";
    fs::write(&path, edited).unwrap();
    let rndc = env.named.rndc(&["reload", "one.example"]);
    assert!(rndc.status.success(), "{}", show(&rndc));
    assert!(support::agent::eventually(10, || env
        .named
        .query("hand.one.example", "A")
        == ["203.0.113.67"]));
    // A deleted file (named still serves what it loaded).
    fs::remove_file(env.zone_file("two.example")).unwrap();

    let (out, r) = reports(&env, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let one = of(&r, "one.example");
    assert_eq!(one["file"], "edited");
    assert_eq!(one["different"][0]["owner"], "www.one.example.");
    assert_eq!(one["extra"][0]["owner"], "hand.one.example.");
    assert_eq!(of(&r, "two.example")["file"], "missing");
    // --zone narrows it.
    let (_, only) = reports(&env, &["--zone", "two.example"]);
    assert_eq!(only.len(), 1);

    let (out, r) = reports(&env, &["--repair"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(r.iter().all(|z| z["repaired"] == true), "{r:?}");
    let (out, r) = reports(&env, &[]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(r.iter().all(|z| z["file"] == "same"), "{r:?}");
    assert_eq!(env.named.query("www.one.example", "A"), ["192.0.2.1"]);
    assert!(env.named.query("hand.one.example", "A").is_empty());
    assert!(env.zone_file("two.example").exists());
}

#[test]
fn a_dynamic_update_is_found_and_repaired_above_its_serial() {
    let env = Env::new(&format!(
        "[zone]\noptions = \"{TRANSFER} allow-update {{ 127.0.0.1; }};\"\n"
    ));
    import(&env);
    let before = env.named.soa_serial("one.example").unwrap();
    let mut nsupdate = Command::new("nsupdate")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    write!(
        nsupdate.stdin.take().unwrap(),
        "server 127.0.0.1 {}\nzone one.example\nupdate add sneaky.one.example 300 A 198.51.100.66\nsend\n",
        env.named.port()
    )
    .unwrap();
    let out = nsupdate.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let updated = env.named.soa_serial("one.example").unwrap();
    assert_ne!(updated, before);

    let (out, r) = reports(&env, &["--zone", "one.example"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let one = of(&r, "one.example");
    assert_eq!(one["extra"][0]["owner"], "sneaky.one.example.");
    assert_eq!(one["served_serial"], updated);

    let (out, r) = reports(&env, &["--repair"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        show(&out),
        env.named.log_tail(30)
    );
    assert_eq!(of(&r, "one.example")["repaired"], true, "{r:?}");
    let state = env.state_serial("one.example").unwrap();
    assert!(
        env.served("one.example", state),
        "{}",
        env.named.log_tail(30)
    );
    assert!(env.named.query("sneaky.one.example", "A").is_empty());
    let after = env.named.soa_serial("one.example").unwrap();
    assert!(
        zoneagent::serial::Serial(after) > zoneagent::serial::Serial(updated),
        "{after} {updated} {} {}",
        show(&out),
        env.named.log_tail(40)
    );
    let (out, _) = reports(&env, &[]);
    assert!(out.status.success(), "{}", show(&out));
}

/// A server that transfers only with a TSIG key: verify without the key
/// cannot compare (drift: the transfer is refused), with it finds nothing.
#[test]
fn transfers_signed_with_tsig() {
    // The private named already declares its rndc key; let it authorise
    // transfers too.
    let env =
        Env::new("[zone]\noptions = \"allow-transfer { key \\\"zoneagent-test-rndc\\\"; };\"\n");
    import(&env);
    let (out, r) = reports(&env, &["--zone", "one.example"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        of(&r, "one.example")["transfer_error"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{r:?}"
    );
    let key = env.named.dir().join("rndc.key");
    let (out, r) = reports(&env, &["--key-file", key.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}\n{}",
        show(&out),
        env.named.log_tail(20)
    );
    assert!(r.iter().all(|z| z.get("transfer_error").is_none()), "{r:?}");
}

/// `[verify] seconds` with `repair`: the daemon finds a hand edit by
/// itself and serves the state again.
#[test]
fn the_daemon_verifies_and_repairs_on_its_own() {
    let env = Env::new(&format!(
        "[zone]\noptions = \"{TRANSFER}\"\n[verify]\nseconds = 1\nrepair = true\n"
    ));
    import(&env);
    let mut daemon = support::agent::Daemon::start(&env);
    let path = env.zone_file("one.example");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replace("192.0.2.1", "203.0.113.66")).unwrap();
    let rndc = env.named.rndc(&["reload", "one.example"]);
    assert!(rndc.status.success(), "{}", show(&rndc));
    assert!(
        support::agent::eventually(20, || env.named.query("www.one.example", "A")
            == ["192.0.2.1"]
            && fs::read_to_string(&path).is_ok_and(|t| !t.contains("203.0.113.66"))),
        "the drift was not repaired:\n{}",
        daemon.log_text()
    );
    assert!(
        daemon
            .log_text()
            .contains("named serves something other than the state")
    );
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0));
}
