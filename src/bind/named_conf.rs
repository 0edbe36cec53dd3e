//! The zones `named.conf` declares itself (an operator's own zones, the
//! built-in `localhost` and reverse zones, a catalog), read from the
//! canonical form `named-checkconf -p` prints. A customer zone with one of
//! these names would make `named` refuse its configuration (`already
//! exists`) and, at the next start, not start at all: such a zone is held,
//! never written into the include file.
//!
//! Pure: [`declared_zones`] reads the tool's output; the shell runs it.

use crate::model::name;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

/// argv that prints `conf` with every include resolved.
pub fn argv(checkconf: &Path, conf: &Path) -> Vec<OsString> {
    vec![checkconf.into(), "-p".into(), conf.into()]
}

/// One `zone` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredZone {
    /// The A-label domain, lower case, without the trailing dot.
    pub domain: String,
    /// Its `file`, if it has one.
    pub file: Option<String>,
}

/// Every zone statement in `named-checkconf -p` output.
pub fn declared_zones(printed: &str) -> Vec<DeclaredZone> {
    let mut out: Vec<DeclaredZone> = Vec::new();
    let mut open: Option<(usize, DeclaredZone)> = None;
    for line in printed.lines() {
        let depth = line.len() - line.trim_start_matches('\t').len();
        let text = line.trim();
        if let Some((d, zone)) = open.as_mut() {
            if depth == *d && text.starts_with("};") {
                if let Some((_, z)) = open.take() {
                    out.push(z);
                }
                continue;
            }
            if depth == *d + 1
                && let Some(file) = text
                    .strip_prefix("file \"")
                    .and_then(|r| r.strip_suffix("\";"))
            {
                zone.file = Some(unescape(file));
            }
            continue;
        }
        let Some(rest) = text.strip_prefix("zone \"") else {
            continue;
        };
        let Some(end) = find_quote(rest) else {
            continue;
        };
        let raw = unescape(&rest[..end]);
        let domain = name::parse_domain(&raw).map_or_else(
            |_| raw.trim_end_matches('.').to_ascii_lowercase(),
            |n| n.as_str().to_owned(),
        );
        let zone = DeclaredZone { domain, file: None };
        if rest[end..].trim_end().ends_with("};") {
            out.push(zone);
        } else {
            open = Some((depth, zone));
        }
    }
    out
}

/// The zones not made by this agent (whose file is not in `ours`, the
/// agent's zones directory): domain → where it was found, for messages.
pub fn foreign_zones(zones: &[DeclaredZone], ours: &Path, conf: &Path) -> BTreeMap<String, String> {
    let ours = ours.to_string_lossy();
    let ours = ours.trim_end_matches('/');
    zones
        .iter()
        .filter(|z| {
            !z.file
                .as_deref()
                .is_some_and(|f| f.strip_prefix(ours).is_some_and(|r| r.starts_with('/')))
        })
        .filter(|z| !z.domain.is_empty())
        .map(|z| (z.domain.clone(), format!("declared in {}", conf.display())))
        .collect()
}

/// The index of the closing quote of a quoted string (after its opening
/// quote), skipping `\"`.
fn find_quote(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRINTED: &str = "options {\n\tdirectory \"/var/cache/bind\";\n};\nzone \".\" {\n\ttype hint;\n\tfile \"/usr/share/dns/root.hints\";\n};\nzone \"localhost\" {\n\ttype master;\n\tfile \"/etc/bind/db.local\";\n};\nzone \"Ops.Example\" IN {\n\ttype primary;\n\tfile \"/etc/bind/db.ops\";\n};\nview \"v\" {\n\tzone \"inview.test\" {\n\t\ttype secondary;\n\t\tprimaries {\n\t\t\t192.0.2.1;\n\t\t};\n\t};\n};\nzone \"ours.test\" {\n\ttype primary;\n\tfile \"/var/lib/bind/zoneagent/zones/ours.test.zone\";\n};\n";

    #[test]
    fn reads_zone_statements() {
        let zones = declared_zones(PRINTED);
        let names: Vec<&str> = zones.iter().map(|z| z.domain.as_str()).collect();
        assert_eq!(
            names,
            ["", "localhost", "ops.example", "inview.test", "ours.test"]
        );
        assert_eq!(zones[2].file.as_deref(), Some("/etc/bind/db.ops"));
        assert_eq!(zones[3].file, None);
        let foreign = foreign_zones(
            &zones,
            Path::new("/var/lib/bind/zoneagent/zones/"),
            Path::new("/etc/bind/named.conf"),
        );
        let names: Vec<&str> = foreign.keys().map(String::as_str).collect();
        assert_eq!(names, ["inview.test", "localhost", "ops.example"]);
    }
}
