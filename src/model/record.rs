//! Typed record data: what a validated record means, independent of how the
//! API spelled it, and its RFC 1035 presentation form.
//!
//! The presentation writer here is the only code that quotes or escapes
//! anything that goes into a zone file. Templates only lay out the text it
//! produces. `Display` is deliberately not implemented, so log output can
//! never be confused with zone-file output.

use super::name::Name;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The eight record types the API offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    // Declaration order is the order of RRsets at one owner name in a
    // rendered zone: delegations first, then addresses, then the rest.
    Ns,
    A,
    Aaaa,
    Cname,
    Mx,
    Srv,
    Txt,
    Caa,
}

impl RecordType {
    /// Every type, in rendering order.
    pub const ALL: [RecordType; 8] = [
        Self::Ns,
        Self::A,
        Self::Aaaa,
        Self::Cname,
        Self::Mx,
        Self::Srv,
        Self::Txt,
        Self::Caa,
    ];

    /// The mnemonic as the API and zone files spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
            Self::Mx => "MX",
            Self::Txt => "TXT",
            Self::Ns => "NS",
            Self::Srv => "SRV",
            Self::Caa => "CAA",
        }
    }

    /// Parses a mnemonic, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

/// Record data after validation.
///
/// The derived order is the order of records within an RRset in a rendered
/// zone: addresses numerically, MX by preference then exchange, SRV by
/// priority, weight, port, target, names in DNSSEC canonical order, text by
/// octets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RData {
    Ns(Name),
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(Name),
    Mx {
        preference: u16,
        exchange: Name,
    },
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
    /// The text exactly as given; split into character-strings on output.
    Txt(Vec<u8>),
    Caa {
        flags: u8,
        /// Lower-case ASCII letters and digits.
        tag: String,
        value: Vec<u8>,
    },
}

/// Longest character-string (RFC 1035 §3.3: one length octet).
pub const MAX_CHARACTER_STRING: usize = 255;

impl RData {
    /// The record type of this data.
    pub fn record_type(&self) -> RecordType {
        match self {
            Self::A(_) => RecordType::A,
            Self::Aaaa(_) => RecordType::Aaaa,
            Self::Cname(_) => RecordType::Cname,
            Self::Mx { .. } => RecordType::Mx,
            Self::Txt(_) => RecordType::Txt,
            Self::Ns(_) => RecordType::Ns,
            Self::Srv { .. } => RecordType::Srv,
            Self::Caa { .. } => RecordType::Caa,
        }
    }

    /// The hostname this record points at, if any.
    pub fn target(&self) -> Option<&Name> {
        match self {
            Self::Cname(n) | Self::Ns(n) => Some(n),
            Self::Mx { exchange, .. } => Some(exchange),
            Self::Srv { target, .. } => Some(target),
            _ => None,
        }
    }

    /// Writes the RDATA in RFC 1035 presentation form, every name absolute.
    pub fn write_presentation(&self, out: &mut String) {
        match self {
            Self::A(ip) => {
                let _ = write!(out, "{ip}");
            }
            // std's Display for Ipv6Addr is the RFC 5952 canonical form.
            Self::Aaaa(ip) => {
                let _ = write!(out, "{ip}");
            }
            Self::Cname(n) | Self::Ns(n) => push_name(out, n),
            Self::Mx {
                preference,
                exchange,
            } => {
                let _ = write!(out, "{preference} ");
                push_name(out, exchange);
            }
            Self::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                let _ = write!(out, "{priority} {weight} {port} ");
                push_name(out, target);
            }
            Self::Txt(text) => write_txt(out, text),
            Self::Caa { flags, tag, value } => {
                let _ = write!(out, "{flags} {tag} ");
                write_character_string(out, value);
            }
        }
    }

    /// The RDATA in presentation form.
    pub fn presentation(&self) -> String {
        let mut s = String::new();
        self.write_presentation(&mut s);
        s
    }
}

fn push_name(out: &mut String, name: &Name) {
    if name.is_root() {
        out.push('.');
    } else {
        out.push_str(name.as_str());
        out.push('.');
    }
}

/// Splits text into character-strings of at most 255 octets (RFC 1035
/// §3.3.14) *before* escaping, so an escape sequence is never cut in two and
/// no string is over-long on the wire. The empty text is one empty string.
pub fn txt_chunks(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let empty: &[u8] = &[];
    let chunks = text.chunks(MAX_CHARACTER_STRING);
    let first = text.is_empty().then_some(empty);
    first.into_iter().chain(chunks)
}

fn write_txt(out: &mut String, text: &[u8]) {
    for (i, chunk) in txt_chunks(text).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_character_string(out, chunk);
    }
}

/// Writes one quoted character-string: `"` and `\` are escaped with a
/// backslash, every octet outside printable ASCII as `\DDD` (RFC 1035 §5.1),
/// so nothing in it can end the string, the line or start a comment.
pub fn write_character_string(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txt(s: &[u8]) -> String {
        RData::Txt(s.to_vec()).presentation()
    }

    #[test]
    fn txt_escaping() {
        assert_eq!(txt(b""), r#""""#);
        assert_eq!(txt(b"v=spf1 -all"), r#""v=spf1 -all""#);
        assert_eq!(txt(br#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(txt(br"a\b"), r#""a\\b""#);
        assert_eq!(txt(b"a\nb;c"), r#""a\010b;c""#);
        assert_eq!(txt("é".as_bytes()), r#""\195\169""#);
        assert_eq!(txt(b"$INCLUDE /etc/passwd"), r#""$INCLUDE /etc/passwd""#);
        assert_eq!(txt(b"\x7f\x00"), r#""\127\000""#);
    }

    #[test]
    fn txt_splits_before_escaping() {
        let mut long = vec![b'a'; 254];
        long.push(b'"');
        long.push(b'b');
        let out = txt(&long);
        let want = format!("\"{}\\\"\" \"b\"", "a".repeat(254));
        assert_eq!(out, want);
        assert_eq!(
            txt(&[b'x'; 510]),
            format!("\"{0}\" \"{0}\"", "x".repeat(255))
        );
        assert_eq!(txt_chunks(&[b'x'; 511]).count(), 3);
        assert_eq!(txt_chunks(b"").count(), 1);
    }

    #[test]
    fn type_names_round_trip() {
        for t in RecordType::ALL {
            assert_eq!(RecordType::parse(t.as_str()), Some(t));
            assert_eq!(RecordType::parse(&t.as_str().to_lowercase()), Some(t));
        }
        assert_eq!(RecordType::parse("SOA"), None);
        assert_eq!(RecordType::parse("PTR"), None);
    }
}
