//! The control-channel client (`zoneagent::bind::control`) against a real
//! `named` (tests/support/named.rs): `status`, `reconfig`, `reload ZONE`,
//! `addzone`/`delzone`, several commands on one kept connection, a new
//! connection after `named` restarts, a wrong key refused; and against a
//! tiny fake server whose answer carries a broken HMAC, refused.

use crate::support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use support::named::PrivateNamed;
use zoneagent::bind::control::{self, Client, ControlError, Endpoint, Key, Table, Timeouts, Value};

const WAIT: Duration = Duration::from_secs(10);

fn write_zone(path: &Path, zone: &str, serial: u32) {
    fs::write(
        path,
        format!(
            "$ORIGIN {zone}.\n$TTL 300\n@ IN SOA ns1.{zone}. hostmaster.{zone}. {serial} 3600 600 604800 300\n\
             @ IN NS ns1\nns1 IN A 192.0.2.1\n"
        ),
    )
    .expect("write zone");
}

fn endpoint(named: &PrivateNamed) -> Endpoint {
    control::endpoint_from_rndc_argv(&named.rndc_argv()).expect("endpoint from rndc argv")
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        io: Duration::from_secs(10),
    }
}

#[test]
fn commands_on_one_kept_connection_against_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let include = tmp.path().join("zones.conf");
    let mut named = PrivateNamed::start(&tmp.path().join("named"), &include);
    let mut client = Client::new(endpoint(&named), timeouts());

    let status = client.command("status").expect("status");
    assert!(
        status.text.contains("server is up and running"),
        "{status:?}"
    );

    // A zone through the include and `reconfig`, then `reload ZONE`.
    let file = tmp.path().join("a.test.zone");
    write_zone(&file, "a.test", 1);
    fs::write(
        &include,
        format!(
            "zone \"a.test\" {{ type primary; file \"{}\"; }};\n",
            file.display()
        ),
    )
    .expect("include");
    client.command("reconfig").expect("reconfig");
    assert!(
        named.wait_serial("a.test", 1, WAIT),
        "{}",
        named.log_tail(20)
    );
    write_zone(&file, "a.test", 2);
    // named reloads only a file newer than its last load (BIND-NOTES).
    let later = std::time::SystemTime::now() + Duration::from_secs(2);
    fs::File::options()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_modified(later))
        .expect("mtime");
    client.command("reload a.test").expect("reload a.test");
    assert!(
        named.wait_serial("a.test", 2, WAIT),
        "{}",
        named.log_tail(20)
    );

    // addzone serves at once; delzone removes; a second addzone of the same
    // zone says so.
    let b = tmp.path().join("b.test.zone");
    write_zone(&b, "b.test", 7);
    let add = format!(
        "addzone b.test {{ type primary; file \"{}\"; }};",
        b.display()
    );
    client.command(&add).expect("addzone");
    assert_eq!(named.soa_serial("b.test"), Some(7));
    let again = client.command(&add).expect_err("a second addzone");
    assert!(again.already_exists(), "{again}");
    client.command("delzone b.test").expect("delzone");
    assert_eq!(named.query_status("b.test", "SOA"), "REFUSED");
    let gone = client
        .command("delzone b.test")
        .expect_err("delzone of no zone");
    assert!(gone.not_found(), "{gone}");
    assert!(matches!(gone, ControlError::Refused { .. }), "{gone:?}");

    // Everything so far went over one connection.
    assert_eq!(client.connections(), 1);

    // named restarts: the kept connection is dead, the next command
    // connects again by itself.
    named.restart();
    client.command("status").expect("status after a restart");
    assert_eq!(client.connections(), 2);
}

#[test]
fn a_wrong_key_is_refused_by_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let named = PrivateNamed::start(&tmp.path().join("named"), &tmp.path().join("zones.conf"));
    let mut e = endpoint(&named);
    e.key.secret[0] ^= 0xff;
    let mut client = Client::new(e, timeouts());
    let err = client
        .command("status")
        .expect_err("named refuses a wrong key");
    assert!(
        matches!(err, ControlError::Closed | ControlError::Io { .. }),
        "{err:?}"
    );
    // And the right key still works, so it was the key.
    Client::new(endpoint(&named), timeouts())
        .command("status")
        .expect("status with the right key");
}

/// A one-connection fake `named`: answers the handshake (signed with
/// `reply_key`), then hands the command's answer to `answer`.
fn fake_server(reply_key: Key, answer: fn(Vec<u8>) -> Vec<u8>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        for round in 0..2 {
            let mut len = [0u8; 4];
            if s.read_exact(&mut len).is_err() {
                return;
            }
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            if s.read_exact(&mut body).is_err() {
                return;
            }
            // The request verifies with the shared key: take its `_ser`.
            let request = control::decode(&reply_key, &body).expect("client signs");
            let mut ctrl = Table::default();
            ctrl.0.push((
                "_ser".into(),
                Value::Binary(request.ctrl.string("_ser").unwrap_or_default().into()),
            ));
            ctrl.0
                .push(("_nonce".into(), Value::Binary(b"12345".to_vec())));
            let mut data = Table::default();
            data.0.push(("result".into(), Value::Binary(b"0".to_vec())));
            let bytes = control::encode(&reply_key, &ctrl, &data);
            let bytes = if round == 1 { answer(bytes) } else { bytes };
            if s.write_all(&bytes).is_err() {
                return;
            }
        }
    });
    addr
}

fn test_key() -> Key {
    Key {
        name: "k".into(),
        algorithm: control::Algorithm::Sha256,
        secret: b"a test secret of thirty-two byte".to_vec(),
    }
}

#[test]
fn an_answer_with_a_broken_hmac_is_refused() {
    // The fake flips one byte of the signed part of its answer.
    let addr = fake_server(test_key(), |mut bytes| {
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        bytes
    });
    let mut client = Client::new(
        Endpoint {
            addr,
            key: test_key(),
        },
        timeouts(),
    );
    let err = client.command("reload a.test").expect_err("broken HMAC");
    assert!(matches!(err, ControlError::BadAuth), "{err:?}");

    // An untouched answer from the same fake is taken: the refusal above
    // was the HMAC's.
    let addr = fake_server(test_key(), |bytes| bytes);
    let mut client = Client::new(
        Endpoint {
            addr,
            key: test_key(),
        },
        timeouts(),
    );
    client
        .command("reload a.test")
        .expect("a well-signed answer");
}

#[test]
fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hold = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
    let mut client = Client::new(
        Endpoint {
            addr,
            key: test_key(),
        },
        Timeouts {
            connect: Duration::from_secs(1),
            io: Duration::from_millis(200),
        },
    );
    let started = std::time::Instant::now();
    let err = client.command("status").expect_err("no answer");
    assert!(matches!(err, ControlError::Io { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(hold.join());
}
