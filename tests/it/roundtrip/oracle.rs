//! The oracle: BIND's own zone-file parser (`named-compilezone`), and the
//! reduction of a zone to a set of comparable resource records.
//!
//! Both sides of the comparison are reduced here to [`Rr`]: what BIND
//! printed after loading the rendered file, and what the
//! [`ValidatedZone`] says the file must mean. The expected side is worked
//! out from the typed [`RData`] alone; it never calls zoneagent's
//! presentation writer, so a quoting or splitting bug in the renderer shows
//! up as a difference instead of being repeated on both sides.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::{Command, Stdio};

use zoneagent::model::name::Name;
use zoneagent::model::record::RData;
use zoneagent::render::RenderOptions;
use zoneagent::validate::ValidatedZone;

/// BIND's zone compiler; `-o -` dumps the loaded zone to stdout in full
/// canonical form.
pub const COMPILEZONE: &str = "named-compilezone";

/// The same strictness as `zoneagent::bind::checkzone::STRICT_FLAGS` (the
/// `[validate] strict` check, which the round trip validates with), spelled
/// out again so that a change there cannot loosen this test.
const ARGS: [&str; 20] = [
    "-f", "text", "-F", "text", "-s", "full", "-i", "local", "-k", "fail", "-m", "fail", "-M",
    "fail", "-S", "fail", "-n", "fail", "-o", "-",
];

const INSTALL_HINT: &str = "the round-trip tests need BIND's tools: install bind9-utils \
                            (`apt-get install bind9-utils`); this test never skips";

/// Fails the test unless `named-compilezone` can be run.
pub fn require_compilezone() {
    match Command::new(COMPILEZONE)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`{COMPILEZONE} -v` failed ({}): {}; {INSTALL_HINT}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("cannot run `{COMPILEZONE}`: {e}; {INSTALL_HINT}"),
    }
}

/// Octets, shown escaped so a failing case is readable.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\" ({} bytes)", self.0.escape_ascii(), self.0.len())
    }
}

/// Record data reduced to what it means: addresses parsed, names absolute
/// and lower-case with their trailing dot, text as octets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rd {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// CNAME and NS.
    Host(String),
    Mx {
        preference: u16,
        exchange: String,
    },
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    /// The character-strings concatenated.
    Txt(Bytes),
    Caa {
        flags: u8,
        /// Lower-case: tags compare case-insensitively (RFC 8659 §4.1).
        tag: String,
        value: Bytes,
    },
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
}

/// One resource record, comparable across both sides.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rr {
    /// Absolute, lower-case, with the trailing dot.
    pub owner: String,
    pub ttl: u32,
    /// The mnemonic, upper-case.
    pub rtype: String,
    pub rdata: Rd,
}

/// A name as an absolute, lower-case string with its trailing dot.
pub fn absolute(name: &Name) -> String {
    if name.is_root() {
        ".".to_owned()
    } else {
        format!("{}.", name.as_str().to_ascii_lowercase())
    }
}

/// The mnemonic of typed data, spelled here rather than taken from
/// `RecordType::as_str`, which the renderer uses.
fn mnemonic(data: &RData) -> &'static str {
    match data {
        RData::Ns(_) => "NS",
        RData::A(_) => "A",
        RData::Aaaa(_) => "AAAA",
        RData::Cname(_) => "CNAME",
        RData::Mx { .. } => "MX",
        RData::Srv { .. } => "SRV",
        RData::Txt(_) => "TXT",
        RData::Caa { .. } => "CAA",
    }
}

fn reduce(data: &RData) -> Rd {
    match data {
        RData::A(ip) => Rd::A(*ip),
        RData::Aaaa(ip) => Rd::Aaaa(*ip),
        RData::Cname(n) | RData::Ns(n) => Rd::Host(absolute(n)),
        RData::Mx {
            preference,
            exchange,
        } => Rd::Mx {
            preference: *preference,
            exchange: absolute(exchange),
        },
        RData::Srv {
            priority,
            weight,
            port,
            target,
        } => Rd::Srv {
            priority: *priority,
            weight: *weight,
            port: *port,
            target: absolute(target),
        },
        RData::Txt(text) => Rd::Txt(Bytes(text.clone())),
        RData::Caa { flags, tag, value } => Rd::Caa {
            flags: *flags,
            tag: tag.to_ascii_lowercase(),
            value: Bytes(value.clone()),
        },
    }
}

