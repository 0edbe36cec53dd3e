//! A client for `named`'s control channel (what `rndc` speaks), so the
//! agent can tell `named` to reload without starting a process per command.
//!
//! The protocol is ISCCC (BIND's `lib/isccc`): over TCP, each message is a
//! 4-byte big-endian length, a 4-byte version (1) and a table of named
//! values. The table starts with `_auth`, an HMAC over every byte after
//! it; then `_ctrl` (`_ser` serial, `_tim` time, `_exp` expiry, `_nonce`)
//! and `_data` (`type`: the command line; a reply adds `result`, `text`,
//! `err`). The first message on a connection only fetches a nonce; every
//! later one carries it, and the connection carries any number of
//! commands in sequence. Every reply's HMAC is verified before anything in
//! it is believed, and every connect, read and write has a time limit.
//!
//! The key comes from a BIND key file (`key "name" { algorithm
//! hmac-sha256; secret "…"; };`), from an `rndc.conf`, or from the `-k`,
//! `-c`, `-s`, `-p` and `-y` options of the configured `rndc` argv.
//!
//! This module owns the wire format and the connection; what a command
//! means for the zones is [`crate::deploy`]'s business.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The only ISCCC version there is.
const VERSION: u32 = 1;
/// Value types on the wire (`ISCCC_CCMSGTYPE_*`).
const TYPE_BINARY: u8 = 1;
const TYPE_TABLE: u8 = 2;
const TYPE_LIST: u8 = 3;
/// Room for the base64 of the longest HMAC (SHA-512), zero-padded
/// (`HSHA_LENGTH` in `cc.c`).
const HSHA_LENGTH: usize = 88;
/// The largest reply accepted (`rndc` itself takes up to 1 MiB; a
/// `status` is about 1 KiB).
const MAX_MESSAGE: usize = 4 << 20;
/// How long a message is valid (`rndc` uses the same 60 s).
const EXPIRY_SECS: u64 = 60;

/// The HMAC algorithms of `rndc` keys that this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    /// From the key file's `algorithm` (`hmac-sha256`).
    pub fn parse(name: &str) -> Option<Algorithm> {
        match name.to_ascii_lowercase().as_str() {
            "hmac-sha224" => Some(Algorithm::Sha224),
            "hmac-sha256" => Some(Algorithm::Sha256),
            "hmac-sha384" => Some(Algorithm::Sha384),
            "hmac-sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// The byte before the HMAC in `hsha` (`ISCCC_ALG_HMACSHA*`).
    fn wire(self) -> u8 {
        match self {
            Algorithm::Sha224 => 162,
            Algorithm::Sha256 => 163,
            Algorithm::Sha384 => 164,
            Algorithm::Sha512 => 165,
        }
    }

    fn mac(self, secret: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(secret: &[u8], data: &[u8]) -> Vec<u8> {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Algorithm::Sha224 => run::<Hmac<sha2::Sha224>>(secret, data),
            Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(secret, data),
            Algorithm::Sha384 => run::<Hmac<sha2::Sha384>>(secret, data),
            Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(secret, data),
        }
    }
}

/// A control-channel key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub algorithm: Algorithm,
    pub secret: Vec<u8>,
}

impl fmt::Debug for Key {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Where `named` listens for control commands, and the key it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub key: Key,
}

/// Time limits for one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// Each read and each write; a `reconfig` of many zones answers only
    /// when it is done.
    pub io: Duration,
}

impl Default for Timeouts {
    /// `rndc`'s own limit is 60 s for the whole exchange.
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            io: Duration::from_mins(1),
        }
    }
}

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to find key {name:?} in {path}")]
    Missing { path: PathBuf, name: String },
    #[error("failed to find a key in {path}")]
    NoKey { path: PathBuf },
    #[error("failed to use key {name:?} in {path}: {reason}")]
    Bad {
        path: PathBuf,
        name: String,
        reason: String,
    },
    #[error("failed to find the control address: {0}")]
    Address(String),
}

