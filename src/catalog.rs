//! Fleet mode's pure core: the catalog zone (RFC 9432) that lists every
//! zone this primary serves, the rule that keeps a `sync` or `import` from
//! emptying the fleet by accident, the transfer key's file, and the
//! configuration a secondary needs to follow the primary.
//!
//! No file system, no process, no clock: the deploy shell
//! ([`crate::deploy`]) reads the key file, picks the serial and installs
//! the catalog like any other zone.
//!
//! Member labels. RFC 9432 §5.4 says a member's unique label must not
//! change while the zone is a member: a changed label makes every consumer
//! delete the zone and add it again, resetting it. The label here is the
//! SHA-1 of the member's wire-format name (RFC 1035 §3.1, lower case) in
//! hex, as Knot and BIND's own examples use: it is derived from the domain
//! alone, so it is the same in every process, after every restart and on
//! every rebuild of the state, with nothing to store. A zone deleted and
//! created again under the same domain gets the same label back; since the
//! catalog drops the member in between (when the two are separate
//! batches), consumers remove the old copy and transfer the new one.

use crate::error::ApiError;
use crate::model::name::Name;
use crate::render::SoaFields;
use askama::Template;
use sha1::{Digest, Sha1};
use sha2::Sha256;
use std::net::SocketAddr;

/// The catalog schema version BIND 9.18 reads (RFC 9432 §4.2.1).
pub const SCHEMA_VERSION: &str = "2";

/// The unique label of a member zone: the SHA-1 of its wire-format name,
/// lower-case hex (40 characters, within the 63 a label may have).
pub fn member_label(domain: &Name) -> String {
    let mut wire = Vec::with_capacity(domain.wire_len());
    for label in domain.labels() {
        let bytes = label.to_ascii_lowercase().into_bytes();
        wire.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
        wire.extend_from_slice(&bytes);
    }
    wire.push(0);
    crate::render::hex(&Sha1::digest(&wire))
}

struct Member {
    label: String,
    target: String,
}

#[derive(Template)]
#[template(path = "catalog.txt")]
struct CatalogFile<'a> {
    origin: String,
    ttl: u32,
    mname: String,
    rname: String,
    soa: &'a SoaFields,
    serial: u32,
    version: &'static str,
    members: Vec<Member>,
}

/// The catalog's zone file, rendered once with its serial still to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedCatalog {
    /// The file with serial 0.
    text: String,
    /// Byte offset of that `0` in `text`.
    serial_at: usize,
    /// SHA-256 of `text`: equal hashes, equal catalogs but for the serial.
    pub hash: String,
    /// How many member zones it lists.
    pub members: usize,
}

impl RenderedCatalog {
    /// Lists `members` (A-label domains, any order) in the catalog `origin`.
    pub fn new(origin: &Name, soa: &SoaFields, ttl: u32, members: &[Name]) -> RenderedCatalog {
        let mut sorted: Vec<&Name> = members.iter().collect();
        sorted.sort();
        sorted.dedup();
        let file = CatalogFile {
            origin: origin.to_absolute(),
            ttl,
            mname: soa.mname.to_absolute(),
            rname: soa.rname.to_absolute(),
            soa,
            serial: 0,
            version: SCHEMA_VERSION,
            members: sorted
                .iter()
                .map(|m| Member {
                    label: member_label(m),
                    target: m.to_absolute(),
                })
                .collect(),
        };
        let text = file
            .render()
            .unwrap_or_else(|e| unreachable!("catalog template failed: {e}"));
        let marker = format!(" {} 0 ", file.rname);
        let serial_at = text.find(&marker).map_or_else(
            || unreachable!("the catalog template has no SOA serial"),
            |at| at + marker.len() - 2,
        );
        let hash = crate::render::hex(&Sha256::digest(text.as_bytes()));
        RenderedCatalog {
            text,
            serial_at,
            hash,
            members: sorted.len(),
        }
    }

    /// The file with `serial` in its SOA record.
    pub fn with_serial(&self, serial: u32) -> String {
        crate::render::splice_serial(&self.text, self.serial_at, serial)
    }
}

/// Whether a catalog with `members` may be published while the state holds
/// `desired` zones. An empty catalog removes every zone from every
/// secondary (RFC 9432 §5.1), so it goes out only when the state is empty
/// too, never because every zone happens to be held or refused.
pub fn publishable(members: usize, desired: usize) -> bool {
    members > 0 || desired == 0
}

/// Whether one batch may remove `removed` of the `current` zones when at
/// most `share` (0 to 1) of them may go at once. The error, in the API's
/// shape, names the share; `--allow-mass-delete` is the operator's way
/// past it.
pub fn removal_allowed(current: usize, removed: usize, share: f64) -> Result<(), ApiError> {
    if !removes_too_many(current, removed, share) {
        return Ok(());
    }
    #[allow(clippy::cast_precision_loss)]
    let asked = removed as f64 / current as f64;
    Err(ApiError::new(
        "mass_deletion",
        None,
        format!(
            "this would remove {removed} of {current} zones ({:.0}%), more than \
             catalog.max_removal_share ({:.0}%) allows at once; nothing was changed. \
             Run it again with --allow-mass-delete if the removal is meant",
            asked * 100.0,
            share * 100.0
        ),
    ))
}

