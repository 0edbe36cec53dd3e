//! The include file that lists our zones for `named.conf`, and the
//! throw-away configuration that lets `named-checkconf -z` check a batch.
//!
//! Rendered through `templates/zones.conf.txt`. Domains are A-labels made of
//! letters, digits and hyphens; file paths are quoted with `"` and `\`
//! escaped, so nothing in a stanza can end it early.

use askama::Template;
use std::path::Path;

/// One zone in the include file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stanza {
    /// A-label domain without the trailing dot.
    pub domain: String,
    /// Absolute path of its zone file.
    pub file: String,
    /// This zone's own options, after the shared ones (signing:
    /// [`crate::dnssec::stanza_options`]); already in `named.conf` syntax.
    pub extra: String,
}

/// Fleet mode's part of the include file: the transfer key, the catalog
/// zone, and the replication settings of every member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// The key file (`tsig-keygen` output), included as it is.
    pub key_file: String,
    pub key_name: String,
    /// The secondaries, each `ADDR port P key "NAME"`: NOTIFYs are signed.
    pub also_notify: Vec<String>,
    /// The catalog zone's own stanza.
    pub catalog: Stanza,
}

#[derive(Template)]
#[template(path = "zones.conf.txt")]
struct Include<'a> {
    zones: &'a [Stanza],
    options: &'a str,
    fleet: Option<&'a Fleet>,
}

/// The include file for `zones`, sorted by domain so equal sets give equal
/// bytes. `options` (from config) goes inside every stanza.
pub fn include_file(zones: &[Stanza], options: &str) -> String {
    fleet_include_file(zones, options, None)
}

/// [`include_file`] with fleet mode's key, catalog zone and replication
/// settings: `notify explicit` and `also-notify` the secondaries on the
/// catalog and every member, `allow-transfer` with the key only,
/// `notify-delay 0` everywhere (BIND's 5 s default holds back the NOTIFY
/// of a second change within 5 s; the agent already coalesces a burst
/// into one reload) and `ixfr-from-differences yes` everywhere (a
/// reloaded file then goes out as an IXFR of its changes; for the catalog,
/// one added zone is one record, not the whole list).
pub fn fleet_include_file(zones: &[Stanza], options: &str, fleet: Option<&Fleet>) -> String {
    let fleet = fleet.map(|f| Fleet {
        key_file: quote_escape(&f.key_file),
        key_name: f.key_name.clone(),
        also_notify: f.also_notify.clone(),
        catalog: Stanza {
            domain: f.catalog.domain.clone(),
            file: quote_escape(&f.catalog.file),
            extra: f.catalog.extra.clone(),
        },
    });
    let mut zones = zones.to_vec();
    zones.sort();
    let quoted: Vec<Stanza> = zones
        .into_iter()
        .map(|s| Stanza {
            domain: s.domain,
            file: quote_escape(&s.file),
            extra: s.extra,
        })
        .collect();
    Include {
        zones: &quoted,
        options: options.trim(),
        fleet: fleet.as_ref(),
    }
    .render()
    .unwrap_or_else(|e| unreachable!("include template failed: {e}"))
}

/// The options of [`check_conf`] that decide a verdict, as `named` 9.18
/// defaults them for a primary zone (ARM, "Boolean Options" and
/// `check-names`). They are written out although `named-checkconf -z`
/// applies the same defaults, so the batch verdict cannot drift from
/// `named`'s if either's defaults change.
pub(crate) const NAMED_DEFAULTS: &str = "\tcheck-names primary fail;\n\tcheck-mx warn;\n\
     \tcheck-mx-cname warn;\n\tcheck-srv-cname warn;\n\tcheck-integrity yes;\n\
     \tcheck-dup-records warn;\n\tcheck-wildcard yes;\n\tcheck-sibling yes;\n";

/// `[validate] strict`: what `named-checkzone`'s strict flags make fatal
/// (`-m fail -M fail -S fail`), fatal here too.
pub(crate) const STRICT: &str = "\tcheck-names primary fail;\n\tcheck-mx fail;\n\
     \tcheck-mx-cname fail;\n\tcheck-srv-cname fail;\n\tcheck-integrity yes;\n\
     \tcheck-dup-records warn;\n\tcheck-wildcard yes;\n\tcheck-sibling yes;\n";

/// A `named.conf` for `named-checkconf -z` over a batch: the checks `named`
/// makes when it loads a primary zone with its default options, or the
/// stricter ones of `[validate] strict`.
pub fn check_conf(directory: &Path, zones: &[Stanza], strict: bool) -> String {
    let mut s = format!(
        "options {{\n\tdirectory \"{}\";\n{}}};\n",
        quote_escape(&directory.to_string_lossy()),
        if strict { STRICT } else { NAMED_DEFAULTS }
    );
    s.push_str(&include_file(zones, ""));
    s
}

