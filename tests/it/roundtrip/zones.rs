//! Strategies for API zones, built so that most pass validation, each with
//! the records the generator meant, worked out without zoneagent.
//!
//! Inputs are written as the API's users write them (`@`, relative names,
//! names with and without the trailing dot, mixed case, Unicode, `_`
//! labels, wildcards, quoted CAA values with escapes, stray priorities) and
//! carry a model of their meaning: owner and targets as absolute lower-case
//! names, text as octets. The model is a second, independent expectation:
//! it catches validation that accepts a record but changes what it says.
//!
//! Validity is mostly by construction: A, AAAA and MX owners are hostnames,
//! NS, MX and SRV targets inside the zone usually get an address record, and
//! a CNAME that would share its name with other data is dropped. What is
//! left to chance (a target without an address, a name over 253 characters,
//! two CNAMEs at one name) is what validation must refuse, and the property
//! counts those refusals.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};

use zoneagent::model::name::{Name, parse_target};
use zoneagent::model::zone::{Record, Zone};
use zoneagent::render::{RenderOptions, SoaFields};
use zoneagent::validate::{MAX_TTL, ZoneDefaults};

use super::oracle::{Bytes, Rd, Rr};

/// One generated zone and everything needed to render and judge it.
#[derive(Clone)]
pub struct Case {
    pub zone: Zone,
    pub defaults: ZoneDefaults,
    pub options: RenderOptions,
    pub serial: u32,
    /// What the generator meant, SOA included.
    pub intended: BTreeSet<Rr>,
}

impl fmt::Debug for Case {
    /// The zone as API JSON, ready to paste into a regression test.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::to_string_pretty(&self.zone).map_err(|_| fmt::Error)?;
        write!(
            f,
            "\n---- zone ----\n{json}\n---- default_ttl {}, nameservers {:?}, serial {} ----\n",
            self.defaults.default_ttl,
            self.defaults
                .nameservers
                .iter()
                .map(Name::as_str)
                .collect::<Vec<_>>(),
            self.serial
        )
    }
}

/// A name parsed with zoneagent itself: only for configuration values
/// (nameservers, SOA), which are not under test here.
pub fn config_name(s: &str) -> Name {
    parse_target(s, &Name::root(), false).expect("a valid configuration name")
}

