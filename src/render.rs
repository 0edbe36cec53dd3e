//! Rendering: a [`ValidatedZone`] becomes the bytes of an RFC 1035 zone file.
//!
//! Layout lives in `templates/zone.txt` (askama, plain text: nothing is
//! HTML-escaped); every quote and escape is made in Rust by
//! [`crate::model::record`]. The output is deterministic: the same zone,
//! SOA fields and serial always give the same bytes, with no timestamp.
//!
//! Order: `$ORIGIN`, `$TTL`, SOA, then RRsets by owner in DNSSEC canonical
//! order (RFC 4034 §6.1: the apex first, a parent before its children),
//! at one owner NS, A, AAAA, CNAME, MX, SRV, TXT, CAA, and within an RRset
//! addresses numerically, MX and SRV by their numbers then target, text by
//! octets. Owner names are written relative to `$ORIGIN` (`@` for the apex);
//! every hostname in a value is absolute.

use crate::model::name::Name;
use crate::validate::ValidatedZone;
use askama::Template;
use sha2::{Digest, Sha256};

/// The SOA fields that come from configuration (RFC 1035 §3.3.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoaFields {
    pub mname: Name,
    /// The responsible mailbox as a name (`hostmaster.example.net`).
    pub rname: Name,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    /// Negative-caching TTL (RFC 2308 §4).
    pub minimum: u32,
}

/// Everything rendering needs besides the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    pub soa: SoaFields,
    /// `$TTL` and the SOA record's TTL.
    pub default_ttl: u32,
}

struct SoaLine {
    mname: String,
    rname: String,
    refresh: u32,
    retry: u32,
    expire: u32,
    minimum: u32,
}

struct Line<'a> {
    owner: String,
    ttl: u32,
    rtype: &'a str,
    rdata: String,
}

#[derive(Template)]
#[template(path = "zone.txt")]
struct ZoneFile<'a> {
    origin: String,
    uuid: &'a str,
    default_ttl: u32,
    soa: SoaLine,
    serial: u32,
    lines: Vec<Line<'a>>,
}

/// Renders the zone file with the given SOA serial.
pub fn render(zone: &ValidatedZone, options: &RenderOptions, serial: u32) -> String {
    let mut lines = Vec::with_capacity(zone.record_count());
    for set in &zone.rrsets {
        let owner = set.owner.relative_to(&zone.origin);
        for data in &set.rdata {
            lines.push(Line {
                owner: owner.clone(),
                ttl: set.ttl,
                rtype: set.rtype.as_str(),
                rdata: data.presentation(),
            });
        }
    }
    let soa = &options.soa;
    let file = ZoneFile {
        origin: zone.origin.to_absolute(),
        uuid: &zone.uuid,
        default_ttl: options.default_ttl,
        soa: SoaLine {
            mname: soa.mname.to_absolute(),
            rname: soa.rname.to_absolute(),
            refresh: soa.refresh,
            retry: soa.retry,
            expire: soa.expire,
            minimum: soa.minimum,
        },
        serial,
        lines,
    };
    // Rendering plain text into a String cannot fail: every value is a
    // String or an integer and no filter can return an error.
    file.render()
        .unwrap_or_else(|e| unreachable!("zone template failed: {e}"))
}

/// A zone rendered once, with its serial still to be set: the content hash
/// decides whether the file changed, and the text with the chosen serial
/// is made from the same rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedZone {
    /// The file with serial 0.
    text: String,
    /// Byte offset of that `0` in `text`.
    serial_at: usize,
    /// [`content_hash`] of the zone.
    pub hash: String,
}

impl RenderedZone {
    /// Renders `zone` once.
    pub fn new(zone: &ValidatedZone, options: &RenderOptions) -> RenderedZone {
        let text = render(zone, options, 0);
        let serial_at = serial_offset(&text)
            .unwrap_or_else(|| unreachable!("the zone template has no SOA serial"));
        let hash = hex(&Sha256::digest(text.as_bytes()));
        RenderedZone {
            text,
            serial_at,
            hash,
        }
    }

    /// The file with `serial` in its SOA record.
    pub fn with_serial(&self, serial: u32) -> String {
        splice_serial(&self.text, self.serial_at, serial)
    }
}

/// `text`, rendered with serial 0 whose `0` stands at `at`, with `serial`
/// in its place.
pub fn splice_serial(text: &str, at: usize, serial: u32) -> String {
    let mut out = String::with_capacity(text.len() + 10);
    out.push_str(&text[..at]);
    out.push_str(&serial.to_string());
    out.push_str(&text[at + 1..]);
    out
}

/// Where the SOA serial stands in a file the template wrote: after
/// `IN\tSOA\t`, the MNAME and the RNAME (names without blanks).
fn serial_offset(text: &str) -> Option<usize> {
    let soa = text.find("\tIN\tSOA\t")? + "\tIN\tSOA\t".len();
    let mut at = soa;
    for _ in 0..2 {
        at += text[at..].find(' ')? + 1;
    }
    text[at..].starts_with("0 ").then_some(at)
}

/// The hash of a zone's rendered content with the serial left out: equal
/// hashes mean equal files but for the serial, so the serial moves only
/// when this changes.
pub fn content_hash(zone: &ValidatedZone, options: &RenderOptions) -> String {
    hex(&Sha256::digest(render(zone, options, 0).as_bytes()))
}

/// A hash of everything besides the zone that goes into its file: the
/// SOA fields, default TTL, nameservers, and this program's version (its
/// templates and rules).
pub fn config_hash(options: &RenderOptions, defaults: &crate::validate::ZoneDefaults) -> String {
    let text = format!("{}|{options:?}|{defaults:?}", env!("CARGO_PKG_VERSION"));
    hex(&Sha256::digest(text.as_bytes()))
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::name::parse_domain;
    use crate::model::zone::Zone;
    use crate::validate::{ZoneDefaults, validate};

    #[test]
    fn rendered_once_equals_rendered_with_serial() {
        let zone = Zone {
            uuid: "z".into(),
            domain: "example.com".into(),
            created_at: None,
            records: vec![],
        };
        let defaults = ZoneDefaults {
            default_ttl: 3600,
            nameservers: vec![parse_domain("ns1.example.net").unwrap()],
            strict: false,
        };
        let valid = validate(&zone, &defaults).unwrap();
        let options = RenderOptions {
            soa: SoaFields {
                mname: parse_domain("ns1.example.net").unwrap(),
                rname: parse_domain("hostmaster.example.net").unwrap(),
                refresh: 1,
                retry: 2,
                expire: 3,
                minimum: 4,
            },
            default_ttl: 3600,
        };
        let once = RenderedZone::new(&valid, &options);
        for serial in [1, 2_026_120_100, u32::MAX] {
            assert_eq!(once.with_serial(serial), render(&valid, &options, serial));
        }
        assert_eq!(once.hash, content_hash(&valid, &options));
    }
}
