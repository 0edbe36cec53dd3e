//! `named-checkzone` and `named-checkconf -z`: the argv that makes them
//! judge a zone file as `named` does when it loads a primary zone, and the
//! reading of their output.
//!
//! `named` loads some zones with warnings (an MX target without an address,
//! a delegation without glue, …): those pass, and the warning lines are
//! returned so they can be reported. Two messages never pass although the
//! tools exit 0: `ignoring out-of-zone data` and `TTL set to prior TTL`
//! mean the file does not say what was rendered, which never happens for a
//! correct render. A file passes only when the output ends with exactly
//! `zone Z/IN: loaded serial N` and `OK`, with N the serial we rendered.

use crate::exec::{ToolError, ToolOutput};
use crate::model::name::Name;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

/// What `named` 9.18 applies when it loads a primary zone with its default
/// options: `check-names primary fail` (`-k fail`) and in-zone integrity
/// checks only (`-i local`, no lookups through the resolver); every other
/// check at its default (`check-mx warn`, `check-mx-cname warn`,
/// `check-srv-cname warn`, `check-dup-records warn`, `check-wildcard yes`,
/// `check-sibling yes`). Never `-q`: the output is the evidence.
pub const DEFAULT_FLAGS: [&str; 4] = ["-k", "fail", "-i", "local"];

/// `[validate] strict`: also fail an MX that is an address (`-m`), an MX or
/// SRV target that is a CNAME (`-M`, `-S`), and in-zone MX and SRV targets
/// without an address (`-i local` under `-m fail` / `-S fail`). Stricter
/// than `named`: an operator's opt-in.
pub const STRICT_FLAGS: [&str; 12] = [
    "-k", "fail", "-i", "local", "-m", "fail", "-M", "fail", "-S", "fail", "-n", "fail",
];

/// Lines that fail a file even though the tool loaded it: the file does not
/// mean what was rendered.
const NEVER_FOR_A_CORRECT_RENDER: [&str; 2] = ["ignoring out-of-zone data", "TTL set to prior TTL"];

/// The flags for a check as `named` does it, or the strict variant.
pub fn flags(strict: bool) -> &'static [&'static str] {
    if strict {
        &STRICT_FLAGS
    } else {
        &DEFAULT_FLAGS
    }
}

/// argv for checking one zone file.
pub fn argv(program: &Path, zone: &Name, file: &Path, strict: bool) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![program.into()];
    v.extend(flags(strict).iter().map(OsString::from));
    v.push(zone.to_absolute().into());
    v.push(file.into());
    v
}

/// Judges `named-checkzone`'s output for a file rendered with `serial`.
/// `Ok` carries the warning lines printed before the `loaded serial` line
/// (empty for a clean load).
pub fn interpret(zone: &Name, serial: u32, output: ToolOutput) -> Result<Vec<String>, ToolError> {
    let expected = format!("zone {}/IN: loaded serial {serial}", zone.as_str());
    let lines: Vec<&str> = output
        .stdout
        .lines()
        .chain(output.stderr.lines())
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    if !output.success {
        return Err(ToolError::failed(output, "refused the zone"));
    }
    let Some((warnings, tail)) = lines.split_last_chunk::<2>() else {
        return Err(ToolError::failed(
            output,
            "did not report the zone as loaded",
        ));
    };
    if tail != &[expected.as_str(), "OK"] {
        let loaded = lines.iter().find(|l| l.contains("loaded serial"));
        let reason = match loaded {
            Some(l) if *l != expected => format!("loaded the wrong serial (expected {serial})"),
            _ => "did not report the zone as loaded".to_owned(),
        };
        return Err(ToolError::failed(output, reason));
    }
    if let Some(reason) = warnings.iter().find_map(|l| never_passes(l)) {
        return Err(ToolError::failed(output, reason));
    }
    Ok(warnings.iter().map(|l| (*l).to_owned()).collect())
}

/// Why a line fails a file that the tool loaded, if it does.
fn never_passes(line: &str) -> Option<String> {
    if line.contains("loaded serial") {
        return Some("reported the zone as loaded twice".to_owned());
    }
    NEVER_FOR_A_CORRECT_RENDER
        .iter()
        .find(|m| line.contains(*m))
        .map(|m| format!("printed `{m}`: the file does not say what was rendered"))
}

/// argv for loading every zone of a generated `named.conf` at once.
pub fn checkconf_argv(program: &Path, conf: &Path) -> Vec<OsString> {
    vec![program.into(), "-z".into(), conf.into()]
}

