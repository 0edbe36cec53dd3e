//! DNSSEC through BIND's own signer: which zones `named` signs, what their
//! stanza says, and what the platform is told (the DS records).
//!
//! `named` does the signing (`dnssec-policy` with inline signing: the
//! agent's file stays unsigned, `named` keeps a signed copy beside it, as
//! `<file>.signed`), the key rollovers, the signature refresh and
//! NSEC/NSEC3. The agent switches it on per zone, keeps its serials above
//! what the signer serves, and reads the DS from what `named` serves.
//!
//! Pure: no socket, no file. The DNS exchanges live in [`probe`].
//!
//! Rules:
//! - With `[dnssec]` set, every zone's stanza has `inline-signing yes`, so
//!   switching a zone's signing on or off later is only a policy change
//!   (turning inline signing on for a loaded zone makes `named` rebuild it,
//!   a few milliseconds of SERVFAIL).
//! - A selected zone gets the configured policy; a zone that was signed and
//!   no longer is selected gets BIND's `insecure` policy, which withdraws
//!   the keys in an order validators survive; the agent never drops the
//!   policy of a zone it once signed.
//! - The DS records are those of the KSK/CSK (SEP flag, RFC 4034 §2.1.1)
//!   in the DNSKEY RRset `named` serves, digest SHA-256 (RFC 4509).

pub mod probe;

use crate::bind::conf::quote_escape;
use crate::config::DnssecConfig;
use crate::error::ApiError;
use crate::model::name::Name;
use crate::model::zone::Zone;
use crate::store::{Signer, ZoneRecord};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// BIND's built-in policy that takes a signed zone back to unsigned.
pub const INSECURE: &str = "insecure";

/// Files `named` keeps beside a zone file (inline signing's signed copy
/// and the journals). They belong to one life of the zone: `named` refuses
/// a journal out of step with a re-created zone's file.
pub(crate) const NAMED_FILES: [&str; 4] = [".jnl", ".jbk", ".signed", ".signed.jnl"];

const TYPE_SOA: u16 = 6;
const TYPE_RRSIG: u16 = 46;
const TYPE_DNSKEY: u16 = 48;
const TYPE_CDS: u16 = 59;
const CLASS_IN: u16 = 1;
const TYPE_OPT: u16 = 41;
/// DNSKEY flags (RFC 4034 §2.1.1, RFC 5011 §3).
const FLAG_ZONE: u16 = 0x0100;
const FLAG_SEP: u16 = 0x0001;
const FLAG_REVOKE: u16 = 0x0080;
/// The DS digest type this agent hands out: SHA-256 (RFC 4509).
pub const DIGEST_SHA256: u8 = 2;

/// Whether `[dnssec]` selects `domain` (an A-label) for signing.
pub fn selected(config: &DnssecConfig, domain: &str) -> bool {
    (config.only.is_empty() || config.only.contains(domain)) && !config.except.contains(domain)
}

/// A zone's signer after this configuration: the policy if it is
/// selected, `insecure` if it was signed before and no longer is, none if
/// it never was signed. What was seen served is kept.
pub(crate) fn signer(
    config: Option<&DnssecConfig>,
    domain: &str,
    before: Option<&Signer>,
) -> Option<Signer> {
    match (config, before) {
        (Some(c), _) if selected(c, domain) => Some(Signer {
            policy: c.policy.clone(),
            key_directory: c.key_directory.clone(),
            served: before.and_then(|b| b.served),
        }),
        (_, Some(b)) => Some(Signer {
            policy: INSECURE.to_owned(),
            ..b.clone()
        }),
        (_, None) => None,
    }
}

/// Sets the signer of every served zone among `records` from `config`.
pub(crate) fn mark_signers(
    records: &mut BTreeMap<String, ZoneRecord>,
    config: Option<&DnssecConfig>,
) {
    for record in records.values_mut() {
        if let Some(d) = &record.deployed {
            record.signer = signer(config, &d.domain, record.signer.as_ref());
        }
    }
}

