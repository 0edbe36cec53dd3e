//! What someone who can write the spool or reach the socket can do, with
//! no BIND: links, names, log text, junk and floods.
//!
//! - Links planted at the names the code used to make up
//!   (`.<name>.<pid>.tmp` beside a file, `<name>.error.json` in
//!   `spool/failed/`) change nothing outside the spool, while the write
//!   itself still succeeds or fails cleanly.
//! - Line breaks, CR and terminal escapes in a spool file's name or an
//!   event's fields cannot forge a log line (the real binary, `run --once`).
//! - Junk named to sort first does not starve real events; `failed/` is
//!   pruned by count and by age; the socket serves at most
//!   `socket.max_connections` at once.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use zoneagent::error::ApiError;
use zoneagent::fsutil;
use zoneagent::spool::Spool;

/// A file outside the spool that a link points at, with what it held.
struct Victim {
    path: PathBuf,
}

const ORIGINAL: &str = "include \"/etc/bind/named.conf.options\";\n";

impl Victim {
    fn new(dir: &Path) -> Victim {
        let outside = dir.join("outside");
        fs::create_dir_all(&outside).unwrap();
        let path = outside.join("named.conf.zoneagent");
        fs::write(&path, ORIGINAL).unwrap();
        Victim { path }
    }

    fn assert_untouched(&self) {
        assert_eq!(
            fs::read_to_string(&self.path).unwrap(),
            ORIGINAL,
            "{} was written through a link",
            self.path.display()
        );
        let others: Vec<_> = fs::read_dir(self.path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(others.len(), 1, "files appeared outside: {others:?}");
    }
}

/// The temporary name `write_atomic` used before: predictable from the pid.
fn old_temp_name(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap().to_string_lossy();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

fn error() -> Vec<ApiError> {
    vec![ApiError::new("parse_error", None, "not JSON")]
}

#[test]
fn failure_report_never_follows_a_planted_temp_link() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::new(dir.path());
    let spool = Spool::open(&dir.path().join("spool"), 1 << 20).unwrap();
    let name = spool.submit(b"not json").unwrap();
    let report = spool.failed_dir().join(format!("{name}.error.json"));
    symlink(&victim.path, old_temp_name(&report)).unwrap();

    spool.fail(&name, None, &error()).unwrap();

    victim.assert_untouched();
    let meta = fs::symlink_metadata(&report).unwrap();
    assert!(meta.is_file(), "the report is a regular file");
    assert!(fs::read_to_string(&report).unwrap().contains("parse_error"));
    assert!(spool.failed_dir().join(&name).is_file());
}

#[test]
fn failure_report_replaces_a_link_at_its_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::new(dir.path());
    let spool = Spool::open(&dir.path().join("spool"), 1 << 20).unwrap();
    let name = spool.submit(b"not json").unwrap();
    let report = spool.failed_dir().join(format!("{name}.error.json"));
    symlink(&victim.path, &report).unwrap();

    spool.fail(&name, None, &error()).unwrap();

    victim.assert_untouched();
    assert!(fs::symlink_metadata(&report).unwrap().is_file());
}

#[test]
fn failed_group_line_never_follows_planted_links() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::new(dir.path());
    let spool = Spool::open(&dir.path().join("spool"), 1 << 20).unwrap();
    let group = spool.submit_group(&[b"{}", b"bad"]).unwrap();
    let line_name = format!("{}.1.json", group.trim_end_matches(".ndjson"));
    let line_file = spool.failed_dir().join(&line_name);
    let report = spool.failed_dir().join(format!("{line_name}.error.json"));
    symlink(&victim.path, old_temp_name(&line_file)).unwrap();
    symlink(&victim.path, old_temp_name(&report)).unwrap();

    spool
        .fail_line(&group, 1, b"bad", Some("evt-1"), &error())
        .unwrap();

    victim.assert_untouched();
    assert_eq!(fs::read(&line_file).unwrap(), b"bad");
    assert!(fs::symlink_metadata(&report).unwrap().is_file());
}

