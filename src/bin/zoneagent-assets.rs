//! `zoneagent-assets DIR`: writes the files the Debian package ships that
//! are made from the program itself rather than kept in the tree: the man
//! pages (`zoneagent(8)` and `zoneagent-<command>(8)`, from the clap
//! definitions), the bash, zsh and fish completions, and the packaged
//! systemd unit and tmpfiles snippet (those of `systemd/`, with the binary
//! in `/usr/bin` and the agent running as its own user `zoneagent`).
//!
//! `scripts/deb.sh` runs it into `target/assets/` before `cargo deb`, whose
//! asset list in `Cargo.toml` names these paths. Nothing here is installed.

use clap::CommandFactory as _;
use clap_complete::Shell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const UNIT: &str = include_str!("../../systemd/zoneagent.service");
const TMPFILES: &str = include_str!("../../systemd/zoneagent.tmpfiles.conf");

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: zoneagent-assets DIR");
        return ExitCode::from(2);
    };
    match write_all(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: failed to write assets into {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

fn write_all(dir: &Path) -> Result<(), AssetError> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    fs::create_dir_all(&man)?;
    fs::create_dir_all(&completions)?;
    let mut cmd = zoneagent::cli::Cli::command();
    // Propagates the global options (--config) into every subcommand.
    cmd.build();
    write_man(&man, cmd.clone(), "zoneagent")?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("zoneagent-{}", sub.get_name());
        write_man(
            &man,
            sub.clone()
                .name(name.clone())
                .bin_name(name.replace('-', " ")),
            &name,
        )?;
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd.clone(), "zoneagent", &completions)?;
    }
    fs::write(dir.join("zoneagent.service"), packaged_unit(UNIT)?)?;
    fs::write(dir.join("zoneagent.tmpfiles"), packaged_tmpfiles(TMPFILES)?)?;
    Ok(())
}

fn write_man(dir: &Path, cmd: clap::Command, name: &str) -> Result<(), AssetError> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("8")
        .manual("System Administration")
        .render(&mut out)?;
    fs::write(dir.join(format!("{name}.8")), out)?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum AssetError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("systemd/{file} no longer has the line `{line}` that the package rewrites")]
    Missing {
        file: &'static str,
        line: &'static str,
    },
}

/// Replaces one whole line, which must be there.
fn replace_line(
    text: &str,
    file: &'static str,
    line: &'static str,
    with: &str,
) -> Result<String, AssetError> {
    if !text.lines().any(|l| l == line) {
        return Err(AssetError::Missing { file, line });
    }
    Ok(text
        .lines()
        .map(|l| if l == line { with } else { l })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n")
}

/// The unit as installed by the package: the binary in /usr/bin, the agent
/// as its own user in group bind (so it reads rndc.key and named reads its
/// zone files).
fn packaged_unit(unit: &str) -> Result<String, AssetError> {
    let file = "zoneagent.service";
    let text = replace_line(
        unit,
        file,
        "ExecStart=/usr/local/bin/zoneagent --config /etc/zoneagent/zoneagent.toml run",
        "ExecStart=/usr/bin/zoneagent --config /etc/zoneagent/zoneagent.toml run",
    )?;
    let text = if text.lines().any(|l| l.starts_with("Documentation=")) {
        text
    } else {
        text.replacen(
            "\n[Service]\n",
            "Documentation=man:zoneagent(8) man:zoneagent.toml(5)\n\n[Service]\n",
            1,
        )
    };
    if text.lines().any(|l| l == "User=zoneagent") {
        return Ok(text);
    }
    replace_line(&text, file, "User=bind", "User=zoneagent")
}

/// The tmpfiles snippet with the agent's directories owned by `zoneagent`
/// (the zones and the include in group bind, so named reads them).
fn packaged_tmpfiles(tmpfiles: &str) -> Result<String, AssetError> {
    let mut changed = 0;
    let text: Vec<String> = tmpfiles
        .lines()
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            if !l.starts_with('#') && fields.len() >= 5 && fields[3] == "bind" {
                changed += 1;
                l.replacen(" bind ", " zoneagent ", 1)
            } else {
                l.to_owned()
            }
        })
        .collect();
    let already = tmpfiles.lines().any(|l| {
        let fields: Vec<&str> = l.split_whitespace().collect();
        !l.starts_with('#') && fields.len() >= 5 && fields[3] == "zoneagent"
    });
    if changed == 0 && !already {
        return Err(AssetError::Missing {
            file: "zoneagent.tmpfiles.conf",
            line: "d /var/lib/zoneagent 0750 bind bind -",
        });
    }
    Ok(text.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packaged_unit_runs_usr_bin_as_zoneagent() {
        let unit = packaged_unit(UNIT).unwrap();
        assert!(unit.contains("\nExecStart=/usr/bin/zoneagent --config"));
        assert!(unit.contains("\nUser=zoneagent\n"));
        assert!(unit.contains("\nDocumentation=man:zoneagent(8)"));
        assert!(!unit.contains("/usr/local/bin/zoneagent --config"));
    }

    #[test]
    fn packaged_tmpfiles_are_owned_by_zoneagent() {
        let t = packaged_tmpfiles(TMPFILES).unwrap();
        for line in t.lines().filter(|l| l.starts_with(['d', 'f'])) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields[3], "zoneagent", "{line}");
            // named reads the zones and the include through group bind.
            if fields[1].starts_with("/var/lib/bind/") {
                assert_eq!(fields[4], "bind", "{line}");
            }
        }
    }

    #[test]
    fn writes_every_asset() {
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path()).unwrap();
        for f in [
            "man/zoneagent.8",
            "man/zoneagent-run.8",
            "man/zoneagent-doctor.8",
            "completions/zoneagent.bash",
            "completions/_zoneagent",
            "completions/zoneagent.fish",
            "zoneagent.service",
            "zoneagent.tmpfiles",
        ] {
            assert!(dir.path().join(f).is_file(), "{f} missing");
        }
    }
}
