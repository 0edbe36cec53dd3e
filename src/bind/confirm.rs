//! Asking the local `named` which serial it serves, over UDP to
//! `bind.server`, and telling apart why a reload is not confirmed.
//!
//! Answers are matched on everything (see [`super::query`]): the socket is
//! connected, so the kernel drops datagrams from any other address or port;
//! every query has a random id, never two alike in flight; the question,
//! the AA bit and the SOA owner must be the zone's. What is left for a local
//! spoofer is guessing a 16-bit id per query while knowing the agent's port,
//! and even then it only learns nothing: a forged serial must also be the
//! answer to the question asked.
//!
//! Blocking `std` sockets: this runs on the deploy thread, between reloads.

use super::query::{self, Answer};
pub use super::query::{Rcode, VersionAnswer};
use crate::model::name::{Name, parse_domain};
use crate::serial::Serial;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// What `named` last said about one zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneAnswer {
    /// No answer to any query for it (nothing listens, or it is too busy).
    NoAnswer,
    /// An authoritative SOA with this serial.
    Serial(u32),
    /// An error response: REFUSED (not configured), SERVFAIL (the load
    /// failed), …
    Rcode(Rcode),
    /// An answer without the AA bit: not the zone's own server.
    NotAuthoritative,
    /// Authoritative, but without the zone's SOA: the name is inside
    /// another zone, and this one is not loaded.
    NoSoa,
}

impl From<Answer> for ZoneAnswer {
    fn from(a: Answer) -> Self {
        match a {
            Answer::Serial(s) => ZoneAnswer::Serial(s),
            Answer::Rcode(r) => ZoneAnswer::Rcode(r),
            Answer::NotAuthoritative => ZoneAnswer::NotAuthoritative,
            Answer::NoSoa => ZoneAnswer::NoSoa,
        }
    }
}

/// The result of waiting for served serials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// Where the queries went (`bind.server`).
    pub server: SocketAddr,
    /// Zones that serve the wanted serial or a later one (RFC 1982).
    pub confirmed: BTreeSet<String>,
    /// The last genuine answer for every zone asked about.
    pub outcome: BTreeMap<String, ZoneAnswer>,
    /// The serial wanted per zone (absent when only asked what is served).
    pub wanted: BTreeMap<String, u32>,
    /// The kernel reported ICMP port unreachable: nothing listens at
    /// `server`.
    pub unreachable: bool,
}

impl Confirmation {
    /// Zones asked about and not confirmed.
    pub fn unconfirmed(&self) -> impl Iterator<Item = (&String, &ZoneAnswer)> {
        self.outcome
            .iter()
            .filter(|(d, _)| !self.confirmed.contains(*d))
    }

    /// Whether any zone got a genuine answer (of any kind).
    pub fn any_answer(&self) -> bool {
        self.outcome.values().any(|a| *a != ZoneAnswer::NoAnswer)
    }
}

/// Queries in flight at once: more would overflow the socket's receive
/// buffer and be dropped.
const WINDOW: usize = 512;

/// Waits up to `timeout` until `named` at `server` serves, for each
/// `(domain, serial)`, that serial or a later one.
pub fn confirm(server: SocketAddr, zones: &[(String, u32)], timeout: Duration) -> Confirmation {
    let asks: Vec<(String, Option<u32>)> =
        zones.iter().map(|(d, s)| (d.clone(), Some(*s))).collect();
    ask(server, &asks, timeout, false)
}

/// The zones confirmed by [`confirm`].
pub fn confirm_serials(
    server: SocketAddr,
    zones: &[(String, u32)],
    timeout: Duration,
) -> BTreeSet<String> {
    confirm(server, zones, timeout).confirmed
}

/// Asks once per zone (retrying lost queries up to `timeout`) what `named`
/// serves, whatever the serial: for the doctor and the start-up check. Gives
/// up early when the kernel reports that nothing listens at `server`.
pub fn served(server: SocketAddr, domains: &[String], timeout: Duration) -> Confirmation {
    let asks: Vec<(String, Option<u32>)> = domains.iter().map(|d| (d.clone(), None)).collect();
    ask(server, &asks, timeout, true)
}

/// Whether anything answers `version.bind CH TXT` at `server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Answered(VersionAnswer),
    /// No answer within the timeout; `unreachable` when ICMP said nothing
    /// listens.
    NoAnswer {
        unreachable: bool,
    },
}

