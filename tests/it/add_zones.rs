//! `bind.add_zones` against a real `named`, through the agent's own
//! control-channel client: new zones go to `named` by `rndc addzone`,
//! deleted ones leave by `rndc delzone`, and the include file never lists
//! an added zone. Restarts of `named` and of the agent (every `run --once`
//! is a new agent process) keep the served set exactly.

// Tests panic on the unexpected; that is their job.
#![allow(clippy::unwrap_used)]

use crate::support;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fs;
use support::agent::{Env, show, zone};

fn submit(env: &Env, events: &[Value]) {
    let s = zoneagent::spool::Spool::open(&env.spool(), 1 << 20).unwrap();
    for e in events {
        s.submit(e.to_string().as_bytes()).unwrap();
    }
    let out = env.run(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

/// Every domain of `all` that `named` answers for.
fn served(env: &Env, all: &BTreeSet<String>) -> BTreeSet<String> {
    all.iter()
        .filter(|d| env.named.query_status(d, "SOA") == "NOERROR")
        .cloned()
        .collect()
}

fn include_lists(env: &Env) -> BTreeSet<String> {
    let text = fs::read_to_string(env.root.join("named.conf.zoneagent")).unwrap();
    zoneagent::bind::conf::listed_domains(&text)
}

fn added(env: &Env) -> BTreeSet<String> {
    fs::read_to_string(env.root.join("state").join("added.json"))
        .map(|t| serde_json::from_str::<BTreeSet<String>>(&t).unwrap())
        .unwrap_or_default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn added_and_deleted_zones_survive_restarts_of_named_and_of_the_agent() {
    let mut env = Env::new("control = \"rndc\"\nadd_zones = true\n");
    // A bulk import (more zones than one batch adds one by one) goes
    // through the include and one reconfig.
    let bulk: Vec<Value> = (0..70)
        .map(|i| {
            zone(
                &format!("bulk-{i}"),
                &format!("bulk{i}.test"),
                &[("A", "@", "192.0.2.1")],
            )
        })
        .collect();
    let out = env.import(&Value::Array(bulk));
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(include_lists(&env).len(), 70);
    assert!(added(&env).is_empty());

    let mut everything: BTreeSet<String> = (0..70).map(|i| format!("bulk{i}.test")).collect();
    everything.extend(set(&["new1.test", "new2.test", "new3.test"]));

    // New zones: addzone. A deleted include zone: delzone.
    submit(
        &env,
        &[
            json!({"id": "c1", "type": "zone.created",
                   "zone": {"uuid": "n1", "domain": "new1.test", "created_at": "2026-01-01T00:00:00Z"}}),
            json!({"id": "c2", "type": "zone.snapshot",
                   "zone": zone("n2", "new2.test", &[("A", "www", "192.0.2.7")])}),
            json!({"id": "c3", "type": "zone.created",
                   "zone": {"uuid": "n3", "domain": "new3.test", "created_at": "2026-01-01T00:00:00Z"}}),
            json!({"id": "d1", "type": "zone.deleted", "zone_uuid": "bulk-0"}),
        ],
    );
    assert_eq!(added(&env), set(&["new1.test", "new2.test", "new3.test"]));
    let listed = include_lists(&env);
    assert_eq!(listed.len(), 69);
    assert!(
        listed.is_disjoint(&added(&env)),
        "a zone both added and listed"
    );
    let mut want: BTreeSet<String> = everything.clone();
    want.remove("bulk0.test");
    assert_eq!(served(&env, &everything), want);
    assert_eq!(env.named.query("www.new2.test", "A"), ["192.0.2.7"]);
    let log = env.named.log_tail(400);
    assert!(!log.contains("already exists"), "{log}");

    // A change to an added zone is a plain reload; an added zone deleted
    // leaves named's new-zone database too.
    submit(
        &env,
        &[
            support::agent::a_event("r1", None, "n2", "n2-new", "api", "192.0.2.8"),
            json!({"id": "d3", "type": "zone.deleted", "zone_uuid": "n3"}),
        ],
    );
    want.remove("new3.test");
    assert_eq!(added(&env), set(&["new1.test", "new2.test"]));
    assert_eq!(served(&env, &everything), want);
    assert_eq!(env.named.query("api.new2.test", "A"), ["192.0.2.8"]);

    // named restarts: include + its new-zone database, the same set.
    env.named.restart();
    assert_eq!(
        served(&env, &everything),
        want,
        "{}",
        env.named.log_tail(40)
    );
    assert_eq!(env.named.query("api.new2.test", "A"), ["192.0.2.8"]);
    // A reconfig with both homes in place is clean.
    assert!(env.named.rndc(&["reconfig"]).status.success());
    assert_eq!(served(&env, &everything), want);

    // A new agent process after the restart: the next change and the
    // next deletion work on both kinds of zone.
    submit(
        &env,
        &[
            support::agent::a_event("r2", None, "n1", "n1-a", "www", "192.0.2.9"),
            json!({"id": "d4", "type": "zone.deleted", "zone_uuid": "n2"}),
            json!({"id": "d5", "type": "zone.deleted", "zone_uuid": "bulk-1"}),
        ],
    );
    want.remove("new2.test");
    want.remove("bulk1.test");
    assert_eq!(served(&env, &everything), want);
    assert_eq!(env.named.query("www.new1.test", "A"), ["192.0.2.9"]);
    env.named.restart();
    assert_eq!(
        served(&env, &everything),
        want,
        "{}",
        env.named.log_tail(40)
    );
    assert_eq!(added(&env), set(&["new1.test"]));
    let log = env.named.log_tail(2000);
    assert!(!log.contains("already exists"), "{log}");

    // And the agent agrees: nothing pending, a no-op rebuild writes nothing.
    let doc: Value = serde_json::from_slice(&env.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(doc["pending"], 0, "{doc}");
    let out = env.run(&["rebuild"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(served(&env, &everything), want);
}

#[test]
fn without_allow_new_zones_new_zones_go_through_the_include() {
    let env = Env::new("control = \"rndc\"\nadd_zones = true\n");
    // This named does not allow addzone.
    let conf = env.named.dir().join("named.conf");
    let text = fs::read_to_string(&conf).unwrap();
    fs::write(&conf, text.replace("allow-new-zones yes;", "")).unwrap();
    assert!(env.named.rndc(&["reconfig"]).status.success());
    submit(
        &env,
        &[json!({"id": "c1", "type": "zone.created",
                 "zone": {"uuid": "n1", "domain": "new1.test", "created_at": "2026-01-01T00:00:00Z"}})],
    );
    assert_eq!(env.named.query_status("new1.test", "SOA"), "NOERROR");
    assert_eq!(include_lists(&env), set(&["new1.test"]));
    assert!(added(&env).is_empty());
}

#[test]
fn zones_added_and_listed_while_named_is_down_are_all_served_once_it_is_back() {
    let mut env = Env::new("control = \"rndc\"\nadd_zones = true\n");
    env.named.stop();
    // 70 zones go through the include, one through addzone: both wait.
    let bulk: Vec<Value> = (0..70)
        .map(|i| {
            zone(
                &format!("bulk-{i}"),
                &format!("bulk{i}.test"),
                &[("A", "@", "192.0.2.1")],
            )
        })
        .collect();
    let out = env.import(&Value::Array(bulk));
    assert!(!out.status.success(), "{}", show(&out));
    let s = zoneagent::spool::Spool::open(&env.spool(), 1 << 20).unwrap();
    s.submit(
        json!({"id": "c1", "type": "zone.created",
               "zone": {"uuid": "n1", "domain": "new1.test", "created_at": "2026-01-01T00:00:00Z"}})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let out = env.run(&["run", "--once"]);
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(added(&env), set(&["new1.test"]));

    // named is back: one pass reconfigures for the include's zones and
    // adds the other.
    env.named.restart();
    let out = env.run(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let mut everything: BTreeSet<String> = (0..70).map(|i| format!("bulk{i}.test")).collect();
    everything.insert("new1.test".to_owned());
    assert_eq!(served(&env, &everything), everything);
    env.named.restart();
    assert_eq!(served(&env, &everything), everything);
}