/// Flips the case of ASCII letters where `seed` has a bit set.
pub fn mix_case(s: &str, seed: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if seed >> (i % 64) & 1 == 1 {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect()
}

/// A label as written, and as the lower-case A-label it means.
#[derive(Debug, Clone)]
struct Label {
    written: String,
    canon: String,
}

impl Label {
    fn ascii(s: &str, seed: u64) -> Self {
        Self {
            written: mix_case(s, seed),
            canon: s.to_ascii_lowercase(),
        }
    }
}

/// A label that is a hostname label (RFC 1123 §2.1). A small pool so names
/// collide: RRsets with several records, duplicates, owners shared by
/// several types.
fn host_label() -> impl Strategy<Value = Label> {
    let ascii = prop_oneof![
        6 => select(vec!["www", "mail", "a", "b", "ns1", "sub", "x-1", "0", "123"])
            .prop_map(str::to_owned),
        3 => "[a-z0-9]{1,6}(-[a-z0-9]{1,6})?",
        1 => "[a-z0-9]{63}",
    ];
    // UTS #46: Unicode and upper-case A-labels map to the lower-case A-label.
    let unicode = select(vec![
        ("café", "xn--caf-dma"),
        ("Café", "xn--caf-dma"),
        ("bücher", "xn--bcher-kva"),
        ("日本", "xn--wgv71a"),
        ("xn--caf-dma", "xn--caf-dma"),
        ("XN--Caf-DMA", "xn--caf-dma"),
    ])
    .prop_map(|(w, c)| Label {
        written: w.to_owned(),
        canon: c.to_owned(),
    });
    prop_oneof![
        10 => (ascii, any::<u64>()).prop_map(|(s, seed)| Label::ascii(&s, seed)),
        1 => unicode,
    ]
}

/// Any label an owner (or CNAME target) may hold: hostname labels and
/// the `_` and hyphen-edged labels of service names.
fn any_label() -> impl Strategy<Value = Label> {
    let other = prop_oneof![
        "_[a-z0-9]{1,8}",
        "_[a-z]{1,3}_[a-z]{1,3}",
        "-[a-z]{1,3}",
        "[a-z]{1,3}-",
        Just("_".to_owned()),
    ];
    prop_oneof![
        3 => host_label(),
        2 => (other, any::<u64>()).prop_map(|(s, seed)| Label::ascii(&s, seed)),
    ]
}

/// The zone's domain, as written and as the name it means.
#[derive(Debug, Clone)]
struct Domain {
    written: String,
    canon: String,
}

impl Domain {
    /// The domain as written after a name, for fully qualified names.
    fn suffix(&self, seed: u64) -> String {
        mix_case(self.written.trim_end_matches('.'), seed)
    }
}

fn domain() -> impl Strategy<Value = Domain> {
    let fixed = select(vec![
        ("example.com", "example.com"),
        ("Example.COM.", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("test", "test"),
        ("xn--bcher-kva.example.", "xn--bcher-kva.example"),
    ])
    .prop_map(|(w, c)| Domain {
        written: w.to_owned(),
        canon: c.to_owned(),
    });
    // Random domains end in a TLD that no outside target uses.
    let random = (
        vec("[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,4})?", 1..=3),
        select(vec!["com", "test", "example"]),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(labels, tld, dot, seed)| {
            let canon = format!("{}.{tld}", labels.join("."));
            let mut written = mix_case(&canon, seed);
            if dot {
                written.push('.');
            }
            Domain { written, canon }
        });
    prop_oneof![2 => fixed, 1 => random]
}

/// How a name inside the zone is written.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// `@` for the apex, the leading labels otherwise.
    Relative,
    /// Followed by the zone's domain, without the trailing dot.
    Fqdn,
    /// Followed by the zone's domain and a trailing dot.
    FqdnDot,
}

fn form() -> impl Strategy<Value = Form> {
    prop_oneof![3 => Just(Form::Relative), 1 => Just(Form::Fqdn), 1 => Just(Form::FqdnDot)]
}

/// An owner name: a wildcard, labels (none for the apex), how it is written.
#[derive(Debug, Clone)]
struct Owner {
    wildcard: bool,
    labels: Vec<Label>,
    form: Form,
    seed: u64,
}

impl Owner {
    /// The owner as written, and the absolute lower-case name it means
    /// (without the trailing dot).
    fn write(&self, domain: &Domain) -> (String, String) {
        let mut written: Vec<&str> = Vec::new();
        let mut canon: Vec<&str> = Vec::new();
        if self.wildcard {
            written.push("*");
            canon.push("*");
        }
        for l in &self.labels {
            written.push(&l.written);
            canon.push(&l.canon);
        }
        let rel_written = written.join(".");
        let rel_canon = canon.join(".");
        let zone = &domain.canon;
        let suffixed = |dot: bool| {
            let mut w = if rel_written.is_empty() {
                domain.suffix(self.seed)
            } else {
                format!("{rel_written}.{}", domain.suffix(self.seed))
            };
            if dot {
                w.push('.');
            }
            let c = if rel_canon.is_empty() {
                zone.clone()
            } else {
                format!("{rel_canon}.{zone}")
            };
            (w, c)
        };
        match self.form {
            Form::Relative if rel_written.is_empty() => ("@".to_owned(), zone.clone()),
            // A relative name that is the zone or ends in it is taken as
            // fully qualified (zoneagent::model::name::parse_owner).
            Form::Relative if rel_canon == *zone || rel_canon.ends_with(&format!(".{zone}")) => {
                (rel_written, rel_canon)
            }
            Form::Relative => (rel_written, format!("{rel_canon}.{zone}")),
            Form::Fqdn => suffixed(false),
            Form::FqdnDot => suffixed(true),
        }
    }
}

/// An owner; `wildcard` is the chance of a leading `*` label.
fn owner(label: BoxedStrategy<Label>, wildcard: f64) -> impl Strategy<Value = Owner> {
    (
        prop::bool::weighted(wildcard),
        prop_oneof![1 => Just(0_usize), 4 => 1_usize..=3],
        vec(label, 3),
        form(),
        any::<u64>(),
    )
        .prop_map(|(wildcard, n, mut labels, form, seed)| {
            labels.truncate(n);
            Owner {
                wildcard,
                labels,
                form,
                seed,
            }
        })
}

fn host_owner() -> impl Strategy<Value = Owner> {
    owner(host_label().boxed(), 0.15)
}

fn any_owner() -> impl Strategy<Value = Owner> {
    owner(any_label().boxed(), 0.15)
}

/// NS owners: a wildcard is refused (RFC 4592 §4.2), so rarely.
fn ns_owner() -> impl Strategy<Value = Owner> {
    owner(any_label().boxed(), 0.02)
}

/// A name in a record's value.
#[derive(Debug, Clone)]
enum Target {
    /// Outside the zone: labels under a TLD no zone here uses, or bare
    /// labels (absolute all the same).
    Outside {
        labels: Vec<Label>,
        tld: Option<&'static str>,
        dot: bool,
    },
    /// Inside the zone, written fully qualified; `glue` adds an address
    /// record at it.
    Inside {
        labels: Vec<Label>,
        dot: bool,
        seed: u64,
        glue: Option<Ipv4Addr>,
    },
    /// `@`, the apex, with an address record there.
    Apex(Ipv4Addr),
    /// `.`: null MX (RFC 7505) or "no service" SRV (RFC 2782).
    Root,
    /// A name that exists only through one of the zone's wildcards (RFC
    /// 4592): `label.` before the parent of the wildcard owner `pick`
    /// chooses, or below the apex when the zone has no wildcard.
    UnderWildcard {
        label: Label,
        pick: Index,
        dot: bool,
        glue: Option<Ipv4Addr>,
        /// A hostname target (NS, MX, SRV): only wildcards of A, AAAA and
        /// CNAME records with a hostname parent qualify.
        host: bool,
    },
}

/// What writing a name needs to know about the zone.
struct Ctx<'a> {
    domain: &'a Domain,
    /// Parents of the zone's wildcard owners: `a.example.com` for
    /// `*.a.example.com`.
    wildcard_parents: Vec<String>,
    /// Those of A, AAAA and CNAME records that are hostnames.
    host_wildcard_parents: Vec<String>,
}

