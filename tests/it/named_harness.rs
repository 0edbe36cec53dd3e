//! Tests of the private-`named` harness itself (tests/it/support/named.rs):
//! load a zone through the include file, reload it after a change, stop,
//! restart, clean up. They need BIND installed and fail, not skip, without it.

use crate::support;

use std::fs::{self, File};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use support::named::PrivateNamed;

const ZONE: &str = "example.test";
const WAIT: Duration = Duration::from_secs(5);

#[test]
fn serves_reloads_stops_and_restarts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let include = tmp.path().join("zones.conf");
    let zone_file = tmp.path().join("example.test.zone");
    write_zone(&zone_file, 2_024_010_101, "192.0.2.10");

    let t = Instant::now();
    let mut named = PrivateNamed::start(&tmp.path().join("named"), &include);
    eprintln!("start until rndc status answers: {:?}", t.elapsed());
    assert_ne!(named.port(), named.control_port());

    fs::write(
        &include,
        format!(
            "zone \"{ZONE}\" {{ type primary; file \"{}\"; }};\n",
            zone_file.display()
        ),
    )
    .expect("write include");
    let t = Instant::now();
    assert_rndc_ok(&named, &["reconfig"]);
    assert!(
        named.wait_serial(ZONE, 2_024_010_101, WAIT),
        "zone not served after reconfig\n{}",
        named.log_tail(30)
    );
    eprintln!("reconfig until serial served: {:?}", t.elapsed());
    assert_eq!(named.query("www.example.test", "A"), ["192.0.2.10"]);
    assert_eq!(named.query_status("www.example.test", "A"), "NOERROR");
    assert_eq!(named.query_status("nope.example.test", "A"), "NXDOMAIN");
    assert_eq!(named.query_status("example.org", "SOA"), "REFUSED");
    assert_eq!(named.soa_serial("example.org"), None);

    // named reloads a zone only if its file's mtime is later than the last
    // load; a rename keeps the temp file's mtime, so set it afterwards.
    write_zone(&zone_file, 2_024_010_102, "192.0.2.11");
    let t = Instant::now();
    assert_rndc_ok(&named, &["reload", ZONE]);
    assert!(
        named.wait_serial(ZONE, 2_024_010_102, WAIT),
        "new serial not served after reload\n{}",
        named.log_tail(30)
    );
    eprintln!("rndc reload until new serial served: {:?}", t.elapsed());
    assert_eq!(named.query("www.example.test", "A"), ["192.0.2.11"]);

    let pid = named.pid().expect("named running");
    let t = Instant::now();
    named.stop();
    eprintln!("stop: {:?}", t.elapsed());
    assert_eq!(named.pid(), None);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "named {pid} still there"
    );
    assert_eq!(named.soa_serial(ZONE), None);
    assert_eq!(named.query_status(ZONE, "SOA"), "NO_RESPONSE");
    assert!(!named.rndc(&["status"]).status.success());
    named.stop(); // idempotent

    let t = Instant::now();
    named.restart();
    assert!(
        named.wait_serial(ZONE, 2_024_010_102, WAIT),
        "zone not served after restart\n{}",
        named.log_tail(30)
    );
    eprintln!("restart until serial served: {:?}", t.elapsed());
    assert_eq!(named.query("www.example.test", "A"), ["192.0.2.11"]);
}

#[test]
fn two_instances_get_distinct_ports_and_drop_stops_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let include = tmp.path().join("zones.conf");
    let pids = {
        let a = PrivateNamed::start(&tmp.path().join("a"), &include);
        let b = PrivateNamed::start(&tmp.path().join("b"), &include);
        let ports = [a.port(), a.control_port(), b.port(), b.control_port()];
        for (i, p) in ports.iter().enumerate() {
            assert!(
                !ports[i + 1..].contains(p),
                "port {p} handed out twice: {ports:?}"
            );
        }
        // Each answers with its own key on its own control port.
        assert!(a.rndc(&["status"]).status.success());
        assert!(b.rndc(&["status"]).status.success());
        [a.pid().expect("a running"), b.pid().expect("b running")]
    };
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "named {pid} survived drop"
        );
    }
}

#[test]
fn panic_in_a_test_stops_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let include = tmp.path().join("zones.conf");
    let pid = Mutex::new(None);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let named = PrivateNamed::start(&tmp.path().join("named"), &include);
        *pid.lock().expect("lock") = named.pid();
        panic!("test body fails while named runs");
    }));
    assert!(result.is_err());
    let pid = pid.into_inner().expect("lock").expect("named had started");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "named {pid} survived the panic"
    );
}

#[test]
fn start_failure_panics_with_log_tail_and_leaves_nothing_running() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let include = tmp.path().join("zones.conf");
    fs::write(&include, "zone \"broken.test\" { type primary; file; };\n").expect("write");
    let dir = tmp.path().join("named");
    let err = panic::catch_unwind(AssertUnwindSafe(|| PrivateNamed::start(&dir, &include)))
        .err()
        .expect("start must fail on a broken include");
    let msg = err
        .downcast_ref::<String>()
        .map_or("<non-string panic>", String::as_str);
    assert!(msg.contains("named exited during start-up"), "{msg}");
    assert!(
        msg.contains("zones.conf"),
        "log tail should name the bad file: {msg}"
    );
}

fn assert_rndc_ok(named: &PrivateNamed, args: &[&str]) {
    let out = named.rndc(args);
    assert!(
        out.status.success(),
        "rndc {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes the zone through a temp file and a rename, then sets mtime to now.
fn write_zone(path: &Path, serial: u32, www: &str) {
    let tmp = path.with_extension("tmp");
    fs::write(
        &tmp,
        format!(
            "$TTL 300\n\
             @ IN SOA ns.{ZONE}. hostmaster.{ZONE}. {serial} 3600 600 86400 300\n\
             @ IN NS ns\n\
             ns IN A 192.0.2.1\n\
             www IN A {www}\n"
        ),
    )
    .expect("write zone");
    fs::rename(&tmp, path).expect("rename zone");
    File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .expect("set mtime");
}
