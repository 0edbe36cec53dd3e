//! DNSSEC through BIND's own signer, against a private `named` on
//! loopback: signed zones validate with `delv` from the DS the agent
//! prints, changes are served signed, the served serial keeps moving
//! forward (a burst, a signer running ahead, a restart, a re-created
//! zone), unsigned zones stay unsigned, switching on and off leaves no
//! gap, and a KSK rollover shows in `status`.

// Tests panic on the unexpected; that is their job.
#![allow(clippy::unwrap_used)]

use crate::support;

use serde_json::{Value, json};
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use support::agent::{Env, eventually, show, zone};

/// A policy defined in `named.conf` whose waits are all one second, so
/// `named` publishes the CDS (and withdraws keys) within the test: the
/// zones' TTLs must then be at most `max-zone-ttl`, see [`fast_env`].
const FAST_POLICY: &str = "dnssec-policy \"fast\" {\n\
    \tkeys { csk lifetime unlimited algorithm ecdsap256sha256; };\n\
    \tdnskey-ttl 1; max-zone-ttl 1; publish-safety 0; retire-safety 0;\n\
    \tzone-propagation-delay 0; parent-ds-ttl 1; parent-propagation-delay 0;\n};\n";

/// An agent signing with [`FAST_POLICY`] and every TTL at 1 s.
fn fast_env(rest: &str) -> Env {
    signing_env(
        "[zone]\ndefault_ttl = 1\n[soa]\nminimum = 1\n",
        "fast",
        rest,
        FAST_POLICY,
    )
}

/// An API zone whose records have a TTL of 1 s.
fn zone1(uuid: &str, domain: &str, records: &[(&str, &str, &str)]) -> Value {
    let mut z = zone(uuid, domain, records);
    for r in z["records"].as_array_mut().unwrap() {
        r["ttl"] = json!(1);
    }
    z
}

/// A private `named` and an agent that signs with `policy`; `rest` is
/// more of `[dnssec]`, `extra` more of the agent's config.
fn signing_env(extra: &str, policy: &str, rest: &str, named_extra: &str) -> Env {
    let env = Env::with_named(extra, named_extra);
    let keys = env.root.join("keys");
    fs::create_dir_all(&keys).unwrap();
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(&env.config)
        .unwrap();
    writeln!(
        f,
        "[dnssec]\npolicy = \"{policy}\"\nkey_directory = {}\n{rest}",
        serde_json::to_string(&keys.to_string_lossy()).unwrap()
    )
    .unwrap();
    env
}

/// Replaces the `[dnssec]` lines after `policy`/`key_directory` with `rest`.
fn set_dnssec_rest(env: &Env, rest: &str) {
    let text = fs::read_to_string(&env.config).unwrap();
    let (head, tail) = text.split_once("[dnssec]\n").unwrap();
    let kept: Vec<&str> = tail.lines().take(2).collect();
    let new = format!("{head}[dnssec]\n{}\n{rest}\n", kept.join("\n"));
    fs::write(&env.config, new).unwrap();
}

fn import_ok(env: &Env, zones: &Value) {
    let out = env.import(zones);
    assert!(out.status.success(), "{}", show(&out));
}

/// The `dnssec` object of a zone in `status --json`.
fn dnssec_status(env: &Env, domain: &str) -> Value {
    let out = env.run(&["status", "--json"]);
    assert!(out.status.success(), "{}", show(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["domain"] == domain)
        .map_or(Value::Null, |z| z["dnssec"].clone())
}

fn wait_state(env: &Env, domain: &str, state: &str) {
    assert!(
        eventually(20, || dnssec_status(env, domain)["state"] == state),
        "{domain} never became {state}: {}\n{}",
        dnssec_status(env, domain),
        env.named.log_tail(30)
    );
}

/// Waits until `zoneagent dnssec ds` has a DS to print (the keys are
/// served, whatever the state).
fn wait_keys(env: &Env, domain: &str) {
    assert!(
        eventually(20, || env.run(&["dnssec", "ds", domain]).status.success()),
        "named never served keys for {domain}\n{}",
        env.named.log_tail(30)
    );
}

/// The types covered by the RRSIGs served with `name`/`rtype`.
fn rrsigs(env: &Env, name: &str, rtype: &str) -> Vec<String> {
    env.named
        .dig_text(&["+dnssec", "+noall", "+answer", name, rtype])
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(3) == Some(&"RRSIG")).then(|| f[4].to_owned())
        })
        .collect()
}

