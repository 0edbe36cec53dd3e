//! `zoneagent adopt`, round trip: hand-written zone files (generated from a
//! seed, with `$INCLUDE`, `$ORIGIN`, `$GENERATE`, relative and absolute names, blank
//! owners, parentheses, comments, every API type and one that is not) go
//! through adopt, then `import` into a private `named`, then AXFR, and
//! give the same RRsets for the eight API types as the files say. TXT is
//! compared by the concatenation of its strings.
//!
//! The expected RRsets come from the generator itself, not from BIND or
//! the agent. Seed: `ZONEAGENT_ADOPT_SEED`.

#![allow(clippy::unwrap_used)]

use crate::support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use support::agent::{Env, show};
use support::crash::{XorShift, seed};

/// (owner, type) → (TTL, RDATA set); TXT RDATA is the concatenation.
type RrSets = BTreeMap<(String, String), (i64, BTreeSet<String>)>;

const TXT_PIECES: [&str; 8] = [
    "v=spf1 -all",
    "say \\\"hi\\\"",
    "semi;colon",
    "back\\\\slash",
    "k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ",
    "",
    "(paren)",
    "$ORIGIN not.a.directive",
];

/// Unescapes one presentation character-string body (`\"`, `\\`, `\DDD`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if b.len() >= i + 4 && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
                out.push(s[i + 1..i + 4].parse::<u8>().unwrap());
                i += 4;
            } else {
                out.push(b[i + 1]);
                i += 2;
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The concatenated text of TXT RDATA as dig or a zone file writes it.
fn txt_concat(rdata: &str) -> String {
    let mut out = String::new();
    let mut rest = rdata.trim();
    while let Some(start) = rest.find('"') {
        let body = &rest[start + 1..];
        let mut end = 0;
        let bytes = body.as_bytes();
        while bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        out.push_str(&unescape(&body[..end]));
        rest = &body[end + 1..];
    }
    out
}

/// One generated zone: the files and what they must serve.
struct Generated {
    domain: String,
    expected: RrSets,
}

fn add(expected: &mut RrSets, owner: &str, rtype: &str, ttl: i64, rdata: String) {
    let e = expected
        .entry((owner.to_owned(), rtype.to_owned()))
        .or_insert_with(|| (ttl, BTreeSet::new()));
    assert_eq!(e.0, ttl, "the generator keeps one TTL per RRset");
    e.1.insert(rdata);
}

/// Writes `<domain>.zone` (and its includes) into `dir`.
fn generate(dir: &Path, domain: &str, rng: &mut XorShift) -> Generated {
    let mut ex = RrSets::new();
    let mut main = String::new();
    let mut inc = String::new();
    let mut inc_sub = String::new();
    let d = domain;
    let ttl_default = 600;
    // One TTL per RRset, sometimes the default (then often left out).
    let mut ttls: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut ttl_for = |owner: &str, rtype: &str, rng: &mut XorShift| -> (i64, String) {
        let t = *ttls
            .entry((owner.to_owned(), rtype.to_owned()))
            .or_insert_with(|| [ttl_default, 60, 300, 86400][rng.index(4)]);
        let written = if t == ttl_default && rng.chance(60) {
            String::new()
        } else {
            format!("{t} ")
        };
        (t, written)
    };
    writeln!(main, "; hand-written zone for {d}\n$TTL {ttl_default}").unwrap();
    writeln!(
        main,
        "@ IN SOA ns1.{d}. hostmaster.{d}. ( 2024010101 ; serial\n  7200 3600 1209600 300 )"
    )
    .unwrap();
    writeln!(main, "  IN NS ns1\n  IN NS ns2.example.net.").unwrap();
    writeln!(main, "ns1 IN A 192.0.2.53").unwrap();
    add(&mut ex, &format!("ns1.{d}."), "A", 600, "192.0.2.53".into());
    // mail: in-zone target for MX and SRV, written relative.
    let (t, w) = ttl_for("mail", "A", rng);
    writeln!(main, "mail {w}A 192.0.2.25").unwrap();
    add(&mut ex, &format!("mail.{d}."), "A", t, "192.0.2.25".into());
    let hosts = ["@", "www", "api", "*.wild", "deep.a.b"];
    for _ in 0..(8 + rng.below(8)) {
        let h = hosts[rng.index(hosts.len())];
        let fq = if h == "@" {
            format!("{d}.")
        } else {
            format!("{h}.{d}.")
        };
        // The owner three ways: relative, absolute, or blank (the
        // previous owner) right after a line with the same owner.
        let owner = if rng.chance(30) {
            fq.clone()
        } else {
            h.to_owned()
        };
        match rng.below(5) {
            0 => {
                let (t, w) = ttl_for(h, "A", rng);
                let a = format!("198.51.100.{}", rng.below(250) + 1);
                writeln!(main, "{owner} {w}IN A {a}").unwrap();
                if rng.chance(40) {
                    let b = format!("198.51.100.{}", rng.below(250) + 1);
                    // Blank owner: same name; class before the TTL.
                    let w = if w.is_empty() {
                        String::new()
                    } else {
                        format!("IN {w}")
                    };
                    writeln!(main, "   {w}A {b}").unwrap();
                    add(&mut ex, &fq, "A", t, b);
                }
                add(&mut ex, &fq, "A", t, a);
            }
            1 => {
                let (t, w) = ttl_for(h, "AAAA", rng);
                let a: std::net::Ipv6Addr = format!("2001:db8::{:x}", rng.below(0xffff) + 1)
                    .parse()
                    .unwrap();
                // Written long-hand; BIND prints it compressed.
                let long = a
                    .segments()
                    .iter()
                    .map(|s| format!("{s:04x}"))
                    .collect::<Vec<_>>()
                    .join(":");
                writeln!(main, "{owner} {w}AAAA {long}").unwrap();
                add(&mut ex, &fq, "AAAA", t, a.to_string());
            }
            2 => {
                let (t, w) = ttl_for(h, "MX", rng);
                let p = rng.below(50);
                if rng.chance(50) {
                    writeln!(main, "{owner} {w}MX {p} mail").unwrap();
                    add(&mut ex, &fq, "MX", t, format!("{p} mail.{d}."));
                } else {
                    writeln!(main, "{owner} {w}MX {p} mx.example.net.").unwrap();
                    add(&mut ex, &fq, "MX", t, format!("{p} mx.example.net."));
                }
            }
            3 => {
                let (t, w) = ttl_for(h, "TXT", rng);
                let n = 1 + rng.index(3);
                let parts: Vec<&str> = (0..n)
                    .map(|_| TXT_PIECES[rng.index(TXT_PIECES.len())])
                    .collect();
                let quoted: Vec<String> = parts.iter().map(|p| format!("\"{p}\"")).collect();
                if rng.chance(30) {
                    writeln!(
                        main,
                        "{owner} {w}TXT (\n    {} ) ; split",
                        quoted.join("\n    ")
                    )
                    .unwrap();
                } else {
                    writeln!(main, "{owner} {w}TXT {}", quoted.join(" ")).unwrap();
                }
                let text: String = parts.iter().map(|p| unescape(p)).collect();
                add(&mut ex, &fq, "TXT", t, text);
            }
            _ => {
                let (t, w) = ttl_for(h, "CAA", rng);
                let (tag, v) = [
                    ("issue", "letsencrypt.org"),
                    ("issuewild", ";"),
                    ("iodef", "mailto:sec@example.net"),
                ][rng.index(3)];
                writeln!(main, "{owner} {w}CAA 0 {tag} \"{v}\"").unwrap();
                add(&mut ex, &fq, "CAA", t, format!("0 {tag} \"{v}\""));
            }
        }
    }
    // A long TXT split at 255 (same form) and one over 255 split elsewhere.
    let long = "x".repeat(300);
    writeln!(main, "long TXT \"{}\" \"{}\"", &long[..255], &long[255..]).unwrap();
    add(&mut ex, &format!("long.{d}."), "TXT", 600, long.clone());
    writeln!(main, "long2 TXT \"{}\" \"{}\"", &long[..100], &long[100..]).unwrap();
    add(&mut ex, &format!("long2.{d}."), "TXT", 600, long);
    // A CNAME (alone at its name), a delegation, a type the API lacks.
    writeln!(main, "ftp CNAME www.example.net.").unwrap();
    add(
        &mut ex,
        &format!("ftp.{d}."),
        "CNAME",
        600,
        "www.example.net.".into(),
    );
    writeln!(main, "deleg 3600 NS ns.example.net.").unwrap();
    add(
        &mut ex,
        &format!("deleg.{d}."),
        "NS",
        3600,
        "ns.example.net.".into(),
    );
    writeln!(main, "ptr PTR host.example.net.").unwrap();
    // Relative $INCLUDE, no origin: records relative to the zone.
    writeln!(main, "$INCLUDE {d}.inc").unwrap();
    writeln!(
        inc,
        "_sip._tcp 300 SRV 10 5 5060 mail\n_sip._tcp 300 SRV 20 0 5061 sip.example.net."
    )
    .unwrap();
    add(
        &mut ex,
        &format!("_sip._tcp.{d}."),
        "SRV",
        300,
        format!("10 5 5060 mail.{d}."),
    );
    add(
        &mut ex,
        &format!("_sip._tcp.{d}."),
        "SRV",
        300,
        "20 0 5061 sip.example.net.".into(),
    );
    writeln!(inc, "inc IN AAAA 2001:db8::53").unwrap();
    add(
        &mut ex,
        &format!("inc.{d}."),
        "AAAA",
        600,
        "2001:db8::53".into(),
    );
    // $INCLUDE with an origin, and a relative $ORIGIN inside it.
    writeln!(main, "$INCLUDE sub-{d}.inc sub.{d}.").unwrap();
    writeln!(
        inc_sub,
        "host A 203.0.113.7\n$ORIGIN dept\nbox A 203.0.113.8\n@ TXT \"in dept\""
    )
    .unwrap();
    add(
        &mut ex,
        &format!("host.sub.{d}."),
        "A",
        600,
        "203.0.113.7".into(),
    );
    add(
        &mut ex,
        &format!("box.dept.sub.{d}."),
        "A",
        600,
        "203.0.113.8".into(),
    );
    add(
        &mut ex,
        &format!("dept.sub.{d}."),
        "TXT",
        600,
        "in dept".into(),
    );
    // $GENERATE (BIND's own directive) expands to one RR per step.
    let (lo, hi) = (1 + rng.below(5), 6 + rng.below(4));
    writeln!(main, "$GENERATE {lo}-{hi} gen$ 120 A 198.18.0.$").unwrap();
    for i in lo..=hi {
        add(
            &mut ex,
            &format!("gen{i}.{d}."),
            "A",
            120,
            format!("198.18.0.{i}"),
        );
    }
    // After an $INCLUDE the origin is the zone again.
    writeln!(main, "after A 192.0.2.99").unwrap();
    add(
        &mut ex,
        &format!("after.{d}."),
        "A",
        600,
        "192.0.2.99".into(),
    );
    fs::write(dir.join(format!("{d}.zone")), main).unwrap();
    fs::write(dir.join(format!("{d}.inc")), inc).unwrap();
    fs::write(dir.join(format!("sub-{d}.inc")), inc_sub).unwrap();
    Generated {
        domain: d.to_owned(),
        expected: ex,
    }
}

/// AXFR from the private `named`: the RRsets of the eight types, without
/// the apex NS (the agent writes its own).
fn axfr(port: u16, domain: &str) -> RrSets {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string()])
        .args(["+noall", "+answer", "+time=3", "+tries=1", "AXFR", domain])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut sets = RrSets::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
    {
        let mut rest = line;
        let mut f = Vec::new();
        for _ in 0..4 {
            rest = rest.trim_start();
            let end = rest.find(char::is_whitespace).unwrap();
            f.push(&rest[..end]);
            rest = &rest[end..];
        }
        let (owner, ttl, rtype, rdata) = (
            f[0].to_ascii_lowercase(),
            f[1].parse().unwrap(),
            f[3],
            rest.trim(),
        );
        if rtype == "SOA" || (rtype == "NS" && owner == format!("{domain}.")) {
            continue;
        }
        let rdata = if rtype == "TXT" {
            txt_concat(rdata)
        } else {
            rdata.to_owned()
        };
        let e = sets
            .entry((owner, rtype.to_owned()))
            .or_insert_with(|| (ttl, BTreeSet::new()));
        assert_eq!(e.0, ttl);
        e.1.insert(rdata);
    }
    assert!(!sets.is_empty(), "empty AXFR of {domain}: {text}");
    sets
}

