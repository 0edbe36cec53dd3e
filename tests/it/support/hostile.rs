//! The hostile event corpus (`testdata/events/hostile/`): its manifest and
//! the rule for when an error names the field the manifest expects.

use std::fs;
use std::path::{Path, PathBuf};
use zoneagent::error::ApiError;

/// The corpus directory.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/events/hostile")
}

/// One row of `MANIFEST.tsv`.
pub struct Row {
    pub file: String,
    pub expect: String,
    pub field: String,
    pub note: String,
}

impl Row {
    pub fn known_bug(&self) -> bool {
        self.note.starts_with("BUG:")
    }
}

/// Every row of `MANIFEST.tsv`.
pub fn manifest() -> Vec<Row> {
    let text = fs::read_to_string(corpus_dir().join("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("file\texpect\tfield\tnote"),
        "MANIFEST.tsv header"
    );
    lines
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 4, "MANIFEST.tsv row needs 4 columns: {line:?}");
            Row {
                file: cols[0].to_owned(),
                expect: cols[1].to_owned(),
                field: cols[2].to_owned(),
                note: cols[3].to_owned(),
            }
        })
        .collect()
}

/// Whether `errors` name `field` in the sense of the README.
pub fn names_field(errors: &[ApiError], field: &str) -> bool {
    if field == "-" {
        return errors.iter().any(|e| e.field.is_none());
    }
    let (parent, leaf) = match field.rsplit_once('.') {
        Some((p, l)) => (Some(p), l),
        None => (None, field),
    };
    let missing = format!("missing field `{leaf}`");
    let duplicate = format!("duplicate field `{leaf}`");
    errors.iter().any(|e| {
        e.field.as_deref() == Some(field)
            || (e.field.as_deref() == parent
                && (e.detail.contains(&missing) || e.detail.contains(&duplicate)))
    })
}
