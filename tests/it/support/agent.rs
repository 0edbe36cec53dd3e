//! A test environment for the agent: a temp directory with a private
//! `named`, a config pointing every path inside it, and helpers to run the
//! real `zoneagent` binary against them (just's `tests/it/test.rs` is the
//! model).

use super::named::PrivateNamed;
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A temp dir, a private `named` and a config for the agent.
pub struct Env {
    pub named: PrivateNamed,
    pub root: PathBuf,
    pub config: PathBuf,
    // Dropped last, after `named` is stopped.
    _dir: tempfile::TempDir,
}

impl Env {
    /// Starts `named` and writes a config; `extra` is appended to it.
    pub fn new(extra: &str) -> Env {
        Env::with_named(extra, "")
    }

    /// Like [`Env::new`], with `named_extra` added to `named.conf`.
    pub fn with_named(extra: &str, named_extra: &str) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_owned();
        let include = root.join("named.conf.zoneagent");
        let named = PrivateNamed::start_with(
            &root.join("named"),
            &include,
            &super::named::Extra {
                top: named_extra.to_owned(),
                ..super::named::Extra::default()
            },
        );
        let rndc: Vec<String> = named.rndc_argv();
        let config = root.join("zoneagent.toml");
        // A JSON string is a valid TOML basic string.
        let q = |p: &Path| serde_json::to_string(&p.to_string_lossy()).expect("json");
        let text = format!(
            "[paths]\nspool = {spool}\nstate = {state}\nzones = {zones}\ninclude = {include}\n\
             [bind]\nrndc = {rndc}\nserver = \"127.0.0.1:{port}\"\nconfirm_timeout = 10\n\
             named_conf = {named_conf}\n{extra}",
            spool = q(&root.join("spool")),
            state = q(&root.join("state")),
            zones = q(&root.join("zones")),
            include = q(&include),
            rndc = serde_json::to_string(&rndc).expect("json"),
            port = named.port(),
            named_conf = q(&named.dir().join("named.conf")),
        );
        fs::write(&config, text).expect("write config");
        Env {
            named,
            root,
            config,
            _dir: dir,
        }
    }

    /// A command for the real binary with `--config`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_zoneagent"));
        c.arg("--config").arg(&self.config).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs the binary to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run zoneagent")
    }

    /// `zoneagent import` of these zones; returns the output.
    pub fn import(&self, zones: &Value) -> Output {
        let path = self.root.join("dump.json");
        fs::write(&path, serde_json::to_vec(zones).expect("json")).expect("write dump");
        self.run(&["import", path.to_str().expect("utf-8 path")])
    }

    /// Path of a zone file.
    pub fn zone_file(&self, domain: &str) -> PathBuf {
        self.root.join("zones").join(format!("{domain}.zone"))
    }

    /// Waits for `named` to serve `serial` (or later) for `zone`.
    pub fn served(&self, zone: &str, serial: u32) -> bool {
        self.named
            .wait_serial(zone, serial, Duration::from_secs(10))
    }

    /// The serial the state records for a domain.
    pub fn state_serial(&self, domain: &str) -> Option<u32> {
        let out = self.run(&["status", "--json"]);
        let doc: Value = serde_json::from_slice(&out.stdout).ok()?;
        doc["zones"]
            .as_array()?
            .iter()
            .find(|z| z["domain"] == domain)?["serial"]
            .as_u64()
            .and_then(|s| u32::try_from(s).ok())
    }

    pub fn spool(&self) -> PathBuf {
        self.root.join("spool")
    }
}

/// Shows a command's output when an assertion about it fails.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An API zone with A records `name -> address`.
pub fn zone(uuid: &str, domain: &str, records: &[(&str, &str, &str)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, (rtype, name, value))| {
            let priority = if *rtype == "MX" || *rtype == "SRV" {
                json!(10)
            } else {
                Value::Null
            };
            json!({"uuid": format!("{uuid}-r{i}"), "record_type": rtype, "name": name,
                   "value": value, "ttl": 300, "priority": priority})
        })
        .collect();
    json!({"uuid": uuid, "domain": domain, "created_at": "2026-01-01T00:00:00Z", "records": records})
}

/// Lists a directory's file names (empty if it does not exist).
pub fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A running `zoneagent run`, with the test's own `NOTIFY_SOCKET`, killed
/// by pid when dropped.
pub struct Daemon {
    pub child: std::process::Child,
    notify: std::os::unix::net::UnixDatagram,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts the daemon and waits (bounded) for its `READY=1`.
    pub fn start(env: &Env) -> Daemon {
        Daemon::start_with(env, &[])
    }

    /// Like [`Daemon::start`], with extra environment variables.
    pub fn start_with(env: &Env, vars: &[(&str, &str)]) -> Daemon {
        let sock_path = env.root.join(format!("notify-{}.sock", std::process::id()));
        let _ = fs::remove_file(&sock_path);
        let notify =
            std::os::unix::net::UnixDatagram::bind(&sock_path).expect("bind notify socket");
        notify
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let log = env.root.join("daemon.log");
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log");
        let child = env
            .command(&["run"])
            .env("NOTIFY_SOCKET", &sock_path)
            .env("ZONEAGENT_LOG", "info")
            .envs(vars.iter().copied())
            .stderr(log_file)
            .spawn()
            .expect("spawn daemon");
        let mut d = Daemon { child, notify, log };
        d.wait_for("READY=1");
        d
    }

    /// Waits for a notification starting with `prefix`; returns it.
    pub fn wait_for(&mut self, prefix: &str) -> String {
        let mut buf = [0u8; 4096];
        loop {
            match self.notify.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if msg.lines().any(|l| l.starts_with(prefix)) {
                        return msg;
                    }
                }
                Err(e) => panic!(
                    "no {prefix} from the daemon: {e}\n{}",
                    fs::read_to_string(&self.log).unwrap_or_default()
                ),
            }
        }
    }

    /// Sends a signal.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, sig).expect("kill");
    }

    /// Waits (bounded) for the daemon to exit; returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(std::time::Instant::now() < deadline, "daemon did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it is true or `secs` pass.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A `record.created` event for an A record.
pub fn a_event(id: &str, seq: Option<u64>, zone: &str, rec: &str, name: &str, addr: &str) -> Value {
    let mut e = json!({"id": id, "type": "record.created", "zone_uuid": zone,
        "record": {"uuid": rec, "record_type": "A", "name": name, "value": addr, "ttl": 300}});
    if let Some(s) = seq {
        e["seq"] = json!(s);
    }
    e
}