#[test]
fn atomic_writes_never_follow_a_planted_temp_link() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::new(dir.path());
    let state = dir.path().join("state");
    fs::create_dir_all(&state).unwrap();

    let one = state.join("zone-a.json");
    symlink(&victim.path, old_temp_name(&one)).unwrap();
    fsutil::write_atomic(&one, b"{\"a\":1}").unwrap();
    assert_eq!(fs::read(&one).unwrap(), b"{\"a\":1}");

    let batch: Vec<(PathBuf, Vec<u8>)> = (0..4)
        .map(|i| (state.join(format!("zone-{i}.json")), vec![b'0' + i]))
        .collect();
    for (path, _) in &batch {
        symlink(&victim.path, old_temp_name(path)).unwrap();
    }
    fsutil::write_atomic_batch(&batch).unwrap();
    for (path, bytes) in &batch {
        assert_eq!(&fs::read(path).unwrap(), bytes);
    }
    victim.assert_untouched();
}

/// Files written under a name the caller chose (the deployer's
/// `.<domain>.zone.new`, the spool's `tmp/` names) replace a link planted
/// there instead of writing through it.
#[test]
fn unrenamed_writes_never_follow_a_link_at_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::new(dir.path());
    let zones = dir.path().join("zones");
    fs::create_dir_all(&zones).unwrap();
    for count in [1u8, 2, 5] {
        let files: Vec<(PathBuf, Vec<u8>)> = (0..count)
            .map(|i| {
                (
                    zones.join(format!(".z{count}-{i}.zone.new")),
                    vec![b'a' + i],
                )
            })
            .collect();
        for (path, _) in &files {
            symlink(&victim.path, path).unwrap();
        }
        let refs: Vec<(PathBuf, &[u8])> = files
            .iter()
            .map(|(p, b)| (p.clone(), b.as_slice()))
            .collect();
        fsutil::write_batch_unrenamed(&refs).unwrap();
        for (path, bytes) in &files {
            assert!(fs::symlink_metadata(path).unwrap().is_file());
            assert_eq!(&fs::read(path).unwrap(), bytes);
        }
    }
    let single = zones.join(".single.zone.new");
    symlink(&victim.path, &single).unwrap();
    fsutil::write_synced(&single, b"x").unwrap();
    assert_eq!(fs::read(&single).unwrap(), b"x");
    victim.assert_untouched();
}

/// Temporary names are not predictable: two writes of the same file never
/// use the same one, and none is left behind.
#[test]
fn temp_names_are_random_and_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.json");
    // Every name a pid-based scheme could pick for this process is taken.
    fs::write(old_temp_name(&path), b"squatter").unwrap();
    fsutil::write_atomic(&path, b"1").unwrap();
    fsutil::write_atomic(&path, b"2").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"2");
    assert_eq!(fs::read(old_temp_name(&path)).unwrap(), b"squatter");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
}

/// A config for the real binary with every path inside `root`; nothing in
/// these tests reaches `named`.
fn write_config(root: &Path, extra: &str) -> PathBuf {
    let q = |p: PathBuf| serde_json::to_string(&p.to_string_lossy()).unwrap();
    let config = root.join("zoneagent.toml");
    let text = format!(
        "[paths]\nspool = {}\nstate = {}\nzones = {}\ninclude = {}\n{extra}",
        q(root.join("spool")),
        q(root.join("state")),
        q(root.join("zones")),
        q(root.join("zones/named.conf.zoneagent")),
    );
    fs::write(&config, text).unwrap();
    config
}

