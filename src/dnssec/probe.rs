//! Asking the local `named` what it serves of a signed zone: its SOA
//! serial (the signer's, which may run ahead of the file's) and its DNSKEY
//! RRset (for the DS and the state). Shell: TCP to `bind.server`, so a
//! DNSKEY RRset with its signatures is never truncated. What the bytes
//! mean is [`crate::dnssec`]'s.

use super::{Response, ZoneKeys};
use crate::model::name::{self, Name};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Why `named` could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("failed to ask named at {server}")]
    Io {
        server: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("named at {server} sent an answer that does not parse")]
    Malformed { server: SocketAddr },
    #[error("named at {server} answered with response code {rcode} for {zone}")]
    Rcode {
        server: SocketAddr,
        zone: String,
        rcode: u8,
    },
}

/// Queries sent on one connection before their answers are read.
const PIPELINE: usize = 64;

/// A TCP connection to `named` carrying length-prefixed messages
/// (RFC 1035 §4.2.2), several queries in a row (RFC 7766 §6.2.1).
struct Connection {
    server: SocketAddr,
    stream: TcpStream,
}

impl Connection {
    fn open(server: SocketAddr, timeout: Duration) -> Result<Connection, ProbeError> {
        let err = |source| ProbeError::Io { server, source };
        let stream = TcpStream::connect_timeout(&server, timeout).map_err(err)?;
        stream.set_read_timeout(Some(timeout)).map_err(err)?;
        stream.set_write_timeout(Some(timeout)).map_err(err)?;
        let _ = stream.set_nodelay(true);
        Ok(Connection { server, stream })
    }

    fn send(&mut self, message: &[u8]) -> Result<(), ProbeError> {
        let len = u16::try_from(message.len()).unwrap_or(u16::MAX);
        let mut framed = Vec::with_capacity(message.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(message);
        self.stream
            .write_all(&framed)
            .map_err(|source| ProbeError::Io {
                server: self.server,
                source,
            })
    }

    fn receive(&mut self) -> Result<Response, ProbeError> {
        let server = self.server;
        let err = |source| ProbeError::Io { server, source };
        let mut len = [0u8; 2];
        self.stream.read_exact(&mut len).map_err(err)?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.stream.read_exact(&mut buf).map_err(err)?;
        super::parse_response(&buf).ok_or(ProbeError::Malformed { server })
    }
}

/// The DNSKEY answer `named` gives for `zone`.
pub fn zone_keys(
    server: SocketAddr,
    zone: &Name,
    timeout: Duration,
) -> Result<ZoneKeys, ProbeError> {
    let mut c = Connection::open(server, timeout)?;
    c.send(&super::dnskey_query(1, zone))?;
    c.send(&super::cds_query(2, zone))?;
    let mut answers = [c.receive()?, c.receive()?];
    answers.sort_by_key(|r| r.id);
    if let Some(r) = answers.iter().find(|r| r.rcode != 0) {
        return Err(ProbeError::Rcode {
            server,
            zone: zone.as_str().to_owned(),
            rcode: r.rcode,
        });
    }
    Ok(super::zone_keys(&answers[0], &answers[1]))
}

/// The SOA serials `named` serves for `domains`, those it answers for
/// within `timeout` (a zone it does not serve is left out).
pub(crate) fn served_serials<'a>(
    server: SocketAddr,
    domains: impl IntoIterator<Item = &'a str>,
    timeout: Duration,
) -> HashMap<String, u32> {
    let mut out = HashMap::new();
    let names: Vec<Name> = domains
        .into_iter()
        .filter_map(|d| name::parse_domain(d).ok())
        .collect();
    if names.is_empty() {
        return out;
    }
    let deadline = Instant::now() + timeout;
    let Ok(mut c) = Connection::open(server, timeout) else {
        return out;
    };
    for chunk in names.chunks(PIPELINE) {
        if Instant::now() >= deadline {
            break;
        }
        let sent = chunk
            .iter()
            .enumerate()
            .map(|(i, n)| c.send(&super::soa_query(u16::try_from(i).unwrap_or(0), n)))
            .take_while(Result::is_ok)
            .count();
        for _ in 0..sent {
            let Ok(r) = c.receive() else {
                return out;
            };
            if let (Some(n), Some(serial)) = (chunk.get(usize::from(r.id)), r.soa_serial())
                && r.rcode == 0
            {
                out.insert(n.as_str().to_owned(), serial);
            }
        }
    }
    out
}
