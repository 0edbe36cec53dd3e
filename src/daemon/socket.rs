//! The Unix socket source: newline-delimited JSON events in, one answer
//! line per event out.
//!
//! A line is answered `{"ok":true,"id":…}` only once the event is durable in
//! the spool, or at once with the error shape when it does not decode.
//! Lines from all connections go to one committer thread that writes every
//! line waiting at that moment into one group file in the spool with a
//! single flush (group commit, [`Spool::submit_group`]), so a client
//! streaming thousands of events is not held to one fsync, or even one
//! file, each.
//! Peers are checked by `SO_PEERCRED` against the configured uids and gids.
//! With `socket.group` the socket file belongs to that group and, when its
//! mode does not let others write it, the kernel lets only root, the agent
//! and members of the group connect (by their real groups, supplementary
//! ones too, which `SO_PEERCRED` does not show): then every peer that
//! connects is allowed.
//! At most `socket.max_connections` are served at once (each costs two
//! threads and up to `spool.max_event_bytes` of line buffer); one more is
//! answered `busy` and closed by the accepting thread itself, without a
//! thread of its own.

use super::Wake;
use crate::config::SocketConfig;
use crate::error::ApiError;
use crate::model::event;
use crate::spool::Spool;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

/// Most lines committed with one flush.
const MAX_GROUP: usize = 4096;

struct Line {
    bytes: Vec<u8>,
    reply: Sender<String>,
}

/// Binds the socket and starts serving it on background threads.
pub fn start(
    config: &SocketConfig,
    spool: Spool,
    max_bytes: u64,
    wake: Sender<Wake>,
) -> io::Result<()> {
    let Some(path) = &config.path else {
        return Ok(());
    };
    remove_stale(path)?;
    // Until the chown and chmod below, the socket has the umask's mode
    // (0027 under the unit): nobody else can connect to it yet.
    let listener = UnixListener::bind(path)?;
    if let Some(group) = &config.group {
        give_to_group(path, group)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(config.mode))?;
    let (tx, rx) = mpsc::channel::<Line>();
    thread::Builder::new()
        .name("socket-commit".into())
        .spawn(move || committer(&spool, &rx, &wake))?;
    let allowed = config.clone();
    let open = Arc::new(AtomicUsize::new(0));
    thread::Builder::new()
        .name("socket-accept".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if let Err(reason) = check_peer(&stream, &allowed) {
                    tracing::warn!(%reason, "socket connection refused");
                    refuse(&stream, &ApiError::new("forbidden", None, reason));
                    continue;
                }
                let Some(slot) = Slot::take(&open, allowed.max_connections) else {
                    tracing::warn!(
                        max_connections = allowed.max_connections,
                        "socket connection refused: too many at once"
                    );
                    let detail = format!(
                        "{} connections are open (socket.max_connections); try again later",
                        allowed.max_connections
                    );
                    refuse(&stream, &ApiError::new("busy", None, detail));
                    continue;
                };
                let tx = tx.clone();
                let _ = thread::Builder::new()
                    .name("socket-conn".into())
                    .spawn(move || {
                        let _slot = slot;
                        connection(stream, &tx, max_bytes);
                    });
            }
        })?;
    Ok(())
}

/// One of `socket.max_connections`, given back when dropped.
struct Slot {
    open: Arc<AtomicUsize>,
}

impl Slot {
    /// A slot if fewer than `max` are taken.
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot {
            open: Arc::clone(open),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers a connection that is not served with one error line and closes
/// it. Non-blocking, so a peer that does not read cannot stall the
/// accepting thread.
fn refuse(stream: &UnixStream, e: &ApiError) {
    let _ = stream.set_nonblocking(true);
    let _ = writeln!(&*stream, "{}", answer_err(e));
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Gives the socket file to `group`, which the agent must be a member of.
fn give_to_group(path: &Path, group: &str) -> io::Result<()> {
    let gid = nix::unistd::Group::from_name(group)
        .map_err(io::Error::from)?
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "socket.group `{}` does not exist",
                    crate::logtext::Escaped(group)
                ),
            )
        })?
        .gid;
    nix::unistd::chown(path, None, Some(gid)).map_err(|e| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "cannot give {} to socket.group `{}` (the agent must be a member of it, \
                 e.g. SupplementaryGroups= in the unit): {e}",
                path.display(),
                crate::logtext::Escaped(group)
            ),
        )
    })
}

