//! Queries to the local `named` and the reading of its answers (RFC 1035
//! §4), built and parsed with hickory-proto: a SOA query to learn which
//! serial `named` serves for a zone, and `version.bind CH TXT` to learn
//! whether anything answers at all.
//!
//! An answer counts only when it is the response to the very query sent:
//! the same id, a response to a standard query, exactly the question asked
//! (name, type, class); a SOA counts only when it is authoritative (AA,
//! RFC 1035 §4.1.1) and its owner is the zone itself. Anything else is
//! `None`, as if it had never arrived: a spoofer on the loopback cannot
//! confirm a serial by guessing less than all of it.
//!
//! Pure: bytes in, bytes out. The UDP exchange lives in
//! [`super::confirm`].

use crate::model::name::Name;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name as DnsName, RData, RecordType};
use std::fmt;

/// A DNS response code (RFC 1035 §4.1.1, RFC 6895 §2.3), shown the way
/// `dig` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rcode(pub u16);

impl Rcode {
    pub const NOERROR: Rcode = Rcode(0);
    pub const SERVFAIL: Rcode = Rcode(2);
    pub const NXDOMAIN: Rcode = Rcode(3);
    pub const REFUSED: Rcode = Rcode(5);
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            0 => "NOERROR",
            1 => "FORMERR",
            2 => "SERVFAIL",
            3 => "NXDOMAIN",
            4 => "NOTIMP",
            5 => "REFUSED",
            9 => "NOTAUTH",
            n => return write!(f, "RCODE{n}"),
        };
        f.write_str(name)
    }
}

/// What `named` said about a zone's SOA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An authoritative SOA for the zone, with this serial.
    Serial(u32),
    /// An error: REFUSED while the zone is not configured, SERVFAIL after a
    /// failed load, …
    Rcode(Rcode),
    /// NOERROR without the AA bit: whoever answers does not serve the zone
    /// itself (a resolver, or a forwarder).
    NotAuthoritative,
    /// Authoritative NOERROR without the zone's SOA: the name lies inside
    /// another zone `named` serves, and this zone is not loaded.
    NoSoa,
}

/// What `named` said to `version.bind CH TXT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionAnswer {
    /// The version text (BIND's default).
    Text(String),
    /// An error (`version none;` gives an empty answer or REFUSED).
    Rcode(Rcode),
}

/// A SOA query for `zone` with the given id, recursion not desired.
pub fn soa_query(id: u16, zone: &Name) -> Vec<u8> {
    encode(id, &soa_question(zone))
}

/// The answer to [`soa_query`]`(id, zone)` in `packet`, or `None` when the
/// packet is not that answer.
pub fn read_soa_answer(packet: &[u8], id: u16, zone: &Name) -> Option<Answer> {
    parse_response(packet)?.soa_answer(id, zone)
}

/// A `version.bind CH TXT` query with the given id.
pub fn version_query(id: u16) -> Vec<u8> {
    encode(id, &version_question())
}

/// The answer to [`version_query`]`(id)` in `packet`, or `None` when the
/// packet is not that answer.
pub fn read_version_answer(packet: &[u8], id: u16) -> Option<VersionAnswer> {
    parse_response(packet)?.version_answer(id)
}

/// A DNS response, decoded once, to be matched against the query it may
/// answer (its id picks the query; then everything else must match).
#[derive(Debug, Clone)]
pub struct Response(Message);

/// Decodes a packet that is a response to a standard query; `None` for
/// anything else.
pub fn parse_response(packet: &[u8]) -> Option<Response> {
    let msg = Message::from_vec(packet).ok()?;
    (msg.metadata.message_type == MessageType::Response && msg.metadata.op_code == OpCode::Query)
        .then_some(Response(msg))
}

impl Response {
    /// The id it carries.
    pub fn id(&self) -> u16 {
        self.0.metadata.id
    }

    /// What it says about `zone`'s SOA, if it is the answer to
    /// [`soa_query`]`(id, zone)`.
    pub fn soa_answer(&self, id: u16, zone: &Name) -> Option<Answer> {
        let question = soa_question(zone);
        let msg = self.answering(id, &question)?;
        let rcode = u16::from(msg.metadata.response_code);
        if rcode != 0 {
            return Some(Answer::Rcode(Rcode(rcode)));
        }
        if !msg.metadata.authoritative {
            return Some(Answer::NotAuthoritative);
        }
        let serial = msg.answers.iter().find_map(|r| match &r.data {
            RData::SOA(soa) if r.name == question.name && r.dns_class == DNSClass::IN => {
                Some(soa.serial)
            }
            _ => None,
        });
        Some(serial.map_or(Answer::NoSoa, Answer::Serial))
    }

    /// What it says to `version.bind`, if it is the answer to
    /// [`version_query`]`(id)`.
    pub fn version_answer(&self, id: u16) -> Option<VersionAnswer> {
        let msg = self.answering(id, &version_question())?;
        let rcode = u16::from(msg.metadata.response_code);
        if rcode != 0 {
            return Some(VersionAnswer::Rcode(Rcode(rcode)));
        }
        let text = msg
            .answers
            .iter()
            .find_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .unwrap_or_default();
        Some(VersionAnswer::Text(text))
    }