impl Target {
    /// As written, and as an absolute lower-case name without the dot.
    fn write(&self, ctx: &Ctx<'_>) -> (String, String) {
        let domain = ctx.domain;
        let join = |labels: &[Label]| {
            (
                labels
                    .iter()
                    .map(|l| l.written.as_str())
                    .collect::<Vec<_>>()
                    .join("."),
                labels
                    .iter()
                    .map(|l| l.canon.as_str())
                    .collect::<Vec<_>>()
                    .join("."),
            )
        };
        match self {
            Self::Outside { labels, tld, dot } => {
                let (mut w, mut c) = join(labels);
                if let Some(tld) = tld {
                    w = format!("{w}.{tld}");
                    c = format!("{c}.{}", tld.to_ascii_lowercase());
                }
                if *dot {
                    w.push('.');
                }
                (w, c)
            }
            Self::Inside {
                labels, dot, seed, ..
            } => {
                let (w, c) = join(labels);
                let mut w = format!("{w}.{}", domain.suffix(*seed));
                if *dot {
                    w.push('.');
                }
                (w, format!("{c}.{}", domain.canon))
            }
            Self::Apex(_) => ("@".to_owned(), domain.canon.clone()),
            Self::Root => (".".to_owned(), String::new()),
            Self::UnderWildcard {
                label,
                pick,
                dot,
                host,
                ..
            } => {
                let parents = if *host {
                    &ctx.host_wildcard_parents
                } else {
                    &ctx.wildcard_parents
                };
                let parent = if parents.is_empty() {
                    &domain.canon
                } else {
                    &parents[pick.index(parents.len())]
                };
                let mut w = format!("{}.{parent}", label.written);
                if *dot {
                    w.push('.');
                }
                (w, format!("{}.{parent}", label.canon))
            }
        }
    }

    /// The address record that makes an in-zone target a host.
    fn glue(&self) -> Option<Ipv4Addr> {
        match self {
            Self::Inside { glue, .. } | Self::UnderWildcard { glue, .. } => *glue,
            Self::Apex(ip) => Some(*ip),
            Self::Outside { .. } | Self::Root => None,
        }
    }
}

