//! Crash and outage tests against the real binary and a private `named`.
//!
//! `sigkill_storm_loses_nothing`: 100 zones and ~3000 record events (with
//! deliberate re-sends) stream into the spool while the daemon is killed
//! with SIGKILL at random moments and restarted, over and over; a monitor
//! watches every zone's served serial, the serials in the state files and
//! in the zone files. At the end every zone must be exactly what the
//! events say (state, zone file, what `named` serves), each event applied
//! once, no serial ever gone backwards, nothing failed, nothing left over.
//!
//! `named_outage_is_retried`: `named` stops for three seconds in the middle
//! of a burst; the daemon keeps running, retries, and ends up serving
//! everything.
//!
//! Both are seeded (`CRASH_SEED`, decimal or 0x-hex, to replay a run) and
//! bounded: they wait with `eventually`, never on a fixed sleep.

// Tests panic on the unexpected; that is their job.
#![allow(clippy::unwrap_used)]

use crate::support;

use nix::sys::signal::Signal;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};
use support::agent::{Daemon, Env, eventually, list};
use support::crash::{
    CONFIG, Model, SerialLog, SoaPoller, Submission, Watched, XorShift, compare_final, leftovers,
    log_summary, read_states, read_zone_serials, seed, settled, state_serial, status, tail,
};
use zoneagent::spool::Spool;

/// The two tests each run a `named`, the agent and its tools; on two cores
/// they are steadier one after the other.
static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Builds the stream: a snapshot per zone, then `events` record events on
/// random zones; about one in 25 is followed by a re-send of an earlier
/// event, and `resends` more re-sends close the stream.
fn stream(model: &mut Model, rng: &mut XorShift, events: usize, resends: usize) -> Vec<Submission> {
    let mut out: Vec<Submission> = Vec::new();
    let first = |e: &Value| Submission {
        bytes: serde_json::to_vec(e).unwrap(),
        duplicate: false,
    };
    for z in 0..model.zones.len() {
        let e = model.snapshot(z, rng);
        out.push(first(&e));
    }
    let resend = |out: &mut Vec<Submission>, rng: &mut XorShift| {
        let originals: Vec<usize> = (0..out.len()).filter(|i| !out[*i].duplicate).collect();
        let pick = originals[rng.index(originals.len())];
        let bytes = out[pick].bytes.clone();
        out.push(Submission {
            bytes,
            duplicate: true,
        });
    };
    for _ in 0..events {
        let z = rng.index(model.zones.len());
        let e = model.record_event(z, rng);
        out.push(first(&e));
        if rng.chance(4) {
            resend(&mut out, rng);
        }
    }
    for _ in 0..resends {
        resend(&mut out, rng);
    }
    out
}

/// Watches served, state and file serials until `stop`; returns the log
/// and how many polling rounds it made.
fn monitor(w: &Watched, stop: &AtomicBool) -> (SerialLog, u64) {
    let mut poller = SoaPoller::new(w.port, &w.domains);
    let mut log = SerialLog::default();
    let mut rounds = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        for (domain, served) in w.domains.iter().zip(poller.poll(Duration::from_millis(15))) {
            if let Some(s) = served {
                log.observe(&format!("served {domain}"), s);
            }
        }
        if rounds.is_multiple_of(5) {
            let mut torn = Vec::new();
            for (uuid, state) in read_states(&w.state, &mut torn) {
                if let Some(s) = state_serial(&state) {
                    log.observe(&format!("state {uuid}"), s);
                }
            }
            for (domain, s) in read_zone_serials(&w.zones, &mut torn) {
                log.observe(&format!("file {domain}"), s);
            }
            log.violations
                .extend(torn.into_iter().map(|t| format!("torn file: {t}")));
        }
        rounds += 1;
        if let Some(rest) = Duration::from_millis(20).checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    (log, rounds)
}

