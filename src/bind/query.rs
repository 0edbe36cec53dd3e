//! A SOA query and the reading of its answer (RFC 1035 §4), enough to ask
//! the local `named` which serial it serves for a zone.
//!
//! Pure: bytes in, bytes out. The UDP exchange lives in
//! [`crate::deploy`].

use crate::model::name::Name;

const TYPE_SOA: u16 = 6;
const CLASS_IN: u16 = 1;

/// A query for `zone`'s SOA with the given id, recursion not desired.
pub fn soa_query(id: u16, zone: &Name) -> Vec<u8> {
    let mut q = Vec::with_capacity(zone.wire_len() + 16);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in zone.labels() {
        // Labels of a Name are at most 63 octets (checked when parsed).
        q.push(u8::try_from(label.len()).unwrap_or(63));
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&TYPE_SOA.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q
}

/// What an answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An authoritative SOA with this serial.
    Serial(u32),
    /// Any other answer (REFUSED while the zone is not loaded, SERVFAIL
    /// after a failed load, …): the response code.
    NoSerial(u8),
}

/// Reads a response: its id and what it says. `None` for a packet that is
/// not a well-formed response.
pub fn parse_answer(packet: &[u8]) -> Option<(u16, Answer)> {
    let header = packet.get(..12)?;
    let id = u16::from_be_bytes([header[0], header[1]]);
    let qr = header[2] & 0x80 != 0;
    let rcode = header[3] & 0x0f;
    if !qr {
        return None;
    }
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    let ancount = u16::from_be_bytes([header[6], header[7]]);
    if rcode != 0 || ancount == 0 {
        return Some((id, Answer::NoSerial(rcode)));
    }
    let mut pos = 12;
    for _ in 0..qdcount {
        pos = skip_name(packet, pos)? + 4;
    }
    for _ in 0..ancount {
        pos = skip_name(packet, pos)?;
        let rr = packet.get(pos..pos + 10)?;
        let rtype = u16::from_be_bytes([rr[0], rr[1]]);
        let rdlen = usize::from(u16::from_be_bytes([rr[8], rr[9]]));
        let rdata_start = pos + 10;
        if rtype == TYPE_SOA {
            let p = skip_name(packet, rdata_start)?;
            let p = skip_name(packet, p)?;
            let s = packet.get(p..p + 4)?;
            return Some((
                id,
                Answer::Serial(u32::from_be_bytes([s[0], s[1], s[2], s[3]])),
            ));
        }
        pos = rdata_start + rdlen;
    }
    Some((id, Answer::NoSerial(rcode)))
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

#[cfg(test)]
mod tests {
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
    fn answer_with_compression() {
        let mut p = soa_query(7, &parse_domain("ab.c").unwrap());
        p[2] = 0x84; // QR, AA
        p[7] = 1; // ANCOUNT
        p.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 60, 0, 26]);
        p.extend_from_slice(&[2, b'n', b's', 0xc0, 12]); // mname
        p.extend_from_slice(&[1, b'h', 0xc0, 12]); // rname
        p.extend_from_slice(&2_026_112_601_u32.to_be_bytes());
        p.extend_from_slice(&[0; 16]);
        assert_eq!(parse_answer(&p), Some((7, Answer::Serial(2_026_112_601))));
        p[3] = 5; // REFUSED
        assert_eq!(parse_answer(&p), Some((7, Answer::NoSerial(5))));
        assert_eq!(parse_answer(&p[..5]), None);
    }
}