fn target(label: BoxedStrategy<Label>, host: bool, root: bool) -> impl Strategy<Value = Target> {
    let outside = (
        vec(label.clone(), 1..=2),
        prop::option::weighted(0.85, select(vec!["example.net", "Example.ORG", "invalid"])),
        any::<bool>(),
    )
        .prop_map(|(labels, tld, dot)| Target::Outside { labels, tld, dot });
    let inside = (
        vec(label, 1..=3),
        any::<bool>(),
        any::<u64>(),
        // Mostly with an address; without one, validation decides (a
        // delegation or a wildcard may answer for it).
        prop::option::weighted(0.85, any::<Ipv4Addr>()),
    )
        .prop_map(|(labels, dot, seed, glue)| Target::Inside {
            labels,
            dot,
            seed,
            glue,
        });
    let under_wildcard = (
        host_label(),
        any::<Index>(),
        any::<bool>(),
        prop::option::weighted(0.5, any::<Ipv4Addr>()),
    )
        .prop_map(move |(label, pick, dot, glue)| Target::UnderWildcard {
            label,
            pick,
            dot,
            glue,
            host,
        });
    prop_oneof![
        4 => outside,
        3 => inside,
        1 => under_wildcard,
        1 => any::<Ipv4Addr>().prop_map(Target::Apex),
        u32::from(root) => Just(Target::Root),
    ]
}

/// One CAA value piece as written inside quotes.
#[derive(Debug, Clone)]
enum Piece {
    /// A character as itself (`"` and `\` get a backslash).
    Lit(char),
    /// `\DDD`.
    Decimal(u8),
    /// `\X` for a non-digit ASCII X.
    Escaped(char),
}

#[derive(Debug, Clone)]
struct Caa {
    flags: u8,
    flags_width: usize,
    tag: String,
    pieces: Vec<Piece>,
    /// Bare word when the value allows it.
    bare: bool,
    spaces: (usize, usize, usize),
}

impl Caa {
    fn write(&self) -> (String, Rd) {
        let mut bytes = Vec::new();
        let mut quoted = String::new();
        let mut bare_ok = !self.pieces.is_empty();
        for p in &self.pieces {
            match *p {
                Piece::Lit(c) => {
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    if c == '"' || c == '\\' {
                        quoted.push('\\');
                    }
                    bare_ok &= !(c.is_whitespace() || c.is_control() || c == '"' || c == '\\');
                    quoted.push(c);
                }
                Piece::Decimal(b) => {
                    bytes.push(b);
                    let _ = write!(quoted, "\\{b:03}");
                    bare_ok = false;
                }
                Piece::Escaped(c) => {
                    bytes.push(u8::try_from(c).expect("ASCII"));
                    quoted.push('\\');
                    quoted.push(c);
                    bare_ok = false;
                }
            }
        }
        let (a, b, c) = self.spaces;
        let value = if self.bare && bare_ok {
            quoted
        } else {
            format!("\"{quoted}\"{}", " ".repeat(c))
        };
        let written = format!(
            "{}{:0w$}{}{}{}{value}",
            " ".repeat(a),
            self.flags,
            " ".repeat(b + 1),
            self.tag,
            " ".repeat(c + 1),
            w = self.flags_width,
        );
        let rd = Rd::Caa {
            flags: self.flags,
            tag: self.tag.to_ascii_lowercase(),
            value: Bytes(bytes),
        };
        (written, rd)
    }
}

/// Characters that break naive zone-file writers, then printable ASCII,
/// then anything.
pub fn nasty_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => select(vec![
            '"', '\\', '\n', '\r', '\t', ';', '(', ')', '$', '@', ' ', '\0', '\u{7f}', '\u{85}',
            'é', '€', '😀', '\u{2028}', '\u{feff}', '0', '1', '9',
        ]),
        4 => proptest::char::range(' ', '~'),
        1 => any::<char>(),
    ]
}

fn caa() -> impl Strategy<Value = Caa> {
    let tag = prop_oneof![
        3 => select(vec!["issue", "issuewild", "iodef", "Issue", "ISSUEWILD", "tbs"])
            .prop_map(str::to_owned),
        1 => "[a-zA-Z0-9]{1,15}",
    ];
    let piece = prop_oneof![
        6 => nasty_char().prop_map(Piece::Lit),
        1 => any::<u8>().prop_map(Piece::Decimal),
        1 => select(vec!['"', '\\', 'a', ';', ' ', '(', 'n']).prop_map(Piece::Escaped),
    ];
    // RFC 8659 §4.1 defines only the critical bit; the rest are reserved.
    let flags = prop_oneof![20 => select(vec![0_u8, 128]), 1 => any::<u8>()];
    (
        flags,
        0_usize..=4,
        tag,
        prop_oneof![3 => vec(piece.clone(), 0..40), 1 => vec(piece, 200..320)],
        prop::bool::weighted(0.3),
        (0_usize..=1, 0_usize..=2, 0_usize..=2),
    )
        .prop_map(|(flags, flags_width, tag, pieces, bare, spaces)| Caa {
            flags,
            flags_width,
            tag,
            pieces,
            bare,
            spaces,
        })
}