/// BIND's built-in policies.
const BUILT_IN: [&str; 3] = ["default", INSECURE, "none"];

/// Whether `policy` is built in or defined by a top-level `dnssec-policy`
/// statement in `printed` (what `named-checkconf -p` prints). A zone
/// naming an unknown policy makes `named` refuse its whole configuration.
pub(crate) fn policy_defined(printed: &str, policy: &str) -> bool {
    BUILT_IN.contains(&policy)
        || printed.lines().any(|l| {
            l.strip_prefix("dnssec-policy \"")
                .and_then(|r| r.strip_suffix("\" {"))
                .is_some_and(|n| n == policy)
        })
}

/// `max-zone-ttl` of BIND 9.18's built-in `default` policy: under it,
/// `named` refuses to load a zone with a larger TTL, which
/// `named-checkzone` does not check.
pub const DEFAULT_MAX_ZONE_TTL: i64 = 86_400;

/// What `named` would refuse in `zone` under `policy` that its checker
/// does not see: a TTL above the `default` policy's `max-zone-ttl`
/// (`default_ttl`: what records without a TTL get). The limits of policies
/// `named.conf` defines are not known here; `named` enforces them.
pub(crate) fn policy_problems(policy: &str, zone: &Zone, default_ttl: u32) -> Vec<ApiError> {
    if policy != "default" {
        return Vec::new();
    }
    let limit = DEFAULT_MAX_ZONE_TTL;
    let detail = |ttl: i64| {
        format!("TTL {ttl} is above {limit}, the max-zone-ttl of dnssec-policy \"default\"")
    };
    let mut out = Vec::new();
    if i64::from(default_ttl) > limit {
        out.push(ApiError::new(
            "dnssec_policy",
            Some("zone.default_ttl"),
            detail(i64::from(default_ttl)),
        ));
    }
    for r in &zone.records {
        if let Some(ttl) = r.ttl.filter(|t| *t > limit) {
            out.push(ApiError::new("dnssec_policy", Some("ttl"), detail(ttl)).in_record(&r.uuid));
        }
    }
    out
}

/// The zone's own options in its stanza: empty without `[dnssec]` and
/// without a signer, as before signing existed.
pub(crate) fn stanza_options(config: Option<&DnssecConfig>, signer: Option<&Signer>) -> String {
    match signer {
        Some(s) => format!(
            "dnssec-policy \"{}\";\n\tinline-signing yes;\n\tkey-directory \"{}\";",
            quote_escape(&s.policy),
            quote_escape(&s.key_directory.to_string_lossy())
        ),
        None if config.is_some() => "inline-signing yes;".to_owned(),
        None => String::new(),
    }
}

/// What the parent zone now holds of a zone's DS, as `named` is told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentDs {
    /// The DS is in the parent: a KSK rollover or a switch to `insecure`
    /// now waits for the DS to change before it removes a key.
    Published,
    /// The DS is gone from the parent: the keys may go.
    Withdrawn,
}

/// argv for `rndc dnssec -checkds`, after the configured `rndc` prefix.
/// `named` assumes a DS is not in the parent until it is told (or checks
/// `parental-agents` itself), and removes keys accordingly.
pub(crate) fn checkds_argv(
    prefix: &[String],
    zone: &Name,
    key: Option<u16>,
    ds: ParentDs,
) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = prefix.iter().map(Into::into).collect();
    v.extend(["dnssec".into(), "-checkds".into()]);
    if let Some(tag) = key {
        v.extend(["-key".into(), tag.to_string().into()]);
    }
    v.push(
        match ds {
            ParentDs::Published => "published",
            ParentDs::Withdrawn => "withdrawn",
        }
        .into(),
    );
    v.push(zone.as_str().into());
    v
}

/// A query for `zone`/`qtype`, recursion not desired, with EDNS0 and the
/// DO bit (RFC 3225) so RRSIGs come along.
pub(crate) fn query(id: u16, zone: &Name, qtype: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(zone.wire_len() + 32);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    q.extend_from_slice(&wire_name(zone));
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    // OPT: root owner, UDP size 1232, extended rcode 0, version 0, DO.
    q.push(0);
    q.extend_from_slice(&TYPE_OPT.to_be_bytes());
    q.extend_from_slice(&1232u16.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0x80, 0, 0, 0]);
    q
}