/// Escapes `"` and `\` for a quoted string in `named.conf`.
pub(crate) fn quote_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The configuration `rndc addzone` takes for one zone: what its stanza
/// in the include file would say, on one line.
pub fn addzone_config(file: &str, options: &str) -> String {
    let options = options.trim();
    let sep = if options.is_empty() { "" } else { " " };
    format!(
        "{{ type primary; file \"{}\";{sep}{options} }};",
        quote_escape(file)
    )
}

/// The domains an include file written by [`include_file`] lists.
pub fn listed_domains(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("zone \"")?.split_once('"'))
        .map(|(d, _)| d.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_domains_of_an_include_and_addzone_says_the_same() {
        let zones = [
            Stanza {
                domain: "b.test".into(),
                file: "/z/b.test.zone".into(),
                extra: String::new(),
            },
            Stanza {
                domain: "a.test".into(),
                file: "/z/a.test.zone".into(),
                extra: String::new(),
            },
        ];
        let text = include_file(&zones, "allow-transfer { none; };");
        let listed: Vec<String> = listed_domains(&text).into_iter().collect();
        assert_eq!(listed, ["a.test", "b.test"]);
        assert!(listed_domains("").is_empty());
        assert_eq!(
            addzone_config("/z/we\"ird.zone", " allow-transfer { none; }; "),
            "{ type primary; file \"/z/we\\\"ird.zone\"; allow-transfer { none; }; };"
        );
        assert_eq!(
            addzone_config("/z/a.zone", ""),
            "{ type primary; file \"/z/a.zone\"; };"
        );
    }

    #[test]
    fn include_is_sorted_and_quoted() {
        let zones = [
            Stanza {
                domain: "b.test".into(),
                file: "/z/b.test.zone".into(),
                extra: String::new(),
            },
            Stanza {
                domain: "a.test".into(),
                file: "/z/we\"ird.zone".into(),
                extra: "inline-signing yes;".into(),
            },
        ];
        let text = include_file(&zones, "allow-transfer { none; };");
        let want = "// Written by zoneagent: one stanza per zone it deploys. Edits are\n\
// overwritten; set per-zone options with `zone.options` in its config.\n\
zone \"a.test\" {\n\ttype primary;\n\tfile \"/z/we\\\"ird.zone\";\n\tallow-transfer { none; };\n\tinline-signing yes;\n};\n\
zone \"b.test\" {\n\ttype primary;\n\tfile \"/z/b.test.zone\";\n\tallow-transfer { none; };\n};\n";
        assert_eq!(text, want);
        let bare = include_file(&zones[..1], "");
        assert!(bare.ends_with("file \"/z/b.test.zone\";\n};\n"), "{bare}");
    }

    #[test]
    fn check_conf_states_named_defaults_or_strict() {
        let zones = [Stanza {
            domain: "a.test".into(),
            file: "/z/a.test.zone".into(),
            extra: String::new(),
        }];
        let plain = check_conf(Path::new("/z"), &zones, false);
        for option in [
            "check-names primary fail;",
            "check-mx warn;",
            "check-mx-cname warn;",
        ] {
            assert!(plain.contains(option), "{option}: {plain}");
        }
        let strict = check_conf(Path::new("/z"), &zones, true);
        for option in [
            "check-mx fail;",
            "check-mx-cname fail;",
            "check-srv-cname fail;",
        ] {
            assert!(strict.contains(option), "{option}: {strict}");
        }
        assert!(plain.contains("zone \"a.test\""), "{plain}");
    }

    #[test]
    fn fleet_settings_in_every_stanza() {
        let zones = [Stanza {
            domain: "a.test".into(),
            file: "/z/a.test.zone".into(),
            extra: String::new(),
        }];
        let fleet = Fleet {
            key_file: "/etc/bind/xfer.key".into(),
            key_name: "xfer".into(),
            also_notify: vec![
                "192.0.2.53 port 53 key \"xfer\"".into(),
                "192.0.2.54 port 5300 key \"xfer\"".into(),
            ],
            catalog: Stanza {
                domain: "cat.invalid".into(),
                file: "/z/cat.invalid.zone".into(),
                extra: String::new(),
            },
        };
        let text = fleet_include_file(&zones, "", Some(&fleet));
        let notify = "\talso-notify { 192.0.2.53 port 53 key \"xfer\"; 192.0.2.54 port 5300 key \"xfer\"; };\n";
        let want = format!(
            "include \"/etc/bind/xfer.key\";\n\
zone \"cat.invalid\" {{\n\ttype primary;\n\tfile \"/z/cat.invalid.zone\";\n\tnotify explicit;\n\
\tnotify-delay 0;\n{notify}\tallow-transfer {{ key \"xfer\"; }};\n\tixfr-from-differences yes;\n}};\n\
zone \"a.test\" {{\n\ttype primary;\n\tfile \"/z/a.test.zone\";\n\tnotify explicit;\n\tnotify-delay 0;\n{notify}\
\tallow-transfer {{ key \"xfer\"; }};\n\tixfr-from-differences yes;\n}};\n"
        );
        assert!(text.ends_with(&want), "{text}");
        // Without fleet mode, the include is what it always was.
        assert_eq!(
            fleet_include_file(&zones, "", None),
            include_file(&zones, "")
        );
    }
}