/// The SOA record the renderer must write for these options.
pub fn soa(origin: &Name, options: &RenderOptions, serial: u32) -> Rr {
    let s = &options.soa;
    Rr {
        owner: absolute(origin),
        ttl: options.default_ttl,
        rtype: "SOA".to_owned(),
        rdata: Rd::Soa {
            mname: absolute(&s.mname),
            rname: absolute(&s.rname),
            serial,
            refresh: s.refresh,
            retry: s.retry,
            expire: s.expire,
            minimum: s.minimum,
        },
    }
}

/// What the rendered file must mean: every record of the validated zone
/// plus the SOA.
pub fn from_validated(
    zone: &ValidatedZone,
    options: &RenderOptions,
    serial: u32,
) -> Result<BTreeSet<Rr>, String> {
    let mut out = BTreeSet::new();
    out.insert(soa(&zone.origin, options, serial));
    for set in &zone.rrsets {
        for data in &set.rdata {
            let rtype = mnemonic(data);
            if set.rtype.as_str() != rtype {
                return Err(format!(
                    "validated RRset {} {} holds {rtype} data: {data:?}",
                    set.owner,
                    set.rtype.as_str()
                ));
            }
            out.insert(Rr {
                owner: absolute(&set.owner),
                ttl: set.ttl,
                rtype: rtype.to_owned(),
                rdata: reduce(data),
            });
        }
    }
    Ok(out)
}

