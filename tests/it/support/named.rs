//! A private `named` for end-to-end tests: its own directory, configuration,
//! rndc key and loopback ports, run as a child process and stopped by pid,
//! also when a test panics (`Drop`).
//!
//! Everything it writes lives in the directory given to [`PrivateNamed::start`].
//! Two `named`s can bind the same port without error (the kernel then splits
//! queries between them), so ports are both checked by binding and reserved
//! across test threads and processes (an abstract Unix socket per port). It must never touch the system `named` (ports 53/953,
//! `/etc/bind`, `/run/named`): every path `named` would default to outside
//! the directory is set explicitly.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::{self, net::UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long `named` may take to answer `rndc status` after being spawned.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `named` may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound for one `rndc`, `dig` or `tsig-keygen` run (a safety net:
/// `dig +time=1 +tries=1` bounds itself).
const TOOL_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports are picked below Linux's ephemeral range (32768–60999), so that no
/// client socket (`dig`, `rndc`, the agent) is handed one of them between the
/// check and `named`'s bind.
const PORT_RANGE: (u16, u16) = (20_000, 32_000);
const KEY_NAME: &str = "zoneagent-test-rndc";
const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

const INSTALL_HINT: &str = "install BIND 9: apt-get install -y bind9 bind9-utils bind9-dnsutils";

/// A `named` serving on `127.0.0.1:port()`, controlled on
/// `127.0.0.1:control_port()`, configured from files in `dir()`.
///
/// Declare it after the `TempDir` holding `dir` so that it is dropped (and
/// `named` stopped) before the directory is removed.
pub struct PrivateNamed {
    dir: PathBuf,
    conf: PathBuf,
    port: u16,
    control_port: u16,
    named_bin: PathBuf,
    rndc_bin: PathBuf,
    dig_bin: PathBuf,
    child: Option<Child>,
    /// Held for our lifetime (also while stopped, so `restart` finds the
    /// ports still ours); released on drop.
    _port_reservations: [UnixListener; 2],
}

impl PrivateNamed {
    /// Writes a configuration into `dir` (created if needed) that includes
    /// `include` (created empty if missing), starts `named` on two free
    /// loopback ports and waits until `rndc status` answers.
    ///
    /// Panics, with `named`'s log tail, if it does not come up within
    /// [`START_TIMEOUT`]; panics with an install hint if BIND is missing.
    pub fn start(dir: &Path, include: &Path) -> PrivateNamed {
        PrivateNamed::start_with(dir, include, &Extra::default())
    }

    /// [`Self::start`] with configuration of the test's own: `extra.options`
    /// goes inside the `options` block, `extra.top` at the top level (e.g.
    /// a secondary's key, `catalog-zones` and catalog zone).
    pub fn start_with(dir: &Path, include: &Path, extra: &Extra) -> PrivateNamed {
        let named_bin = find_tool("named", "bind9");
        let rndc_bin = find_tool("rndc", "bind9-utils");
        let keygen_bin = find_tool("tsig-keygen", "bind9-utils");
        let dig_bin = find_tool("dig", "bind9-dnsutils");

        fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("cannot create named dir {}: {e}", dir.display()));
        let dir = fs::canonicalize(dir)
            .unwrap_or_else(|e| panic!("cannot resolve named dir {}: {e}", dir.display()));
        if !include.exists() {
            File::create(include)
                .unwrap_or_else(|e| panic!("cannot create include {}: {e}", include.display()));
        }
        let include = fs::canonicalize(include)
            .unwrap_or_else(|e| panic!("cannot resolve include {}: {e}", include.display()));

        let (port, port_reservation) = reserve_port(&[]);
        let (control_port, control_reservation) = reserve_port(&[port]);

        let key = run_bounded(Command::new(&keygen_bin).args(["-a", "hmac-sha256", KEY_NAME]))
            .unwrap_or_else(|| panic!("{} timed out", keygen_bin.display()));
        assert!(
            key.status.success(),
            "tsig-keygen failed ({}): {}",
            key.status,
            String::from_utf8_lossy(&key.stderr)
        );
        let key_file = dir.join("rndc.key");
        write_file(&key_file, &String::from_utf8_lossy(&key.stdout));
        write_file(&dir.join("rndc.conf"), &rndc_conf(&key_file, control_port));
        let conf = dir.join("named.conf");
        write_file(
            &conf,
            &named_conf(&dir, &include, port, control_port, extra),
        );