/// `zoneagent dnssec ds DOMAIN`, checked.
fn ds_lines(env: &Env, domain: &str) -> Vec<String> {
    let out = env.run(&["dnssec", "ds", domain]);
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Validates `name`/`rtype` with `delv`, the zone's DS from `zoneagent
/// dnssec ds` as the only trust anchor; returns delv's output.
fn validate(env: &Env, domain: &str, name: &str, rtype: &str) -> String {
    let mut anchors = String::from("trust-anchors {\n");
    for line in ds_lines(env, domain) {
        // `owner IN DS tag alg type DIGEST`
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&f[1..3], ["IN", "DS"], "{line}");
        writeln!(
            anchors,
            "\t\"{}\" static-ds {} {} {} \"{}\";",
            f[0], f[3], f[4], f[5], f[6]
        )
        .unwrap();
    }
    anchors.push_str("};\n");
    let path = env.root.join(format!("anchors-{domain}.conf"));
    fs::write(&path, anchors).unwrap();
    let out = env.named.delv(&path, domain, name, rtype);
    assert!(
        out.contains("; fully validated"),
        "delv {name} {rtype}:\n{out}"
    );
    out
}

fn served_serial(env: &Env, domain: &str) -> u32 {
    env.named
        .soa_serial(domain)
        .unwrap_or_else(|| panic!("{domain} not served\n{}", env.named.log_tail(30)))
}

fn signed_zone(txt: &str, www: &str) -> Value {
    zone(
        "zs",
        "signed.test",
        &[
            ("A", "www", www),
            ("TXT", "@", txt),
            ("A", "@", "192.0.2.1"),
        ],
    )
}

