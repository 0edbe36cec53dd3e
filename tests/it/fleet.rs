//! Fleet mode against real BIND: the agent's private primary and two
//! private secondaries on loopback, each configured with the text of
//! `zoneagent catalog secondary-conf` itself, follow every change through
//! the catalog zone, NOTIFY and signed transfers.

#![allow(clippy::unwrap_used)]

use crate::support;

use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::agent::{Env, eventually, show, zone};
use support::named::{Extra, PrivateNamed, find_tool};

const CATALOG: &str = "catalog.zoneagent.test";
const KEY_NAME: &str = "zoneagent-transfer";

/// One secondary: its `named` and where its member zones live.
struct Secondary {
    named: PrivateNamed,
}

/// The printed configuration, split where its comments say each part goes.
fn split_secondary_conf(text: &str) -> Extra {
    let mut extra = Extra::default();
    let mut in_options = false;
    for line in text.lines() {
        match line.trim() {
            "// BEGIN options" => in_options = true,
            "// END options" => in_options = false,
            _ if in_options => {
                extra.options.push_str(line);
                extra.options.push('\n');
            }
            _ => {
                extra.top.push_str(line);
                extra.top.push('\n');
            }
        }
    }
    extra
}

fn start_secondary(env: &Env, n: usize) -> Secondary {
    let dir = env.root.join(format!("secondary{n}"));
    let zone_dir = dir.join("zones");
    fs::create_dir_all(&zone_dir).unwrap();
    let primary = format!("127.0.0.1:{}", env.named.port());
    let out = env.run(&[
        "catalog",
        "secondary-conf",
        "--primary",
        &primary,
        "--zone-directory",
        zone_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let include = dir.join("empty.conf");
    let named = PrivateNamed::start_with(&dir, &include, &split_secondary_conf(&text));
    Secondary { named }
}

/// The agent's config with `[catalog]`, the secondaries as NOTIFY targets.
fn write_catalog_config(env: &Env, base: &str, key: &Path, secondaries: &[u16]) {
    let list: Vec<String> = secondaries
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    let text = format!(
        "{base}[catalog]\nzone = \"{CATALOG}\"\ntsig_key_file = {}\nsecondaries = [{}]\n",
        serde_json::to_string(&key.to_string_lossy()).unwrap(),
        list.join(", ")
    );
    fs::write(&env.config, text).unwrap();
}

fn import(env: &Env, zones: &[Value], extra: &[&str]) -> Output {
    let path = env.root.join("dump.json");
    fs::write(&path, serde_json::to_vec(&json!(zones)).unwrap()).unwrap();
    let mut args = vec!["import"];
    args.extend_from_slice(extra);
    args.push(path.to_str().unwrap());
    env.run(&args)
}

/// Waits until every secondary serves `domain` with the primary's serial.
fn follows(env: &Env, secondaries: &[&Secondary], domain: &str) {
    let want = env.named.soa_serial(domain).expect("the primary serves it");
    for (i, s) in secondaries.iter().enumerate() {
        assert!(
            eventually(30, || s.named.soa_serial(domain) == Some(want)),
            "secondary {i} does not serve {domain} serial {want} (has {:?})\n{}",
            s.named.soa_serial(domain),
            s.named.log_tail(30)
        );
    }
}

/// Waits until no secondary serves `domain` any more.
fn gone(secondaries: &[&Secondary], domain: &str) {
    for (i, s) in secondaries.iter().enumerate() {
        assert!(
            eventually(30, || s.named.query_status(domain, "SOA") == "REFUSED"),
            "secondary {i} still serves {domain}\n{}",
            s.named.log_tail(30)
        );
    }
}

/// The catalog's records, transferred with the key.
fn catalog_axfr(named: &PrivateNamed, key: &str) -> Vec<String> {
    let out = named.dig(&["-y", key, "+noall", "+answer", "AXFR", CATALOG]);
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

fn keygen(path: &Path) -> String {
    let out = Command::new(find_tool("tsig-keygen", "bind9-utils"))
        .args(["-a", "hmac-sha256", KEY_NAME])
        .output()
        .unwrap();
    assert!(out.status.success());
    fs::write(path, &out.stdout).unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let secret = text
        .split("secret \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    format!("hmac-sha256:{KEY_NAME}:{secret}")
}

fn zones_v1() -> Vec<Value> {
    vec![
        zone("za", "a.fleet.test", &[("A", "www", "192.0.2.1")]),
        zone("zb", "b.fleet.test", &[("A", "www", "192.0.2.2")]),
        zone("zc", "c.fleet.test", &[("A", "www", "192.0.2.3")]),
    ]
}

#[test]
fn secondaries_follow_the_primary_through_the_catalog() {
    // A secondary that comes back refreshes its zones within their SOA
    // retry (BIND spreads the first refresh over [retry/4, retry]): short
    // here, so the test sees it catch up.
    let env = Env::new("[soa]\nrefresh = 60\nretry = 4\n");
    let base = fs::read_to_string(&env.config).unwrap();
    let key_file: PathBuf = env.root.join("transfer.key");
    let dig_key = keygen(&key_file);
    // secondary-conf needs only the catalog and the key; the secondaries'
    // ports are known once they run.
    write_catalog_config(&env, &base, &key_file, &[]);
    let s1 = start_secondary(&env, 1);
    let mut s2 = start_secondary(&env, 2);
    write_catalog_config(&env, &base, &key_file, &[s1.named.port(), s2.named.port()]);

    // A zone created through the agent is served by every secondary.
    let out = import(&env, &zones_v1(), &[]);
    assert!(out.status.success(), "{}", show(&out));
    for d in ["a.fleet.test", "b.fleet.test", "c.fleet.test"] {
        follows(&env, &[&s1, &s2], d);
    }
    // The primary's configuration, catalog and members included, loads in
    // named-checkconf -z.
    let conf = env.named.dir().join("named.conf");
    let check = Command::new(find_tool("named-checkconf", "bind9-utils"))
        .arg("-z")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", show(&check));
    let checked = String::from_utf8_lossy(&check.stdout);
    assert!(
        checked.contains(&format!("zone {CATALOG}/IN: loaded serial")),
        "{checked}"
    );

    // A record change reaches them.
    let mut v2 = zones_v1();
    v2[0] = zone("za", "a.fleet.test", &[("A", "www", "192.0.2.11")]);
    let out = import(&env, &v2, &[]);
    assert!(out.status.success(), "{}", show(&out));
    follows(&env, &[&s1, &s2], "a.fleet.test");
    assert_eq!(s2.named.query("www.a.fleet.test", "A"), ["192.0.2.11"]);

    // A deleted zone disappears from them (1 of 3: within the share).
    v2.remove(2);
    let out = import(&env, &v2, &[]);
    assert!(out.status.success(), "{}", show(&out));
    gone(&[&s1, &s2], "c.fleet.test");
    assert!(s1.named.soa_serial("a.fleet.test").is_some());

    // A secondary that was down during changes catches up when it returns.
    s2.named.stop();
    v2[1] = zone("zb", "b.fleet.test", &[("A", "www", "192.0.2.22")]);
    v2.push(zone("zd", "d.fleet.test", &[("A", "www", "192.0.2.4")]));
    let out = import(&env, &v2, &[]);
    // The down secondary's NOTIFY is lost; the primary is unaffected.
    assert!(out.status.success(), "{}", show(&out));
    follows(&env, &[&s1], "d.fleet.test");
    s2.named.restart();
    follows(&env, &[&s1, &s2], "d.fleet.test");
    follows(&env, &[&s1, &s2], "b.fleet.test");

    // A restart of the agent changes nothing on the secondaries: the same
    // catalog serial and member labels.
    let serial = env.named.soa_serial(CATALOG).unwrap();
    let records = catalog_axfr(&env.named, &dig_key);
    let status = env.run(&["status", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["catalog"]["serial"], json!(serial), "{status}");
    assert_eq!(status["catalog"]["members"], json!(3), "{status}");
    assert!(
        records.iter().any(|r| r.contains("IN PTR d.fleet.test.")),
        "{records:?}"
    );
    assert!(
        records.iter().any(|r| r.contains("IN TXT \"2\"")),
        "{records:?}"
    );
    for args in [&["rebuild"][..], &["run", "--once"][..]] {
        let out = env.run(args);
        assert!(out.status.success(), "{args:?}: {}", show(&out));
    }
    let out = import(&env, &v2, &[]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(env.named.soa_serial(CATALOG), Some(serial));
    assert_eq!(catalog_axfr(&env.named, &dig_key), records);
    for s in [&s1, &s2] {
        assert_eq!(s.named.soa_serial(CATALOG), Some(serial));
        assert_eq!(catalog_axfr(&s.named, &dig_key), records);
    }

    // A transfer without the key is refused, of members and catalog alike.
    for z in ["a.fleet.test", CATALOG] {
        let out = env.named.dig(&["AXFR", z]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Transfer failed"), "{z}: {text}");
        assert!(!text.contains("\tSOA\t"), "{z}: {text}");
        let signed = env.named.dig(&["-y", &dig_key, "AXFR", z]);
        let text = String::from_utf8_lossy(&signed.stdout);
        assert!(text.contains("\tSOA\t"), "{z} with the key: {text}");
    }

    // A customer zone of the catalog's name is held, never served.
    let mut with_cat = v2.clone();
    with_cat.push(zone("zcat", CATALOG, &[]));
    let out = import(&env, &with_cat, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert_eq!(env.named.soa_serial(CATALOG), Some(serial));

    // A mass deletion is held: by import (exit 2, nothing changed) and by
    // a sync event (into failed/, naming the share).
    let only_a = vec![v2[0].clone()];
    let out = import(&env, &only_a, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("max_removal_share"), "{stderr}");
    let sync = json!({"id": "sync-1", "type": "sync", "zones": only_a});
    let event = env.root.join("sync.json");
    fs::write(&event, sync.to_string()).unwrap();
    let out = env.run(&["submit", event.to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
    let out = env.run(&["run", "--once"]);
    assert!(!out.status.success(), "{}", show(&out));
    let failed = env.spool().join("failed");
    let reports: Vec<String> = support::agent::list(&failed)
        .iter()
        .filter(|n| n.ends_with(".error.json"))
        .map(|n| fs::read_to_string(failed.join(n)).unwrap())
        .collect();
    assert!(
        reports.iter().any(|r| r.contains("max_removal_share")),
        "{reports:?}"
    );
    assert_eq!(env.named.soa_serial(CATALOG), Some(serial));
    follows(&env, &[&s1, &s2], "d.fleet.test");
    // The operator's word lets it through.
    let out = import(&env, &only_a, &["--allow-mass-delete"]);
    assert!(out.status.success(), "{}", show(&out));
    gone(&[&s1, &s2], "b.fleet.test");
    gone(&[&s1, &s2], "d.fleet.test");
    follows(&env, &[&s1, &s2], "a.fleet.test");
}

/// A signed zone (named's own signer on the primary) reaches a secondary
/// signed, and `delv` with the DS `zoneagent dnssec ds` prints validates an
/// answer from the secondary.
#[test]
fn a_secondary_serves_the_signed_zone_and_it_validates() {
    let env = Env::new("[soa]\nrefresh = 60\nretry = 4\n");
    let keys = env.root.join("keys");
    fs::create_dir_all(&keys).unwrap();
    let base = format!(
        "{}[dnssec]\npolicy = \"default\"\nkey_directory = {}\n",
        fs::read_to_string(&env.config).unwrap(),
        serde_json::to_string(&keys.to_string_lossy()).unwrap()
    );
    let key_file: PathBuf = env.root.join("transfer.key");
    keygen(&key_file);
    write_catalog_config(&env, &base, &key_file, &[]);
    let s1 = start_secondary(&env, 1);
    write_catalog_config(&env, &base, &key_file, &[s1.named.port()]);
    let out = import(
        &env,
        &[zone(
            "zs",
            "signed.fleet.test",
            &[("A", "www", "192.0.2.80")],
        )],
        &[],
    );
    assert!(out.status.success(), "{}", show(&out));
    // The keys are published once named has signed the zone.
    assert!(
        eventually(30, || env
            .run(&["dnssec", "ds", "signed.fleet.test"])
            .status
            .success()),
        "named never served keys\n{}",
        env.named.log_tail(30)
    );
    follows(&env, &[&s1], "signed.fleet.test");
    let signed = |named: &PrivateNamed| {
        named
            .dig_text(&["+dnssec", "+noall", "+answer", "www.signed.fleet.test", "A"])
            .lines()
            .any(|l| {
                let t: Vec<&str> = l.split_whitespace().collect();
                t.windows(2).any(|w| w == ["RRSIG", "A"])
            })
    };
    assert!(
        eventually(30, || signed(&s1.named)),
        "the secondary serves no RRSIG for www\n{}",
        s1.named.log_tail(30)
    );
    let anchor = env.run(&["dnssec", "ds", "--trust-anchor", "signed.fleet.test"]);
    assert!(anchor.status.success(), "{}", show(&anchor));
    let anchors = env.root.join("anchors.conf");
    fs::write(&anchors, &anchor.stdout).unwrap();
    let delv = s1
        .named
        .delv(&anchors, "signed.fleet.test", "www.signed.fleet.test", "A");
    assert!(delv.contains("; fully validated"), "{delv}");
}