/// Sends `version.bind CH TXT` to `server` (a few tries within `timeout`).
pub fn probe_version(server: SocketAddr, timeout: Duration) -> Probe {
    let Ok(socket) = connect(server) else {
        return Probe::NoAnswer { unreachable: false };
    };
    let deadline = Instant::now() + timeout;
    let mut unreachable = false;
    let mut buf = [0u8; 4096];
    let tries = 3u32;
    for attempt in 1..=tries {
        let id = rand::random::<u16>();
        match socket.send(&query::version_query(id)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => unreachable = true,
            _ => {}
        }
        // The last try waits for whatever time is left.
        let round_end = if attempt == tries {
            deadline
        } else {
            (Instant::now() + timeout / tries).min(deadline)
        };
        while let Some(left) = round_end.checked_duration_since(Instant::now()) {
            let _ = socket.set_read_timeout(Some(left.max(Duration::from_millis(1))));
            match socket.recv(&mut buf) {
                Ok(n) => {
                    if let Some(a) = query::read_version_answer(&buf[..n], id) {
                        return Probe::Answered(a);
                    }
                }
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    // Nothing listens: try again shortly, not at the end
                    // of the round.
                    unreachable = true;
                    std::thread::sleep(Duration::from_millis(20).min(left));
                    break;
                }
                Err(_) => {}
            }
        }
    }
    Probe::NoAnswer { unreachable }
}

/// A UDP socket connected to `server`: only its datagrams reach us.
fn connect(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect(server)?;
    Ok(socket)
}

/// Asks about every zone until each is done (serves its wanted serial, or
/// answered at all when none is wanted) or `timeout`; with
/// `quit_unreachable`, stops after a few rounds refused by ICMP.
fn ask(
    server: SocketAddr,
    zones: &[(String, Option<u32>)],
    timeout: Duration,
    quit_unreachable: bool,
) -> Confirmation {
    let mut result = Confirmation {
        server,
        confirmed: BTreeSet::new(),
        outcome: zones
            .iter()
            .map(|(d, _)| (d.clone(), ZoneAnswer::NoAnswer))
            .collect(),
        wanted: zones
            .iter()
            .filter_map(|(d, s)| Some((d.clone(), (*s)?)))
            .collect(),
        unreachable: false,
    };
    let Ok(socket) = connect(server) else {
        return result;
    };
    let names: Vec<Option<Name>> = zones.iter().map(|(d, _)| parse_domain(d).ok()).collect();
    let mut open: BTreeSet<usize> = (0..zones.len()).filter(|i| names[*i].is_some()).collect();
    // id → zone of the queries of the current round; a late answer to an
    // earlier round finds nothing here and is dropped.
    let mut in_flight: HashMap<u16, usize> = HashMap::new();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    let mut round = Duration::from_millis(2);
    let mut cursor = 0usize;
    let mut refused_rounds = 0u32;
    while !open.is_empty() && Instant::now() < deadline {
        if quit_unreachable && result.unreachable && !result.any_answer() {
            refused_rounds += 1;
            if refused_rounds > 3 {
                break;
            }
        }
        crate::progress::beat();
        // The next window of open zones, round-robin, so zones still
        // loading do not keep the others from being asked.
        let mut window: Vec<usize> = open.range(cursor..).copied().take(WINDOW).collect();
        if window.len() < WINDOW {
            window.extend(open.range(..cursor).copied().take(WINDOW - window.len()));
        }
        cursor = window.last().map_or(0, |l| l + 1);
        in_flight.clear();
        for &i in &window {
            let Some(name) = &names[i] else { continue };
            let id = loop {
                let id = rand::random::<u16>();
                if !in_flight.contains_key(&id) {
                    break id;
                }
            };
            in_flight.insert(id, i);
            if let Err(e) = socket.send(&query::soa_query(id, name))
                && e.kind() == ErrorKind::ConnectionRefused
            {
                result.unreachable = true;
            }
        }
        let asked = window.len();
        let mut waiting: HashSet<usize> = window.into_iter().collect();
        let before = open.len();
        // Ask again soon at first (a small zone loads in milliseconds),
        // then back off to 50 ms between rounds.
        let round_end = (Instant::now() + round).min(deadline);
        round = (round * 2).min(Duration::from_millis(50));
        while !waiting.is_empty() {
            let Some(left) = round_end.checked_duration_since(Instant::now()) else {
                break;
            };
            let _ = socket.set_read_timeout(Some(left.max(Duration::from_micros(100))));
            let n = match socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    if e.kind() == ErrorKind::ConnectionRefused {
                        result.unreachable = true;
                    }
                    continue;
                }
            };
            let Some(response) = query::parse_response(&buf[..n]) else {
                continue;
            };
            let id = response.id();
            let Some(&i) = in_flight.get(&id) else {
                continue;
            };
            let Some(name) = &names[i] else { continue };
            let Some(answer) = response.soa_answer(id, name) else {
                continue;
            };
            in_flight.remove(&id);
            waiting.remove(&i);
            result.unreachable = false;
            let (domain, want) = &zones[i];
            result.outcome.insert(domain.clone(), answer.into());
            let done = match (answer, want) {
                (Answer::Serial(s), Some(w)) => s == *w || Serial(s) > Serial(*w),
                (_, Some(_)) => false,
                (_, None) => true,
            };
            if done {
                if want.is_some() {
                    result.confirmed.insert(domain.clone());
                }
                open.remove(&i);
            }
        }
        if (before - open.len()) * 2 < asked {
            // Most answers came with old serials: named is still loading.
            // Queries now would only take its time from the loading.
            std::thread::sleep(round_end.saturating_duration_since(Instant::now()));
        } else {
            // Zones are coming in: ask the next window at once.
            round = Duration::from_millis(2);
        }
    }
    result
}