/// Removes a socket left by an earlier run; refuses to remove anything else.
fn remove_stale(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn check_peer(stream: &UnixStream, config: &SocketConfig) -> Result<(), String> {
    let cred =
        getsockopt(stream, PeerCredentials).map_err(|e| format!("no peer credentials: {e}"))?;
    let (uid, gid) = (cred.uid(), cred.gid());
    let me = nix::unistd::geteuid().as_raw();
    if uid == 0
        || uid == me
        || config.allowed_uids.contains(&uid)
        || config.allowed_gids.contains(&gid)
        || group_is_the_gate(config)
    {
        Ok(())
    } else {
        Err(format!(
            "peer pid {} uid {uid} gid {gid} is not in socket.allowed_uids or socket.allowed_gids \
             (or socket.group with a mode that gives others no write)",
            cred.pid()
        ))
    }
}

/// Whether the kernel already checked the peer: the socket belongs to
/// `socket.group` and its mode does not let others write it (`connect`
/// needs write permission), so only root, the agent and members of the
/// group could connect.
fn group_is_the_gate(config: &SocketConfig) -> bool {
    config.group.is_some() && config.mode & 0o002 == 0
}

fn answer_err(e: &ApiError) -> String {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("ok".into(), false.into());
    }
    v.to_string()
}

fn connection(stream: UnixStream, tx: &Sender<Line>, max_bytes: u64) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let (reply_tx, reply_rx) = mpsc::channel::<String>();
    let writer = thread::spawn(move || {
        let mut w = io::BufWriter::new(write_half);
        while let Ok(first) = reply_rx.recv() {
            let _ = writeln!(w, "{first}");
            while let Ok(more) = reply_rx.try_recv() {
                let _ = writeln!(w, "{more}");
            }
            if w.flush().is_err() {
                break;
            }
        }
    });
    let mut reader = BufReader::new(stream);
    loop {
        let mut buf = Vec::new();
        let Ok(n) = (&mut reader)
            .take(max_bytes + 1)
            .read_until(b'\n', &mut buf)
        else {
            break;
        };
        if n == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') && buf.len() as u64 > max_bytes {
            let e = ApiError::new(
                "too_large",
                None,
                format!("line is over spool.max_event_bytes ({max_bytes}); closing"),
            );
            let _ = reply_tx.send(answer_err(&e));
            break;
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if tx
            .send(Line {
                bytes: buf,
                reply: reply_tx.clone(),
            })
            .is_err()
        {
            break;
        }
    }
    drop(reply_tx);
    let _ = writer.join();
}

fn committer(spool: &Spool, rx: &Receiver<Line>, wake: &Sender<Wake>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(l) => group.push(l),
                Err(_) => break,
            }
        }
        let decoded: Vec<Result<String, ApiError>> = group
            .iter()
            .map(|l| {
                std::str::from_utf8(&l.bytes)
                    .map_err(|e| {
                        ApiError::new("parse_error", None, format!("not valid UTF-8: {e}"))
                    })
                    .and_then(event::decode_event)
                    .map(|e| e.id)
            })
            .collect();
        let good: Vec<&[u8]> = group
            .iter()
            .zip(&decoded)
            .filter(|(_, d)| d.is_ok())
            .map(|(l, _)| l.bytes.as_slice())
            .collect();
        let committed = if good.is_empty() {
            Ok(String::new())
        } else {
            spool.submit_group(&good)
        };
        if let Err(e) = &committed {
            tracing::error!(error = %e, "failed to write events into the spool");
        }
        for (line, d) in group.iter().zip(decoded) {
            let answer = match (d, &committed) {
                (Ok(id), Ok(_)) => serde_json::json!({"ok": true, "id": id}).to_string(),
                (Ok(_), Err(e)) => answer_err(&ApiError::new(
                    "spool_error",
                    None,
                    format!("the event could not be stored durably: {e}; send it again"),
                )),
                (Err(e), _) => answer_err(&e),
            };
            let _ = line.reply.send(answer);
        }
        if !good.is_empty() {
            let _ = wake.send(Wake::Spool);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_is_the_gate_only_when_others_are_shut_out() {
        let config = |group: Option<&str>, mode| SocketConfig {
            path: None,
            mode,
            allowed_uids: Vec::new(),
            allowed_gids: Vec::new(),
            max_connections: 1,
            group: group.map(str::to_owned),
        };
        assert!(group_is_the_gate(&config(Some("zoneagent-submit"), 0o660)));
        assert!(group_is_the_gate(&config(Some("zoneagent-submit"), 0o600)));
        assert!(group_is_the_gate(&config(Some("zoneagent-submit"), 0o664)));
        assert!(!group_is_the_gate(&config(Some("zoneagent-submit"), 0o666)));
        assert!(!group_is_the_gate(&config(Some("zoneagent-submit"), 0o662)));
        assert!(!group_is_the_gate(&config(None, 0o660)));
    }
}