/// `zoneagent run --once`; returns its stderr (the log).
fn run_once(config: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zoneagent"))
        .arg("--config")
        .arg(config)
        .args(["run", "--once"])
        .env("ZONEAGENT_LOG", "debug")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Text a producer controls (a spool file's name, an event id, a record
/// type, a CAA tag) carries line breaks, CR and terminal escapes: the log
/// still has one line per event, and no line the agent did not write.
#[test]
fn user_text_cannot_forge_a_log_line() {
    const FORGED: &str = " INFO zoneagent: deployed zone=bank.example serial=1";
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let spool = Spool::open(&dir.path().join("spool"), 1 << 20).unwrap();
    let new = spool.new_dir();
    fs::write(
        new.join(format!("0-evil\n{FORGED}\r\u{1b}[2K.json")),
        b"not json",
    )
    .unwrap();
    let event = |id: &str, rtype: &str, value: &str| {
        serde_json::json!({
            "id": id, "type": "record.created", "zone_uuid": "z-1",
            "record": {"uuid": "r-1", "record_type": rtype, "name": "www",
                       "value": value, "ttl": 300, "priority": null}
        })
        .to_string()
    };
    let zone = serde_json::json!({
        "id": "evt-0", "type": "zone.created",
        "zone": {"uuid": "z-1", "domain": "tenant.example", "created_at": "2026-01-01T00:00:00Z"}
    });
    spool.submit(zone.to_string().as_bytes()).unwrap();
    spool
        .submit(event(&format!("evt\n{FORGED}"), "A", "192.0.2.1").as_bytes())
        .unwrap();
    spool
        .submit(event("evt-2", &format!("A\n{FORGED}\u{7}"), "192.0.2.1").as_bytes())
        .unwrap();
    spool
        .submit(
            event(
                "evt-3",
                "CAA",
                &format!("0 iss\n{FORGED}\r ue \"ca.example\""),
            )
            .as_bytes(),
        )
        .unwrap();

    let log = run_once(&config);

    assert!(
        log.contains("bank.example"),
        "the test text reached the log:\n{log}"
    );
    for line in log.lines() {
        assert!(
            !line.starts_with(FORGED.trim_start()) && !line.starts_with(FORGED),
            "forged line in the log:\n{log}"
        );
    }
    for c in ['\r', '\u{1b}', '\u{7}'] {
        assert!(!log.contains(c), "{c:?} reached the log as it is:\n{log:?}");
    }
}

/// Junk named to sort before everything (and with its mtime set back to
/// 1970) arrives after a real event: the real event is still taken first.
#[test]
fn junk_named_to_sort_first_does_not_starve_real_events() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("spool"), 1 << 20).unwrap();
    let real = spool.submit(b"{\"real\":1}").unwrap();
    // Past the file system's timestamp granularity.
    std::thread::sleep(std::time::Duration::from_millis(30));
    for i in 0..50 {
        let junk = spool.new_dir().join(format!("0000-junk-{i:03}.json"));
        fs::write(&junk, b"junk").unwrap();
        fs::File::options()
            .write(true)
            .open(&junk)
            .unwrap()
            .set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
    }
    assert_eq!(spool.names(1).unwrap(), std::slice::from_ref(&real));
    let all = spool.names(usize::MAX).unwrap();
    assert_eq!(all.len(), 51);
    assert_eq!(all[0], real);
    // The junk keeps its own order of arrival behind it.
    assert!(all[1..].windows(2).all(|w| w[0] < w[1]), "{all:?}");
}

fn fail_one(spool: &Spool, body: &[u8]) -> String {
    let name = spool.submit(body).unwrap();
    spool.fail(&name, None, &error()).unwrap();
    name
}