/// TXT values: nasty characters at any length up to about 700 bytes, and
/// plain text around the 255-octet character-string boundaries.
pub fn txt_value() -> impl Strategy<Value = String> {
    let cut = |s: String| {
        let mut end = s.len().min(700);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_owned()
    };
    let boundary = (
        select(vec![
            0_usize, 1, 253, 254, 255, 256, 257, 509, 510, 511, 512, 700,
        ]),
        select(vec!['"', '\\', '\n', 'é', ';', 'a']),
        any::<Index>(),
    )
        .prop_map(|(n, c, at)| {
            let mut s: Vec<char> = vec!['a'; n];
            if n > 0 {
                s[at.index(n)] = c;
            }
            s.into_iter().collect::<String>()
        });
    prop_oneof![
        4 => vec(nasty_char(), 0..60).prop_map(|c| c.into_iter().collect::<String>()),
        2 => vec(nasty_char(), 200..500).prop_map(move |c| cut(c.into_iter().collect())),
        2 => boundary,
    ]
}

fn ttl() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(0)),
        1 => Just(Some(MAX_TTL)),
        2 => (1_i64..=86_400).prop_map(Some),
        1 => (0_i64..=MAX_TTL).prop_map(Some),
    ]
}

#[derive(Debug, Clone)]
enum Data {
    A(Ipv4Addr),
    /// The address, written in full (uncompressed) form or not.
    Aaaa(Ipv6Addr, bool),
    Cname(Target),
    Mx(u16, Target),
    Txt(String),
    Ns(Target),
    Srv(u16, u16, u16, Target),
    Caa(Caa),
}

#[derive(Debug, Clone)]
struct Spec {
    owner: Owner,
    data: Data,
    ttl: Option<i64>,
    /// Ignored by validation for types other than MX and SRV.
    stray_priority: Option<i64>,
    seed: u64,
}

fn data() -> impl Strategy<Value = (Owner, Data)> {
    let host = || host_label().boxed();
    let all = || any_label().boxed();
    prop_oneof![
        2 => (host_owner(), any::<Ipv4Addr>()).prop_map(|(o, ip)| (o, Data::A(ip))),
        1 => (host_owner(), any::<Ipv6Addr>(), any::<bool>())
            .prop_map(|(o, ip, full)| (o, Data::Aaaa(ip, full))),
        1 => (any_owner(), target(all(), false, false)).prop_map(|(o, t)| (o, Data::Cname(t))),
        1 => (host_owner(), any::<u16>(), target(host(), true, true))
            .prop_map(|(o, p, t)| (o, Data::Mx(p, t))),
        3 => (any_owner(), txt_value()).prop_map(|(o, v)| (o, Data::Txt(v))),
        1 => (ns_owner(), target(host(), true, false)).prop_map(|(o, t)| (o, Data::Ns(t))),
        1 => (any_owner(), any::<(u16, u16, u16)>(), target(host(), true, true))
            .prop_map(|(o, (p, w, port), t)| (o, Data::Srv(p, w, port, t))),
        1 => (any_owner(), caa()).prop_map(|(o, c)| (o, Data::Caa(c))),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        data(),
        ttl(),
        prop::option::weighted(0.2, any::<i64>()),
        any::<u64>(),
    )
        .prop_map(|((owner, data), ttl, stray_priority, seed)| Spec {
            owner,
            data,
            ttl,
            stray_priority,
            seed,
        })
}

/// One record as the API sends it, with what it means.
struct Item {
    record: Record,
    /// Absolute, lower-case, without the trailing dot.
    owner: String,
    rtype: &'static str,
    rdata: Rd,
}