/// `named-checkconf -z`'s verdict on a batch, by zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchVerdict {
    /// Zones that did not load, with the lines about them.
    pub problems: HashMap<Name, Vec<String>>,
    /// Zones that loaded with warnings, with the warning lines; zones that
    /// loaded cleanly are absent.
    pub warnings: HashMap<Name, Vec<String>>,
}

/// Splits `named-checkconf -z` output by zone: each zone named in `files`
/// (zone → its file as written in the config) gets the lines that concern
/// it. A zone passes when its last line is its `loaded serial` line, with
/// the serial expected for it, and no other line of it reports a failure;
/// the lines before are its warnings. `None` when the tool failed without
/// a line about any zone (it could not run the check at all).
pub fn interpret_batch<S: std::hash::BuildHasher>(
    output: &ToolOutput,
    files: &HashMap<Name, (String, u32), S>,
) -> Option<BatchVerdict> {
    let by_file: HashMap<&str, &Name> = files.iter().map(|(z, (f, _))| (f.as_str(), z)).collect();
    let by_zone: HashMap<&str, &Name> = files.keys().map(|z| (z.as_str(), z)).collect();
    let mut lines: HashMap<Name, Vec<String>> = HashMap::new();
    for line in output.stdout.lines().chain(output.stderr.lines()) {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let zone = zone_of_line(line)
            .and_then(|z| by_zone.get(z).copied())
            .or_else(|| file_of_line(line).and_then(|f| by_file.get(f).copied()));
        if let Some(z) = zone {
            lines.entry(z.clone()).or_default().push(line.to_owned());
        }
    }
    if !output.success && lines.is_empty() {
        return None;
    }
    let mut verdict = BatchVerdict::default();
    for (zone, (_, serial)) in files {
        let expected = format!("zone {}/IN: loaded serial {serial}", zone.as_str());
        let got = lines.remove(zone).unwrap_or_default();
        let loaded = got.last() == Some(&expected);
        let before = &got[..got.len().saturating_sub(1)];
        if loaded
            && before
                .iter()
                .all(|l| never_passes(l).is_none() && !is_failure(l))
        {
            if !before.is_empty() {
                verdict.warnings.insert(zone.clone(), before.to_vec());
            }
            continue;
        }
        let mut p: Vec<String> = got.into_iter().filter(|l| *l != expected).collect();
        if p.is_empty() {
            p.push(if loaded {
                "named-checkconf reported the zone as loaded more than once".to_owned()
            } else if output.success {
                "named-checkconf did not report the zone as loaded".to_owned()
            } else {
                "named-checkconf failed before loading the zone".to_owned()
            });
        }
        verdict.problems.insert(zone.clone(), p);
    }
    Some(verdict)
}

/// A line by which `named-checkconf` says a zone did not load.
fn is_failure(line: &str) -> bool {
    line.contains("not loaded due to errors") || line.contains(" failed: ")
}

/// The file a line is about: `FILE:LINE: …` (a parse error) or
/// `… from master file FILE failed: …`.
fn file_of_line(line: &str) -> Option<&str> {
    if let Some(rest) = line.split_once("from master file ").map(|(_, r)| r) {
        return rest.split_once(" failed").map(|(f, _)| f);
    }
    let at_start = |l: &'_ str| -> Option<usize> {
        let (file, rest) = l.split_once(':')?;
        rest.split_once(':')
            .filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .map(|_| file.len())
    };
    if let Some(n) = at_start(line) {
        return Some(&line[..n]);
    }
    // `dns_rdata_fromtext: FILE:LINE: …`
    let (_, rest) = line.split_once(": ")?;
    at_start(rest).map(|n| &rest[..n])
}