/// `failed/` keeps the newest `keep` events and none older than the age
/// limit; an event and its report go together.
#[test]
fn failed_is_pruned_by_count_and_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("spool"), 1 << 20).unwrap();
    let names: Vec<String> = (0..6)
        .map(|i| {
            std::thread::sleep(std::time::Duration::from_millis(15));
            fail_one(&spool, format!("bad {i}").as_bytes())
        })
        .collect();
    let day = std::time::Duration::from_hours(24);
    let now = std::time::SystemTime::now();
    assert_eq!(spool.prune_failed(now, 100, day).unwrap(), 0);
    assert_eq!(spool.prune_failed(now, 2, day).unwrap(), 4);
    let mut left: Vec<String> = fs::read_dir(spool.failed_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut want = vec![
        names[4].clone(),
        format!("{}.error.json", names[4]),
        names[5].clone(),
        format!("{}.error.json", names[5]),
    ];
    want.sort();
    assert_eq!(left, want);
    // Two days on, both are past a one-day limit.
    assert_eq!(spool.prune_failed(now + 2 * day, 100, day).unwrap(), 2);
    assert_eq!(fs::read_dir(spool.failed_dir()).unwrap().count(), 0);
}

/// The daemon's spool takes its bounds from `[spool]`; a spool opened
/// without them (`zoneagent submit`) never prunes `failed/` as it lists.
#[test]
fn spool_limits_come_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("spool");
    let plain = Spool::open(&root, 1 << 20).unwrap();
    for i in 0..5 {
        fail_one(&plain, format!("bad {i}").as_bytes());
    }
    plain.names(10).unwrap();
    assert_eq!(fs::read_dir(plain.failed_dir()).unwrap().count(), 10);
    let limits = zoneagent::config::parse("[spool]\nfailed_keep = 1\nmax_pass_bytes = 4096")
        .unwrap()
        .spool_limits;
    let daemon = Spool::open(&root, 1 << 20).unwrap().with_limits(limits);
    assert_eq!(daemon.max_pass_bytes(), 4096);
    let now = std::time::SystemTime::now();
    assert_eq!(
        daemon
            .prune_failed(now, limits.failed_keep, limits.failed_max_age)
            .unwrap(),
        4
    );
    assert_eq!(fs::read_dir(daemon.failed_dir()).unwrap().count(), 2);
}

/// The socket serves `socket.max_connections` at once; one more gets a
/// `busy` line and is closed at once, and a freed slot is served again.
#[test]
fn socket_refuses_connections_over_the_limit() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let config = zoneagent::config::parse(&format!(
        "[socket]\npath = {}\nmax_connections = 2\n",
        serde_json::to_string(&sock.to_string_lossy()).unwrap()
    ))
    .unwrap();
    let spool = Spool::open(&dir.path().join("spool"), 1 << 20).unwrap();
    let (wake, _woken) = std::sync::mpsc::channel();
    zoneagent::daemon::socket::start(&config.socket, spool, 1 << 20, wake).unwrap();

    let event = |id: &str| {
        format!(
            "{{\"id\":\"{id}\",\"type\":\"record.deleted\",\"zone_uuid\":\"z\",\"record_uuid\":\"r\"}}\n"
        )
    };
    let ask = |stream: &UnixStream, line: &str| -> String {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (&*stream).write_all(line.as_bytes()).unwrap();
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer).unwrap();
        answer
    };
    let a = UnixStream::connect(&sock).unwrap();
    let b = UnixStream::connect(&sock).unwrap();
    assert!(ask(&a, &event("e-a")).contains("\"ok\":true"));
    assert!(ask(&b, &event("e-b")).contains("\"ok\":true"));

    let c = UnixStream::connect(&sock).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = String::new();
    let mut reader = BufReader::new(&c);
    reader.read_line(&mut answer).unwrap();
    assert!(answer.contains("\"error_code\":\"busy\""), "{answer:?}");
    assert!(answer.contains("socket.max_connections"), "{answer:?}");
    answer.clear();
    assert_eq!(
        reader.read_line(&mut answer).unwrap(),
        0,
        "closed after the answer"
    );

    drop(a);
    let served = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        let d = UnixStream::connect(&sock).unwrap();
        ask(&d, &event("e-d")).contains("\"ok\":true")
    });
    assert!(served, "a freed slot is served again");
    drop(b);
}
