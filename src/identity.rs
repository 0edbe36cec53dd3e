//! Which user a command runs as, for the files it leaves behind.
//!
//! The daemon runs as its own user (`zoneagent`, see
//! `systemd/zoneagent.service`) and owns its state directory. A one-shot
//! `import` or `rebuild` run by root would leave root-owned state and zone
//! files that the daemon can no longer replace, so such a command first
//! becomes the owner of the state directory (with that user's groups, so
//! `bind` for the zone files and `rndc.key`), and a command run by anyone
//! else who is not that owner is refused with a message saying whom to run
//! it as. This module owns that decision and the switch, nothing else.

use nix::unistd::{Gid, Uid, User};
use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a command may not go on as the user it runs as.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("failed to find the owner of {path}")]
    Stat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "refusing to run as uid {me} on {path}: the agent's state is owned by {owner}; \
         run this command as that user (e.g. `sudo -u {owner} zoneagent …`) or as root, \
         which switches to it"
    )]
    NotOwner {
        path: PathBuf,
        owner: String,
        me: u32,
    },
    #[error("failed to switch from root to {owner}, the owner of {path}")]
    Switch {
        path: PathBuf,
        owner: String,
        #[source]
        source: nix::Error,
    },
}

/// What to do, given who runs the command and who owns the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Already the owner: go on.
    Stay,
    /// Root on someone else's state: become the owner first.
    Become,
    /// Neither the owner nor root.
    Refuse,
}

/// The pure rule: root becomes the owner, the owner stays, anyone else is
/// refused.
pub(crate) fn decide(me: u32, owner: u32) -> Decision {
    if me == owner {
        Decision::Stay
    } else if me == 0 {
        Decision::Become
    } else {
        Decision::Refuse
    }
}

/// Makes sure the process runs as the owner of `state_dir` (or, while it
/// does not exist yet, of its nearest existing parent): root switches to
/// that user, its primary group and its supplementary groups, for good;
/// the owner goes on; anyone else gets [`IdentityError::NotOwner`]. Call it
/// before any file is written and before any thread is started.
pub fn ensure_state_owner(state_dir: &Path) -> Result<(), IdentityError> {
    let (path, meta) = nearest_existing(state_dir)?;
    let owner_uid = meta.uid();
    let me = nix::unistd::geteuid().as_raw();
    let user = User::from_uid(Uid::from_raw(owner_uid)).ok().flatten();
    let owner = user
        .as_ref()
        .map_or_else(|| format!("uid {owner_uid}"), |u| u.name.clone());
    match decide(me, owner_uid) {
        Decision::Stay => Ok(()),
        Decision::Refuse => Err(IdentityError::NotOwner {
            path: state_dir.to_owned(),
            owner,
            me,
        }),
        Decision::Become => {
            let switch = || -> nix::Result<()> {
                let gid = user.as_ref().map_or(Gid::from_raw(meta.gid()), |u| u.gid);
                match user
                    .as_ref()
                    .and_then(|u| CString::new(u.name.clone()).ok())
                {
                    Some(name) => nix::unistd::initgroups(&name, gid)?,
                    None => nix::unistd::setgroups(&[gid])?,
                }
                nix::unistd::setgid(gid)?;
                nix::unistd::setuid(Uid::from_raw(owner_uid))?;
                // setuid from root drops the saved uid too: no way back.
                if nix::unistd::geteuid().as_raw() == owner_uid {
                    Ok(())
                } else {
                    Err(nix::Error::EPERM)
                }
            };
            switch().map_err(|source| IdentityError::Switch {
                path: path.clone(),
                owner: owner.clone(),
                source,
            })?;
            tracing::info!(user = %crate::logtext::Escaped(&owner), state = %path.display(), "switched to the owner of the state");
            Ok(())
        }
    }
}

/// `path` or its nearest existing ancestor, with its metadata.
fn nearest_existing(path: &Path) -> Result<(PathBuf, std::fs::Metadata), IdentityError> {
    let mut at = path;
    loop {
        match std::fs::metadata(at) {
            Ok(m) => return Ok((at.to_owned(), m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match at.parent() {
                Some(p) if !p.as_os_str().is_empty() => at = p,
                _ => {
                    return Err(IdentityError::Stat {
                        path: path.to_owned(),
                        source: e,
                    });
                }
            },
            Err(e) => {
                return Err(IdentityError::Stat {
                    path: at.to_owned(),
                    source: e,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_becomes_the_owner_the_owner_stays_others_are_refused() {
        let cases = [
            (0, 0, Decision::Stay),
            (0, 998, Decision::Become),
            (998, 998, Decision::Stay),
            (1000, 998, Decision::Refuse),
            (1000, 0, Decision::Refuse),
        ];
        for (me, owner, want) in cases {
            assert_eq!(decide(me, owner), want, "me {me}, owner {owner}");
        }
    }

    #[test]
    fn a_missing_state_dir_is_judged_by_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = nearest_existing(&dir.path().join("state/zones")).unwrap();
        assert_eq!(path, dir.path());
        // The test runs as the owner of its own temp dir.
        ensure_state_owner(&dir.path().join("state")).unwrap();
    }

    #[test]
    fn the_refusal_says_whom_to_run_as() {
        let e = IdentityError::NotOwner {
            path: PathBuf::from("/var/lib/zoneagent"),
            owner: "zoneagent".into(),
            me: 1000,
        };
        let text = e.to_string();
        assert!(text.contains("sudo -u zoneagent"), "{text}");
        assert!(text.contains("/var/lib/zoneagent"), "{text}");
    }
}