/// Asks once more (for at most `timeout`) about zones whose reload is not
/// confirmed, and explains what `named` says about them now. For the end
/// of `run --once`, whose deploy already waited its `bind.confirm_timeout`.
pub fn explain_pending(server: SocketAddr, zones: &[(String, u32)], timeout: Duration) -> String {
    let c = confirm(server, zones, timeout);
    let mut text = explain(&c);
    if !c.confirmed.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        let late: Vec<String> = c.confirmed.iter().cloned().collect();
        let _ = write!(
            text,
            "named now serves the new serial of {} (confirmed late; the next run records it)",
            list(&late)
        );
    }
    text
}

/// Zones listed in a message: the first few, then a count.
fn list(zones: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut s = zones
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if zones.len() > SHOWN {
        let _ = write!(s, " and {} more", zones.len() - SHOWN);
    }
    s
}

/// Why zones are not confirmed, in words an operator acts on; one line per
/// cause, empty when every zone is confirmed. Tells apart: nothing answers
/// at `bind.server`; `named` answers with another serial (the reload has
/// not taken effect); `named` answers SERVFAIL (the load failed) or REFUSED
/// (it does not have the zone).
pub fn explain(c: &Confirmation) -> String {
    let mut by_kind: BTreeMap<u8, Vec<String>> = BTreeMap::new();
    let mut serials: Vec<String> = Vec::new();
    let mut rcodes: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for (domain, answer) in c.unconfirmed() {
        match answer {
            ZoneAnswer::NoAnswer => by_kind.entry(0).or_default().push(domain.clone()),
            ZoneAnswer::Serial(s) => serials.push(match c.wanted.get(domain) {
                Some(w) => format!("{domain} (serves {s}, wanted {w})"),
                None => format!("{domain} (serves {s})"),
            }),
            ZoneAnswer::Rcode(r) => rcodes.entry(r.0).or_default().push(domain.clone()),
            ZoneAnswer::NotAuthoritative => by_kind.entry(1).or_default().push(domain.clone()),
            ZoneAnswer::NoSoa => by_kind.entry(2).or_default().push(domain.clone()),
        }
    }
    let server = c.server;
    let mut lines = Vec::new();
    if let Some(zones) = by_kind.get(&0) {
        let why = if c.unreachable {
            "nothing listens there (ICMP port unreachable)"
        } else {
            "no reply in time"
        };
        let scope = if c.any_answer() {
            format!("for {}", list(zones))
        } else {
            "at all".to_owned()
        };
        lines.push(format!(
            "named does not answer at {server} (bind.server) {scope}: {why}; check that bind.server is where named listens"
        ));
    }
    if !serials.is_empty() {
        lines.push(format!(
            "named at {server} answers with another serial for {}: the reload has not taken effect yet (named's log says why if it failed)",
            list(&serials)
        ));
    }
    for (code, zones) in &rcodes {
        let rcode = Rcode(*code);
        let meaning = match rcode {
            Rcode::SERVFAIL => "the zone failed to load; named's log says why",
            Rcode::REFUSED => {
                "named does not have the zone: is the include file in named.conf, and was it reconfigured?"
            }
            _ => "named does not serve the zone",
        };
        lines.push(format!(
            "named at {server} answers {rcode} for {}: {meaning}",
            list(zones)
        ));
    }
    if let Some(zones) = by_kind.get(&1) {
        lines.push(format!(
            "{server} answers without authority for {}: bind.server points at a resolver, not at the primary named",
            list(zones)
        ));
    }
    if let Some(zones) = by_kind.get(&2) {
        lines.push(format!(
            "named at {server} answers for {} from an enclosing zone: the zone itself is not loaded",
            list(zones)
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bind::query::forge::response;

    fn confirmation(outcome: &[(&str, ZoneAnswer)], unreachable: bool) -> Confirmation {
        Confirmation {
            server: ([127, 0, 0, 1], 53).into(),
            confirmed: BTreeSet::new(),
            outcome: outcome.iter().map(|(d, a)| ((*d).to_owned(), *a)).collect(),
            wanted: outcome.iter().map(|(d, _)| ((*d).to_owned(), 7)).collect(),
            unreachable,
        }
    }

    #[test]
    fn explain_tells_the_cases_apart() {
        let down = explain(&confirmation(&[("a.test", ZoneAnswer::NoAnswer)], true));
        assert!(
            down.contains("does not answer at 127.0.0.1:53 (bind.server) at all"),
            "{down}"
        );
        assert!(down.contains("ICMP port unreachable"), "{down}");
        let mixed = explain(&confirmation(
            &[
                ("a.test", ZoneAnswer::Serial(6)),
                ("b.test", ZoneAnswer::Rcode(Rcode::SERVFAIL)),
                ("c.test", ZoneAnswer::Rcode(Rcode::REFUSED)),
            ],
            false,
        ));
        assert!(
            mixed.contains("another serial for a.test (serves 6, wanted 7)"),
            "{mixed}"
        );
        assert!(
            mixed.contains("answers SERVFAIL for b.test: the zone failed to load"),
            "{mixed}"
        );
        assert!(mixed.contains("answers REFUSED for c.test"), "{mixed}");
        assert_eq!(mixed.lines().count(), 3);
        let mut ok = confirmation(&[("a.test", ZoneAnswer::Serial(7))], false);
        ok.confirmed.insert("a.test".to_owned());
        assert_eq!(explain(&ok), "");
    }

    /// A fake named on loopback: answers every query with `reply`.
    fn fake_server(
        reply: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
    ) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                if let Some(r) = reply(&buf[..n]) {
                    let _ = socket.send_to(&r, from);
                }
            }
        });
        (addr, handle)
    }

    #[test]
    fn confirms_and_reports_each_answer() {
        let (addr, server) = fake_server(|q| {
            let m = hickory_proto::op::Message::from_vec(q).ok()?;
            let name = m.queries[0].name().to_ascii();
            Some(match name.as_str() {
                "new.test." => response(q, true, 0, Some(("new.test", 8))),
                "old.test." => response(q, true, 0, Some(("old.test", 6))),
                "broken.test." => response(q, true, 2, None),
                _ => response(q, false, 5, None),
            })
        });
        let zones: Vec<(String, u32)> = ["new.test", "old.test", "broken.test", "gone.test"]
            .iter()
            .map(|d| ((*d).to_owned(), 7))
            .collect();
        let c = confirm(addr, &zones, Duration::from_millis(300));
        assert_eq!(c.confirmed, BTreeSet::from(["new.test".to_owned()]));
        assert_eq!(c.outcome["old.test"], ZoneAnswer::Serial(6));
        assert_eq!(c.outcome["broken.test"], ZoneAnswer::Rcode(Rcode::SERVFAIL));
        assert_eq!(c.outcome["gone.test"], ZoneAnswer::Rcode(Rcode::REFUSED));
        assert!(!c.unreachable);
        server.join().unwrap();
    }

    #[test]
    fn nothing_listening_is_unreachable_not_a_stall() {
        // A port that was just free: nothing listens there.
        let addr = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let zones = [("a.test".to_owned(), 1)];
        let c = confirm(addr, &zones, Duration::from_millis(200));
        assert!(c.confirmed.is_empty());
        assert_eq!(c.outcome["a.test"], ZoneAnswer::NoAnswer);
        assert!(c.unreachable);
        assert!(matches!(
            probe_version(addr, Duration::from_millis(200)),
            Probe::NoAnswer { unreachable: true }
        ));
    }

    /// The answers a spoofer could send for query `q`, each carrying a
    /// serial far ahead of any wanted one.
    fn forgeries(q: &[u8], zone: &str) -> Vec<Vec<u8>> {
        let high = 4_000_000_000;
        let id = hickory_proto::op::Message::from_vec(q).unwrap().metadata.id;
        let mut wrong_id = response(q, true, 0, Some((zone, high)));
        wrong_id[..2].copy_from_slice(&id.wrapping_add(1).to_be_bytes());
        let other = query::soa_query(id, &parse_domain("other.test").unwrap());
        let wrong_question = response(&other, true, 0, Some(("other.test", high)));
        let version = response(&query::version_query(id), true, 0, Some((zone, high)));
        vec![wrong_id, wrong_question, version]
    }

    #[test]
    fn a_spoofer_cannot_confirm_a_zone() {
        // The real server answers REFUSED for one zone and an old serial
        // for the other; before each answer, the spoofer sends a perfect
        // forgery (right id, question, AA, owner, a high serial) from
        // another port, and forgeries with a wrong id or question from the
        // server's own address.
        let real = UdpSocket::bind("127.0.0.1:0").unwrap();
        let spoofer = UdpSocket::bind("127.0.0.1:0").unwrap();
        real.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let addr = real.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut queries = 0;
            while let Ok((n, from)) = real.recv_from(&mut buf) {
                queries += 1;
                let q = &buf[..n];
                let m = hickory_proto::op::Message::from_vec(q).unwrap();
                let zone = m.queries[0].name().to_ascii();
                let zone = zone.trim_end_matches('.');
                let perfect = response(q, true, 0, Some((zone, 4_000_000_000)));
                spoofer.send_to(&perfect, from).unwrap();
                for f in forgeries(q, zone) {
                    real.send_to(&f, from).unwrap();
                }
                let truth = if zone == "refused.test" {
                    response(q, false, 5, None)
                } else {
                    response(q, true, 0, Some((zone, 2_026_120_100)))
                };
                real.send_to(&truth, from).unwrap();
            }
            queries
        });
        let zones = [
            ("refused.test".to_owned(), 2_026_120_101),
            ("old.test".to_owned(), 2_026_120_101),
        ];
        let c = confirm(addr, &zones, Duration::from_millis(400));
        assert!(c.confirmed.is_empty(), "{c:?}");
        assert_eq!(c.outcome["refused.test"], ZoneAnswer::Rcode(Rcode::REFUSED));
        assert_eq!(c.outcome["old.test"], ZoneAnswer::Serial(2_026_120_100));
        assert!(server.join().unwrap() >= 2);
    }

    #[test]
    fn answers_without_authority_or_for_another_owner_do_not_confirm() {
        for (aa, owner, expected) in [
            (false, "a.test", ZoneAnswer::NotAuthoritative),
            (true, "test", ZoneAnswer::NoSoa),
        ] {
            let (addr, server) =
                fake_server(move |q| Some(response(q, aa, 0, Some((owner, 4_000_000_000)))));
            let zones = [("a.test".to_owned(), 7)];
            let c = confirm(addr, &zones, Duration::from_millis(200));
            assert!(c.confirmed.is_empty(), "{c:?}");
            assert_eq!(c.outcome["a.test"], expected);
            server.join().unwrap();
        }
    }

    #[test]
    fn ids_in_flight_are_distinct() {
        // 2000 zones in one window of 512: every query of a round must have
        // its own id, or one zone's answer could confirm another's serial.
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&seen);
        let (addr, server) = fake_server(move |q| {
            let id = hickory_proto::op::Message::from_vec(q).unwrap().metadata.id;
            log.lock().unwrap().push(id);
            None
        });
        let zones: Vec<(String, u32)> = (0..2000).map(|i| (format!("z{i}.test"), 1)).collect();
        let _ = confirm(addr, &zones, Duration::from_millis(10));
        server.join().unwrap();
        let ids = seen.lock().unwrap();
        let first_round: HashSet<u16> = ids.iter().take(WINDOW).copied().collect();
        assert_eq!(first_round.len(), ids.len().min(WINDOW));
    }
}