/// Loads `file` as zone `origin` (no trailing dot) with `named-compilezone`
/// and returns the dump. Anything but a clean load (exit 0, and stderr
/// exactly `loaded serial N` and `OK`) is an error carrying BIND's words.
pub fn compile(origin: &str, serial: u32, file: &Path) -> Result<String, String> {
    let out = Command::new(COMPILEZONE)
        .args(ARGS)
        .arg(origin)
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            assert!(
                e.kind() != ErrorKind::NotFound,
                "`{COMPILEZONE}` is not installed; {INSTALL_HINT}"
            );
            panic!("cannot run `{COMPILEZONE}`: {e}; {INSTALL_HINT}")
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let loaded = format!("zone {origin}/IN: loaded serial {serial}");
    if !out.status.success() || lines != [loaded.as_str(), "OK"] {
        return Err(format!(
            "{COMPILEZONE} did not load the zone cleanly ({}):\n---- stderr ----\n{}\n---- end ----",
            out.status,
            stderr.trim_end()
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("{COMPILEZONE} printed non-UTF-8: {e}"))
}

/// Parses the `-s full` dump: one record a line, `owner ttl IN TYPE rdata`,
/// every name absolute. Fields are split on whitespace, not columns.
pub fn parse_dump(dump: &str) -> Result<BTreeSet<Rr>, String> {
    let mut out = BTreeSet::new();
    for line in dump.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let rr = parse_line(line).map_err(|e| format!("dump line {line:?}: {e}"))?;
        if !out.insert(rr) {
            return Err(format!("dump line {line:?} appears twice"));
        }
    }
    Ok(out)
}

/// Splits off the first whitespace-separated field.
fn field(s: &str) -> Result<(&str, &str), String> {
    let s = s.trim_start();
    if s.is_empty() {
        return Err("a field is missing".to_owned());
    }
    Ok(s.split_once(char::is_whitespace).unwrap_or((s, "")))
}

fn parse_line(line: &str) -> Result<Rr, String> {
    let (owner, rest) = field(line)?;
    let (ttl, rest) = field(rest)?;
    let (class, rest) = field(rest)?;
    let (rtype, rest) = field(rest)?;
    if class != "IN" {
        return Err(format!("class {class}"));
    }
    let ttl: u32 = ttl.parse().map_err(|_| format!("TTL {ttl}"))?;
    let rdata = rest.trim();
    let words: Vec<&str> = rdata.split_whitespace().collect();
    let number = |s: &str| s.parse::<u32>().map_err(|_| format!("bad number {s:?}"));
    let small = |s: &str| s.parse::<u16>().map_err(|_| format!("bad number {s:?}"));
    let rd = match (rtype, words.as_slice()) {
        ("A", [ip]) => Rd::A(ip.parse().map_err(|_| format!("bad IPv4 {ip}"))?),
        ("AAAA", [ip]) => Rd::Aaaa(ip.parse().map_err(|_| format!("bad IPv6 {ip}"))?),
        ("CNAME" | "NS", [n]) => Rd::Host(dump_name(n)?),
        ("MX", [p, n]) => Rd::Mx {
            preference: small(p)?,
            exchange: dump_name(n)?,
        },
        ("SRV", [p, w, port, n]) => Rd::Srv {
            priority: small(p)?,
            weight: small(w)?,
            port: small(port)?,
            target: dump_name(n)?,
        },
        ("SOA", [m, r, serial, refresh, retry, expire, minimum]) => Rd::Soa {
            mname: dump_name(m)?,
            rname: dump_name(r)?,
            serial: number(serial)?,
            refresh: number(refresh)?,
            retry: number(retry)?,
            expire: number(expire)?,
            minimum: number(minimum)?,
        },
        ("TXT", _) => {
            let strings = character_strings(rdata)?;
            if strings.is_empty() {
                return Err("TXT without a character-string".to_owned());
            }
            if let Some(s) = strings.iter().find(|s| s.len() > 255) {
                return Err(format!(
                    "a TXT character-string is {} bytes (RFC 1035 §3.3: at most 255)",
                    s.len()
                ));
            }
            Rd::Txt(Bytes(strings.concat()))
        }
        ("CAA", _) => {
            let (flags, rest) = field(rdata)?;
            let (tag, rest) = field(rest)?;
            let strings = character_strings(rest)?;
            let [value] = strings.as_slice() else {
                return Err(format!("CAA value is {} strings", strings.len()));
            };
            Rd::Caa {
                flags: flags.parse().map_err(|_| format!("CAA flags {flags}"))?,
                tag: tag.to_ascii_lowercase(),
                value: Bytes(value.clone()),
            }
        }
        (t, w) => return Err(format!("unexpected {t} record with {} fields", w.len())),
    };
    Ok(Rr {
        owner: dump_name(owner)?,
        ttl,
        rtype: rtype.to_owned(),
        rdata: rd,
    })
}

/// A name from the dump: absolute, compared case-insensitively. zoneagent
/// only writes letters, digits, `-`, `_` and `*`, so an escape in BIND's
/// output means something went wrong.
fn dump_name(n: &str) -> Result<String, String> {
    if !n.ends_with('.') {
        return Err(format!("name {n:?} is not absolute"));
    }
    if n.contains('\\') {
        return Err(format!("name {n:?} holds an escape"));
    }
    Ok(n.to_ascii_lowercase())
}

/// Decodes a run of quoted character-strings as BIND prints them: `\"`,
/// `\\`, `\DDD` and `\X` for any other X (RFC 1035 §5.1).
pub fn character_strings(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let b = text.as_bytes();
    let mut strings = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == b.len() {
            return Ok(strings);
        }
        if b[i] != b'"' {
            return Err(format!("expected a quoted string at {:?}", &text[i..]));
        }
        i += 1;
        let mut s = Vec::new();
        loop {
            match b.get(i) {
                None => return Err(format!("unterminated string in {text:?}")),
                Some(b'"') => {
                    i += 1;
                    break;
                }
                Some(b'\\') => {
                    let digits = b
                        .get(i + 1..i + 4)
                        .filter(|d| d.iter().all(u8::is_ascii_digit));
                    if let Some(d) = digits {
                        let n = d.iter().fold(0_u32, |n, c| n * 10 + u32::from(c - b'0'));
                        s.push(u8::try_from(n).map_err(|_| format!("escape \\{n} in {text:?}"))?);
                        i += 4;
                    } else {
                        let c = b.get(i + 1).ok_or("a backslash ends the text")?;
                        s.push(*c);
                        i += 2;
                    }
                }
                Some(&c) => {
                    s.push(c);
                    i += 1;
                }
            }
        }
        strings.push(s);
        if b.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
            return Err(format!("no space after a string in {text:?}"));
        }
    }
}

/// Lists what one side has and the other lacks, for a failure message.
pub fn diff(what: &str, want: &BTreeSet<Rr>, got: &BTreeSet<Rr>) -> Option<String> {
    if want == got {
        return None;
    }
    let mut msg = format!("{what}:\n");
    for (sign, list) in [
        ("missing", want.difference(got).collect::<Vec<_>>()),
        ("unexpected", got.difference(want).collect::<Vec<_>>()),
    ] {
        for rr in list.iter().take(20) {
            let _ = writeln!(msg, "  {sign}: {rr:?}");
        }
        if list.len() > 20 {
            let _ = writeln!(msg, "  … and {} more {sign}", list.len() - 20);
        }
    }
    Some(msg)
}
