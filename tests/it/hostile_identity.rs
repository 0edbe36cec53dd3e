//! Who the agent's files belong to, when commands run as root or as the
//! wrong user, and whose temporary files the daemon may remove. These tests
//! need root (to own files as another user and to start the binary as
//! one); run as anyone else they say so and pass without checking.
//! `nobody` (uid 65534) plays the agent's user.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const AGENT: u32 = 65534;

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("skipped: needs root");
        false
    }
}

/// A temp dir any user can enter, with a config whose paths lie inside it
/// and whose `rndc` always succeeds (no `named` is needed); the state,
/// spool and zones directories are owned by `owner`.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new(owner: u32) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["state", "spool", "zones"] {
            let p = dir.path().join(d);
            fs::create_dir(&p).unwrap();
            std::os::unix::fs::chown(&p, Some(owner), Some(owner)).unwrap();
        }
        let q = |p: PathBuf| serde_json::to_string(&p.to_string_lossy()).unwrap();
        let config = dir.path().join("zoneagent.toml");
        fs::write(
            &config,
            format!(
                "[paths]\nspool = {}\nstate = {}\nzones = {}\ninclude = {}\n\
                 [bind]\nrndc = [\"true\"]\nconfirm_timeout = 0.2\nserver = \"127.0.0.1:9\"\n",
                q(dir.path().join("spool")),
                q(dir.path().join("state")),
                q(dir.path().join("zones")),
                q(dir.path().join("zones/named.conf.zoneagent")),
            ),
        )
        .unwrap();
        Setup { dir, config }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The binary with `--config` and `args`, as `uid` (None: as we are).
    fn run(&self, uid: Option<u32>, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_zoneagent"));
        c.arg("--config").arg(&self.config).args(args);
        c.stdin(Stdio::null());
        if let Some(uid) = uid {
            c.uid(uid).gid(uid);
        }
        c.output().unwrap()
    }

    fn dump(&self) -> PathBuf {
        let path = self.path("dump.json");
        fs::write(
            &path,
            r#"[{"uuid": "zone-1", "domain": "owned.example", "created_at": "2026-01-01T00:00:00Z",
                "records": [{"uuid": "r1", "record_type": "A", "name": "www", "value": "192.0.2.1",
                             "ttl": 300, "priority": null, "created_at": "2026-01-01T00:00:00Z"}]}]"#,
        )
        .unwrap();
        path
    }
}

fn owner(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .uid()
}

/// `import` and `rebuild` run by root on the agent's state become the
/// agent's user: every file they leave is the agent's, not root's.
#[test]
fn root_commands_leave_files_the_agent_owns() {
    if !is_root() {
        return;
    }
    let s = Setup::new(AGENT);
    let dump = s.dump();
    let out = s.run(None, &["import", dump.to_str().unwrap()]);
    let log = String::from_utf8_lossy(&out.stderr);
    let state = s.path("state/zones/zone-1.json");
    assert!(state.exists(), "import wrote no state: {log}");
    let zone = s.path("zones/owned.example.zone");
    for path in [&state, &zone, &s.path("zones/named.conf.zoneagent")] {
        assert_eq!(
            owner(path),
            AGENT,
            "{} is not the agent's: {log}",
            path.display()
        );
    }
    let out = s.run(None, &["rebuild", "--force"]);
    let log = String::from_utf8_lossy(&out.stderr);
    for entry in walk(&s.path("state"))
        .into_iter()
        .chain(walk(&s.path("zones")))
    {
        assert_eq!(
            owner(&entry),
            AGENT,
            "{} after rebuild: {log}",
            entry.display()
        );
    }
}