#[test]
fn adopt_import_axfr_round_trip() {
    let env = Env::new("[zone]\noptions = \"allow-transfer { 127.0.0.1; };\"\n");
    let base = seed("ZONEAGENT_ADOPT_SEED", 0x00ad_0b7e);
    for round in 0..3u64 {
        let mut rng = XorShift::new(base.wrapping_add(round));
        let dir = env.root.join(format!("hand-{round}"));
        fs::create_dir_all(&dir).unwrap();
        let zones: Vec<Generated> = (0..3)
            .map(|i| generate(&dir, &format!("z{i}-r{round}.example"), &mut rng))
            .collect();
        let dir_arg = dir.to_str().unwrap();
        let out = env.run(&["adopt", "--json", dir_arg]);
        assert!(
            out.status.success(),
            "seed {base:#x} round {round}: {}",
            show(&out)
        );
        // Adopting twice gives the same dump.
        let again = env.run(&["adopt", "--json", dir_arg]);
        assert_eq!(out.stdout, again.stdout, "adopt is not stable");
        let dump: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(dump.as_array().unwrap().len(), zones.len());
        // Nothing dropped silently: the SOA, the apex NS pair, the PTR and
        // the TXT split elsewhere than at 255 are reported, per record.
        let reports: Vec<Value> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for z in &zones {
            let about: Vec<&Value> = reports
                .iter()
                .filter(|r| {
                    r["detail"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("zone {}:", z.domain))
                })
                .collect();
            let count = |code: &str| about.iter().filter(|r| r["error_code"] == code).count();
            assert_eq!(count("not_adopted"), 3, "{about:?}");
            assert_eq!(count("unsupported_type"), 1, "{about:?}");
            assert!(count("change_of_form") >= 1, "{about:?}");
            assert!(
                about.iter().all(|r| r["error_code"] != "validation_error"),
                "{about:?}"
            );
        }
        let out = env.import(&dump);
        assert!(
            out.status.success(),
            "seed {base:#x} round {round}: {}",
            show(&out)
        );
        for z in &zones {
            let serial = env.state_serial(&z.domain).unwrap();
            assert!(env.served(&z.domain, serial), "{}", env.named.log_tail(20));
            let served = axfr(env.named.port(), &z.domain);
            assert_eq!(
                served, z.expected,
                "seed {base:#x} round {round} zone {}",
                z.domain
            );
        }
        // The same zones through the named.conf that lists them.
        let conf = dir.join("named.conf");
        let mut text = format!("options {{ directory \"{dir_arg}\"; }};\n");
        for z in &zones {
            writeln!(
                text,
                "zone \"{0}\" {{ type primary; file \"{0}.zone\"; }};",
                z.domain
            )
            .unwrap();
        }
        text.push_str("zone \"sec.example\" { type secondary; primaries { 192.0.2.1; }; file \"sec.db\"; };\n");
        fs::write(&conf, text).unwrap();
        let by_conf = env.run(&["adopt", "--json", "--named-conf", conf.to_str().unwrap()]);
        assert!(by_conf.status.success(), "{}", show(&by_conf));
        let conf_dump: Value = serde_json::from_slice(&by_conf.stdout).unwrap();
        assert_eq!(conf_dump, dump);
    }
}