        let mut named = PrivateNamed {
            dir,
            conf,
            port,
            control_port,
            named_bin,
            rndc_bin,
            dig_bin,
            child: None,
            _port_reservations: [port_reservation, control_reservation],
        };
        // From here on a panic drops `named`, which stops the child.
        named.spawn_and_wait();
        named
    }

    /// The DNS port (UDP and TCP) on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The rndc control port on 127.0.0.1.
    pub fn control_port(&self) -> u16 {
        self.control_port
    }

    /// The directory holding `named.conf`, `rndc.conf`, `rndc.key`,
    /// `named.log`, `named.stderr` and `named.pid`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pid of the running `named`, if it is running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// argv prefix for `rndc` against this server, e.g.
    /// `["/usr/sbin/rndc", "-c", "/dir/rndc.conf", "-s", "127.0.0.1", "-p", "20123"]`.
    ///
    /// `-c` rather than `-k`: with `-k` alone, rndc still prefers
    /// `/etc/bind/rndc.conf` when that file exists.
    pub fn rndc_argv(&self) -> Vec<String> {
        vec![
            self.rndc_bin.display().to_string(),
            "-c".to_owned(),
            self.dir.join("rndc.conf").display().to_string(),
            "-s".to_owned(),
            LOOPBACK.to_string(),
            "-p".to_owned(),
            self.control_port.to_string(),
        ]
    }

    /// Runs `rndc ARGS…` against this server and returns its output
    /// (`reload ZONE` is asynchronous: confirm with [`Self::wait_serial`]).
    pub fn rndc(&self, args: &[&str]) -> Output {
        let prefix = self.rndc_argv();
        run_bounded(Command::new(&prefix[0]).args(&prefix[1..]).args(args))
            .unwrap_or_else(|| panic!("rndc {args:?} timed out after {TOOL_TIMEOUT:?}"))
    }

    /// The last `n` lines of `named.log`, followed by `named`'s
    /// stdout/stderr if it wrote anything there.
    pub fn log_tail(&self, n: usize) -> String {
        let mut tail = format!("--- {} (last {n} lines) ---\n", self.log_path().display());
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        for line in &lines[lines.len().saturating_sub(n)..] {
            tail.push_str(line);
            tail.push('\n');
        }
        let stderr = fs::read_to_string(self.dir.join("named.stderr")).unwrap_or_default();
        if !stderr.trim().is_empty() {
            let _ = write!(tail, "--- named stdout/stderr ---\n{stderr}");
        }
        tail
    }

    /// The SOA serial served for `zone`, or `None` if the server gives no
    /// answer (down, REFUSED, SERVFAIL, zone not loaded).
    pub fn soa_serial(&self, zone: &str) -> Option<u32> {
        self.query(zone, "SOA")
            .iter()
            .find_map(|soa| soa.split_whitespace().nth(2)?.parse().ok())
    }

    /// Polls until `zone`'s served SOA serial is `serial`; false on timeout.
    pub fn wait_serial(&self, zone: &str, serial: u32, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.soa_serial(zone) == Some(serial) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// `dig +short` answers for `name`/`rtype`, sorted; empty when there is
    /// no answer or no response.
    pub fn query(&self, name: &str, rtype: &str) -> Vec<String> {
        let out = self.dig(&["+short", name, rtype]);
        let mut answers: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            // dig reports "connection refused", "timed out" etc. as ";;" lines.
            .filter(|l| !l.is_empty() && !l.starts_with(';'))
            .map(str::to_owned)
            .collect();
        answers.sort();
        answers
    }

    /// The response code for `name`/`rtype` as dig prints it (`NOERROR`,
    /// `NXDOMAIN`, `REFUSED`, `SERVFAIL`, …), or `NO_RESPONSE` when the
    /// server does not answer.
    pub fn query_status(&self, name: &str, rtype: &str) -> String {
        let out = self.dig(&["+noall", "+comments", name, rtype]);
        parse_rcode(&String::from_utf8_lossy(&out.stdout))
            .unwrap_or("NO_RESPONSE")
            .to_owned()
    }

    /// `dig` against this server with `args` after the server, port and
    /// `+norec +time=1 +tries=1`; its standard output.
    pub fn dig_text(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.dig(args).stdout).into_owned()
    }

    /// `delv` against this server, validating `name`/`rtype` from the
    /// trust anchors in `anchors` (a `trust-anchors` clause) for the zone
    /// `root`; its standard output and error (`; fully validated` on
    /// success).
    pub fn delv(&self, anchors: &Path, root: &str, name: &str, rtype: &str) -> String {
        let delv = find_tool("delv", "bind9-dnsutils");
        let server = format!("@{LOOPBACK}");
        let port = self.port.to_string();
        let root = format!("+root={root}");
        let anchors = anchors.display().to_string();
        let out = run_bounded(Command::new(&delv).args([
            "-a", &anchors, &root, &server, "-p", &port, "+tcp", name, rtype,
        ]))
        .unwrap_or_else(|| panic!("delv {name} {rtype} timed out"));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Stops `named`: SIGTERM by pid, a bounded wait, SIGKILL if it is still
    /// there, then reaps it. Does nothing if it is not running. Never panics
    /// (it runs from `Drop`, possibly while unwinding).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        // The child is not reaped before `wait` below, so its pid cannot
        // have been reused by another process.
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) | Err(_) => break,
            }
        }
        eprintln!("named (pid {pid}) ignored SIGTERM for {STOP_TIMEOUT:?}; sending SIGKILL");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts `named` again with the same configuration and ports (stopping
    /// it first if it is running) and waits until it answers `rndc status`.
    pub fn restart(&mut self) {
        self.stop();
        for port in [self.port, self.control_port] {
            assert!(
                port_is_free(port),
                "cannot restart named: 127.0.0.1:{port} was taken while it was down"
            );
        }
        self.spawn_and_wait();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("named.log")
    }

    /// Runs `dig @127.0.0.1 -p PORT +norec +time=1 +tries=1 ARGS…`.
    pub fn dig(&self, args: &[&str]) -> Output {
        let server = format!("@{LOOPBACK}");
        let port = self.port.to_string();
        let mut cmd = Command::new(&self.dig_bin);
        cmd.args([&server, "-p", &port, "+norec", "+time=1", "+tries=1"])
            .args(args);
        run_bounded(&mut cmd).unwrap_or_else(|| panic!("dig {args:?} timed out"))
    }

    fn spawn_and_wait(&mut self) {
        let stdio = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("named.stderr"))
            .expect("cannot open named.stderr");
        let stdio2 = stdio.try_clone().expect("cannot dup named.stderr");
        // -f: stay in the foreground (a child we can signal and reap); -L:
        // messages logged before the `logging` statement takes effect (e.g.
        // a config syntax error) go to the same file rather than syslog.
        // No new process group: a Ctrl-C on `cargo test` reaches named too.
        let child = Command::new(&self.named_bin)
            .arg("-4")
            .arg("-f")
            .arg("-L")
            .arg(self.log_path())
            .arg("-c")
            .arg(&self.conf)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(stdio)
            .stderr(stdio2)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.named_bin.display()));
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                panic!(
                    "named exited during start-up ({status})\n{}",
                    self.log_tail(40)
                );
            }
            if self.rndc(&["status"]).status.success() {
                return;
            }
            if Instant::now() >= deadline {
                let tail = self.log_tail(40);
                self.stop();
                panic!("named did not answer `rndc status` within {START_TIMEOUT:?}\n{tail}");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for PrivateNamed {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Configuration a test adds to a private `named`'s own.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// Statements inside `options { … };`.
    pub options: String,
    /// Statements at the top level.
    pub top: String,
}

fn named_conf(dir: &Path, include: &Path, port: u16, control_port: u16, extra: &Extra) -> String {
    let extra_options = &extra.options;
    let extra_top = &extra.top;
    // `rndc addzone`/`delzone` (the agent's `bind.add_zones`); added zones
    // are kept in `_default.nzd` in the directory. Once only: a secondary's
    // own options (catalog zones) may say it too.
    let allow_new_zones = if extra_options.contains("allow-new-zones") {
        ""
    } else {
        "allow-new-zones yes;"
    };
    let d = |name: &str| quote(&dir.join(name));
    let dir_q = quote(dir);
    let include_q = quote(include);
    let key_q = d("rndc.key");
    let pid_q = d("named.pid");
    let lock_q = d("named.lock");
    let session_q = d("session.key");
    let log_q = d("named.log");
    format!(
        r#"// Private named for zoneagent tests (tests/it/support/named.rs).
include {key_q};

options {{
    directory {dir_q};
    managed-keys-directory {dir_q};
    pid-file {pid_q};
    // Defaults under /run/named would be shared with (or denied by) the
    // system named and other private ones.
    lock-file {lock_q};
    session-keyfile {session_q};
    listen-on port {port} {{ {LOOPBACK}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    {allow_new_zones}
    automatic-interface-scan no;
    interface-interval 0;
{extra_options}
}};

{extra_top}

controls {{
    inet {LOOPBACK} port {control_port} allow {{ {LOOPBACK}; }} keys {{ "{KEY_NAME}"; }};
}};

logging {{
    channel private_log {{
        file {log_q};
        severity info;
        print-time yes;
        print-severity yes;
        print-category yes;
    }};
    category default {{ private_log; }};
}};
include {include_q};
"#
    )
}

fn rndc_conf(key_file: &Path, control_port: u16) -> String {
    let key_q = quote(key_file);
    format!(
        r#"include {key_q};
options {{
    default-key "{KEY_NAME}";
    default-server {LOOPBACK};
    default-port {control_port};
}};
"#
    )
}

/// A path as a BIND configuration string.
fn quote(path: &Path) -> String {
    let s = path.display().to_string();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn write_file(path: &Path, contents: &str) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// The `status:` of dig's `->>HEADER<<-` line.
fn parse_rcode(dig_stdout: &str) -> Option<&str> {
    dig_stdout
        .lines()
        .filter(|l| l.contains("->>HEADER<<-"))
        .find_map(|l| l.split("status: ").nth(1)?.split(',').next())
        .map(str::trim)
}

/// `name` from PATH, or from the sbin directories a non-root PATH on Debian
/// lacks (`named`, `rndc` and `tsig-keygen` live in /usr/sbin).
pub fn find_tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` (Debian package {package}) not found in PATH or /usr/sbin; {INSTALL_HINT}"
            )
        })
}

/// Reserves a port that is free for both UDP and TCP on 127.0.0.1. The
/// reservation is a bound abstract Unix socket named after the port: it keeps
/// other test threads and processes (of any user) from picking the port
/// until it is dropped, and the kernel releases it if we die, leaving no file.
fn reserve_port(exclude: &[u16]) -> (u16, UnixListener) {
    let (low, high) = PORT_RANGE;
    let span = u64::from(high - low);
    let seed = RandomState::new().hash_one(std::process::id());
    // 7919 is prime and does not divide the span: every port gets visited.
    for attempt in 0..span {
        let offset = seed.wrapping_add(attempt.wrapping_mul(7919)) % span;
        let port = low + u16::try_from(offset).expect("offset < span");
        if exclude.contains(&port) {
            continue;
        }
        let name = format!("zoneagent-test-named-port-{port}");
        let addr = unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract socket name");
        let Ok(reservation) = UnixListener::bind_addr(&addr) else {
            continue;
        };
        if port_is_free(port) {
            return (port, reservation);
        }
    }
    panic!("no free port in {low}..{high} on 127.0.0.1");
}

/// Both protocols: `named` listens on UDP and TCP, and a port can be taken
/// for one only.
fn port_is_free(port: u16) -> bool {
    let addr = SocketAddrV4::new(LOOPBACK, port);
    UdpSocket::bind(addr).is_ok() && TcpListener::bind(addr).is_ok()
}

/// Runs `cmd` with captured output; `None` (after killing it) if it takes
/// longer than [`TOOL_TIMEOUT`].
fn run_bounded(cmd: &mut Command) -> Option<Output> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
    let (tx, rx) = mpsc::channel();
    // A thread reads both pipes to the end, so a chatty tool cannot block on
    // a full pipe while we wait.
    let waiter = thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let result = if let Ok(output) = rx.recv_timeout(TOOL_TIMEOUT) {
        Some(output.unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}")))
    } else {
        // Not yet reaped by the waiter, so the pid is still this child's.
        let _ = kill(pid, Signal::SIGKILL);
        None
    };
    let _ = waiter.join();
    result
}