/// Anyone but root and the owner is refused before anything is written,
/// with a message saying whom to run as.
#[test]
fn commands_of_other_users_are_refused() {
    if !is_root() {
        return;
    }
    let s = Setup::new(0);
    let dump = s.dump();
    fs::set_permissions(&dump, fs::Permissions::from_mode(0o644)).unwrap();
    for args in [vec!["import", dump.to_str().unwrap()], vec!["rebuild"]] {
        let out = s.run(Some(AGENT), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(
            stderr.contains("owned by root") && stderr.contains("sudo -u root"),
            "{args:?}: {stderr}"
        );
    }
    assert!(walk(&s.path("state")).is_empty());
    assert!(walk(&s.path("zones")).is_empty());
}

/// `run` cleans `spool/tmp` of files whose writer died; a producer that
/// lives but is another user (kill(pid, 0) fails with EPERM) keeps its
/// in-flight file.
#[test]
fn clean_tmp_keeps_files_of_live_processes_of_other_users() {
    if !is_root() {
        return;
    }
    let s = Setup::new(AGENT);
    // No named here: an rndc that fails says so, and `run` starts anyway
    // (an rndc that works beside a server that does not answer would be a
    // misconfiguration it refuses to start on).
    let config = fs::read_to_string(&s.config).unwrap();
    fs::write(
        &s.config,
        config.replace("rndc = [\"true\"]", "rndc = [\"false\"]"),
    )
    .unwrap();
    fs::create_dir(s.path("spool/tmp")).unwrap();
    std::os::unix::fs::chown(s.path("spool/tmp"), Some(AGENT), Some(AGENT)).unwrap();
    // pid 1 lives and is root's; a child that has been waited for is gone.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let live_file = s.path("spool/tmp/01796000000000000000.1.000000.json");
    let dead_file = s.path(&format!(
        "spool/tmp/01796000000000000000.{dead}.000000.json"
    ));
    fs::write(&live_file, b"{\"in\":\"flight\"}").unwrap();
    fs::write(&dead_file, b"{\"left\":\"over\"}").unwrap();

    let out = s.run(Some(AGENT), &["run", "--once"]);
    let log = String::from_utf8_lossy(&out.stderr);

    assert!(
        live_file.exists(),
        "the live producer's file was removed: {log}"
    );
    assert!(
        !dead_file.exists(),
        "the dead writer's file was kept: {log}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

/// Connects to `sock` as uid/gid 65534 with `groups` as its supplementary
/// groups (the way systemd's SupplementaryGroups= hands them out, not
/// through /etc/group), sends one line and returns the answer or the
/// connect error.
fn client(sock: &Path, groups: &[u32], line: &str) -> String {
    let script = r#"
import os, socket, sys
os.setgroups([int(g) for g in sys.argv[2].split(",") if g])
os.setgid(65534)
os.setuid(65534)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect:", e.strerror)
    sys.exit(0)
s.sendall(sys.argv[3].encode() + b"\n")
print(s.makefile().readline().strip())
"#;
    let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(sock)
        .arg(groups.join(","))
        .arg(line)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Producers reach the socket through `socket.group`: the socket file is
/// that group's, its members connect (a supplementary group is enough),
/// and others, `bind` among them by default, do not.
#[test]
fn producers_reach_the_socket_through_its_group() {
    if !is_root() {
        return;
    }
    if Command::new("python3").args(["-c", ""]).status().is_err() {
        eprintln!("skipped: needs python3 as the socket client");
        return;
    }
    // `daemon` (gid 1) plays zoneagent-submit: nobody is not a member.
    let submit = nix::unistd::Group::from_name("daemon")
        .unwrap()
        .unwrap()
        .gid;
    let s = Setup::new(0);
    let sock = s.path("agent.sock");
    let config = zoneagent::config::parse(&format!(
        "[socket]\npath = {}\nmode = \"0660\"\ngroup = \"daemon\"\n",
        serde_json::to_string(&sock.to_string_lossy()).unwrap()
    ))
    .unwrap();
    let spool = zoneagent::spool::Spool::open(&s.path("spool"), 1 << 20).unwrap();
    let (wake, _woken) = std::sync::mpsc::channel();
    zoneagent::daemon::socket::start(&config.socket, spool, 1 << 20, wake).unwrap();
    let meta = fs::metadata(&sock).unwrap();
    assert_eq!(meta.gid(), submit.as_raw());
    assert_eq!(meta.mode() & 0o777, 0o660);

    let event = r#"{"id":"e-1","type":"record.deleted","zone_uuid":"z","record_uuid":"r"}"#;
    let member = client(&sock, &[submit.as_raw()], event);
    assert!(member.contains("\"ok\":true"), "{member}");
    let outsider = client(&sock, &[], event);
    assert!(outsider.contains("Permission denied"), "{outsider}");
    if let Ok(Some(bind)) = nix::unistd::Group::from_name("bind") {
        let named = client(&sock, &[bind.gid.as_raw()], event);
        assert!(named.contains("Permission denied"), "{named}");
    }
}
