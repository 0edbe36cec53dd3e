//! `named-checkzone` and `named-checkconf -z`: the argv that makes them as
//! strict as `named` loading a primary zone, and the reading of their output.
//!
//! `named-checkzone` exits 0 on several problems it only prints (out-of-zone
//! data ignored, missing glue, a TTL changed to the prior one). A file
//! passes only when the output is exactly `zone Z/IN: loaded serial N` and
//! `OK`, with N the serial we rendered.

use crate::exec::{ToolError, ToolOutput};
use crate::model::name::Name;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

/// The flags that match what `named` enforces for a primary zone, without
/// network lookups (`-i local`). Never `-q`: the output is the evidence.
pub const STRICT_FLAGS: [&str; 12] = [
    "-k", "fail", "-i", "local", "-m", "fail", "-M", "fail", "-S", "fail", "-n", "fail",
];

/// argv for checking one zone file.
pub fn argv(program: &Path, zone: &Name, file: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![program.into()];
    v.extend(STRICT_FLAGS.iter().map(OsString::from));
    v.push(zone.to_absolute().into());
    v.push(file.into());
    v
}

/// Judges `named-checkzone`'s output for a file rendered with `serial`.
pub fn interpret(zone: &Name, serial: u32, output: ToolOutput) -> Result<(), ToolError> {
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
    if lines != [expected.as_str(), "OK"] {
        let loaded = lines.iter().find(|l| l.contains("loaded serial"));
        let reason = match loaded {
            Some(l) if *l != expected => format!("loaded the wrong serial (expected {serial})"),
            Some(_) => "printed warnings; every warning is treated as an error".to_owned(),
            None => "did not report the zone as loaded".to_owned(),
        };
        return Err(ToolError::failed(output, reason));
    }
    Ok(())
}

/// argv for loading every zone of a generated `named.conf` at once.
pub fn checkconf_argv(program: &Path, conf: &Path) -> Vec<OsString> {
    vec![program.into(), "-z".into(), conf.into()]
}

/// Splits `named-checkconf -z` output by zone: each zone named in `files`
/// (zone → its file as written in the config) gets the lines that concern
/// it. A zone passes only with exactly its `loaded serial` line, with the
/// serial expected for it. `None` when the tool failed without a line
/// about any zone (it could not run the check at all).
pub fn interpret_batch<S: std::hash::BuildHasher>(
    output: &ToolOutput,
    files: &HashMap<Name, (String, u32), S>,
) -> Option<HashMap<Name, Vec<String>>> {
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
    let mut problems = HashMap::new();
    for (zone, (_, serial)) in files {
        let expected = format!("zone {}/IN: loaded serial {serial}", zone.as_str());
        let got = lines.remove(zone).unwrap_or_default();
        if got != [expected.clone()] {
            let mut p: Vec<String> = got.into_iter().filter(|l| *l != expected).collect();
            if p.is_empty() {
                p.push(if output.success {
                    "named-checkconf did not report the zone as loaded".to_owned()
                } else {
                    "named-checkconf failed before loading the zone".to_owned()
                });
            }
            problems.insert(zone.clone(), p);
        }
    }
    Some(problems)
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
        assert!(
            interpret(
                &z,
                7,
                out(true, "zone example.com/IN: loaded serial 7\nOK\n")
            )
            .is_ok()
        );
        let wrong = interpret(
            &z,
            8,
            out(true, "zone example.com/IN: loaded serial 7\nOK\n"),
        );
        assert!(wrong.unwrap_err().to_string().contains("wrong serial"));
        let warned = interpret(
            &z,
            7,
            out(
                true,
                "zone example.com/IN: sub.example.com/NS 'ns.sub.example.com' has no REQUIRED GLUE address records (A or AAAA)\nzone example.com/IN: loaded serial 7\nOK\n",
            ),
        );
        let msg = warned.unwrap_err().to_string();
        assert!(msg.contains("REQUIRED GLUE"), "{msg}");
        assert!(msg.contains("warnings"), "{msg}");
        let failed = interpret(
            &z,
            7,
            out(false, "zone example.com/IN: not loaded due to errors.\n"),
        );
        assert!(failed.unwrap_err().to_string().contains("refused"));
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
        let problems = interpret_batch(&output, &files).unwrap();
        assert!(!problems.contains_key(&a));
        let pb = &problems[&b];
        assert!(pb.iter().any(|l| l.contains("b.zone:4")), "{pb:?}");
        assert_eq!(pb.len(), 5);
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