/// The mass-deletion rule, for every path that can remove zones at once
/// (`import`, a `sync`, a pull): removing more than `share` of `current`
/// zones needs the operator's `--allow-mass-delete`.
pub fn removes_too_many(current: usize, removed: usize, share: f64) -> bool {
    #[allow(clippy::cast_precision_loss)]
    let too_many = current > 0 && removed as f64 > share * current as f64;
    too_many
}

/// A TSIG key as `tsig-keygen` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigKey {
    pub name: String,
    pub algorithm: String,
    /// Base64, as in the file.
    pub secret: String,
}

/// Why a key file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("no `key \"NAME\" {{ ... }};` statement")]
    NoKey,
    #[error("the key has no `{0}` clause")]
    Missing(&'static str),
    #[error("the key's {0} has characters named.conf cannot carry")]
    Unsafe(&'static str),
}

impl TsigKey {
    /// The `key` statement, for `named.conf`.
    pub fn statement(&self) -> String {
        format!(
            "key \"{}\" {{\n\talgorithm {};\n\tsecret \"{}\";\n}};",
            self.name, self.algorithm, self.secret
        )
    }
}

/// Reads the first `key` statement of a `tsig-keygen` file.
pub fn parse_key(text: &str) -> Result<TsigKey, KeyError> {
    // Comments (`#`, `//`) are dropped line by line; tsig-keygen writes none.
    let text: String = text
        .lines()
        .map(|l| {
            let l = l.split("//").next().unwrap_or_default();
            l.split('#').next().unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let rest = text
        .split_once("key")
        .map(|(_, r)| r.trim_start())
        .ok_or(KeyError::NoKey)?;
    let (name, body) = rest.split_once('{').ok_or(KeyError::NoKey)?;
    let name = name.trim().trim_matches('"').to_owned();
    let body = body.split('}').next().unwrap_or_default();
    let clause = |word: &'static str| {
        body.split(';')
            .map(str::trim)
            .find_map(|c| c.strip_prefix(word))
            .map(|v| v.trim().trim_matches('"').to_owned())
            .filter(|v| !v.is_empty())
            .ok_or(KeyError::Missing(word))
    };
    let algorithm = clause("algorithm")?;
    let secret = clause("secret")?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+/=".contains(&b))
    };
    if !plain(&name) {
        return Err(KeyError::Unsafe("name"));
    }
    if !plain(&algorithm) {
        return Err(KeyError::Unsafe("algorithm"));
    }
    if !plain(&secret) {
        return Err(KeyError::Unsafe("secret"));
    }
    Ok(TsigKey {
        name,
        algorithm,
        secret,
    })
}

/// An address in `named.conf`'s server-list form, signed with `key`:
/// `192.0.2.1 port 53 key "k"`.
pub fn server_entry(addr: SocketAddr, key: &str) -> String {
    format!("{} port {} key \"{key}\"", addr.ip(), addr.port())
}

/// What a secondary's configuration depends on.
#[derive(Debug, Clone, Copy)]
pub struct SecondaryConf<'a> {
    pub catalog: &'a Name,
    /// Where the secondary transfers from.
    pub primary: SocketAddr,
    pub key: &'a TsigKey,
    /// Where the secondary keeps the member zones' files.
    pub zone_directory: &'a str,
}

#[derive(Template)]
#[template(path = "secondary-conf.txt")]
struct SecondaryConfFile<'a> {
    primary: String,
    catalog: &'a str,
    key_statement: String,
    primary_entry: String,
    zone_directory: &'a str,
    catalog_file: String,
}

