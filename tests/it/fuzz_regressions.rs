//! The fuzz targets' oracles on stable Rust, without cargo-fuzz: every file
//! under `fuzz/corpus/<target>/` (the seed corpora) and
//! `fuzz/regressions/<target>/` (minimized inputs that once failed) is run
//! through the same checks the target runs (`fuzz/src/oracles.rs`,
//! included here by path). A failure names the file and the panic.

use crate::fuzz_oracles as oracles;

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The check a fuzz target runs on one input; it panics on a failure.
type Check = fn(&[u8]);

/// Each fuzz target and its check.
const TARGETS: [(&str, Check); 3] = [
    ("decode_event", oracles::event),
    ("validate_render", oracles::zone),
    ("state_fold", oracles::fold),
];

/// The corpora must not shrink to nothing unnoticed.
const MIN_FILES: usize = 100;

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| n.starts_with('.'));
            let notes = p.extension().is_some_and(|e| e.eq_ignore_ascii_case("md"));
            !hidden && !notes
        })
        .collect();
    out.sort();
    out
}

#[test]
fn fuzz_corpora_and_regressions_pass_the_oracles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut checked = 0;
    let mut failures = Vec::new();
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    for (target, check) in TARGETS {
        for kind in ["corpus", "regressions"] {
            for file in files(&root.join(kind).join(target)) {
                let data = fs::read(&file).expect("a readable file");
                checked += 1;
                if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| check(&data))) {
                    let message = payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_else(|| "a panic without a message".to_owned());
                    let shown = file.strip_prefix(&root).unwrap_or(&file).display();
                    failures.push(format!("{target}: fuzz/{shown}: {message}"));
                }
            }
        }
    }
    panic::set_hook(hook);
    eprintln!(
        "fuzz regressions: {checked} inputs checked, {} failed",
        failures.len()
    );
    assert!(
        checked >= MIN_FILES,
        "only {checked} inputs under fuzz/corpus and fuzz/regressions"
    );
    assert!(
        failures.is_empty(),
        "{} inputs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
