//! Every JSON example in the docs parses as what it claims to be, and the
//! README shows one example of every event type.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use zoneagent::error::ApiError;
use zoneagent::model::event::decode_event;

fn json_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```json") => current = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn readme_examples_parse() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks = json_blocks(&readme);
    let mut types = BTreeSet::new();
    for block in &blocks {
        let value: serde_json::Value =
            serde_json::from_str(block).unwrap_or_else(|e| panic!("{e}: {block}"));
        if value.get("type").is_some() {
            let event = decode_event(block).unwrap_or_else(|e| panic!("{e}: {block}"));
            types.insert(event.type_name());
        } else if let Some(errors) = value.get("errors") {
            let errors: Vec<ApiError> = serde_json::from_value(errors.clone()).unwrap();
            assert!(!errors.is_empty());
        } else {
            panic!("a JSON example that is neither an event nor a failure report: {block}");
        }
    }
    let all = [
        "zone.snapshot",
        "zone.created",
        "zone.deleted",
        "record.created",
        "record.updated",
        "record.deleted",
        "sync",
    ];
    assert_eq!(
        types,
        all.into_iter().collect(),
        "one example per event type"
    );
}

#[test]
fn sample_dump_is_valid() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/samples/dump.json"
    ))
    .unwrap();
    let zones: Vec<zoneagent::model::zone::Zone> = zoneagent::model::zone::decode(&text).unwrap();
    let config = zoneagent::config::Config::default();
    for z in &zones {
        let v = zoneagent::validate::validate(z, &config.zone).unwrap();
        assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    }
}