/// A query for a zone's SOA.
pub(crate) fn soa_query(id: u16, zone: &Name) -> Vec<u8> {
    query(id, zone, TYPE_SOA)
}

/// A query for a zone's DNSKEY RRset.
pub(crate) fn dnskey_query(id: u16, zone: &Name) -> Vec<u8> {
    query(id, zone, TYPE_DNSKEY)
}

/// A query for a zone's CDS RRset (RFC 7344): the DS records `named`
/// wants in the parent, published once the keys are known everywhere.
pub(crate) fn cds_query(id: u16, zone: &Name) -> Vec<u8> {
    query(id, zone, TYPE_CDS)
}

/// `name` in wire form, lower case (the canonical form of RFC 4034 §6.2).
fn wire_name(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.wire_len());
    for label in name.labels() {
        // Labels of a Name are at most 63 octets (checked when parsed).
        out.push(u8::try_from(label.len()).unwrap_or(63));
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    out
}

/// One resource record of an answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnswerRecord {
    pub rtype: u16,
    pub rdata: Vec<u8>,
}

/// A response: its id, response code and answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub id: u16,
    pub rcode: u8,
    pub answers: Vec<AnswerRecord>,
}

impl Response {
    /// The serial of the SOA in the answer, if there is one. SOA RDATA
    /// ends with the serial and four 32-bit timers (RFC 1035 §3.3.13), so
    /// its names need not be read.
    pub fn soa_serial(&self) -> Option<u32> {
        let rdata = &self.answers.iter().find(|r| r.rtype == TYPE_SOA)?.rdata;
        let at = rdata.len().checked_sub(20)?;
        let s = rdata.get(at..at + 4)?;
        Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
}

/// Reads a response; `None` for a packet that is not a well-formed one.
pub(crate) fn parse_response(packet: &[u8]) -> Option<Response> {
    let header = packet.get(..12)?;
    if header[2] & 0x80 == 0 {
        return None;
    }
    let id = u16::from_be_bytes([header[0], header[1]]);
    let rcode = header[3] & 0x0f;
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    let ancount = u16::from_be_bytes([header[6], header[7]]);
    let mut pos = 12;
    for _ in 0..qdcount {
        pos = skip_name(packet, pos)? + 4;
    }
    let mut answers = Vec::with_capacity(usize::from(ancount));
    for _ in 0..ancount {
        pos = skip_name(packet, pos)?;
        let rr = packet.get(pos..pos + 10)?;
        let rtype = u16::from_be_bytes([rr[0], rr[1]]);
        let rdlen = usize::from(u16::from_be_bytes([rr[8], rr[9]]));
        let rdata = packet.get(pos + 10..pos + 10 + rdlen)?.to_vec();
        answers.push(AnswerRecord { rtype, rdata });
        pos += 10 + rdlen;
    }
    Some(Response { id, rcode, answers })
}

/// The position after a (possibly compressed) name starting at `pos`.
fn skip_name(packet: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *packet.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            l if l & 0xc0 == 0xc0 => return Some(pos + 2),
            l if l < 64 => pos += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// What a DNSKEY answer says of a zone's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneKeys {
    /// RDATA of each KSK/CSK: zone key with the SEP flag, not revoked.
    pub sep: Vec<Vec<u8>>,
    /// Any DNSKEY at all is served.
    pub published: bool,
    /// The DNSKEY RRset is served with its RRSIG.
    pub signed: bool,
    /// The CDS RRset, each as (key tag, algorithm, digest type, digest),
    /// without the "delete" form (algorithm 0, RFC 8078 §4).
    pub cds: Vec<Ds>,
    /// The CDS "delete" record is served: `named` asks the parent to
    /// remove the DS (the `insecure` policy).
    pub cds_delete: bool,
}

/// Reads the DNSKEY answer and the CDS answer (both queried with DO).
pub(crate) fn zone_keys(dnskey: &Response, cds: &Response) -> ZoneKeys {
    let mut keys = ZoneKeys::default();
    for rr in cds.answers.iter().filter(|r| r.rtype == TYPE_CDS) {
        let Some(head) = rr.rdata.get(..4) else {
            continue;
        };
        if head[2] == 0 {
            keys.cds_delete = true;
            continue;
        }
        keys.cds.push(Ds {
            owner: String::new(),
            key_tag: u16::from_be_bytes([head[0], head[1]]),
            algorithm: head[2],
            digest_type: head[3],
            digest: rr.rdata[4..].to_vec(),
        });
    }
    for rr in &dnskey.answers {
        match rr.rtype {
            TYPE_DNSKEY if rr.rdata.len() > 4 => {
                keys.published = true;
                let flags = u16::from_be_bytes([rr.rdata[0], rr.rdata[1]]);
                let sep = flags & FLAG_ZONE != 0 && flags & FLAG_SEP != 0;
                if sep && flags & FLAG_REVOKE == 0 {
                    keys.sep.push(rr.rdata.clone());
                }
            }
            TYPE_RRSIG if rr.rdata.get(..2) == Some(&TYPE_DNSKEY.to_be_bytes()[..]) => {
                keys.signed = true;
            }
            _ => {}
        }
    }
    keys
}

/// The key tag of a DNSKEY RDATA (RFC 4034 Appendix B; algorithm 1 is
/// long obsolete and not special-cased).
pub fn key_tag(rdata: &[u8]) -> u16 {
    let mut ac: u32 = 0;
    for (i, b) in rdata.iter().enumerate() {
        ac += if i % 2 == 0 {
            u32::from(*b) << 8
        } else {
            u32::from(*b)
        };
    }
    ac += (ac >> 16) & 0xffff;
    u16::try_from(ac & 0xffff).unwrap_or_default()
}

/// A DS record (RFC 4034 §5).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ds {
    /// The zone, absolute (with the trailing dot).
    pub owner: String,
    pub key_tag: u16,
    pub algorithm: u8,
    pub digest_type: u8,
    pub digest: Vec<u8>,
}

