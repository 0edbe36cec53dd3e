//! Planning: given the state of every zone and a batch of wanted changes,
//! decide which zones are written, which are left alone and which are
//! removed. Pure: the caller tells it which zone files exist.

use crate::error::ApiError;
use crate::model::zone::Zone;
use crate::store::ZoneState;
use crate::validate::ValidatedZone;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A zone that passed validation and is wanted in this shape.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub zone: Zone,
    pub seq: Option<u64>,
    /// Event ids to remember (`None`: keep what the state has).
    pub recent_ids: Option<Vec<String>>,
    pub valid: ValidatedZone,
    /// [`crate::render::content_hash`] of `valid`.
    pub hash: String,
}

impl Candidate {
    /// The zone's uuid.
    pub fn uuid(&self) -> &str {
        &self.zone.uuid
    }

    /// The A-label domain.
    pub fn domain(&self) -> &str {
        self.valid.origin.as_str()
    }
}

/// What to do with a batch.
#[derive(Debug, Default)]
pub struct Plan {
    /// Rendered content unchanged and the file in place: only the state
    /// (zone body, seq) may need saving.
    pub unchanged: Vec<Candidate>,
    /// Render, check, install, reload.
    pub write: Vec<Candidate>,
    /// Zones to remove: uuid and the domain of their installed file.
    pub delete: Vec<(String, Option<String>)>,
    /// Refused by planning (a domain another zone already has).
    pub rejected: Vec<(String, Vec<ApiError>)>,
}

/// Plans a batch. Later candidates for the same uuid replace earlier ones;
/// a zone both written and deleted in one batch is deleted only if the
/// delete came last (`deletes_after` lists uuids whose delete is the last
/// word).
pub fn plan(
    states: &BTreeMap<String, ZoneState>,
    candidates: Vec<Candidate>,
    deletes: &BTreeSet<String>,
    force: bool,
    file_exists: &dyn Fn(&str) -> bool,
) -> Plan {
    let mut out = Plan::default();
    for uuid in deletes {
        if let Some(state) = states.get(uuid) {
            let domain = state.deployed.as_ref().map(|d| d.domain.clone());
            out.delete.push((uuid.clone(), domain));
        }
    }
    // Who has which domain once this batch is applied: zones that stay as
    // they are keep theirs; candidates claim theirs in order.
    let changing: BTreeSet<&str> = candidates.iter().map(Candidate::uuid).collect();
    // Borrowed, not cloned: this runs for every batch, over every zone.
    let owner: HashMap<&str, &str> = states
        .iter()
        .filter(|(uuid, _)| !deletes.contains(*uuid) && !changing.contains(uuid.as_str()))
        .filter_map(|(uuid, s)| Some((s.deployed.as_ref()?.domain.as_str(), uuid.as_str())))
        .collect();
    let mut claimed: HashMap<String, String> = HashMap::new();
    for c in candidates {
        let domain = c.domain().to_owned();
        let other = claimed
            .get(&domain)
            .map(String::as_str)
            .or_else(|| owner.get(domain.as_str()).copied());
        if let Some(other) = other.filter(|o| *o != c.uuid()) {
            out.rejected.push((
                c.uuid().to_owned(),
                vec![ApiError::new(
                    "domain_conflict",
                    Some("domain"),
                    format!("`{domain}` is already served by zone {other}"),
                )],
            ));
            continue;
        }
        claimed.insert(domain.clone(), c.uuid().to_owned());
        let same = states
            .get(c.uuid())
            .and_then(|s| s.deployed.as_ref())
            .is_some_and(|d| d.domain == domain && d.content_hash == c.hash);
        if same && !force && file_exists(&domain) {
            out.unchanged.push(c);
        } else {
            out.write.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Deployed, FORMAT_VERSION};
    use crate::validate::{ZoneDefaults, validate};

    fn candidate(uuid: &str, domain: &str) -> Candidate {
        let zone = Zone {
            uuid: uuid.into(),
            domain: domain.into(),
            created_at: None,
            records: vec![],
        };
        let defaults = ZoneDefaults {
            default_ttl: 3600,
            nameservers: vec![crate::model::name::parse_domain("ns1.example.net").unwrap()],
            strict: false,
        };
        let valid = validate(&zone, &defaults).unwrap();
        Candidate {
            zone,
            seq: None,
            recent_ids: None,
            valid,
            hash: format!("h-{domain}"),
        }
    }

    fn state(c: &Candidate) -> ZoneState {
        ZoneState {
            format_version: FORMAT_VERSION,
            zone: c.zone.clone(),
            last_seq: None,
            recent_ids: vec![],
            deployed: Some(Deployed {
                domain: c.domain().to_owned(),
                serial: 1,
                content_hash: c.hash.clone(),
                config_hash: String::new(),
                pending_reload: false,
            }),
        }
    }

    #[test]
    fn unchanged_written_deleted_conflicting() {
        let a = candidate("a", "a.test");
        let b = candidate("b", "b.test");
        let states = BTreeMap::from([("a".to_owned(), state(&a)), ("b".to_owned(), state(&b))]);
        let mut a2 = a.clone();
        a2.hash = "other".into();
        let c = candidate("c", "a.test");
        let d = candidate("d", "d.test");
        let deletes = BTreeSet::from(["b".to_owned(), "nope".to_owned()]);
        let p = plan(&states, vec![a.clone(), c, d], &deletes, false, &|_| true);
        assert_eq!(p.unchanged.len(), 1);
        assert_eq!(
            p.write.iter().map(Candidate::uuid).collect::<Vec<_>>(),
            ["d"]
        );
        assert_eq!(p.delete, [("b".to_owned(), Some("b.test".to_owned()))]);
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].0, "c");
        // Changed content, forced, or a missing file: written.
        assert_eq!(
            plan(&states, vec![a2], &BTreeSet::new(), false, &|_| true)
                .write
                .len(),
            1
        );
        assert_eq!(
            plan(&states, vec![a.clone()], &BTreeSet::new(), true, &|_| true)
                .write
                .len(),
            1
        );
        assert_eq!(
            plan(&states, vec![a], &BTreeSet::new(), false, &|_| false)
                .write
                .len(),
            1
        );
        // A deleted zone's domain is free for another zone in the same batch.
        let b2 = candidate("b2", "b.test");
        let p = plan(
            &states,
            vec![b2],
            &BTreeSet::from(["b".to_owned()]),
            false,
            &|_| true,
        );
        assert_eq!(p.write.len(), 1);
    }
}