#[test]
fn signs_validates_and_keeps_the_served_serial_moving() {
    let env = signing_env("", "default", "except = [\"plain.test\"]", "");
    let plain = zone("zp", "plain.test", &[("A", "www", "192.0.2.50")]);
    import_ok(&env, &json!([signed_zone("v1", "192.0.2.2"), plain]));
    wait_keys(&env, "signed.test");
    // BIND's `default` policy publishes the CDS only after the DNSKEY TTL
    // and its safety margins (about two hours): until then the zone is
    // `signing` and status hands out no DS.
    let status = dnssec_status(&env, "signed.test");
    assert_eq!(status["state"], "signing", "{status}");
    assert_eq!(status["policy"], "default", "{status}");
    assert_eq!(status["ds"], json!([]), "{status}");
    let table = env.run(&["status"]);
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("dnssec: signing (default)"),
        "{}",
        show(&table)
    );
    // Only zones the agent has named sign have a DS to print.
    for other in ["plain.test", "unknown.test"] {
        let out = env.run(&["dnssec", "ds", other]);
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    }

    // RRSIGs on the SOA and on a record; the unsigned zone has none.
    assert!(rrsigs(&env, "signed.test", "SOA").contains(&"SOA".to_owned()));
    assert_eq!(rrsigs(&env, "www.signed.test", "A"), ["A"]);
    assert!(rrsigs(&env, "www.plain.test", "A").is_empty());
    assert!(env.named.query("plain.test", "DNSKEY").is_empty());
    assert_eq!(dnssec_status(&env, "plain.test"), Value::Null);

    // The DS is what dnssec-dsfromkey makes of the served DNSKEY, and
    // delv validates with it as the only trust anchor.
    let dnskey = env
        .named
        .dig_text(&["+noall", "+answer", "signed.test", "DNSKEY"]);
    let keyfile = env.root.join("dnskey.txt");
    fs::write(&keyfile, &dnskey).unwrap();
    let theirs = Command::new("dnssec-dsfromkey")
        .args(["-2", "-f"])
        .arg(&keyfile)
        .arg("signed.test")
        .output()
        .unwrap();
    assert!(theirs.status.success(), "{}", show(&theirs));
    let theirs: Vec<String> = String::from_utf8_lossy(&theirs.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ds_lines(&env, "signed.test"), theirs);
    let out = validate(&env, "signed.test", "www.signed.test", "A");
    assert!(out.contains("192.0.2.2"), "{out}");

    // A record change is served signed and validates.
    let before = served_serial(&env, "signed.test");
    import_ok(&env, &json!([signed_zone("v1", "192.0.2.99"), plain]));
    let out = validate(&env, "signed.test", "www.signed.test", "A");
    assert!(out.contains("192.0.2.99"), "{out}");
    let mut last = served_serial(&env, "signed.test");
    assert!(last > before, "{before} -> {last}");

    // A burst, with the signer made to run ahead of the file in between
    // (`rndc sign` re-signs and bumps the signed serial): each change is
    // served the moment the import returns, under a newer serial.
    for i in 0..6 {
        if i % 2 == 1 {
            let file_serial = env.state_serial("signed.test").unwrap();
            assert!(env.named.rndc(&["sign", "signed.test"]).status.success());
            assert!(
                eventually(10, || served_serial(&env, "signed.test") > file_serial),
                "the signer did not run ahead"
            );
            last = served_serial(&env, "signed.test");
        }
        let txt = format!("burst-{i}");
        import_ok(&env, &json!([signed_zone(&txt, "192.0.2.99"), plain]));
        assert_eq!(
            env.named.query("signed.test", "TXT"),
            [format!("\"{txt}\"")]
        );
        let now = served_serial(&env, "signed.test");
        assert!(now > last, "change {i}: served serial {last} -> {now}");
        assert!(now >= env.state_serial("signed.test").unwrap());
        last = now;
    }

    // A restart of named: the signed serial survives it, and the next
    // change goes past it.
    let mut env = env;
    env.named.restart();
    assert!(eventually(10, || env
        .named
        .soa_serial("signed.test")
        .is_some()));
    assert!(served_serial(&env, "signed.test") >= last);
    last = served_serial(&env, "signed.test");
    import_ok(
        &env,
        &json!([signed_zone("after-restart", "192.0.2.7"), plain]),
    );
    assert!(served_serial(&env, "signed.test") > last);
    let out = validate(&env, "signed.test", "www.signed.test", "A");
    assert!(out.contains("192.0.2.7"), "{out}");

    // A TTL the `default` policy refuses: held, the signed zone stays.
    let mut long = signed_zone("too-long", "192.0.2.8");
    long["records"][0]["ttl"] = json!(90_000);
    let out = env.import(&json!([long, plain]));
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("max-zone-ttl"),
        "{}",
        show(&out)
    );
    assert_eq!(env.named.query("www.signed.test", "A"), ["192.0.2.7"]);

    // The unsigned zone stayed unsigned throughout.
    assert!(rrsigs(&env, "www.plain.test", "A").is_empty());
    assert_eq!(env.named.query("www.plain.test", "A"), ["192.0.2.50"]);
}