/// Why a command did not get a trusted answer.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("failed to connect to named's control channel at {addr}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("failed to talk to named's control channel at {addr}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("failed to read named's answer: {0}")]
    Malformed(&'static str),
    #[error(
        "failed to authenticate named's answer (bad HMAC): the key does not match, or the peer is not named"
    )]
    BadAuth,
    #[error("named closed the control connection (a wrong key makes it do so)")]
    Closed,
    #[error("named refused `{command}`: {message}")]
    Refused {
        command: String,
        /// `named`'s result code (`isc_result_t`).
        result: u32,
        message: String,
    },
}

impl ControlError {
    /// `named` answered that the object already exists (`addzone` of a
    /// zone it has).
    pub fn already_exists(&self) -> bool {
        matches!(self, ControlError::Refused { message, .. } if message.contains("already exists"))
    }

    /// `named` answered that it does not know the zone (`delzone`).
    pub fn not_found(&self) -> bool {
        matches!(self, ControlError::Refused { message, .. } if message.contains("not found"))
    }

    /// A kept connection that `named` had closed (it restarted, or timed
    /// the connection out): the command cannot have run, so it is safe to
    /// send again. A timeout is not such a case.
    fn is_stale_connection(&self) -> bool {
        match self {
            ControlError::Closed => true,
            ControlError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::NotConnected
            ),
            _ => false,
        }
    }

    /// The connection failed, rather than `named` refusing the command.
    pub fn is_transport(&self) -> bool {
        !matches!(self, ControlError::Refused { .. })
    }
}

/// A value in an ISCCC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Binary(Vec<u8>),
    Table(Table),
    List(Vec<Value>),
}

/// A table: named values in wire order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table(pub Vec<(String, Value)>);

impl Table {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn table(&self, key: &str) -> Option<&Table> {
        match self.get(key) {
            Some(Value::Table(t)) => Some(t),
            _ => None,
        }
    }

