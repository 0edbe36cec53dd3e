//! End-to-end: the real binary against a private `named` on loopback.
//! Import → served; record change → new serial served; delete → zone gone
//! and its file archived; a zone BIND refuses → the old one still served;
//! named down → nothing lost, caught up once it is back.

// Tests panic on the unexpected; that is their job.
#![allow(clippy::unwrap_used)]

use crate::support;

use serde_json::json;
use std::fs;
use support::agent::{Env, list, show, zone};

#[test]
fn import_change_delete_and_noop_rebuild() {
    let env = Env::new("");
    let dump = json!([
        zone(
            "z1",
            "example.com",
            &[
                ("A", "@", "192.0.2.1"),
                ("A", "www", "192.0.2.2"),
                ("MX", "@", "mail.example.net")
            ]
        ),
        zone("z2", "myapp.io", &[("TXT", "@", "v=spf1 -all")]),
    ]);
    let out = env.import(&dump);
    assert!(out.status.success(), "{}", show(&out));
    let s1 = env.state_serial("example.com").expect("serial in state");
    assert!(env.served("example.com", s1), "{}", env.named.log_tail(30));
    assert_eq!(env.named.query("www.example.com", "A"), ["192.0.2.2"]);
    assert_eq!(env.named.query("myapp.io", "TXT"), ["\"v=spf1 -all\""]);

    // A no-op rebuild writes nothing and keeps the serial.
    let before = fs::metadata(env.zone_file("example.com"))
        .unwrap()
        .modified()
        .unwrap();
    let out = env.run(&["rebuild"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrote 0 zone(s), 2 unchanged"),
        "{}",
        show(&out)
    );
    assert_eq!(
        fs::metadata(env.zone_file("example.com"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
    assert_eq!(env.state_serial("example.com"), Some(s1));

    // Change a record: a new serial, served.
    let dump = json!([
        zone(
            "z1",
            "example.com",
            &[
                ("A", "@", "192.0.2.1"),
                ("A", "www", "192.0.2.99"),
                ("MX", "@", "mail.example.net")
            ]
        ),
        zone("z2", "myapp.io", &[("TXT", "@", "v=spf1 -all")]),
    ]);
    let out = env.import(&dump);
    assert!(out.status.success(), "{}", show(&out));
    let s2 = env.state_serial("example.com").unwrap();
    assert!(
        s2 > s1 || (s1 > 4_000_000_000 && s2 < 100),
        "serial must move forward: {s1} -> {s2}"
    );
    assert!(env.served("example.com", s2), "{}", env.named.log_tail(30));
    assert_eq!(env.named.query("www.example.com", "A"), ["192.0.2.99"]);
    assert_eq!(env.state_serial("myapp.io").map(|s| s > 0), Some(true));

    // Dry run: a diff on stdout, nothing changed.
    let dump3 = json!([zone("z1", "example.com", &[("A", "@", "192.0.2.7")])]);
    let path = env.root.join("dry.json");
    fs::write(&path, serde_json::to_vec(&dump3).unwrap()).unwrap();
    let out = env.run(&["import", "--dry-run", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(diff.contains("-www\t300\tIN\tA\t192.0.2.99"), "{diff}");
    assert!(diff.contains("+@\t300\tIN\tA\t192.0.2.7"), "{diff}");
    assert_eq!(env.state_serial("example.com"), Some(s2));
    assert!(env.zone_file("myapp.io").exists());

    // Delete: absent from the dump → removed from named, file archived.
    let dump = json!([zone(
        "z1",
        "example.com",
        &[
            ("A", "@", "192.0.2.1"),
            ("A", "www", "192.0.2.99"),
            ("MX", "@", "mail.example.net")
        ]
    )]);
    let out = env.import(&dump);
    assert!(out.status.success(), "{}", show(&out));
    assert!(!env.zone_file("myapp.io").exists());
    let archived = list(&env.root.join("zones/.archive"));
    assert_eq!(archived.len(), 1, "{archived:?}");
    assert!(archived[0].starts_with("myapp.io.zone."), "{archived:?}");
    assert_eq!(env.named.query_status("myapp.io", "SOA"), "REFUSED");
    let include = fs::read_to_string(env.root.join("named.conf.zoneagent")).unwrap();
    assert!(
        !include.contains("myapp.io") && include.contains("example.com"),
        "{include}"
    );

    // Created again: its serial continues past the archived one.
    let out = env.import(&json!([
        zone(
            "z1",
            "example.com",
            &[
                ("A", "@", "192.0.2.1"),
                ("A", "www", "192.0.2.99"),
                ("MX", "@", "mail.example.net")
            ]
        ),
        zone("z3", "myapp.io", &[("TXT", "@", "again")]),
    ]));
    assert!(out.status.success(), "{}", show(&out));
    let old: u32 = archived[0].split('.').nth(3).unwrap().parse().unwrap();
    let new = env.state_serial("myapp.io").unwrap();
    assert!(
        new > old,
        "re-created zone serial {new} must pass the archived {old}"
    );
    assert!(env.served("myapp.io", new));

    // Forced rebuild: every zone rewritten with a new serial.
    let out = env.run(&["rebuild", "--force", "--zone", "example.com"]);
    assert!(out.status.success(), "{}", show(&out));
    let s3 = env.state_serial("example.com").unwrap();
    assert!(s3 > s2);
    assert!(env.served("example.com", s3));
}

#[test]
fn invalid_zone_in_dump_is_reported_and_others_deploy() {
    let env = Env::new("");
    let dump = json!([
        zone("good", "good.test", &[("A", "@", "192.0.2.1")]),
        zone("held", "held.test", &[("MX", "@", "mail_1.example.net")]),
        zone("bad", "bad.test", &[("A", "@", "192.0.2.300")]),
    ]);
    let out = env.import(&dump);
    // The malformed zone makes it invalid input; the held one is held.
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.test") && err.contains("value"), "{err}");
    assert!(err.contains("held: ") && err.contains("held.test"), "{err}");
    let s = env.state_serial("good.test").unwrap();
    assert!(env.served("good.test", s));
    assert!(!env.zone_file("held.test").exists());
    assert!(!env.zone_file("bad.test").exists());
    // The held zone's desired state is kept; the malformed one is not.
    let status: serde_json::Value =
        serde_json::from_slice(&env.run(&["status", "--json"]).stdout).unwrap();
    let held: Vec<&serde_json::Value> = status["zones"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|z| z["state"] == "held")
        .collect();
    assert_eq!(held.len(), 1, "{status}");
    assert_eq!(held[0]["domain"], "held.test");
    assert_eq!(held[0]["errors"][0]["record"], "held-r0");
    // Without the malformed zone, a held zone alone exits 3.
    let out = env.import(&json!([
        zone("good", "good.test", &[("A", "@", "192.0.2.1")]),
        zone("held", "held.test", &[("MX", "@", "mail_1.example.net")]),
    ]));
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
}

/// The API's own zone detail example is served, with a warning about the
/// MX target that has no address.
#[test]
fn the_api_example_zone_is_served_with_a_warning() {
    let env = Env::new("");
    let example = fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/render/api-spec-example/zone.json"),
    )
    .unwrap();
    let zone: serde_json::Value = serde_json::from_str(&example).unwrap();
    let render = env
        .command(&["render", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(example.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(render.status.code(), Some(0), "{}", show(&render));
    assert!(String::from_utf8_lossy(&render.stdout).contains("MX\t10 mail.example.com."));
    assert!(String::from_utf8_lossy(&render.stderr).contains("mail.example.com"));
    let out = env.import(&json!([zone]));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning: "),
        "{}",
        show(&out)
    );
    assert_eq!(
        env.named.query("example.com", "MX"),
        ["10 mail.example.com."]
    );
}

/// An MX whose in-zone target has no address yet, then the address, in
/// separate batches: both end served, nothing fails.
#[test]
fn mx_then_its_address_in_separate_batches_are_both_served() {
    let env = Env::new("");
    let spool = env.spool();
    let submit = |v: serde_json::Value| {
        let s = zoneagent::spool::Spool::open(&spool, 1 << 20).unwrap();
        s.submit(v.to_string().as_bytes()).unwrap();
    };
    submit(json!({"id": "e1", "seq": 1, "type": "zone.created",
        "zone": {"uuid": "z", "domain": "mx.test"}}));
    submit(
        json!({"id": "e2", "seq": 2, "type": "record.created", "zone_uuid": "z",
        "record": {"uuid": "r-mx", "record_type": "MX", "name": "@",
                   "value": "mail.mx.test", "priority": 10}}),
    );
    assert_eq!(env.run(&["run", "--once"]).status.code(), Some(0));
    submit(
        json!({"id": "e3", "seq": 3, "type": "record.created", "zone_uuid": "z",
        "record": {"uuid": "r-a", "record_type": "A", "name": "mail", "value": "192.0.2.25"}}),
    );
    let out = env.run(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(env.named.query("mx.test", "MX"), ["10 mail.mx.test."]);
    assert_eq!(env.named.query("mail.mx.test", "A"), ["192.0.2.25"]);
    assert!(list(&spool.join("failed")).is_empty());
}

#[test]
fn zone_bind_refuses_keeps_the_old_file_served() {
    let env = Env::new("");
    let out = env.import(&json!([zone(
        "z",
        "keep.test",
        &[("A", "www", "192.0.2.1")]
    )]));
    assert!(out.status.success(), "{}", show(&out));
    let s1 = env.state_serial("keep.test").unwrap();
    assert!(env.served("keep.test", s1));
    let before = fs::read_to_string(env.zone_file("keep.test")).unwrap();

    // A checker that refuses everything, as named-checkzone refuses a zone:
    // failure injection, so a stand-in is the right tool here.
    let fake = env.root.join("refuse-checkzone");
    fs::write(&fake, "#!/bin/sh\nfor a; do zone=$file; file=$a; done\necho \"zone $zone/IN: loading from master file $file failed: injected\"\necho \"zone $zone/IN: not loaded due to errors.\"\nexit 1\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut fs::metadata(&fake).unwrap().permissions(),
        0o755,
    );
    fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut config = fs::read_to_string(&env.config).unwrap();
    let fake_toml = serde_json::to_string(&fake.to_string_lossy()).unwrap();
    config = config.replace("[bind]\n", &format!("[bind]\ncheckzone = {fake_toml}\n"));
    fs::write(&env.config, config).unwrap();

    let out = env.import(&json!([zone(
        "z",
        "keep.test",
        &[("A", "www", "192.0.2.66")]
    )]));
    // Held: the desired zone is kept, the old file stays served.
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("injected"),
        "{}",
        show(&out)
    );
    assert_eq!(
        fs::read_to_string(env.zone_file("keep.test")).unwrap(),
        before
    );
    assert_eq!(env.state_serial("keep.test"), Some(s1));
    assert_eq!(env.named.query("www.keep.test", "A"), ["192.0.2.1"]);
    assert!(
        list(&env.root.join("zones"))
            .iter()
            .all(|f| !f.contains(".zone.new"))
    );
}

#[test]
fn named_down_nothing_lost_and_caught_up() {
    let mut env = Env::new("");
    let out = env.import(&json!([zone(
        "z",
        "down.test",
        &[("A", "www", "192.0.2.1")]
    )]));
    assert!(out.status.success(), "{}", show(&out));
    let s1 = env.state_serial("down.test").unwrap();

    env.named.stop();
    let out = env.import(&json!([
        zone("z", "down.test", &[("A", "www", "192.0.2.2")]),
        zone("n", "new.test", &[("A", "@", "192.0.2.3")]),
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("will be retried"),
        "{}",
        show(&out)
    );
    let status = env.run(&["status", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(doc["pending"], 2, "{doc}");
    let s2 = env.state_serial("down.test").unwrap();
    assert!(s2 > s1);
    assert!(
        fs::read_to_string(env.zone_file("down.test"))
            .unwrap()
            .contains("192.0.2.2")
    );

    env.named.restart();
    let out = env.run(&["rebuild"]);
    assert!(out.status.success(), "{}", show(&out));
    let doc: serde_json::Value =
        serde_json::from_slice(&env.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(doc["pending"], 0, "{doc}");
    assert!(env.served("down.test", s2));
    assert_eq!(env.named.query("www.down.test", "A"), ["192.0.2.2"]);
    assert_eq!(env.named.query("new.test", "A"), ["192.0.2.3"]);
}

#[test]
fn second_instance_fails_fast() {
    let env = Env::new("");
    // READY=1 comes after the daemon took the state lock.
    let _daemon = support::agent::Daemon::start(&env);
    let started = std::time::Instant::now();
    let out = env.run(&["rebuild"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another zoneagent"),
        "{}",
        show(&out)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "it must not wait for the lock"
    );
    // `status` only reads, without the lock: it works beside the daemon.
    let out = env.run(&["status", "--json"]);
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn a_batch_checker_that_fails_namelessly_falls_back_to_one_check_per_zone() {
    let env = Env::new("");
    let mut config = fs::read_to_string(&env.config).unwrap();
    config = config.replace("[bind]\n", "[bind]\ncheckconf = \"/bin/false\"\n");
    fs::write(&env.config, config).unwrap();
    let out = env.import(&json!([
        zone("a", "a.test", &[("A", "@", "192.0.2.1")]),
        zone("b", "b.test", &[("A", "@", "192.0.2.2")]),
    ]));
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(env.named.query("a.test", "A"), ["192.0.2.1"]);
    assert_eq!(env.named.query("b.test", "A"), ["192.0.2.2"]);
}

/// A zone deleted and its domain created again under another uuid, in one
/// pass: the new zone is served, also after a restart of `named` (the old
/// zone's file used to be archived after the new one was installed).
#[test]
fn delete_and_recreate_a_domain_in_one_pass_serves_the_new_zone() {
    let mut env = Env::new("");
    let spool = env.spool();
    let submit = |v: serde_json::Value| {
        let s = zoneagent::spool::Spool::open(&spool, 1 << 20).unwrap();
        s.submit(v.to_string().as_bytes()).unwrap();
    };
    submit(json!({"id": "e1", "type": "zone.snapshot",
        "zone": zone("zone-old", "victim.test", &[("A", "www", "192.0.2.1")])}));
    assert_eq!(env.run(&["run", "--once"]).status.code(), Some(0));
    let old = env.state_serial("victim.test").unwrap();
    submit(json!({"id": "e2", "type": "zone.deleted", "zone_uuid": "zone-old"}));
    submit(json!({"id": "e3", "type": "zone.snapshot",
        "zone": zone("zone-new", "victim.test", &[("A", "www", "192.0.2.99")])}));
    let out = env.run(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = fs::read_to_string(env.zone_file("victim.test")).unwrap();
    assert!(text.contains("zone zone-new"), "{text}");
    let new = zoneagent::deploy::soa_serial(&text).unwrap();
    assert!(zoneagent::serial::Serial(new) > zoneagent::serial::Serial(old));
    assert_eq!(env.named.query("www.victim.test", "A"), ["192.0.2.99"]);
    env.named.restart();
    assert_eq!(env.named.query("www.victim.test", "A"), ["192.0.2.99"]);
    // A domain that moves from one uuid to another in one pass, the same.
    submit(json!({"id": "e4", "type": "zone.deleted", "zone_uuid": "zone-new"}));
    submit(json!({"id": "e5", "type": "zone.snapshot",
        "zone": zone("zone-third", "victim.test", &[("A", "www", "192.0.2.3")])}));
    assert_eq!(env.run(&["run", "--once"]).status.code(), Some(0));
    env.named.restart();
    assert_eq!(env.named.query("www.victim.test", "A"), ["192.0.2.3"]);
}

/// A customer zone named like a zone `named.conf` declares itself is held,
/// never written into the include: `named` still restarts and keeps the
/// operator's zone.
#[test]
fn a_zone_named_conf_declares_is_never_taken() {
    let mut env = Env::new("");
    let ops_file = env.named.dir().join("ops.test.zone");
    fs::write(
        &ops_file,
        "$TTL 300\n@ IN SOA ns.ops.test. h.ops.test. 7 1 1 1 1\n@ IN NS ns.ops.test.\nns IN A 192.0.2.53\nwww IN A 192.0.2.7\n",
    )
    .unwrap();
    let conf = env.named.dir().join("named.conf");
    let text = fs::read_to_string(&conf).unwrap();
    let stanza = format!(
        "zone \"ops.test\" {{ type primary; file {}; }};\n",
        serde_json::to_string(&ops_file.to_string_lossy()).unwrap()
    );
    fs::write(&conf, text + &stanza).unwrap();
    env.named.restart();
    let out = env.import(&json!([
        zone("customer", "ops.test", &[("A", "www", "192.0.2.66")]),
        zone("good", "good.test", &[("A", "www", "192.0.2.1")]),
    ]));
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("named's own"));
    let include = fs::read_to_string(env.root.join("named.conf.zoneagent")).unwrap();
    assert!(!include.contains("ops.test"), "{include}");
    assert!(include.contains("good.test"), "{include}");
    assert_eq!(env.named.query("www.ops.test", "A"), ["192.0.2.7"]);
    env.named.restart();
    assert_eq!(env.named.query("www.good.test", "A"), ["192.0.2.1"]);
    assert_eq!(env.named.query("www.ops.test", "A"), ["192.0.2.7"]);
}

/// A zone held by a stricter configuration is deployed by the rebuild that
/// follows a configuration change making it servable.
#[test]
fn a_configuration_change_releases_a_held_zone() {
    let env = Env::new("[validate]\nstrict = true\n");
    let dump = json!([zone("z", "strict.test", &[("MX", "@", "mail.strict.test")])]);
    let out = env.import(&dump);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(!env.zone_file("strict.test").exists());
    let config = fs::read_to_string(&env.config).unwrap();
    fs::write(
        &env.config,
        config.replace("strict = true", "strict = false"),
    )
    .unwrap();
    let out = env.run(&["rebuild"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        env.named.query("strict.test", "MX"),
        ["10 mail.strict.test."]
    );
}