/// Queries `domain`'s SOA until `stop`; returns every answer that was not
/// NOERROR.
fn watch(env: &Env, domain: &str, stop: &Arc<AtomicBool>) -> thread::JoinHandle<Vec<String>> {
    let port = env.named.port();
    let domain = domain.to_owned();
    let stop = Arc::clone(stop);
    thread::spawn(move || {
        let mut bad = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let out = Command::new("dig")
                .args(["@127.0.0.1", "-p", &port.to_string(), "+norec", "+time=1"])
                .args(["+tries=1", "+noall", "+comments", &domain, "SOA"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            if !text.contains("status: NOERROR") {
                bad.push(text.into_owned());
            }
        }
        bad
    })
}

#[test]
fn switching_on_and_off_without_a_gap_and_a_recreated_zone() {
    let env = fast_env("except = [\"b.test\"]");
    let a = zone1("za", "a.test", &[("A", "www", "192.0.2.1")]);
    let b = zone1("zb", "b.test", &[("A", "www", "192.0.2.2")]);
    import_ok(&env, &json!([a, b]));
    wait_state(&env, "a.test", "signed");
    assert!(rrsigs(&env, "www.b.test", "A").is_empty());

    // The registrar took a.test's DS: named is told, so it keeps the keys
    // until the DS is withdrawn.
    let out = env.run(&["dnssec", "published", "a.test"]);
    assert!(out.status.success(), "{}", show(&out));

    // a.test off (BIND's insecure policy), b.test on; both served all along.
    set_dnssec_rest(&env, "except = [\"a.test\"]");
    let stop = Arc::new(AtomicBool::new(false));
    let watchers = [watch(&env, "a.test", &stop), watch(&env, "b.test", &stop)];
    let out = env.run(&["rebuild"]);
    assert!(out.status.success(), "{}", show(&out));
    wait_state(&env, "b.test", "signed");
    let include = fs::read_to_string(env.root.join("named.conf.zoneagent")).unwrap();
    assert!(include.contains("dnssec-policy \"insecure\";"), "{include}");
    // a.test keeps its keys and still validates while the DS may be out
    // there. Told the DS is gone, named drops them after the `insecure`
    // policy's own waits (the parent's DS TTL, a day by default).
    let status = dnssec_status(&env, "a.test");
    assert_eq!(status["state"], "unsigning", "{status}");
    assert_eq!(status["policy"], "insecure", "{status}");
    assert_eq!(status["ds"], json!([]), "{status}");
    validate(&env, "a.test", "www.a.test", "A");
    let out = env.run(&["dnssec", "withdrawn", "a.test"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Marked DS as withdrawn"),
        "{}",
        show(&out)
    );
    stop.store(true, Ordering::Relaxed);
    for w in watchers {
        let bad = w.join().unwrap();
        assert!(bad.is_empty(), "answers other than NOERROR: {bad:?}");
    }
    let out = validate(&env, "b.test", "www.b.test", "A");
    assert!(out.contains("192.0.2.2"), "{out}");

    // b.test deleted and re-created under a new uuid: served and signed
    // again, under a serial past everything served before.
    let old = served_serial(&env, "b.test");
    import_ok(&env, &json!([a]));
    assert_eq!(env.named.query_status("b.test", "SOA"), "REFUSED");
    let b2 = zone1("zb2", "b.test", &[("A", "www", "192.0.2.22")]);
    import_ok(&env, &json!([a, b2]));
    wait_state(&env, "b.test", "signed");
    assert!(served_serial(&env, "b.test") > old);
    let out = validate(&env, "b.test", "www.b.test", "A");
    assert!(out.contains("192.0.2.22"), "{out}");

    // Deleted and re-created in one import: the same, with named keeping
    // the zone loaded in between.
    let old = served_serial(&env, "b.test");
    let b3 = zone1("zb3", "b.test", &[("A", "www", "192.0.2.33")]);
    import_ok(&env, &json!([a, b3]));
    assert!(served_serial(&env, "b.test") > old);
    assert_eq!(env.named.query("www.b.test", "A"), ["192.0.2.33"]);
    wait_state(&env, "b.test", "signed");
    let out = validate(&env, "b.test", "www.b.test", "A");
    assert!(out.contains("192.0.2.33"), "{out}");
}

#[test]
fn a_policy_of_named_conf_and_a_ksk_rollover_in_status() {
    let env = fast_env("");
    import_ok(
        &env,
        &json!([zone1("zr", "r.test", &[("A", "www", "192.0.2.3")])]),
    );
    wait_state(&env, "r.test", "signed");
    let before = dnssec_status(&env, "r.test");
    assert_eq!(before["policy"], "fast");
    assert_eq!(before["ds"].as_array().unwrap().len(), 1, "{before}");
    let ds = before["ds"][0].as_str().unwrap().to_owned();
    let tag = ds.split_whitespace().nth(3).unwrap().to_owned();
    let out = env
        .named
        .rndc(&["dnssec", "-rollover", "-key", &tag, "r.test"]);
    assert!(out.status.success(), "{}", show(&out));
    // The new key's DS shows once named publishes it in the CDS.
    assert!(
        eventually(30, || {
            let ds = dnssec_status(&env, "r.test")["ds"].clone();
            ds.as_array().is_some_and(|l| {
                l.iter()
                    .any(|d| d.as_str().and_then(|d| d.split_whitespace().nth(3)) != Some(&tag))
            })
        }),
        "the DS did not change: {}\n{}",
        dnssec_status(&env, "r.test"),
        env.named.log_tail(20)
    );
    validate(&env, "r.test", "www.r.test", "A");
    // `--trust-anchor` prints a clause delv takes as it is.
    let out = env.run(&["dnssec", "ds", "--trust-anchor", "r.test"]);
    assert!(out.status.success(), "{}", show(&out));
    let anchors = env.root.join("r.test.anchors");
    fs::write(&anchors, &out.stdout).unwrap();
    let delv = env.named.delv(&anchors, "r.test", "www.r.test", "A");
    assert!(delv.contains("; fully validated"), "{delv}");
}