    /// A binary value read as text.
    pub fn string(&self, key: &str) -> Option<String> {
        match self.get(key) {
            Some(Value::Binary(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// A binary value holding a decimal number (how ISCCC carries them).
    pub fn uint(&self, key: &str) -> Option<u32> {
        self.string(key)?.trim().parse().ok()
    }

    fn put(&mut self, key: &str, value: impl Into<Vec<u8>>) {
        self.0.push((key.to_owned(), Value::Binary(value.into())));
    }
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    let (kind, body) = match value {
        Value::Binary(b) => (TYPE_BINARY, b.clone()),
        Value::Table(t) => {
            let mut body = Vec::new();
            put_table(&mut body, t);
            (TYPE_TABLE, body)
        }
        Value::List(items) => {
            let mut body = Vec::new();
            for v in items {
                put_value(&mut body, v);
            }
            (TYPE_LIST, body)
        }
    };
    out.push(kind);
    out.extend_from_slice(&wire_len(body.len()).to_be_bytes());
    out.extend_from_slice(&body);
}

fn put_table(out: &mut Vec<u8>, table: &Table) {
    for (key, value) in &table.0 {
        // Keys are ours and short (`_ctrl`, `type`); the wire allows 255.
        let len = u8::try_from(key.len()).unwrap_or_else(|_| unreachable!("key {key} too long"));
        out.push(len);
        out.extend_from_slice(key.as_bytes());
        put_value(out, value);
    }
}

fn wire_len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| unreachable!("message over 4 GiB"))
}

/// A reader over a byte slice that fails instead of running off its end.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ControlError> {
        if self.0.len() < n {
            return Err(ControlError::Malformed("truncated message"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, ControlError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, ControlError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Nesting deeper than this is not a message `named` sends.
const MAX_DEPTH: usize = 8;

fn get_value(c: &mut Cursor<'_>, depth: usize) -> Result<Value, ControlError> {
    if depth > MAX_DEPTH {
        return Err(ControlError::Malformed("nested too deep"));
    }
    let kind = c.u8()?;
    let len = c.u32()? as usize;
    let body = c.take(len)?;
    match kind {
        TYPE_BINARY => Ok(Value::Binary(body.to_vec())),
        TYPE_TABLE => Ok(Value::Table(get_table(body, depth + 1)?)),
        TYPE_LIST => {
            let mut c = Cursor(body);
            let mut items = Vec::new();
            while !c.0.is_empty() {
                items.push(get_value(&mut c, depth + 1)?);
            }
            Ok(Value::List(items))
        }
        _ => Err(ControlError::Malformed("unknown value type")),
    }
}

fn get_table(bytes: &[u8], depth: usize) -> Result<Table, ControlError> {
    let mut c = Cursor(bytes);
    let mut table = Table::default();
    while !c.0.is_empty() {
        let len = c.u8()? as usize;
        let key = String::from_utf8_lossy(c.take(len)?).into_owned();
        let value = get_value(&mut c, depth)?;
        table.0.push((key, value));
    }
    Ok(table)
}

/// One message as it goes on the wire, length prefix included: `_auth`
/// (signed), then `_ctrl` and `_data`.
pub fn encode(key: &Key, ctrl: &Table, data: &Table) -> Vec<u8> {
    let mut signed = Vec::new();
    put_table(
        &mut signed,
        &Table(vec![
            ("_ctrl".to_owned(), Value::Table(ctrl.clone())),
            ("_data".to_owned(), Value::Table(data.clone())),
        ]),
    );
    let mut hsha = vec![key.algorithm.wire()];
    hsha.extend_from_slice(&hmac_field(key, &signed));
    let mut auth = Vec::new();
    put_table(
        &mut auth,
        &Table(vec![(
            "_auth".to_owned(),
            Value::Table(Table(vec![("hsha".to_owned(), Value::Binary(hsha))])),
        )]),
    );
    let body_len = 4 + auth.len() + signed.len();
    let mut out = Vec::with_capacity(4 + body_len);
    out.extend_from_slice(&wire_len(body_len).to_be_bytes());
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&auth);
    out.extend_from_slice(&signed);
    out
}

/// The HMAC of `signed` as `cc.c` writes it: base64, zero-padded to
/// [`HSHA_LENGTH`] bytes.
fn hmac_field(key: &Key, signed: &[u8]) -> [u8; HSHA_LENGTH] {
    let text = BASE64.encode(key.algorithm.mac(&key.secret, signed));
    let mut field = [0u8; HSHA_LENGTH];
    field[..text.len()].copy_from_slice(text.as_bytes());
    field
}

/// A verified message: `_ctrl` and `_data`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub ctrl: Table,
    pub data: Table,
}

/// Reads one message (without its length prefix), after checking that
/// its `_auth` is `key`'s HMAC over every byte that follows it.
pub fn decode(key: &Key, body: &[u8]) -> Result<Message, ControlError> {
    let mut c = Cursor(body);
    if c.u32()? != VERSION {
        return Err(ControlError::Malformed("unknown version"));
    }
    // The first entry must be `_auth`; what follows it is what it signs.
    let len = c.u8()? as usize;
    if c.take(len)? != b"_auth" {
        return Err(ControlError::BadAuth);
    }
    let Value::Table(auth) = get_value(&mut c, 1)? else {
        return Err(ControlError::BadAuth);
    };
    let signed = c.0;
    let Some(Value::Binary(hsha)) = auth.get("hsha") else {
        return Err(ControlError::BadAuth);
    };
    if hsha.len() != 1 + HSHA_LENGTH || hsha[0] != key.algorithm.wire() {
        return Err(ControlError::BadAuth);
    }
    let text: Vec<u8> = hsha[1..].iter().copied().take_while(|b| *b != 0).collect();
    let Ok(mac) = BASE64.decode(&text) else {
        return Err(ControlError::BadAuth);
    };
    if !verify(key, signed, &mac) {
        return Err(ControlError::BadAuth);
    }
    let top = get_table(signed, 1)?;
    Ok(Message {
        ctrl: top.table("_ctrl").cloned().unwrap_or_default(),
        data: top.table("_data").cloned().unwrap_or_default(),
    })
}

/// Constant-time comparison of an HMAC.
fn verify(key: &Key, data: &[u8], mac: &[u8]) -> bool {
    fn run<M: Mac + hmac::digest::KeyInit>(secret: &[u8], data: &[u8], tag: &[u8]) -> bool {
        let Ok(mut m) = <M as hmac::digest::KeyInit>::new_from_slice(secret) else {
            return false;
        };
        m.update(data);
        m.verify_slice(tag).is_ok()
    }
    match key.algorithm {
        Algorithm::Sha224 => run::<Hmac<sha2::Sha224>>(&key.secret, data, mac),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(&key.secret, data, mac),
        Algorithm::Sha384 => run::<Hmac<sha2::Sha384>>(&key.secret, data, mac),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(&key.secret, data, mac),
    }
}

/// What `named` answered to a command it took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// What the command printed (`rndc status`'s lines).
    pub text: String,
}

/// One kept connection to `named`'s control channel. Commands go one
/// after another on it; after an error it is dropped and the next
/// command connects again.
#[derive(Debug)]
pub struct Client {
    endpoint: Endpoint,
    timeouts: Timeouts,
    conn: Option<Connection>,
    /// `_ser` of the next message: unique per message (named refuses a
    /// replayed `_ser`/`_tim` pair).
    serial: u32,
    /// Connections opened so far.
    connections: u64,
}

#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    nonce: u32,
}

impl Client {
    /// A client; it connects at its first command.
    pub fn new(endpoint: Endpoint, timeouts: Timeouts) -> Client {
        // A start that differs between runs, so a restarted agent does not
        // repeat the serials of the one before within the same second.
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            ^ std::process::id().rotate_left(16);
        Client {
            endpoint,
            timeouts,
            conn: None,
            serial: seed | 1,
            connections: 0,
        }
    }