/// The zone a line is about: `zone NAME/IN: …` or `_default/NAME/IN: …`.
fn zone_of_line(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("zone ")
        .or_else(|| line.strip_prefix("_default/"))?;
    let (zone, _) = rest.split_once("/IN:")?;
    Some(zone.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::name::parse_domain;

    fn out(success: bool, stdout: &str) -> ToolOutput {
        ToolOutput {
            argv: vec!["named-checkzone".into()],
            success,
            code: Some(i32::from(!success)),
            stdout: stdout.to_owned(),
            stderr: String::new(),
        }
    }

    #[test]
    fn judging_checkzone() {
        let z = parse_domain("example.com").unwrap();
        let clean = interpret(
            &z,
            7,
            out(true, "zone example.com/IN: loaded serial 7\nOK\n"),
        );
        assert_eq!(clean.unwrap(), Vec::<String>::new());
        let wrong = interpret(
            &z,
            8,
            out(true, "zone example.com/IN: loaded serial 7\nOK\n"),
        );
        assert!(wrong.unwrap_err().to_string().contains("wrong serial"));
        let glue = "zone example.com/IN: sub.example.com/NS 'ns.sub.example.com' has no \
                    REQUIRED GLUE address records (A or AAAA)";
        let warned = interpret(
            &z,
            7,
            out(
                true,
                &format!("{glue}\nzone example.com/IN: loaded serial 7\nOK\n"),
            ),
        );
        assert_eq!(warned.unwrap(), [glue]);
        let failed = interpret(
            &z,
            7,
            out(false, "zone example.com/IN: not loaded due to errors.\n"),
        );
        assert!(failed.unwrap_err().to_string().contains("refused"));
        for line in [
            "zone example.com/IN: ignoring out-of-zone data (x.example.net)",
            "f.zone:6: TTL set to prior TTL (100)",
        ] {
            let text = format!("{line}\nzone example.com/IN: loaded serial 7\nOK\n");
            let msg = interpret(&z, 7, out(true, &text)).unwrap_err().to_string();
            assert!(msg.contains("does not say what was rendered"), "{msg}");
        }
        let silent = interpret(&z, 7, out(true, "OK\n"));
        assert!(silent.unwrap_err().to_string().contains("not report"));
    }

    #[test]
    fn strict_is_opt_in() {
        let z = parse_domain("example.com").unwrap();
        let plain = argv(Path::new("c"), &z, Path::new("f"), false);
        assert_eq!(plain[1..5], DEFAULT_FLAGS.map(OsString::from));
        assert_eq!(plain[5], "example.com.");
        let strict = argv(Path::new("c"), &z, Path::new("f"), true);
        assert!(strict.iter().any(|a| a == "-m"), "{strict:?}");
        assert!(!plain.iter().any(|a| a == "-m" || a == "-q"), "{plain:?}");
    }

    #[test]
    fn batch_attribution() {
        let a = parse_domain("a.test").unwrap();
        let b = parse_domain("b.test").unwrap();
        let files = HashMap::from([
            (a.clone(), ("a.zone".to_owned(), 1)),
            (b.clone(), ("b.zone".to_owned(), 2)),
        ]);
        let output = ToolOutput {
            argv: vec![],
            success: false,
            code: Some(1),
            stdout: "zone a.test/IN: loaded serial 1\nb.zone:4: _bad.b.test: bad owner name (check-names)\ndns_rdata_fromtext: b.zone:5: near 'x': bad name (check-names)\nzone b.test/IN: loading from master file b.zone failed: bad owner name (check-names)\nzone b.test/IN: not loaded due to errors.\n".to_owned(),
            stderr: "_default/b.test/IN: bad owner name (check-names)\n".to_owned(),
        };
        let verdict = interpret_batch(&output, &files).unwrap();
        let problems = &verdict.problems;
        assert!(!problems.contains_key(&a));
        assert!(verdict.warnings.is_empty(), "{verdict:?}");
        let pb = &problems[&b];
        assert!(pb.iter().any(|l| l.contains("b.zone:4")), "{pb:?}");
        assert_eq!(pb.len(), 5);
        let mx = "zone a.test/IN: a.test/MX 'mail.a.test' has no address records (A or AAAA)";
        let warned = ToolOutput {
            argv: vec![],
            success: true,
            code: Some(0),
            stdout: format!(
                "{mx}\nzone a.test/IN: loaded serial 1\nzone b.test/IN: loaded serial 2\n"
            ),
            stderr: String::new(),
        };
        let verdict = interpret_batch(&warned, &files).unwrap();
        assert!(verdict.problems.is_empty(), "{verdict:?}");
        assert_eq!(verdict.warnings[&a], [mx]);
        assert!(!verdict.warnings.contains_key(&b));
        let ttl = ToolOutput {
            stdout: "a.zone:6: TTL set to prior TTL (100)\nzone a.test/IN: loaded serial 1\n\
                     zone b.test/IN: loaded serial 2\n"
                .to_owned(),
            ..warned
        };
        let verdict = interpret_batch(&ttl, &files).unwrap();
        assert!(verdict.problems[&a][0].contains("prior TTL"), "{verdict:?}");
        assert!(!verdict.problems.contains_key(&b));
        let nameless = ToolOutput {
            argv: vec![],
            success: false,
            code: Some(1),
            stdout: "named-checkconf: invalid argument\n".to_owned(),
            stderr: String::new(),
        };
        assert_eq!(interpret_batch(&nameless, &files), None);
    }
}
