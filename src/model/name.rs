//! DNS names: parsing what the API sends into absolute, lower-case names.
//!
//! The API writes names three ways (`@`, a name relative to the zone, or a
//! fully qualified name with or without its trailing dot) and hostnames in
//! values are absolute whether or not they end in a dot. This module turns
//! all of them into one [`Name`] type: absolute, lower-case ASCII, A-labels
//! for Unicode (UTS #46 through the `idna` crate). It never touches the
//! filesystem or the clock.
//!
//! Only letters, digits, `-`, `_` and a whole left-most `*` are accepted in a
//! label, so a [`Name`] never needs escaping in a zone file and can never
//! carry a directive, a comment, whitespace or a path separator.

use std::cmp::Ordering;
use std::fmt;

/// Longest name in presentation form without the trailing dot (RFC 1035
/// §2.3.4 allows 255 octets on the wire, which is 253 characters of text).
pub const MAX_NAME_LEN: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Zones Debian's `named.conf.default-zones` already declares: a second
/// declaration makes `named` refuse its whole configuration.
pub const RESERVED_ZONES: [&str; 4] = [
    "localhost",
    "127.in-addr.arpa",
    "0.in-addr.arpa",
    "255.in-addr.arpa",
];

/// An absolute domain name: lower-case ASCII, no trailing dot stored, the
/// root is the empty string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String, CanonicalKey);

/// The labels right to left, joined by NUL (which no label holds): byte
/// order of this key is DNSSEC canonical order, so sorting a 100k-record
/// zone compares flat byte strings instead of splitting names each time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CanonicalKey(Box<[u8]>);

impl CanonicalKey {
    fn of(text: &str) -> CanonicalKey {
        let mut key = Vec::with_capacity(text.len());
        for (i, label) in text.rsplit('.').filter(|l| !l.is_empty()).enumerate() {
            if i > 0 {
                key.push(0);
            }
            key.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
        }
        CanonicalKey(key.into_boxed_slice())
    }
}

impl Name {
    fn new(text: String) -> Name {
        let key = CanonicalKey::of(&text);
        Name(text, key)
    }
}

impl Name {
    /// The root name `.`.
    pub fn root() -> Self {
        Self::new(String::new())
    }

    /// Whether this is the root name.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The name without its trailing dot (`""` for the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Labels from left to right.
    pub fn labels(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.split('.').filter(|l| !l.is_empty())
    }

    /// Whether `self` equals `zone` or lies below it.
    pub fn is_in(&self, zone: &Name) -> bool {
        zone.is_root()
            || self.0 == zone.0
            || (self.0.len() > zone.0.len()
                && self.0.ends_with(&zone.0)
                && self.0.as_bytes()[self.0.len() - zone.0.len() - 1] == b'.')
    }

    /// Whether `self` lies strictly below `zone`.
    pub fn is_below(&self, zone: &Name) -> bool {
        self != zone && self.is_in(zone)
    }

    /// The name relative to `origin` as a zone file writes an owner: `@` for
    /// the origin itself, the leading labels otherwise. Names outside
    /// `origin` come back absolute.
    pub fn relative_to(&self, origin: &Name) -> String {
        if self == origin {
            "@".to_owned()
        } else if origin.is_root() {
            self.0.clone()
        } else if self.is_in(origin) {
            self.0[..self.0.len() - origin.0.len() - 1].to_owned()
        } else {
            self.to_absolute()
        }
    }

    /// The name in absolute presentation form, with its trailing dot.
    pub fn to_absolute(&self) -> String {
        let mut s = String::with_capacity(self.0.len() + 1);
        s.push_str(&self.0);
        s.push('.');
        s
    }

    /// The name one label up, or `None` for the root.
    pub fn parent(&self) -> Option<Name> {
        if self.is_root() {
            None
        } else {
            Some(Name::new(
                self.0
                    .split_once('.')
                    .map_or(String::new(), |(_, p)| p.to_owned()),
            ))
        }
    }

    /// `label.self`; the label must already be valid.
    #[must_use]
    pub fn child(&self, label: &str) -> Name {
        if self.is_root() {
            Name::new(label.to_owned())
        } else {
            Name::new(format!("{label}.{}", self.0))
        }
    }

    /// Whether the first label is `*`.
    pub fn is_wildcard(&self) -> bool {
        self.0 == "*" || self.0.starts_with("*.")
    }