/// Sets its flag when dropped, also while a panic unwinds: a thread
/// polling the flag then ends, so `thread::scope` can join it and pass
/// the panic on instead of waiting forever.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// SIGTERM, exit 0, then `status --json`: no zone pending, every serial as
/// the state files say.
fn stop_and_check_status(env: &Env, mut daemon: Daemon, zones: usize) -> Vec<String> {
    let mut problems = Vec::new();
    daemon.signal(Signal::SIGTERM);
    let code = daemon.wait_exit();
    if code != Some(0) {
        problems.push(format!("daemon exited with {code:?} on SIGTERM"));
    }
    drop(daemon);
    let states = read_states(&env.root.join("state"), &mut Vec::new());
    match status(env) {
        Err(e) => problems.push(format!("status --json failed: {e}")),
        Ok(doc) => {
            if doc["pending"] != 0 {
                problems.push(format!("status says pending {}", doc["pending"]));
            }
            let rows = doc["zones"].as_array().cloned().unwrap_or_default();
            if rows.len() != zones {
                problems.push(format!("status lists {} zones, not {zones}", rows.len()));
            }
            for row in rows {
                let uuid = row["uuid"].as_str().unwrap_or_default();
                let want = states.get(uuid).and_then(state_serial);
                if row["serial"].as_u64() != want.map(u64::from) {
                    problems.push(format!(
                        "status: {uuid} serial {} but the state file says {want:?}",
                        row["serial"]
                    ));
                }
            }
        }
    }
    problems
}

fn fail_with(problems: &[String], env: &Env) -> ! {
    panic!(
        "{} problem(s):\n{}\n--- daemon log (tail) ---\n{}\n--- named ---\n{}",
        problems.len(),
        problems.join("\n"),
        tail(&env.root.join("daemon.log"), 60),
        env.named.log_tail(20)
    );
}

