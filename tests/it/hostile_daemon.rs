//! The hostile corpus through the real daemon: every bad event lands in
//! `spool/failed/` with a report, the good events interleaved with them are
//! all served, spool entries that are not regular files or are too large
//! are refused without being opened, and the daemon stays up throughout.

#![allow(clippy::unwrap_used)]

use crate::support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use support::agent::{Daemon, Env, a_event, eventually, list, zone};
use support::hostile::{Row, corpus_dir, manifest, names_field};
use zoneagent::spool::Spool;

#[test]
fn hostile_events_fail_alone_and_the_daemon_stays_up() {
    // Large enough for every corpus file but the 2 MiB one, which must be
    // refused unread as oversized.
    let env = Env::new("[spool]\nmax_event_bytes = 1048576\n");
    let spool = Spool::open(&env.spool(), 1 << 30).unwrap();
    let mut context: Vec<PathBuf> = fs::read_dir(corpus_dir().join("context"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    context.sort();
    for path in &context {
        spool.submit(&fs::read(path).unwrap()).unwrap();
    }
    spool
        .submit(json!({"id": "good-zone", "type": "zone.snapshot", "zone": zone("good-zone", "good.example", &[])}).to_string().as_bytes())
        .unwrap();
    let mut daemon = Daemon::start(&env);
    assert!(
        eventually(20, || env.named.query("good.example", "SOA").len() == 1),
        "{}",
        daemon.log_text()
    );

    // Every hostile event, each followed by a good one. `sync` rows are left
    // out: a valid sync rightly deletes every zone it does not list,
    // the good zone too (their decoding is checked by hostile_corpus).
    let all = manifest();
    let rows: Vec<&Row> = all
        .iter()
        .filter(|r| {
            let bytes = fs::read(corpus_dir().join(&r.file)).unwrap();
            !String::from_utf8_lossy(&bytes).contains("\"type\": \"sync\"")
        })
        .collect();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let bytes = fs::read(corpus_dir().join(&row.file)).unwrap();
        let name = spool.submit(&bytes).unwrap();
        names.insert(name, row.file.clone());
        let good = a_event(
            &format!("good-{i}"),
            None,
            "good-zone",
            &format!("g{i}"),
            &format!("g{i}"),
            "192.0.2.7",
        );
        spool.submit(good.to_string().as_bytes()).unwrap();
    }
    // Entries that must be refused from their lstat alone: a FIFO (opening
    // it for reading would block), a symlink to that FIFO, a large file.
    let new = env.spool().join("new");
    let fifo = new.join("zzzz-fifo.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    std::os::unix::fs::symlink(&fifo, new.join("zzzz-link.json")).unwrap();
    fs::write(new.join("zzzz-big.json"), vec![b' '; 2 << 20]).unwrap();

    assert!(
        eventually(120, || list(&new).is_empty()),
        "spool not drained: {:?}\n{}",
        list(&new),
        daemon.log_text()
    );
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon exited\n{}",
        daemon.log_text()
    );

    // The good events are all served: the zone file named serves (its
    // serial is the one served) holds every one of them; a sample is also
    // asked of named itself.
    // (The daemon holds the state lock, so read the state file itself.)
    let state: Value = serde_json::from_str(
        &fs::read_to_string(env.root.join("state/zones/good-zone.json")).unwrap(),
    )
    .unwrap();
    let serial = u32::try_from(state["deployed"]["serial"].as_u64().unwrap()).unwrap();
    assert!(env.served("good.example", serial));
    let file = fs::read_to_string(env.zone_file("good.example")).unwrap();
    let mut served = 0;
    for i in 0..rows.len() {
        assert!(
            file.contains(&format!("\ng{i}\t300\tIN\tA\t192.0.2.7\n")),
            "good event {i}"
        );
        served += 1;
    }
    for i in [0, rows.len() / 2, rows.len() - 1] {
        assert_eq!(
            env.named.query(&format!("g{i}.good.example"), "A"),
            ["192.0.2.7"],
            "good event {i}"
        );
    }

    // Reports: every file in failed/ has one that parses.
    let failed_dir = env.spool().join("failed");
    let failed = list(&failed_dir);
    let mut reports: BTreeMap<String, Value> = BTreeMap::new();
    for f in failed.iter().filter(|f| f.ends_with(".error.json")) {
        let report: Value =
            serde_json::from_str(&fs::read_to_string(failed_dir.join(f)).unwrap()).unwrap();
        let errors = report["errors"].as_array().unwrap();
        assert!(!errors.is_empty(), "{f}: {report}");
        for e in errors {
            assert!(
                e["detail"].is_string() && e["error_code"].is_string(),
                "{f}: {e}"
            );
        }
        let event = f.trim_end_matches(".error.json").to_owned();
        assert!(failed.contains(&event), "report without its event: {f}");
        reports.insert(event, report);
    }
    for special in ["zzzz-fifo.json", "zzzz-link.json", "zzzz-big.json"] {
        let r = &reports[special]["errors"][0];
        assert_eq!(r["error_code"], "refused", "{special}: {r}");
        assert!(
            r["detail"].as_str().unwrap().contains("not opened"),
            "{special}: {r}"
        );
    }
    assert!(
        fs::symlink_metadata(failed_dir.join("zzzz-link.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // Events that cannot even be decoded fail whatever the state: their
    // report must name the field the manifest names.
    let mut decode_checked = 0;
    let mut in_failed = 0;
    for (name, file) in &names {
        let row = rows.iter().find(|r| &r.file == file).unwrap();
        let bytes = fs::read(corpus_dir().join(file)).unwrap();
        let decoded = std::str::from_utf8(&bytes)
            .ok()
            .map(zoneagent::model::event::decode_event);
        let undecodable = !matches!(decoded, Some(Ok(_)));
        let big = bytes.len() > 1_048_576;
        if reports.contains_key(name) {
            in_failed += 1;
        }
        if undecodable || big {
            let report = reports
                .get(name)
                .unwrap_or_else(|| panic!("{file}: undecodable but not in failed/"));
            if big {
                assert_eq!(report["errors"][0]["error_code"], "refused", "{file}");
            } else if row.expect == "failed" {
                let errors: Vec<zoneagent::error::ApiError> =
                    serde_json::from_value(report["errors"].clone()).unwrap();
                assert!(names_field(&errors, &row.field), "{file}: {report}");
            }
            decode_checked += 1;
        }
    }
    assert!(list(&env.spool().join("tmp")).is_empty());
    println!(
        "hostile events tried: {} (of {}; sync rows left out), in failed/: {in_failed}, \
         undecodable checked for their field: {decode_checked}, special entries refused: 3, \
         good events served: {served}",
        rows.len(),
        all.len()
    );
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0));
}