#[test]
fn a_zone_bind_cannot_load_stops_without_a_partial_dump() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("good.example.zone"),
        "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("bad.example.zone"),
        "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 999.0.2.1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zoneagent"))
        .args(["adopt", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(out.stdout.is_empty(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.example"),
        "{}",
        show(&out)
    );
}

#[test]
fn sources_are_named_three_ways() {
    let dir = tempfile::tempdir().unwrap();
    let zone = "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.2\n";
    fs::write(dir.path().join("db.one.example"), zone).unwrap();
    fs::write(dir.path().join("two-hosts"), zone).unwrap();
    let run = |args: &[String]| {
        Command::new(env!("CARGO_BIN_EXE_zoneagent"))
            .arg("adopt")
            .args(args)
            .output()
            .unwrap()
    };
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let out = run(&[
        p("db.one.example"),
        format!("two.example={}", p("two-hosts")),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let dump: Value = serde_json::from_slice(&out.stdout).unwrap();
    let domains: Vec<&str> = dump
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["domain"].as_str().unwrap())
        .collect();
    assert_eq!(domains, ["one.example", "two.example"]);
    // `ns` and `www`; the SOA and the apex NS are reported.
    assert_eq!(dump[0]["records"].as_array().unwrap().len(), 2);
    // A file whose name gives no domain, and a zone given twice.
    let out = run(&[p("two-hosts")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DOMAIN=FILE"),
        "{}",
        show(&out)
    );
    let out = run(&[
        p("db.one.example"),
        format!("one.example={}", p("two-hosts")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("twice"),
        "{}",
        show(&out)
    );
}
