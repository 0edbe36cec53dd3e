//! Render throughput: validate and render a 20-record zone and a
//! 100,000-record zone. `cargo bench --bench render`; divan prints time per
//! zone and records per second.

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use zoneagent::config::Config;
use zoneagent::model::zone::{Record, Zone};
use zoneagent::render;
use zoneagent::validate;

fn main() {
    divan::main();
}

/// A zone of `n` records with every type, like a hosting customer's.
fn zone(n: usize) -> Zone {
    let mut records = Vec::with_capacity(n);
    let rec = |i: usize, t: &str, name: String, value: String, priority: Option<i64>| Record {
        uuid: format!("r{i}"),
        record_type: t.to_owned(),
        name,
        value: Some(value),
        ttl: Some(3600),
        priority,
        created_at: None,
    };
    records.push(rec(0, "A", "mail".into(), "192.0.2.25".into(), None));
    let dkim = format!(
        "v=DKIM1; k=rsa; p={}",
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA".repeat(8)
    );
    for i in 1..n {
        let host = format!("h{i}");
        let r = match i % 8 {
            0 => rec(
                i,
                "A",
                host,
                format!("192.0.{}.{}", (i / 250) % 250, i % 250),
                None,
            ),
            1 => rec(
                i,
                "AAAA",
                host,
                format!("2001:db8::{:x}:{:x}", i >> 16, i & 0xffff),
                None,
            ),
            2 => rec(i, "CNAME", host, "www.example.net".into(), None),
            3 => rec(i, "MX", host, "mail.example.com".into(), Some(10)),
            4 => rec(
                i,
                "TXT",
                host,
                if i % 16 == 4 {
                    dkim.clone()
                } else {
                    format!("v=spf1 include:_spf{i}.example.net ~all")
                },
                None,
            ),
            5 => rec(
                i,
                "SRV",
                format!("_sip._tcp.{host}"),
                "10 5060 sip.example.net".into(),
                Some(5),
            ),
            6 => rec(i, "CAA", host, "0 issue \"letsencrypt.org\"".into(), None),
            _ => rec(i, "NS", host, "ns1.example.net".into(), None),
        };
        records.push(r);
    }
    Zone {
        uuid: format!("zone-{n}"),
        domain: "example.com".into(),
        created_at: None,
        records,
    }
}

const SIZES: [usize; 2] = [20, 100_000];

#[divan::bench(args = SIZES, sample_count = 20)]
fn validate_zone(bencher: Bencher, n: usize) {
    let z = zone(n);
    let config = Config::default();
    bencher
        .counter(ItemsCount::new(n))
        .bench(|| validate::validate(black_box(&z), &config.zone).is_ok());
}

#[divan::bench(args = SIZES, sample_count = 20)]
fn render_zone(bencher: Bencher, n: usize) {
    let config = Config::default();
    let valid = validate::validate(&zone(n), &config.zone).expect("valid bench zone");
    bencher
        .counter(ItemsCount::new(n))
        .bench(|| render::render(black_box(&valid), &config.render, 2_026_112_600).len());
}

#[divan::bench(args = SIZES, sample_count = 20)]
fn validate_hash_and_render(bencher: Bencher, n: usize) {
    let z = zone(n);
    let config = Config::default();
    bencher.counter(ItemsCount::new(n)).bench(|| {
        let valid = validate::validate(black_box(&z), &config.zone).expect("valid");
        let hash = render::content_hash(&valid, &config.render);
        render::render(&valid, &config.render, 2_026_112_600).len() + hash.len()
    });
}