impl Ds {
    /// The SHA-256 DS of a DNSKEY RDATA of `zone` (RFC 4509 §2.1: the
    /// digest of the owner name in canonical wire form and the RDATA).
    pub fn sha256(zone: &Name, dnskey: &[u8]) -> Ds {
        let mut h = Sha256::new();
        h.update(wire_name(zone));
        h.update(dnskey);
        Ds {
            owner: format!("{}.", zone.as_str()),
            key_tag: key_tag(dnskey),
            algorithm: dnskey.get(3).copied().unwrap_or_default(),
            digest_type: DIGEST_SHA256,
            digest: h.finalize().to_vec(),
        }
    }

    fn hex(&self) -> String {
        use fmt::Write as _;
        self.digest.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
    }

    /// The record's RDATA in presentation form: `tag alg type DIGEST`.
    pub fn rdata(&self) -> String {
        format!(
            "{} {} {} {}",
            self.key_tag,
            self.algorithm,
            self.digest_type,
            self.hex()
        )
    }

    /// The statement inside a `trust-anchors` clause for `delv -a` or a
    /// validating `named`.
    pub fn trust_anchor(&self) -> String {
        format!(
            "\"{}\" static-ds {} {} {} \"{}\";",
            self.owner,
            self.key_tag,
            self.algorithm,
            self.digest_type,
            self.hex()
        )
    }
}

/// The presentation form `dnssec-dsfromkey` prints:
/// `example.com. IN DS 12345 13 2 ABCD…`.
impl fmt::Display for Ds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} IN DS {}", self.owner, self.rdata())
    }
}