    /// Whether this is a hostname in the sense BIND's `check-names` enforces
    /// for a primary zone (RFC 952 as amended by RFC 1123 §2.1): every label
    /// is letters, digits and hyphens, and starts and ends with a letter or
    /// digit. With `wildcard`, a left-most `*` label is allowed too.
    pub fn is_hostname(&self, wildcard: bool) -> bool {
        let mut labels = self.labels().peekable();
        if wildcard && labels.peek() == Some(&"*") {
            labels.next();
        }
        labels.all(is_host_label)
    }

    /// The number of octets of the name in wire format (RFC 1035 §3.1).
    pub fn wire_len(&self) -> usize {
        if self.is_root() { 1 } else { self.0.len() + 2 }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            f.write_str(".")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// DNSSEC canonical order (RFC 4034 §6.1): labels compared right to left as
/// lower-case octet strings, so the apex comes first and a parent before its
/// children.
impl Ord for Name {
    fn cmp(&self, other: &Self) -> Ordering {
        self.1.0.cmp(&other.1.0)
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn is_host_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// What kind of name is being parsed: it decides which characters a label
/// may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    /// A zone's domain: a hostname, no `_`, no `*`.
    Domain,
    /// An owner name or a target: `_` allowed, `*` as a whole left-most
    /// label for owners.
    Owner,
    Target,
}

/// Parses a zone's `domain`.
///
/// One trailing dot is accepted; Unicode is converted to its A-label. The
/// root, `..`, `/`, whitespace and control characters are refused, so the
/// result is always safe as a file name and in a zone file.
pub fn parse_domain(input: &str) -> Result<Name, String> {
    let text = input.strip_suffix('.').unwrap_or(input);
    if text.is_empty() {
        return Err("must be a domain name, not empty or the root".to_owned());
    }
    let name = to_name(text, Flavour::Domain)?;
    if RESERVED_ZONES.contains(&name.as_str()) {
        return Err(format!(
            "`{name}` is one of named's own default zones and cannot be hosted"
        ));
    }
    if !name.is_hostname(false) {
        return Err(format!(
            "`{name}` is not a valid domain name: labels are letters, digits and hyphens, \
             and start and end with a letter or digit"
        ));
    }
    Ok(name)
}

/// Parses a record's `name` against its zone.
///
/// `@` is the apex; a name that equals the zone or ends in `.zone` (with or
/// without the trailing dot, any case) is taken as fully qualified; any
/// other name without a trailing dot is relative to the zone. A name with a
/// trailing dot must lie inside the zone.
pub fn parse_owner(input: &str, zone: &Name) -> Result<Name, String> {
    if input == "@" {
        return Ok(zone.clone());
    }
    let (text, absolute) = match input.strip_suffix('.') {
        Some(t) => (t, true),
        None => (input, false),
    };
    if text.is_empty() {
        return Err("must be `@`, a name relative to the zone or a name inside it".to_owned());
    }
    let name = to_name(text, Flavour::Owner)?;
    let full = if name.is_in(zone) {
        name
    } else if absolute {
        return Err(format!("`{input}` is outside the zone `{zone}`"));
    } else {
        join(&name, zone)?
    };
    Ok(full)
}

/// Parses a hostname in a record's value (CNAME, NS, MX and SRV targets).
///
/// The hostname is absolute whether or not it ends in a dot; `@` means the
/// zone apex; `.` is the root and only accepted where `allow_root` says the
/// RFCs allow it.
pub fn parse_target(input: &str, zone: &Name, allow_root: bool) -> Result<Name, String> {
    if input == "@" {
        return Ok(zone.clone());
    }
    if input == "." {
        return if allow_root {
            Ok(Name::root())
        } else {
            Err("the root `.` is not a valid target here".to_owned())
        };
    }
    let text = input.strip_suffix('.').unwrap_or(input);
    if text.is_empty() {
        return Err("must be a hostname, not empty".to_owned());
    }
    to_name(text, Flavour::Target)
}

fn join(relative: &Name, zone: &Name) -> Result<Name, String> {
    let joined = if zone.is_root() {
        relative.0.clone()
    } else {
        format!("{}.{}", relative.0, zone.0)
    };
    if joined.len() > MAX_NAME_LEN {
        return Err(format!(
            "`{joined}.` is {} characters long; a name may have at most {MAX_NAME_LEN}",
            joined.len()
        ));
    }
    if relative.labels().skip(1).any(|l| l == "*") {
        return Err("`*` is only allowed as the whole left-most label".to_owned());
    }
    Ok(Name::new(joined))
}

/// Turns text (no trailing dot) into a [`Name`], checking every label.
fn to_name(text: &str, flavour: Flavour) -> Result<Name, String> {
    if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "must not contain whitespace or control characters (found {c:?})"
        ));
    }
    // Invisible and direction-changing characters: IDNA would drop some of
    // them silently, and a name that does not look like what it is, is a
    // phishing tool.
    if let Some(c) = text.chars().find(|c| {
        matches!(*c, '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}')
    }) {
        return Err(format!(
            "must not contain invisible or text-direction characters (found U+{:04X})",
            u32::from(c)
        ));
    }
    // The ACE prefix is case-insensitive (RFC 5890 §2.3.2.1): `Xn--` and
    // `xN--` are A-labels too, and must be decoded and checked like `xn--`.
    let lower = text.to_ascii_lowercase();
    let ascii = if text.is_ascii() && !has_a_label(&lower) {
        lower
    } else {
        // UTS #46 with no ASCII deny list: `_` and `*` pass through and our
        // own label rules below decide about them.
        idna::domain_to_ascii_cow(text.as_bytes(), idna::AsciiDenyList::EMPTY)
            .map_err(|_| format!("`{text}` is not a valid internationalized domain name"))?
            .into_owned()
    };
    if ascii.len() > MAX_NAME_LEN {
        return Err(format!(
            "is {} characters long; a name may have at most {MAX_NAME_LEN}",
            ascii.len()
        ));
    }
    for (i, label) in ascii.split('.').enumerate() {
        check_label(label, i == 0, flavour)?;
    }
    Ok(Name::new(ascii))
}