/// The configuration a secondary pastes into its `named.conf`: the key,
/// the `options` part between `// BEGIN options` and `// END options`,
/// and the catalog zone between `// BEGIN zones` and `// END zones`.
/// `zone_directory` must be a path `named.conf` can quote as it is.
pub fn secondary_conf(c: &SecondaryConf<'_>) -> String {
    let dir = c.zone_directory.trim_end_matches('/');
    SecondaryConfFile {
        primary: c.primary.to_string(),
        catalog: c.catalog.as_str(),
        key_statement: c.key.statement(),
        primary_entry: server_entry(c.primary, &c.key.name),
        zone_directory: dir,
        catalog_file: format!("{dir}/{}.catalog", c.catalog.as_str()),
    }
    .render()
    .unwrap_or_else(|e| unreachable!("secondary template failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::name::parse_domain;

    fn soa() -> SoaFields {
        SoaFields {
            mname: parse_domain("ns1.example.net").unwrap(),
            rname: parse_domain("hostmaster.example.net").unwrap(),
            refresh: 1,
            retry: 2,
            expire: 3,
            minimum: 4,
        }
    }

    #[test]
    fn labels_are_sha1_of_the_wire_name() {
        // printf '\x07example\x03com\x00' | sha1sum
        let n = parse_domain("Example.COM.").unwrap();
        assert_eq!(member_label(&n), "c5e4b4da1e5a620ddaa3635e55c3732a5b49c7f4");
        assert_eq!(
            member_label(&n),
            member_label(&parse_domain("example.com").unwrap())
        );
    }

    #[test]
    fn catalog_lists_members_sorted_with_schema_2() {
        let origin = parse_domain("catalog.zoneagent.invalid").unwrap();
        let members = [
            parse_domain("b.test").unwrap(),
            parse_domain("a.test").unwrap(),
        ];
        let c = RenderedCatalog::new(&origin, &soa(), 3600, &members);
        let text = c.with_serial(2_026_120_100);
        assert!(text.contains(
            "@\t3600\tIN\tSOA\tns1.example.net. hostmaster.example.net. 2026120100 1 2 3 4\n"
        ));
        assert!(text.contains("@\t3600\tIN\tNS\tinvalid.\n"));
        assert!(text.contains("version\t3600\tIN\tTXT\t\"2\"\n"));
        let a = text.find(&member_label(&members[1])).unwrap();
        let b = text.find(&member_label(&members[0])).unwrap();
        assert!(a < b);
        assert!(text.contains(".zones\t3600\tIN\tPTR\ta.test.\n"));
        assert_eq!(c.members, 2);
        let reversed = [members[1].clone(), members[0].clone()];
        assert_eq!(
            RenderedCatalog::new(&origin, &soa(), 3600, &reversed).hash,
            c.hash
        );
        let fewer = RenderedCatalog::new(&origin, &soa(), 3600, &members[..1]);
        assert_ne!(fewer.hash, c.hash);
    }

    #[test]
    fn never_empty_while_zones_exist() {
        assert!(publishable(1, 5));
        assert!(publishable(0, 0));
        assert!(!publishable(0, 5));
    }

    #[test]
    fn removal_share() {
        let cases = [
            (10, 0, 0.5, true),
            (10, 5, 0.5, true),
            (10, 6, 0.5, false),
            (1, 1, 0.5, false),
            (1, 1, 1.0, true),
            (0, 0, 0.5, true),
            (100, 1, 0.0, false),
        ];
        for (current, removed, share, ok) in cases {
            let r = removal_allowed(current, removed, share);
            assert_eq!(r.is_ok(), ok, "{current} {removed} {share}");
        }
        let e = removal_allowed(4, 3, 0.5).unwrap_err();
        assert_eq!(e.error_code, "mass_deletion");
        assert!(e.detail.contains("3 of 4 zones (75%)"), "{}", e.detail);
        assert!(e.detail.contains("--allow-mass-delete"), "{}", e.detail);
    }

    #[test]
    fn reads_tsig_keygen_output() {
        let text = "key \"xfer-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0+/=\";\n};\n";
        let k = parse_key(text).unwrap();
        assert_eq!(k.name, "xfer-key");
        assert_eq!(k.algorithm, "hmac-sha256");
        assert_eq!(k.secret, "c2VjcmV0+/=");
        assert_eq!(parse_key(&k.statement()).unwrap(), k);
        assert_eq!(parse_key("nothing"), Err(KeyError::NoKey));
        assert_eq!(
            parse_key("key \"k\" { algorithm hmac-sha256; };"),
            Err(KeyError::Missing("secret"))
        );
        assert_eq!(
            parse_key("key \"a\\\"b\" { algorithm x; secret \"y\"; };"),
            Err(KeyError::Unsafe("name"))
        );
    }

    #[test]
    fn secondary_conf_has_every_part() {
        let key = TsigKey {
            name: "xfer".into(),
            algorithm: "hmac-sha256".into(),
            secret: "c2VjcmV0".into(),
        };
        let catalog = parse_domain("catalog.zoneagent.invalid").unwrap();
        let text = secondary_conf(&SecondaryConf {
            catalog: &catalog,
            primary: "192.0.2.1:5300".parse().unwrap(),
            key: &key,
            zone_directory: "/var/lib/bind/catalog/",
        });
        for want in [
            "key \"xfer\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0\";\n};",
            "default-primaries { 192.0.2.1 port 5300 key \"xfer\"; }",
            "zone-directory \"/var/lib/bind/catalog\"",
            "min-update-interval 0;",
            "in-memory no",
            "serial-query-rate 1000;",
            "transfers-in 200;",
            "transfers-per-ns 100;",
            "allow-new-zones yes;",
            "zone \"catalog.zoneagent.invalid\" {\n\ttype secondary;",
            "AppArmor",
            "// BEGIN options",
            "// END zones",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }
}