/// The DS records of a zone's served KSKs/CSKs, in key tag order: those
/// `named` names in its CDS RRset when it publishes one (in a KSK rollover,
/// the keys whose DS belongs in the parent now), every KSK/CSK otherwise.
/// Computed here from the DNSKEY, so a DS handed out always matches a key
/// that is served.
pub fn ds_records(zone: &Name, keys: &ZoneKeys) -> Vec<Ds> {
    let all: Vec<Ds> = keys.sep.iter().map(|k| Ds::sha256(zone, k)).collect();
    let named: Vec<Ds> = all
        .iter()
        .filter(|d| {
            keys.cds.iter().any(|c| {
                (c.key_tag, c.algorithm, c.digest_type, &c.digest)
                    == (d.key_tag, d.algorithm, d.digest_type, &d.digest)
            })
        })
        .cloned()
        .collect();
    let mut ds = if named.is_empty() { all } else { named };
    ds.sort();
    ds
}

/// A `trust-anchors` clause with these DS records.
pub fn trust_anchors(ds: &[Ds]) -> String {
    let mut s = String::from("trust-anchors {\n");
    for d in ds {
        s.push('\t');
        s.push_str(&d.trust_anchor());
        s.push('\n');
    }
    s.push_str("};\n");
    s
}

/// Where a zone's signing stands, as seen from what `named` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Under a signing policy, but the keys are not published yet: no
    /// signed DNSKEY RRset with a KSK/CSK, or `named` does not yet publish
    /// a CDS for it (it does once the DNSKEY has had time to reach every
    /// cache: with the `default` policy about two hours). No DS to hand
    /// out yet.
    Signing,
    /// A signed DNSKEY RRset with a KSK/CSK and its CDS are served: the DS
    /// can go to the parent.
    Signed,
    /// Under `insecure`: the keys are being withdrawn.
    Unsigning,
    /// Under `insecure`, and no DNSKEY is served any more.
    Unsigned,
    /// `named` did not answer.
    Unknown,
}

impl State {
    /// A word for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Signing => "signing",
            State::Signed => "signed",
            State::Unsigning => "unsigning",
            State::Unsigned => "unsigned",
            State::Unknown => "unknown",
        }
    }
}

/// The state of a zone under `policy`, given the DNSKEY answer (`None`:
/// no answer).
pub fn state(policy: &str, keys: Option<&ZoneKeys>) -> State {
    match keys {
        None => State::Unknown,
        Some(k) if policy == INSECURE => {
            if k.published {
                State::Unsigning
            } else {
                State::Unsigned
            }
        }
        Some(k) if k.signed && !k.sep.is_empty() && !k.cds.is_empty() => State::Signed,
        Some(_) => State::Signing,
    }
}

/// A signed zone's line in `status --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub policy: String,
    pub state: State,
    /// The DS records for the parent, in presentation form: empty unless
    /// `signed` (while `unsigning`, the parent should have none).
    pub ds: Vec<String>,
}