    /// How many connections this client has opened (one while `named`
    /// stays up).
    pub fn connections(&self) -> u64 {
        self.connections
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends one command line (`reload example.com`, `status`) and waits
    /// for its verified answer. A kept connection that turns out dead
    /// (named restarted) is replaced once; the command is sent again only
    /// when the old connection failed before any answer could be read.
    pub fn command(&mut self, command: &str) -> Result<Reply, ControlError> {
        let reused = self.conn.is_some();
        match self.exchange(command) {
            Err(e) if reused && e.is_stale_connection() => {
                tracing::debug!(error = %e, "control connection lost; connecting again");
                self.conn = None;
                self.exchange(command)
            }
            other => other,
        }
    }

    fn exchange(&mut self, command: &str) -> Result<Reply, ControlError> {
        if self.conn.is_none() {
            self.conn = Some(self.connect()?);
        }
        let result = self.send(command);
        if result.as_ref().is_err_and(ControlError::is_transport) {
            self.conn = None;
        }
        result
    }

    fn connect(&mut self) -> Result<Connection, ControlError> {
        let addr = self.endpoint.addr;
        let stream = TcpStream::connect_timeout(&addr, self.timeouts.connect)
            .map_err(|source| ControlError::Connect { addr, source })?;
        let io = |source| ControlError::Io { addr, source };
        stream
            .set_read_timeout(Some(self.timeouts.io))
            .map_err(io)?;
        stream
            .set_write_timeout(Some(self.timeouts.io))
            .map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        self.connections += 1;
        let mut conn = Connection { stream, nonce: 0 };
        // The handshake: a `null` command whose answer carries the nonce.
        let reply = self.round_trip(&mut conn, "null")?;
        conn.nonce = reply
            .ctrl
            .uint("_nonce")
            .ok_or(ControlError::Malformed("no nonce in named's first answer"))?;
        Ok(conn)
    }

    fn send(&mut self, command: &str) -> Result<Reply, ControlError> {
        let mut conn = self
            .conn
            .take()
            .unwrap_or_else(|| unreachable!("connected above"));
        let result = self.round_trip(&mut conn, command);
        self.conn = Some(conn);
        let message = result?;
        let result = message.data.uint("result").unwrap_or(0);
        let err = message.data.string("err");
        let text = message.data.string("text").unwrap_or_default();
        if result != 0 || err.is_some() {
            let mut detail = err.unwrap_or_else(|| format!("result {result}"));
            if !text.trim().is_empty() {
                detail = format!("{detail}: {}", text.trim());
            }
            return Err(ControlError::Refused {
                command: command.to_owned(),
                result,
                message: detail,
            });
        }
        Ok(Reply { text })
    }

    /// Writes one request and reads its answer on `conn`.
    fn round_trip(
        &mut self,
        conn: &mut Connection,
        command: &str,
    ) -> Result<Message, ControlError> {
        let addr = self.endpoint.addr;
        let serial = self.serial;
        self.serial = self.serial.wrapping_add(1);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut ctrl = Table::default();
        ctrl.put("_ser", serial.to_string());
        ctrl.put("_tim", now.to_string());
        ctrl.put("_exp", (now + EXPIRY_SECS).to_string());
        if conn.nonce != 0 {
            ctrl.put("_nonce", conn.nonce.to_string());
        }
        let mut data = Table::default();
        data.put("type", command);
        let bytes = encode(&self.endpoint.key, &ctrl, &data);
        conn.stream
            .write_all(&bytes)
            .map_err(|source| ControlError::Io { addr, source })?;
        let body = read_message(&mut conn.stream, addr)?;
        let message = decode(&self.endpoint.key, &body)?;
        // The answer names the request it answers.
        if message.ctrl.uint("_ser") != Some(serial) {
            return Err(ControlError::Malformed("answer to another request"));
        }
        Ok(message)
    }
}

fn read_message(stream: &mut TcpStream, addr: SocketAddr) -> Result<Vec<u8>, ControlError> {
    let io = |source: io::Error| {
        if source.kind() == io::ErrorKind::UnexpectedEof {
            ControlError::Closed
        } else {
            ControlError::Io { addr, source }
        }
    };
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).map_err(io)?;
    let len = u32::from_be_bytes(len) as usize;
    if !(4..=MAX_MESSAGE).contains(&len) {
        return Err(ControlError::Malformed("message length out of range"));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).map_err(io)?;
    Ok(body)
}

// ---------------------------------------------------------------------------
// Key files and rndc.conf
// ---------------------------------------------------------------------------

/// What an `rndc.conf` or key file says: its keys and `options`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RndcConf {
    /// Keys by name, in the order read.
    pub keys: BTreeMap<String, KeyText>,
    pub default_key: Option<String>,
    pub default_server: Option<String>,
    pub default_port: Option<u16>,
    /// `include` paths, as written.
    pub includes: Vec<String>,
}