/// Whether a lower-case name has a label with the ACE prefix `xn--`.
fn has_a_label(lower: &str) -> bool {
    lower.split('.').any(|l| l.starts_with("xn--"))
}

fn check_label(label: &str, leftmost: bool, flavour: Flavour) -> Result<(), String> {
    if label.is_empty() {
        return Err("must not contain an empty label (`..` or a leading dot)".to_owned());
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(format!(
            "label `{label}` is {} characters long; a label may have at most {MAX_LABEL_LEN}",
            label.len()
        ));
    }
    if label == "*" {
        return match (flavour, leftmost) {
            (Flavour::Owner, true) => Ok(()),
            (Flavour::Owner, false) => {
                Err("`*` is only allowed as the whole left-most label".to_owned())
            }
            _ => Err("a wildcard `*` is not allowed here".to_owned()),
        };
    }
    let underscore_ok = flavour != Flavour::Domain;
    if let Some(c) = label
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || (underscore_ok && c == '_')))
    {
        let allowed = if underscore_ok {
            "letters, digits, `-` and `_`"
        } else {
            "letters, digits and `-`"
        };
        return Err(format!(
            "label `{label}` contains {c:?}; labels may only hold {allowed}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Name {
        parse_domain("example.com").unwrap()
    }

    #[test]
    fn domains() {
        let ok = [
            ("example.com", "example.com"),
            ("Example.COM.", "example.com"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("test", "test"),
            ("a-b.c0m", "a-b.c0m"),
        ];
        for (input, want) in ok {
            assert_eq!(parse_domain(input).unwrap().as_str(), want, "{input}");
        }
        let bad = [
            "",
            ".",
            "..",
            "../etc",
            "a/b.com",
            "a..b",
            ".example.com",
            "exa mple.com",
            " example.com",
            "example.com\n",
            "ex\u{0}ample.com",
            "_dmarc.example.com",
            "*.example.com",
            "-a.com",
            "a-.com",
            "a.com..",
            "xn--zz.example",
        ];
        for input in bad {
            assert!(parse_domain(input).is_err(), "{input:?} should fail");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(parse_domain(&long_label).is_err());
        let label63 = format!("{}.com", "a".repeat(63));
        assert!(parse_domain(&label63).is_ok());
        let long = vec!["a".repeat(63); 4].join(".");
        assert_eq!(long.len(), 255);
        assert!(parse_domain(&long).is_err());
    }

    /// An A-label is an A-label whatever the case of its `xn--` prefix
    /// (RFC 5890 §2.3.2.1: the prefix is case-insensitive). `Xn--ab-g4t`
    /// decodes to `a` U+202E RIGHT-TO-LEFT OVERRIDE `b`, and `Xn--zz` is
    /// not Punycode of anything; both were taken as plain ASCII.
    #[test]
    fn a_labels_are_checked_in_any_case() {
        let z = zone();
        for prefix in ["xn--", "XN--", "Xn--", "xN--"] {
            // U+202E, then ZWJ, ZWSP, soft hyphen, word joiner, BOM, ALM.
            for label in [
                "ab-g4t", "zz", "ab-m1t", "ab-g1t", "ab-5da", "ab-q8t", "ab-ot3n", "ab-esd",
            ] {
                let domain = format!("{prefix}{label}.test");
                assert!(parse_domain(&domain).is_err(), "{domain} should fail");
                assert!(
                    parse_owner(&format!("{prefix}{label}"), &z).is_err(),
                    "{domain}"
                );
                assert!(parse_target(&domain, &z, false).is_err(), "{domain}");
            }
            let good = format!("{prefix}bcher-kva.example");
            assert_eq!(
                parse_domain(&good).unwrap().as_str(),
                "xn--bcher-kva.example",
                "{good}"
            );
        }
    }

    #[test]
    fn owners() {
        let z = zone();
        let ok = [
            ("@", "example.com"),
            ("www", "www.example.com"),
            ("WWW", "www.example.com"),
            ("www.example.com", "www.example.com"),
            ("www.example.com.", "www.example.com"),
            ("WWW.Example.Com.", "www.example.com"),
            ("example.com", "example.com"),
            ("example.com.", "example.com"),
            ("_dmarc", "_dmarc.example.com"),
            ("_sip._tcp", "_sip._tcp.example.com"),
            ("*", "*.example.com"),
            ("*.dev", "*.dev.example.com"),
            ("mail.other.org", "mail.other.org.example.com"),
            ("café", "xn--caf-dma.example.com"),
        ];
        for (input, want) in ok {
            assert_eq!(parse_owner(input, &z).unwrap().as_str(), want, "{input}");
        }
        let bad = [
            "",
            ".",
            "www.other.org.",
            "a.*",
            "a.*.b",
            "w*",
            "www ",
            "a b",
            "a;b",
            "a$b",
            "$INCLUDE",
            "a\nb",
            "(a)",
            "a\"b",
            "a\\b",
            "a/b",
            "a..b",
        ];
        for input in bad {
            assert!(parse_owner(input, &z).is_err(), "{input:?} should fail");
        }
        // The zone's own name grows past 253 characters when joined.
        let big_zone = parse_domain(&format!("{}.{}", "c".repeat(63), "d".repeat(61))).unwrap();
        let fits = format!("{}.{}", "a".repeat(63), "b".repeat(63));
        assert_eq!(parse_owner(&fits, &big_zone).unwrap().as_str().len(), 253);
        let long = format!("{fits}.e");
        assert!(parse_owner(&long, &big_zone).is_err());
    }

    #[test]
    fn targets() {
        let z = zone();
        assert_eq!(
            parse_target("@", &z, false).unwrap().as_str(),
            "example.com"
        );
        assert_eq!(
            parse_target("mail.example.com", &z, false)
                .unwrap()
                .as_str(),
            "mail.example.com"
        );
        assert_eq!(parse_target("mail", &z, false).unwrap().as_str(), "mail");
        assert_eq!(
            parse_target("Mail.Other.ORG.", &z, false).unwrap().as_str(),
            "mail.other.org"
        );
        assert!(parse_target(".", &z, true).unwrap().is_root());
        assert!(parse_target(".", &z, false).is_err());
        assert!(parse_target("", &z, true).is_err());
        assert!(parse_target("*.x.com", &z, false).is_err());
        assert!(parse_target("a b.com", &z, false).is_err());
        assert!(parse_target("a..com", &z, false).is_err());
    }

    #[test]
    fn hostnames() {
        let z = zone();
        let host = |s: &str| parse_owner(s, &z).unwrap();
        assert!(host("www").is_hostname(false));
        assert!(host("*.www").is_hostname(true));
        assert!(!host("*.www").is_hostname(false));
        assert!(!host("_dmarc").is_hostname(true));
        assert!(!host("-a").is_hostname(true));
        assert!(!host("a-").is_hostname(true));
        assert!(Name::root().is_hostname(false));
    }

    #[test]
    fn relative_and_order() {
        let z = zone();
        let n = |s: &str| parse_owner(s, &z).unwrap();
        assert_eq!(n("@").relative_to(&z), "@");
        assert_eq!(n("a.b").relative_to(&z), "a.b");
        assert_eq!(n("a.b").to_absolute(), "a.b.example.com.");
        let mut names = [
            n("b"),
            n("a.b"),
            n("@"),
            n("*"),
            n("z"),
            n("a"),
            n("_x"),
            n("0"),
        ];
        names.sort();
        let got: Vec<String> = names.iter().map(|x| x.relative_to(&z)).collect();
        assert_eq!(got, ["@", "*", "0", "_x", "a", "b", "a.b", "z"]);
        assert!(n("a.b").is_below(&z));
        assert!(!z.is_below(&z));
        let other = parse_domain("xexample.com").unwrap();
        assert!(!other.is_in(&z));
    }
}