/// The status of a zone under `policy` from its DNSKEY answer.
pub fn status(zone: &Name, policy: &str, keys: Option<&ZoneKeys>) -> Status {
    let state = state(policy, keys);
    let ds = match (state, keys) {
        (State::Signed, Some(k)) => ds_records(zone, k).iter().map(Ds::to_string).collect(),
        _ => Vec::new(),
    };
    Status {
        policy: policy.to_owned(),
        state,
        ds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::name::parse_domain;
    use std::path::PathBuf;

    fn config(only: &[&str], except: &[&str]) -> DnssecConfig {
        DnssecConfig {
            policy: "default".into(),
            key_directory: PathBuf::from("/var/lib/bind/keys"),
            only: only.iter().map(|s| (*s).to_owned()).collect(),
            except: except.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn b64(s: &str) -> Vec<u8> {
        // A small decoder for the test vectors (standard alphabet).
        let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u32, 0);
        for c in s.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()) {
            let v = table.iter().position(|t| *t == c).unwrap();
            acc = (acc << 6) | u32::try_from(v).unwrap();
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push(u8::try_from((acc >> bits) & 0xff).unwrap());
            }
        }
        out
    }

    #[test]
    fn selection_and_switching_off() {
        let all = config(&[], &["b.test"]);
        assert!(selected(&all, "a.test"));
        assert!(!selected(&all, "b.test"));
        let some = config(&["a.test"], &[]);
        assert!(!selected(&some, "c.test"));

        let on = signer(Some(&all), "a.test", None).unwrap();
        assert_eq!(on.policy, "default");
        let mut seen = on.clone();
        seen.served = Some(7);
        // Switched off: insecure, never dropped; the served serial stays.
        let off = signer(Some(&all), "b.test", Some(&seen)).unwrap();
        assert_eq!((off.policy.as_str(), off.served), (INSECURE, Some(7)));
        let gone = signer(None, "a.test", Some(&seen)).unwrap();
        assert_eq!(gone.policy, INSECURE);
        assert_eq!(signer(Some(&all), "b.test", None), None);
        assert_eq!(signer(None, "a.test", None), None);
    }

    #[test]
    fn policies_named_conf_defines() {
        let printed = "options {\n\tdirectory \"/x\";\n};\ndnssec-policy \"fast\" {\n\tdnskey-ttl 1;\n};\n\
                       zone \"a.test\" {\n\tdnssec-policy \"slow\";\n};\n";
        assert!(policy_defined(printed, "fast"));
        assert!(policy_defined(printed, "default"));
        assert!(!policy_defined(printed, "slow"));
        assert!(!policy_defined(printed, "fas"));
    }

    #[test]
    fn default_policy_ttl_limit() {
        let zone: Zone = serde_json::from_value(serde_json::json!({
            "uuid": "z", "domain": "a.test", "records": [
                {"uuid": "r1", "record_type": "A", "name": "@", "value": "192.0.2.1", "ttl": 86400},
                {"uuid": "r2", "record_type": "A", "name": "x", "value": "192.0.2.1", "ttl": 86401}
            ]
        }))
        .unwrap();
        let p = policy_problems("default", &zone, 3600);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].record.as_deref(), Some("r2"));
        assert_eq!(policy_problems("default", &zone, 100_000).len(), 2);
        assert!(policy_problems("fast", &zone, 100_000).is_empty());
    }

    #[test]
    fn stanza_options_per_case() {
        let c = config(&[], &[]);
        assert_eq!(stanza_options(None, None), "");
        assert_eq!(stanza_options(Some(&c), None), "inline-signing yes;");
        let s = signer(Some(&c), "a.test", None).unwrap();
        assert_eq!(
            stanza_options(Some(&c), Some(&s)),
            "dnssec-policy \"default\";\n\tinline-signing yes;\n\tkey-directory \"/var/lib/bind/keys\";"
        );
    }

    /// A CSK of BIND 9.18's `default` policy; the DS is what
    /// `dnssec-dsfromkey -2` prints for it.
    #[test]
    fn ds_matches_dnssec_dsfromkey() {
        let key = "oIJBMObLxY37x54dY0sOPaH5U8ippPNLzUmyNwDOGrvyYpergBmI9pWn \
                   t8aTvIPOoBlA0/Qh5QgiSC5ZC7RPrg==";
        let mut rdata = vec![0x01, 0x01, 3, 13];
        rdata.extend(b64(key));
        assert_eq!(key_tag(&rdata), 10617);
        let ds = Ds::sha256(&parse_domain("w.test").unwrap(), &rdata);
        assert_eq!(
            ds.to_string(),
            "w.test. IN DS 10617 13 2 \
             A2CAA0D98ECC1FF0E127465D71FE4158215342FB08510E19C9287F8A7ECEE5FC"
        );
        assert_eq!(
            trust_anchors(&[ds]),
            "trust-anchors {\n\t\"w.test.\" static-ds 10617 13 2 \
             \"A2CAA0D98ECC1FF0E127465D71FE4158215342FB08510E19C9287F8A7ECEE5FC\";\n};\n"
        );
    }

    #[test]
    fn reads_an_answer_and_its_keys() {
        let zone = parse_domain("a.test").unwrap();
        let mut p = dnskey_query(9, &zone);
        // Drop the OPT, make it a response with two answers.
        p.truncate(p.len() - 11);
        p[2] = 0x84;
        p[7] = 2;
        p[11] = 0;
        let ksk = [0x01, 0x01, 3, 13, 0xaa, 0xbb];
        p.extend_from_slice(&[0xc0, 12, 0, 48, 0, 1, 0, 0, 0, 60, 0, 6]);
        p.extend_from_slice(&ksk);
        let mut rrsig = vec![0, 48, 13, 2];
        rrsig.extend_from_slice(&[0; 14]);
        p.extend_from_slice(&[0xc0, 12, 0, 46, 0, 1, 0, 0, 0, 60, 0, 18]);
        p.extend_from_slice(&rrsig);
        let r = parse_response(&p).unwrap();
        assert_eq!((r.id, r.rcode, r.answers.len()), (9, 0, 2));
        let no_cds = Response {
            id: 10,
            rcode: 0,
            answers: vec![],
        };
        let keys = zone_keys(&r, &no_cds);
        assert_eq!(keys.sep, vec![ksk.to_vec()]);
        assert!(keys.signed && keys.published);
        // Keys served, but named does not publish the CDS yet.
        assert_eq!(state("default", Some(&keys)), State::Signing);
        assert!(status(&zone, "default", Some(&keys)).ds.is_empty());
        let ds = Ds::sha256(&zone, &ksk);
        let cds_rdata = [
            &ds.key_tag.to_be_bytes()[..],
            &[ds.algorithm, ds.digest_type],
            &ds.digest,
        ]
        .concat();
        let cds = Response {
            id: 10,
            rcode: 0,
            answers: vec![AnswerRecord {
                rtype: TYPE_CDS,
                rdata: cds_rdata,
            }],
        };
        let keys = zone_keys(&r, &cds);
        assert_eq!(state("default", Some(&keys)), State::Signed);
        assert_eq!(ds_records(&zone, &keys), [ds]);
        let delete = Response {
            id: 10,
            rcode: 0,
            answers: vec![AnswerRecord {
                rtype: TYPE_CDS,
                rdata: vec![0, 0, 0, 0, 0],
            }],
        };
        assert!(zone_keys(&r, &delete).cds_delete);
        assert_eq!(state(INSECURE, Some(&keys)), State::Unsigning);
        assert_eq!(state("default", None), State::Unknown);
        let unsigned = ZoneKeys {
            signed: false,
            ..keys.clone()
        };
        assert_eq!(state("default", Some(&unsigned)), State::Signing);
        assert_eq!(state("default", Some(&ZoneKeys::default())), State::Signing);
        assert_eq!(state(INSECURE, Some(&ZoneKeys::default())), State::Unsigned);
        let s = status(&zone, "default", Some(&keys));
        assert_eq!(s.ds.len(), 1);
        assert!(s.ds[0].starts_with("a.test. IN DS "), "{:?}", s.ds);
        assert!(parse_response(&p[..5]).is_none());
    }

    #[test]
    fn checkds_argv_names_the_key_and_zone() {
        let zone = parse_domain("a.test").unwrap();
        let v = checkds_argv(&["rndc".into()], &zone, Some(7), ParentDs::Published);
        assert_eq!(
            v,
            [
                "rndc",
                "dnssec",
                "-checkds",
                "-key",
                "7",
                "published",
                "a.test"
            ]
        );
        let v = checkds_argv(&["rndc".into()], &zone, None, ParentDs::Withdrawn);
        assert_eq!(v, ["rndc", "dnssec", "-checkds", "withdrawn", "a.test"]);
    }

    #[test]
    fn soa_serial_from_the_rdata_end() {
        let r = Response {
            id: 1,
            rcode: 0,
            answers: vec![AnswerRecord {
                rtype: TYPE_SOA,
                rdata: [&[0xc0, 12, 0xc0, 12][..], &42u32.to_be_bytes(), &[0; 16]].concat(),
            }],
        };
        assert_eq!(r.soa_serial(), Some(42));
    }
}