    /// The message, if it carries `id` and exactly `question`.
    fn answering(&self, id: u16, question: &Query) -> Option<&Message> {
        let msg = &self.0;
        let matches = msg.metadata.id == id
            && msg.queries.len() == 1
            && msg.queries[0].name() == question.name()
            && msg.queries[0].query_type() == question.query_type()
            && msg.queries[0].query_class() == question.query_class();
        matches.then_some(msg)
    }
}

fn soa_question(zone: &Name) -> Query {
    let mut q = Query::query(fqdn(zone.as_str()), RecordType::SOA);
    q.set_query_class(DNSClass::IN);
    q
}

fn version_question() -> Query {
    let mut q = Query::query(fqdn("version.bind"), RecordType::TXT);
    q.set_query_class(DNSClass::CH);
    q
}

/// A name of ours as an absolute DNS name. A `Name` is already checked
/// (labels, length), so hickory cannot refuse it; the root stands in for
/// the impossible case and simply never matches.
fn fqdn(name: &str) -> DnsName {
    let mut n = DnsName::from_ascii(name).unwrap_or_else(|_| DnsName::root());
    n.set_fqdn(true);
    n
}

fn encode(id: u16, question: &Query) -> Vec<u8> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = false;
    msg.add_query(question.clone());
    // A message of one question with a checked name always encodes.
    msg.to_vec().unwrap_or_default()
}

/// Builds responses for tests: what a server (or a spoofer) would send.
#[cfg(test)]
pub(crate) mod forge {
    use super::*;
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::SOA;

    /// A response to `query` (its id and question), with these flags and
    /// an optional SOA record for `owner`.
    pub(crate) fn response(
        query: &[u8],
        authoritative: bool,
        rcode: u16,
        soa: Option<(&str, u32)>,
    ) -> Vec<u8> {
        let q = Message::from_vec(query).unwrap();
        let mut msg = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        msg.metadata.authoritative = authoritative;
        msg.metadata.response_code = <ResponseCode as From<u16>>::from(rcode);
        msg.add_queries(q.queries.clone());
        if let Some((owner, serial)) = soa {
            let n = fqdn(owner);
            let data = SOA::new(n.clone(), n.clone(), serial, 1, 1, 1, 1);
            msg.add_answer(Record::from_rdata(n, 60, RData::SOA(data)));
        }
        msg.to_vec().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::forge::response;
    use super::*;
    use crate::model::name::parse_domain;

    #[test]
    fn query_bytes() {
        let q = soa_query(0x1234, &parse_domain("ab.c").unwrap());
        assert_eq!(
            q,
            [
                0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, b'a', b'b', 1, b'c', 0, 0, 6, 0, 1
            ]
        );
    }

    #[test]
    fn reads_only_the_answer_to_the_query_sent() {
        let zone = parse_domain("ab.c").unwrap();
        let q = soa_query(7, &zone);
        let good = response(&q, true, 0, Some(("ab.c", 2_026_112_601)));
        assert_eq!(
            read_soa_answer(&good, 7, &zone),
            Some(Answer::Serial(2_026_112_601))
        );
        // Names compare case-insensitively (RFC 4343).
        let upper = response(&q, true, 0, Some(("AB.c", 5)));
        assert_eq!(read_soa_answer(&upper, 7, &zone), Some(Answer::Serial(5)));
        // Wrong id, wrong question, a query instead of a response, junk.
        assert_eq!(read_soa_answer(&good, 8, &zone), None);
        let other = parse_domain("x.c").unwrap();
        assert_eq!(read_soa_answer(&good, 7, &other), None);
        assert_eq!(read_soa_answer(&q, 7, &zone), None);
        assert_eq!(read_soa_answer(&good[..5], 7, &zone), None);
        let a_query = {
            let mut m = Message::from_vec(&q).unwrap();
            m.queries[0].set_query_type(RecordType::A);
            m.to_vec().unwrap()
        };
        let wrong_type = response(&a_query, true, 0, Some(("ab.c", 9)));
        assert_eq!(read_soa_answer(&wrong_type, 7, &zone), None);
        // No AA, another owner, errors.
        let no_aa = response(&q, false, 0, Some(("ab.c", 9)));
        assert_eq!(
            read_soa_answer(&no_aa, 7, &zone),
            Some(Answer::NotAuthoritative)
        );
        let wrong_owner = response(&q, true, 0, Some(("c", 9)));
        assert_eq!(read_soa_answer(&wrong_owner, 7, &zone), Some(Answer::NoSoa));
        let refused = response(&q, false, 5, None);
        assert_eq!(
            read_soa_answer(&refused, 7, &zone),
            Some(Answer::Rcode(Rcode::REFUSED))
        );
    }

    #[test]
    fn rcode_names() {
        assert_eq!(Rcode::SERVFAIL.to_string(), "SERVFAIL");
        assert_eq!(Rcode(23).to_string(), "RCODE23");
    }
}