/// RFC 1123 §2.1: letters, digits and inner hyphens in every label.
fn is_hostname(name: &str) -> bool {
    name.split('.').all(|l| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

fn abs(name: &str) -> String {
    format!("{name}.")
}

impl Spec {
    /// The record, and the address record its target needs, if any.
    fn items(&self, ctx: &Ctx<'_>) -> Vec<Item> {
        let domain = ctx.domain;
        let record = |name: String, rtype: &str, value: String, priority: Option<i64>| Record {
            uuid: String::new(),
            record_type: mix_case(rtype, self.seed),
            name,
            value: Some(value),
            ttl: self.ttl,
            priority,
            created_at: None,
        };
        let mut out = Vec::new();
        let glue = |t: &Target, out: &mut Vec<Item>| {
            if let Some(ip) = t.glue() {
                let (w, c) = t.write(ctx);
                let w = if w == "@" { w } else { abs(&c) };
                out.push(Item {
                    record: record(w, "A", ip.to_string(), None),
                    owner: c,
                    rtype: "A",
                    rdata: Rd::A(ip),
                });
            }
        };
        let (rtype, value, priority, rdata) = match &self.data {
            Data::A(ip) => ("A", ip.to_string(), self.stray_priority, Rd::A(*ip)),
            Data::Aaaa(ip, full) => {
                let text = if *full {
                    let groups: Vec<String> =
                        ip.segments().iter().map(|s| format!("{s:x}")).collect();
                    mix_case(&groups.join(":"), self.seed)
                } else {
                    ip.to_string()
                };
                ("AAAA", text, self.stray_priority, Rd::Aaaa(*ip))
            }
            // A CNAME target needs no address record.
            Data::Cname(t) => {
                let (w, c) = t.write(ctx);
                ("CNAME", w, self.stray_priority, Rd::Host(abs(&c)))
            }
            Data::Ns(t) => {
                let (w, c) = t.write(ctx);
                glue(t, &mut out);
                ("NS", w, self.stray_priority, Rd::Host(abs(&c)))
            }
            Data::Mx(p, t) => {
                let (w, c) = t.write(ctx);
                glue(t, &mut out);
                let exchange = if c.is_empty() {
                    ".".to_owned()
                } else {
                    abs(&c)
                };
                let rd = Rd::Mx {
                    preference: *p,
                    exchange,
                };
                ("MX", w, Some(i64::from(*p)), rd)
            }
            Data::Srv(p, weight, port, t) => {
                let (w, c) = t.write(ctx);
                glue(t, &mut out);
                let target = if c.is_empty() {
                    ".".to_owned()
                } else {
                    abs(&c)
                };
                let rd = Rd::Srv {
                    priority: *p,
                    weight: *weight,
                    port: *port,
                    target,
                };
                (
                    "SRV",
                    format!("{weight} {port} {w}"),
                    Some(i64::from(*p)),
                    rd,
                )
            }
            Data::Txt(v) => (
                "TXT",
                v.clone(),
                self.stray_priority,
                Rd::Txt(Bytes(v.as_bytes().to_vec())),
            ),
            Data::Caa(caa) => {
                let (w, rd) = caa.write();
                ("CAA", w, self.stray_priority, rd)
            }
        };
        let (name, owner) = self.owner.write(domain);
        out.push(Item {
            record: record(name, rtype, value, priority),
            owner,
            rtype,
            rdata,
        });
        out
    }
}

/// Whole zones.
pub fn case() -> impl Strategy<Value = Case> {
    (
        domain(),
        vec(spec(), 0..16),
        vec((any::<Index>(), ttl(), any::<u64>()), 0..4),
        prop_oneof![
            Just(0_u32),
            Just(300),
            Just(3600),
            Just(u32::try_from(MAX_TTL).expect("fits")),
            0..=u32::try_from(MAX_TTL).expect("fits"),
        ],
        vec(
            select(vec![
                "ns1.example.net",
                "NS2.Example.Org.",
                "a.invalid",
                "ns",
            ]),
            1..=3,
        ),
        any::<(u32, u32, u32, u32, u32)>(),
    )
        .prop_map(
            |(
                domain,
                specs,
                dups,
                default_ttl,
                nameservers,
                (serial, refresh, retry, expire, minimum),
            )| {
                build(
                    &domain,
                    &specs,
                    &dups,
                    default_ttl,
                    &nameservers,
                    serial,
                    [refresh, retry, expire, minimum],
                )
            },
        )
}

fn build(
    domain: &Domain,
    specs: &[Spec],
    dups: &[(Index, Option<i64>, u64)],
    default_ttl: u32,
    nameservers: &[&str],
    serial: u32,
    [refresh, retry, expire, minimum]: [u32; 4],
) -> Case {
    let parent = |s: &Spec| {
        let (_, canon) = s.owner.write(domain);
        canon.strip_prefix("*.").unwrap_or(&canon).to_owned()
    };
    let wildcards = || specs.iter().filter(|s| s.owner.wildcard);
    let ctx = Ctx {
        domain,
        wildcard_parents: wildcards().map(parent).collect(),
        host_wildcard_parents: wildcards()
            .filter(|s| matches!(s.data, Data::A(_) | Data::Aaaa(..) | Data::Cname(_)))
            .map(parent)
            .filter(|p| is_hostname(p))
            .collect(),
    };
    let mut items: Vec<Item> = specs.iter().flat_map(|s| s.items(&ctx)).collect();
    // Duplicates, each spelled its own way and with its own TTL.
    if !specs.is_empty() {
        for (i, ttl, seed) in dups {
            let mut s = specs[i.index(specs.len())].clone();
            s.ttl = *ttl;
            s.owner.seed = *seed;
            s.seed = *seed;
            for l in &mut s.owner.labels {
                if l.written.is_ascii() {
                    l.written = mix_case(&l.canon, *seed);
                }
            }
            items.extend(s.items(&ctx));
        }
    }
    // A CNAME is alone at its name (RFC 1034 §3.6.2) and never at the apex:
    // drop those that would not be, keep one target per name.
    let taken: HashSet<String> = items
        .iter()
        .filter(|i| i.rtype != "CNAME")
        .map(|i| i.owner.clone())
        .chain([domain.canon.clone()])
        .collect();
    let mut cname: HashMap<String, Rd> = HashMap::new();
    items.retain(|i| {
        i.rtype != "CNAME"
            || (!taken.contains(&i.owner)
                && *cname
                    .entry(i.owner.clone())
                    .or_insert_with(|| i.rdata.clone())
                    == i.rdata)
    });

    let ns: Vec<Name> = nameservers.iter().map(|s| config_name(s)).collect();
    let mut sets: BTreeMap<(String, &str), (u32, BTreeSet<Rd>)> = BTreeMap::new();
    let mut add = |owner: &str, rtype: &'static str, ttl: u32, rd: Rd| {
        let set = sets
            .entry((owner.to_owned(), rtype))
            .or_insert((ttl, BTreeSet::new()));
        // RFC 2181 §5.2: one TTL per RRset; zoneagent serves the lowest.
        set.0 = set.0.min(ttl);
        set.1.insert(rd);
    };
    let mut records = Vec::with_capacity(items.len());
    for (n, i) in items.into_iter().enumerate() {
        let ttl = i.record.ttl.map_or(default_ttl, |t| {
            u32::try_from(t).expect("generated TTLs are valid")
        });
        add(&i.owner, i.rtype, ttl, i.rdata);
        records.push(Record {
            uuid: format!("rec-{n}"),
            ..i.record
        });
    }
    for n in &ns {
        add(
            &domain.canon,
            "NS",
            default_ttl,
            Rd::Host(abs(&n.as_str().to_ascii_lowercase())),
        );
    }
    let mut intended: BTreeSet<Rr> = sets
        .into_iter()
        .flat_map(|((owner, rtype), (ttl, rds))| {
            rds.into_iter().map(move |rdata| Rr {
                owner: abs(&owner),
                ttl,
                rtype: rtype.to_owned(),
                rdata,
            })
        })
        .collect();
    let soa = SoaFields {
        mname: config_name("ns1.example.net"),
        rname: config_name("hostmaster.example.net"),
        refresh,
        retry,
        expire,
        minimum,
    };
    intended.insert(Rr {
        owner: abs(&domain.canon),
        ttl: default_ttl,
        rtype: "SOA".to_owned(),
        rdata: Rd::Soa {
            mname: "ns1.example.net.".to_owned(),
            rname: "hostmaster.example.net.".to_owned(),
            serial,
            refresh,
            retry,
            expire,
            minimum,
        },
    });
    Case {
        zone: Zone {
            uuid: "zone-1".to_owned(),
            domain: domain.written.clone(),
            created_at: None,
            records,
        },
        defaults: ZoneDefaults {
            default_ttl,
            nameservers: ns,
            // The round trip loads with the strict named-compilezone flags
            // (oracle.rs), so it validates with the matching strict rules.
            strict: true,
        },
        options: RenderOptions { soa, default_ttl },
        serial,
        intended,
    }
}
