//! The Unix socket source: newline-delimited JSON events in, one answer
//! line per event out.
//!
//! A line is answered `{"ok":true,"id":…}` only once the event is durable in
//! the spool, or at once with the error shape when it does not decode.
//! Connections are tokio tasks (one reads lines, one writes answers); every
//! line goes through one bounded queue to one committer thread, which
//! writes every line waiting at that moment into one group file in the
//! spool with a single flush (group commit, [`Spool::submit_group`]), so a
//! client streaming thousands of events is not held to one fsync, or even
//! one file, each. The committer is a thread of its own, not a task: it
//! decodes and fsyncs, which must not stall the runtime's workers.
//! Peers are checked by `SO_PEERCRED` against the configured uids and gids.
//! With `socket.group` the socket file belongs to that group and, when its
//! mode does not let others write it, the kernel lets only root, the agent
//! and members of the group connect (by their real groups, supplementary
//! ones too, which `SO_PEERCRED` does not show): then every peer that
//! connects is allowed.
//! At most `socket.max_connections` are served at once (each costs two
//! tasks and up to `spool.max_event_bytes` of line buffer); one more is
//! answered `busy` and closed by the accepting task itself, without
//! waiting for the peer to read.

use super::Wake;
use crate::config::SocketConfig;
use crate::error::ApiError;
use crate::model::event;
use crate::spool::Spool;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::thread;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::mpsc;

/// Most lines committed with one flush.
const MAX_GROUP: usize = 4096;
/// Batches queued for the committer; a reader waits while it is full, so a
/// fast producer is slowed to the spool's pace instead of filling memory.
const QUEUE: usize = 256;

/// The complete lines one read of a connection gave, and where their
/// answers go (text of whole lines, each ending in a newline). One queue
/// operation and one answer per read rather than per line: what makes a
/// stream of small events cheap.
struct Batch {
    lines: Vec<Vec<u8>>,
    reply: mpsc::UnboundedSender<String>,
    /// An answer to send after the lines' (the connection closes), so it
    /// cannot overtake them.
    last: Option<String>,
}

/// Bytes read from a connection at once.
const READ_BUFFER: usize = 64 * 1024;

/// Binds the socket and starts serving it: the accepting task on the
/// current tokio runtime (or, outside one, on a one-thread runtime of its
/// own), the committer on a thread.
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
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    if let Some(group) = &config.group {
        give_to_group(path, group)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(config.mode))?;
    listener.set_nonblocking(true)?;
    let (tx, rx) = mpsc::channel::<Batch>(QUEUE);
    thread::Builder::new()
        .name("socket-commit".into())
        .spawn(move || committer(&spool, rx, &wake))?;
    let serving = accept(listener, config.clone(), tx, max_bytes);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(serving);
    } else {
        // Called outside a runtime (a library user, a test): serve on a
        // runtime of its own, on one thread.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        thread::Builder::new()
            .name("socket-io".into())
            .spawn(move || runtime.block_on(serving))?;
    }
    Ok(())
}