/// A key as written, before its secret is decoded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyText {
    pub algorithm: Option<String>,
    pub secret: Option<String>,
}

/// Tokens of BIND's configuration syntax: words, quoted strings, `{`, `}`
/// and `;`, with `#`, `//` and `/* */` comments dropped.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'#' || (c == b'/' && b.get(i + 1) == Some(&b'/')) {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if c == b'"' {
            let mut s = String::new();
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                s.push(char::from(b[i]));
                i += 1;
            }
            i += 1;
            out.push(s);
        } else if matches!(c, b'{' | b'}' | b';') {
            out.push(char::from(c).to_string());
            i += 1;
        } else {
            let start = i;
            while i < b.len()
                && !b[i].is_ascii_whitespace()
                && !matches!(b[i], b'{' | b'}' | b';' | b'"')
            {
                i += 1;
            }
            out.push(text[start..i].to_owned());
        }
    }
    out
}

/// Reads the statements of an `rndc.conf` or key file that matter here:
/// `key`, `options { default-key; default-server; default-port; }` and
/// `include`. Other statements are skipped.
pub fn parse_rndc_conf(text: &str) -> RndcConf {
    let t = tokens(text);
    let mut conf = RndcConf::default();
    let mut i = 0;
    // Index just past the `}` matching the `{` at `open`.
    let block_end = |open: usize| {
        let mut depth = 0usize;
        let mut j = open;
        while j < t.len() {
            match t[j].as_str() {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if depth == 0 {
                        return j + 1;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        t.len()
    };
    while i < t.len() {
        match t[i].as_str() {
            "key" if t.get(i + 2).is_some_and(|s| s == "{") => {
                let end = block_end(i + 2);
                let mut key = KeyText::default();
                let mut j = i + 3;
                while j + 1 < end {
                    match t[j].as_str() {
                        "algorithm" => key.algorithm = Some(t[j + 1].clone()),
                        "secret" => key.secret = Some(t[j + 1].clone()),
                        _ => {}
                    }
                    j += 1;
                }
                conf.keys.insert(t[i + 1].clone(), key);
                i = end;
            }
            "options" if t.get(i + 1).is_some_and(|s| s == "{") => {
                let end = block_end(i + 1);
                let mut j = i + 2;
                while j + 1 < end {
                    let v = &t[j + 1];
                    match t[j].as_str() {
                        "default-key" => conf.default_key = Some(v.clone()),
                        "default-server" => conf.default_server = Some(v.clone()),
                        "default-port" => conf.default_port = v.parse().ok(),
                        _ => {}
                    }
                    j += 1;
                }
                i = end;
            }
            "include" if i + 1 < t.len() => {
                conf.includes.push(t[i + 1].clone());
                i += 2;
            }
            "{" => i = block_end(i),
            _ => i += 1,
        }
    }
    conf
}

/// Reads a configuration file and the files it includes (relative paths
/// from its directory), merged: the including file's options win.
pub fn load_rndc_conf(path: &Path) -> Result<RndcConf, KeyError> {
    fn load(path: &Path, depth: usize, into: &mut RndcConf) -> Result<(), KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let conf = parse_rndc_conf(&text);
        for inc in &conf.includes {
            if depth < 4 {
                let inc = crate::fsutil::parent(path).join(inc);
                load(&inc, depth + 1, into)?;
            }
        }
        into.keys.extend(conf.keys);
        into.default_key = conf.default_key.or(into.default_key.take());
        into.default_server = conf.default_server.or(into.default_server.take());
        into.default_port = conf.default_port.or(into.default_port);
        Ok(())
    }
    let mut conf = RndcConf::default();
    load(path, 0, &mut conf)?;
    Ok(conf)
}

/// The key `name` (or the only key) of `conf`, decoded.
pub fn key_of(conf: &RndcConf, name: Option<&str>, path: &Path) -> Result<Key, KeyError> {
    let (name, text) = match name {
        Some(n) => (
            n.to_owned(),
            conf.keys.get(n).ok_or_else(|| KeyError::Missing {
                path: path.to_owned(),
                name: n.to_owned(),
            })?,
        ),
        None => {
            let (n, k) = conf.keys.iter().next().ok_or_else(|| KeyError::NoKey {
                path: path.to_owned(),
            })?;
            (n.clone(), k)
        }
    };
    let bad = |reason: &str| KeyError::Bad {
        path: path.to_owned(),
        name: name.clone(),
        reason: reason.to_owned(),
    };
    let algorithm = text
        .algorithm
        .as_deref()
        .map_or(Some(Algorithm::Sha256), Algorithm::parse)
        .ok_or_else(|| bad("unsupported algorithm (hmac-sha224/256/384/512 are)"))?;
    let secret = BASE64
        .decode(text.secret.as_deref().ok_or_else(|| bad("no secret"))?)
        .map_err(|_| bad("the secret is not base64"))?;
    Ok(Key {
        name,
        algorithm,
        secret,
    })
}

/// Reads the first (or the named) key of a key file.
pub fn load_key(path: &Path, name: Option<&str>) -> Result<Key, KeyError> {
    key_of(&load_rndc_conf(path)?, name, path)
}

/// The endpoint `rndc` would use with these arguments (`-s`, `-p`, `-k`,
/// `-c`, `-y`; the program name first): its own defaults otherwise
/// (`/etc/bind/rndc.conf` if it exists, else `/etc/bind/rndc.key`,
/// server 127.0.0.1, port 953).
pub fn endpoint_from_rndc_argv(argv: &[String]) -> Result<Endpoint, KeyError> {
    let mut server = None;
    let mut port: Option<u16> = None;
    let mut key_file: Option<PathBuf> = None;
    let mut conf_file: Option<PathBuf> = None;
    let mut key_name: Option<String> = None;
    let mut rest = argv.iter().skip(1);
    while let Some(option) = rest.next() {
        let mut value = || rest.next().cloned();
        match option.as_str() {
            "-s" => server = value(),
            "-p" => port = value().and_then(|p| p.parse().ok()),
            "-k" => key_file = value().map(PathBuf::from),
            "-c" => conf_file = value().map(PathBuf::from),
            "-y" => key_name = value(),
            // The source address: a value this client does not use.
            "-b" => drop(value()),
            _ => {}
        }
    }
    let etc_conf = Path::new("/etc/bind/rndc.conf");
    let etc_key = Path::new("/etc/bind/rndc.key");
    let (conf, path) = match (&conf_file, &key_file) {
        (Some(c), _) => (load_rndc_conf(c)?, c.clone()),
        (None, Some(k)) => (load_rndc_conf(k)?, k.clone()),
        (None, None) if etc_conf.is_file() => (load_rndc_conf(etc_conf)?, etc_conf.to_owned()),
        (None, None) => (load_rndc_conf(etc_key)?, etc_key.to_owned()),
    };
    let name = key_name.or_else(|| conf.default_key.clone());
    let key = key_of(&conf, name.as_deref(), &path)?;
    let host = server
        .or_else(|| conf.default_server.clone())
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = port.or(conf.default_port).unwrap_or(953);
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| KeyError::Address(format!("{host}: {e}")))?
        .next()
        .ok_or_else(|| KeyError::Address(format!("{host} has no address")))?;
    Ok(Endpoint { addr, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key {
            name: "k".into(),
            algorithm: Algorithm::Sha256,
            secret: b"0123456789abcdef0123456789abcdef".to_vec(),
        }
    }

    fn table(pairs: &[(&str, &str)]) -> Table {
        let mut t = Table::default();
        for (k, v) in pairs {
            t.put(k, *v);
        }
        t
    }

    #[test]
    fn a_message_round_trips_and_is_framed() {
        let ctrl = table(&[("_ser", "7"), ("_tim", "1700000000")]);
        let data = table(&[("type", "reload a.test")]);
        let bytes = encode(&key(), &ctrl, &data);
        let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        assert_eq!(len, bytes.len() - 4);
        // version 1, then `_auth` first
        assert_eq!(&bytes[4..8], &[0, 0, 0, 1]);
        assert_eq!(&bytes[8..14], b"\x05_auth");
        let m = decode(&key(), &bytes[4..]).expect("verifies");
        assert_eq!(m.ctrl.uint("_ser"), Some(7));
        assert_eq!(m.data.string("type").as_deref(), Some("reload a.test"));
    }

    #[test]
    fn the_auth_section_has_bind_s_layout() {
        let bytes = encode(&key(), &Table::default(), &Table::default());
        // `_auth` table of 99 bytes: `hsha`, binary of 89 = algorithm byte
        // and 88 bytes of zero-padded base64 (cc.c's auth_hsha).
        assert_eq!(&bytes[14..19], &[TYPE_TABLE, 0, 0, 0, 99]);
        assert_eq!(&bytes[19..24], b"\x04hsha");
        assert_eq!(&bytes[24..29], &[TYPE_BINARY, 0, 0, 0, 89]);
        assert_eq!(bytes[29], 163);
        assert_eq!(bytes[29 + 1 + 44..29 + 1 + 88], [0u8; 44]);
    }

    #[test]
    fn any_changed_byte_or_key_is_refused() {
        let bytes = encode(
            &key(),
            &table(&[("_ser", "1")]),
            &table(&[("type", "status")]),
        );
        let mut other = key();
        other.secret[0] ^= 1;
        assert!(matches!(
            decode(&other, &bytes[4..]),
            Err(ControlError::BadAuth)
        ));
        for at in [40, bytes.len() - 1] {
            let mut broken = bytes.clone();
            broken[at] ^= 0x20;
            assert!(decode(&key(), &broken[4..]).is_err(), "byte {at}");
        }
        let mut sha512 = key();
        sha512.algorithm = Algorithm::Sha512;
        assert!(matches!(
            decode(&sha512, &bytes[4..]),
            Err(ControlError::BadAuth)
        ));
    }

    #[test]
    fn truncated_or_garbage_input_is_an_error_not_a_panic() {
        let bytes = encode(&key(), &table(&[("_ser", "1")]), &table(&[("type", "x")]));
        for n in 0..bytes.len() - 4 {
            assert!(decode(&key(), &bytes[4..4 + n]).is_err(), "{n}");
        }
        assert!(get_table(&[3, b'a', b'b', b'c', 9, 0, 0, 0, 0], 0).is_err());
        assert!(get_table(&[1, b'a', TYPE_BINARY, 0xff, 0xff, 0xff, 0xff], 0).is_err());
    }

    #[test]
    fn reads_key_files_and_rndc_conf() {
        let key_text = "# made by tsig-keygen\nkey \"rndc-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\";\n};\n";
        let conf = parse_rndc_conf(key_text);
        let k = key_of(&conf, None, Path::new("k")).expect("key");
        assert_eq!(k.name, "rndc-key");
        assert_eq!(k.secret, key().secret);
        let rndc = "include \"/x/rndc.key\"; /* c */ options { default-key \"rndc-key\"; default-server 127.0.0.1; default-port 9530; }; server localhost { key \"rndc-key\"; };";
        let c = parse_rndc_conf(rndc);
        assert_eq!(c.includes, ["/x/rndc.key"]);
        assert_eq!(c.default_key.as_deref(), Some("rndc-key"));
        assert_eq!(c.default_port, Some(9530));
        assert!(c.keys.is_empty());
        let bad = parse_rndc_conf("key k { algorithm hmac-md5; secret \"AAAA\"; };");
        assert!(matches!(
            key_of(&bad, None, Path::new("k")),
            Err(KeyError::Bad { .. })
        ));
        assert!(matches!(
            key_of(&c, Some("nope"), Path::new("k")),
            Err(KeyError::Missing { .. })
        ));
    }

    #[test]
    fn rndc_argv_names_the_endpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key_file = dir.path().join("rndc.key");
        std::fs::write(
            &key_file,
            "key \"k\" { algorithm hmac-sha256; secret \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"; };",
        )
        .expect("write");
        let conf = dir.path().join("rndc.conf");
        std::fs::write(
            &conf,
            "include \"rndc.key\";\noptions { default-key \"k\"; default-server 127.0.0.1; default-port 9531; };\n",
        )
        .expect("write");
        let argv = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let e = endpoint_from_rndc_argv(&argv(&["rndc", "-c", conf.to_str().expect("utf8")]))
            .expect("endpoint");
        assert_eq!(e.addr, "127.0.0.1:9531".parse().expect("addr"));
        assert_eq!(
            e.key,
            key_of(
                &parse_rndc_conf(&std::fs::read_to_string(&key_file).expect("read")),
                None,
                &key_file
            )
            .expect("key")
        );
        let e = endpoint_from_rndc_argv(&argv(&[
            "rndc",
            "-k",
            key_file.to_str().expect("utf8"),
            "-s",
            "127.0.0.1",
            "-p",
            "7000",
        ]))
        .expect("endpoint");
        assert_eq!(e.addr.port(), 7000);
        assert_eq!(e.key.name, "k");
    }
}