#[test]
fn sigkill_storm_loses_nothing() {
    const ZONES: usize = 100;
    const EVENTS: usize = 3000;
    const MIN_KILLS: usize = 20;
    let _serial = one_at_a_time();
    let began = Instant::now();
    let seed = seed("CRASH_SEED", 0x00c0_ffee_5eed_0001);
    let mut rng = XorShift::new(seed);
    let mut model = Model::new("crash", ZONES);
    let submissions = stream(&mut model, &mut rng, EVENTS, 50);
    let duplicates = submissions.iter().filter(|s| s.duplicate).count();

    let env = Env::new(CONFIG);
    let watched = Watched {
        state: env.root.join("state"),
        zones: env.root.join("zones"),
        port: env.named.port(),
        domains: model.zones.iter().map(|z| z.domain.clone()).collect(),
    };
    let spool = Spool::open(&env.spool(), 1 << 20).unwrap();
    let stop_monitor = AtomicBool::new(false);
    let submitted_so_far = AtomicUsize::new(0);
    let mut kills = 0usize;
    let mut exited_alone = Vec::new();

    let (final_daemon, settled, (serials, rounds)) = std::thread::scope(|s| {
        let stop_guard = SetOnDrop(&stop_monitor);
        let monitor = s.spawn(|| monitor(&watched, &stop_monitor));
        let producer = s.spawn(|| {
            let mut pace = XorShift::new(seed ^ 0x9e37_79b9_7f4a_7c15);
            for sub in &submissions {
                spool.submit(&sub.bytes).unwrap();
                submitted_so_far.fetch_add(1, Ordering::Relaxed);
                // Bursts and pauses, about 3 ms an event on average.
                if pace.chance(10) {
                    std::thread::sleep(pace.millis(5, 40));
                }
            }
        });

        let mut daemon = Daemon::start(&env);
        // The producer is bounded by its own work; the deadline only keeps
        // a wedged file system from turning into an endless kill loop.
        let deadline = Instant::now() + Duration::from_secs(150);
        while (!producer.is_finished() || kills < MIN_KILLS) && Instant::now() < deadline {
            // Mostly short lives (the start-up pass, mid-deploy), some
            // long enough for whole passes to finish.
            let life = match rng.below(10) {
                0..=3 => rng.millis(1, 150),
                4..=7 => rng.millis(150, 700),
                _ => rng.millis(700, 2000),
            };
            std::thread::sleep(life);
            if let Ok(Some(status)) = daemon.child.try_wait() {
                exited_alone.push(format!("daemon exited on its own: {status}"));
            }
            daemon.signal(Signal::SIGKILL);
            let _ = daemon.wait_exit();
            kills += 1;
            drop(daemon);
            daemon = Daemon::start(&env);
        }
        producer.join().unwrap();
        let uuids: Vec<String> = model.zones.iter().map(|z| z.uuid.clone()).collect();
        let settled = settled(&env, &mut daemon, &uuids, &watched.domains, 90);
        // The monitor has seen the final serials served while the daemon
        // sent its last notifications.
        drop(stop_guard);
        (daemon, settled, monitor.join().unwrap())
    });
    let drained_at = began.elapsed();

    let mut problems = exited_alone;
    if let Err(e) = settled {
        problems.push(format!("the daemon never settled: {e}"));
    }
    if kills < MIN_KILLS {
        problems.push(format!(
            "only {kills} kills: the producer did not finish within the deadline"
        ));
    }
    problems.extend(
        serials
            .violations
            .iter()
            .map(|v| format!("went backwards: {v}")),
    );
    let states = read_states(&env.root.join("state"), &mut problems);
    let mut poller = SoaPoller::new(env.named.port(), &watched.domains);
    let served = poller.poll_all(Duration::from_secs(10));
    for (domain, s) in watched.domains.iter().zip(&served) {
        if let (Some(s), Some(last)) = (s, serials.last(&format!("served {domain}")))
            && zoneagent::serial::Serial(*s) < zoneagent::serial::Serial(last)
        {
            problems.push(format!("{domain}: served {s} after {last}"));
        }
    }
    let (differences, verified) =
        compare_final(&model, &states, &served, env.named.port(), &watched.zones);
    problems.extend(differences);

    let expected_files: BTreeSet<String> = model
        .zones
        .iter()
        .map(|z| format!("{}.zone", z.domain))
        .collect();
    let files: BTreeSet<String> = list(&watched.zones)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect();
    if files != expected_files {
        problems.push(format!(
            "zones/ holds {:?} beyond or short of the 100 zone files",
            files
                .symmetric_difference(&expected_files)
                .collect::<Vec<_>>()
        ));
    }
    let include = support::crash::include_zones(&env.root.join("named.conf.zoneagent"));
    let listed: BTreeSet<&String> = include.keys().collect();
    let domains: BTreeSet<&String> = watched.domains.iter().collect();
    if listed != domains || include.len() != ZONES {
        problems.push(format!(
            "the include file lists {} zones; differences {:?}",
            include.len(),
            listed.symmetric_difference(&domains).collect::<Vec<_>>()
        ));
    }
    for (domain, file) in &include {
        let want = watched.zones.join(format!("{domain}.zone"));
        if std::path::Path::new(file) != want {
            problems.push(format!("include: {domain} points at {file}"));
        }
    }
    problems.extend(leftovers(&env.root, &watched.zones, &watched.state));
    problems.extend(stop_and_check_status(&env, final_daemon, ZONES));

    let log = std::fs::read_to_string(env.root.join("daemon.log")).unwrap_or_default();
    let unique = submissions.len() - duplicates;
    let records: usize = model.zones.iter().map(|z| z.records.len()).sum();
    println!(
        "sigkill storm (seed {seed:#x}): kills survived {kills}, events submitted {} \
         ({unique} unique + {duplicates} re-sent), events verified {verified} \
         ({records} records in the end), zones {ZONES}, serial observations {} \
         in {rounds} monitor rounds; drained after {:.1} s, total {:.1} s",
        submissions.len(),
        serials.observations,
        drained_at.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    println!("daemon log: {}", log_summary(&log));
    if !problems.is_empty() {
        fail_with(&problems, &env);
    }
}

#[test]
fn named_outage_is_retried() {
    const ZONES: usize = 20;
    const BEFORE: usize = 170;
    const EVENTS: usize = 500;
    let _serial = one_at_a_time();
    let began = Instant::now();
    let seed = seed("CRASH_SEED", 0x00c0_ffee_5eed_0002);
    let mut rng = XorShift::new(seed);
    let mut model = Model::new("outage", ZONES);
    let submissions = stream(&mut model, &mut rng, EVENTS, 10);
    let (snapshots, records) = submissions.split_at(ZONES);

    let mut env = Env::new(CONFIG);
    let domains: Vec<String> = model.zones.iter().map(|z| z.domain.clone()).collect();
    let port = env.named.port();
    let spool = Spool::open(&env.spool(), 1 << 20).unwrap();
    let mut daemon = Daemon::start(&env);
    for s in snapshots {
        spool.submit(&s.bytes).unwrap();
    }
    let mut poller = SoaPoller::new(port, &domains);
    assert!(
        eventually(60, || poller
            .poll(Duration::from_millis(100))
            .iter()
            .all(Option::is_some)),
        "the zones were never served\n{}",
        daemon.log_text()
    );

    let mut alive = Vec::new();
    let mut check_alive = |daemon: &mut Daemon, when: &str| {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            alive.push(format!("daemon exited {when}: {status}"));
        }
    };
    let (go, wait_go) = mpsc::channel::<()>();
    let (phase_a_done, wait_phase_a) = mpsc::channel::<()>();
    let submitted_so_far = AtomicUsize::new(0);
    let mut submitted_so_far_at_restart = 0;
    std::thread::scope(|s| {
        // Owned by this closure: a panic below drops it, and the
        // producer's `recv` returns instead of blocking the scope forever.
        let go = go;
        let (spool, submitted_so_far) = (&spool, &submitted_so_far);
        let producer = s.spawn(move || {
            for (i, sub) in records.iter().enumerate() {
                if i == BEFORE {
                    phase_a_done.send(()).unwrap();
                    if wait_go.recv().is_err() {
                        return;
                    }
                }
                spool.submit(&sub.bytes).unwrap();
                submitted_so_far.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(8));
            }
        });
        wait_phase_a
            .recv_timeout(Duration::from_mins(1))
            .expect("the producer never reached the outage");
        env.named.stop();
        go.send(()).unwrap();
        let outage = Instant::now();
        // The daemon meets the dead named: the producer keeps submitting.
        // At least 3 s, and (bounded) until the daemon has met it: a batch
        // told just before the stop may still be confirming when the
        // outage begins, and would otherwise ride it out unseen.
        let met = |d: &support::agent::Daemon| {
            let log = d.log_text();
            log.contains("will retry") || log.contains("named has not loaded every zone yet")
        };
        while outage.elapsed() < Duration::from_secs(3)
            || (!met(&daemon) && outage.elapsed() < Duration::from_secs(20))
        {
            check_alive(&mut daemon, "while named was down");
            std::thread::sleep(Duration::from_millis(50));
        }
        submitted_so_far_at_restart = submitted_so_far.load(Ordering::Relaxed);
        env.named.restart();
        check_alive(&mut daemon, "when named came back");
        producer.join().unwrap();
    });

    let uuids: Vec<String> = model.zones.iter().map(|z| z.uuid.clone()).collect();
    let settled = settled(&env, &mut daemon, &uuids, &domains, 60);
    check_alive(&mut daemon, "after the burst");
    let mut problems = alive;
    if let Err(e) = settled {
        problems.push(format!("the daemon never settled: {e}"));
    }
    if submitted_so_far_at_restart <= BEFORE {
        problems.push(format!(
            "no event arrived while named was down ({submitted_so_far_at_restart} before the restart)"
        ));
    }
    let log = daemon.log_text();
    for needle in ["will retry", "named has not loaded every zone yet"] {
        if !log.contains(needle) {
            problems.push(format!("the daemon log never says {needle:?}"));
        }
    }
    let states = read_states(&env.root.join("state"), &mut problems);
    let served = poller.poll_all(Duration::from_secs(10));
    let (differences, verified) =
        compare_final(&model, &states, &served, port, &env.root.join("zones"));
    problems.extend(differences);
    problems.extend(leftovers(
        &env.root,
        &env.root.join("zones"),
        &env.root.join("state"),
    ));
    let retries = log.matches("will retry").count() + log.matches("has not loaded every").count();
    problems.extend(stop_and_check_status(&env, daemon, ZONES));
    println!(
        "named outage (seed {seed:#x}): events submitted {}, events verified {verified}, \
         {submitted_so_far_at_restart} of them \
         before named came back, retry warnings {retries}, zones {ZONES}; total {:.1} s",
        submissions.len(),
        began.elapsed().as_secs_f64()
    );
    println!("daemon log: {}", log_summary(&log));
    if !problems.is_empty() {
        fail_with(&problems, &env);
    }
}