async fn accept(
    listener: std::os::unix::net::UnixListener,
    allowed: SocketConfig,
    tx: mpsc::Sender<Batch>,
    max_bytes: u64,
) {
    let listener = match tokio::net::UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot serve the socket");
            return;
        }
    };
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait instead of spinning.
                tracing::warn!(error = %e, "socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(reason) = check_peer(&stream, &allowed) {
            tracing::warn!(%reason, "socket connection refused");
            refuse(stream, &ApiError::new("forbidden", None, reason));
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
            refuse(stream, &ApiError::new("busy", None, detail));
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            connection(stream, tx, max_bytes).await;
        });
    }
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
/// it. Non-blocking (one `try_write`), so a peer that does not read cannot
/// stall the accepting task.
fn refuse(stream: UnixStream, e: &ApiError) {
    let line = format!("{}\n", answer_err(e));
    let _ = stream.try_write(line.as_bytes());
    if let Ok(s) = stream.into_std() {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
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

async fn connection(stream: UnixStream, tx: mpsc::Sender<Batch>, max_bytes: u64) {
    let (read_half, write_half) = stream.into_split();
    let (reply_tx, reply_rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(answers(write_half, reply_rx));
    let mut reader = tokio::io::BufReader::with_capacity(READ_BUFFER, read_half);
    let max = usize::try_from(max_bytes).unwrap_or(usize::MAX);
    // The line read so far, not yet ended by a newline.
    let mut partial: Vec<u8> = Vec::new();
    let too_large = || {
        let e = ApiError::new(
            "too_large",
            None,
            format!("line is over spool.max_event_bytes ({max_bytes}); closing"),
        );
        format!("{}\n", answer_err(&e))
    };
    while let Ok(chunk) = reader.fill_buf().await {
        let eof = chunk.is_empty();
        let mut lines = Vec::new();
        let mut over = false;
        let mut rest = chunk;
        while let Some(at) = rest.iter().position(|b| *b == b'\n') {
            partial.extend_from_slice(&rest[..at]);
            rest = &rest[at + 1..];
            let line = std::mem::take(&mut partial);
            if line.len() > max {
                over = true;
                break;
            }
            push_line(&mut lines, line);
        }
        if !over {
            partial.extend_from_slice(rest);
            over = partial.len() > max;
        }
        let read = chunk.len();
        reader.consume(read);
        if eof && !partial.is_empty() {
            // The last line, without its newline.
            push_line(&mut lines, std::mem::take(&mut partial));
        }
        if !lines.is_empty() || over {
            let batch = Batch {
                lines,
                reply: reply_tx.clone(),
                last: over.then(too_large),
            };
            if tx.send(batch).await.is_err() {
                break;
            }
        }
        if over || eof {
            break;
        }
    }
    drop(reply_tx);
    let _ = writer.await;
}

/// Adds a line without its line ending; blank lines get no answer.
fn push_line(lines: &mut Vec<Vec<u8>>, mut line: Vec<u8>) {
    while line.last().is_some_and(|b| *b == b'\r') {
        line.pop();
    }
    if !line.iter().all(u8::is_ascii_whitespace) {
        lines.push(line);
    }
}

/// Writes a connection's answers in order, one flush for all that wait.
async fn answers(write_half: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<String>) {
    let mut w = tokio::io::BufWriter::new(write_half);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(text) = next {
            if w.write_all(text.as_bytes()).await.is_err() {
                return;
            }
            next = rx.try_recv().ok();
        }
        if w.flush().await.is_err() {
            return;
        }
    }
}

fn committer(spool: &Spool, mut rx: mpsc::Receiver<Batch>, wake: &Sender<Wake>) {
    while let Some(first) = rx.blocking_recv() {
        let mut count = first.lines.len();
        let mut group = vec![first];
        while count < MAX_GROUP {
            match rx.try_recv() {
                Ok(b) => {
                    count += b.lines.len();
                    group.push(b);
                }
                Err(_) => break,
            }
        }
        let decoded: Vec<Vec<Result<String, ApiError>>> = group
            .iter()
            .map(|b| {
                b.lines
                    .iter()
                    .map(|l| {
                        std::str::from_utf8(l)
                            .map_err(|e| {
                                ApiError::new("parse_error", None, format!("not valid UTF-8: {e}"))
                            })
                            .and_then(event::decode_event)
                            .map(|e| e.id)
                    })
                    .collect()
            })
            .collect();
        let good: Vec<&[u8]> = group
            .iter()
            .zip(&decoded)
            .flat_map(|(b, d)| b.lines.iter().zip(d))
            .filter(|(_, d)| d.is_ok())
            .map(|(l, _)| l.as_slice())
            .collect();
        let any_good = !good.is_empty();
        let committed = if any_good {
            spool.submit_group(&good)
        } else {
            Ok(String::new())
        };
        if let Err(e) = &committed {
            tracing::error!(error = %e, "failed to write events into the spool");
        }
        for (batch, results) in group.iter().zip(decoded) {
            let mut text = String::new();
            for d in results {
                let answer = match (d, &committed) {
                    (Ok(id), Ok(_)) => serde_json::json!({"ok": true, "id": id}).to_string(),
                    (Ok(_), Err(e)) => answer_err(&ApiError::new(
                        "spool_error",
                        None,
                        format!("the event could not be stored durably: {e}; send it again"),
                    )),
                    (Err(e), _) => answer_err(&e),
                };
                text.push_str(&answer);
                text.push('\n');
            }
            if let Some(last) = &batch.last {
                text.push_str(last);
            }
            let _ = batch.reply.send(text);
        }
        if any_good {
            let _ = wake.send(Wake::Spool);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_answered_in_order_and_an_overlong_line_closes() {
        use std::io::{BufRead, BufReader, Write};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let config = SocketConfig {
            path: Some(path.clone()),
            mode: 0o600,
            allowed_uids: Vec::new(),
            allowed_gids: Vec::new(),
            max_connections: 4,
            group: None,
        };
        let spool = Spool::open(&dir.path().join("spool"), 1 << 20).unwrap();
        let (wake, _woken) = std::sync::mpsc::channel();
        let max = 200;
        start(&config, spool, max, wake).unwrap();
        let event = |id: &str| {
            format!(r#"{{"id":"{id}","type":"record.deleted","zone_uuid":"z","record_uuid":"r"}}"#)
        };
        let stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut w = &stream;
        // CRLF, a blank line (no answer), a line split over two writes,
        // a line that does not decode.
        write!(w, "{}\r\n\n{}", event("a"), &event("b")[..10]).unwrap();
        w.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        write!(w, "{}\nnot json\n", &event("b")[10..]).unwrap();
        // Then one over the limit: answered too_large, and closed.
        writeln!(w, "{}", "x".repeat(usize::try_from(max).unwrap() + 1)).unwrap();
        let mut answers = Vec::new();
        for line in BufReader::new(&stream).lines() {
            answers.push(line.unwrap());
        }
        assert_eq!(answers.len(), 4, "{answers:?}");
        assert_eq!(answers[0], r#"{"id":"a","ok":true}"#);
        assert_eq!(answers[1], r#"{"id":"b","ok":true}"#);
        assert!(answers[2].contains("parse_error"), "{answers:?}");
        assert!(answers[3].contains("too_large"), "{answers:?}");
    }

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
