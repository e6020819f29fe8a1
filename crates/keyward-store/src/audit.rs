//! The audit log's hash chain: how a record's hash is computed and how a chain is checked.
//!
//! A record's hash is SHA-256 over a fixed label, the previous record's hash and every
//! field, each field length-prefixed (or with a presence byte when optional), so that no
//! two different records encode to the same bytes. The first record's previous hash is 32
//! zero bytes. The storage backends append records and feed stored rows to [`Verifier`];
//! nothing here touches a database.

use aws_lc_rs::digest::{Context, SHA256};

use crate::model::{AuditProblem, AuditVerification};
use crate::rows::{AuditHead, AuditRow};

/// The previous hash of the first record.
pub(crate) const GENESIS_HASH: [u8; 32] = [0; 32];

/// Label mixed into every hash, naming the encoding.
const HASH_LABEL: &[u8] = b"keyward audit record v1\0";

/// The fields of one record, as stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuditFields<'a> {
    pub(crate) at: i64,
    pub(crate) actor: &'a str,
    pub(crate) role: &'a str,
    pub(crate) action: &'a str,
    pub(crate) alias: Option<&'a str>,
    pub(crate) version: Option<i64>,
    pub(crate) detail: &'a str,
}

impl<'a> AuditFields<'a> {
    pub(crate) fn of_row(row: &'a AuditRow) -> Self {
        Self {
            at: row.at,
            actor: &row.actor,
            role: &row.role,
            action: &row.action,
            alias: row.alias.as_deref(),
            version: row.version,
            detail: &row.detail,
        }
    }
}

/// The hash of record `seq` with `fields`, following the record whose hash is `prev_hash`.
pub(crate) fn record_hash(prev_hash: &[u8], seq: i64, fields: &AuditFields<'_>) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    ctx.update(HASH_LABEL);
    put_bytes(&mut ctx, prev_hash);
    ctx.update(&seq.to_be_bytes());
    ctx.update(&fields.at.to_be_bytes());
    put_bytes(&mut ctx, fields.actor.as_bytes());
    put_bytes(&mut ctx, fields.role.as_bytes());
    put_bytes(&mut ctx, fields.action.as_bytes());
    match fields.alias {
        Some(alias) => {
            ctx.update(&[1]);
            put_bytes(&mut ctx, alias.as_bytes());
        }
        None => ctx.update(&[0]),
    }
    match fields.version {
        Some(version) => {
            ctx.update(&[1]);
            ctx.update(&version.to_be_bytes());
        }
        None => ctx.update(&[0]),
    }
    put_bytes(&mut ctx, fields.detail.as_bytes());
    let digest = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn put_bytes(ctx: &mut Context, bytes: &[u8]) {
    ctx.update(&(bytes.len() as u64).to_be_bytes());
    ctx.update(bytes);
}

/// Checks stored records fed in ascending `seq` order and remembers the first problem.
#[derive(Debug)]
pub(crate) struct Verifier {
    records: u64,
    last_seq: i64,
    last_hash: Vec<u8>,
    problem: Option<AuditProblem>,
}

impl Verifier {
    pub(crate) fn new() -> Self {
        Self { records: 0, last_seq: 0, last_hash: GENESIS_HASH.to_vec(), problem: None }
    }

    /// The highest `seq` checked so far, for paging.
    pub(crate) fn last_seq(&self) -> i64 {
        self.last_seq
    }

    fn report(&mut self, seq: i64, description: String) {
        if self.problem.is_none() {
            self.problem = Some(AuditProblem { seq, description });
        }
    }

    /// Checks the next stored record.
    pub(crate) fn check(&mut self, row: &AuditRow) {
        self.records += 1;
        let expected = self.last_seq + 1;
        if row.seq > expected {
            let description = if row.seq == expected + 1 {
                format!("record {expected} is missing")
            } else {
                format!("record {expected} is missing (records {expected} to {} are missing)", row.seq - 1)
            };
            self.report(expected, description);
        } else if row.seq < expected {
            self.report(row.seq, format!("record {} is out of order", row.seq));
        } else if record_hash(&row.prev_hash, row.seq, &AuditFields::of_row(row)).as_slice() != row.hash {
            self.report(row.seq, format!("record {} was edited (hash mismatch)", row.seq));
        } else if row.prev_hash != self.last_hash {
            self.report(
                row.seq,
                format!(
                    "record {} does not follow record {} (a record before it was replaced or removed)",
                    row.seq,
                    row.seq - 1
                ),
            );
        }
        self.last_seq = row.seq;
        self.last_hash.clone_from(&row.hash);
    }

    /// Compares the last record with the audit head and returns the verdict.
    pub(crate) fn finish(mut self, head: Option<AuditHead>) -> AuditVerification {
        match head {
            None => self.report(0, "the audit head is missing".to_owned()),
            Some(head) if head.last_seq > self.last_seq => {
                let description = if self.last_seq == 0 {
                    "all records were removed".to_owned()
                } else {
                    format!("the newest record(s) after {} were removed", self.last_seq)
                };
                self.report(self.last_seq + 1, description);
            }
            Some(head) if head.last_seq < self.last_seq => self.report(
                head.last_seq + 1,
                format!("record(s) after {} were added outside keyward", head.last_seq),
            ),
            Some(head) if head.last_hash != self.last_hash => self.report(
                self.last_seq,
                format!("record {} was replaced (it differs from the audit head)", self.last_seq),
            ),
            Some(_) => {}
        }
        AuditVerification { records: self.records, problem: self.problem }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(alias: Option<&'a str>, detail: &'a str) -> AuditFields<'a> {
        AuditFields { at: 1, actor: "alice", role: "admin", action: "keys.add", alias, version: Some(1), detail }
    }

    #[test]
    fn encoding_is_unambiguous() {
        let base = record_hash(&GENESIS_HASH, 1, &fields(Some("ab"), "c"));
        assert_ne!(base, record_hash(&GENESIS_HASH, 1, &fields(Some("a"), "bc")));
        assert_ne!(base, record_hash(&GENESIS_HASH, 2, &fields(Some("ab"), "c")));
        assert_ne!(
            record_hash(&GENESIS_HASH, 1, &fields(None, "")),
            record_hash(&GENESIS_HASH, 1, &fields(Some(""), ""))
        );
        assert_eq!(base, record_hash(&GENESIS_HASH, 1, &fields(Some("ab"), "c")));
    }

    fn row(seq: i64, prev: &[u8], detail: &str) -> AuditRow {
        let mut row = AuditRow {
            seq,
            at: 1,
            actor: "alice".into(),
            role: "admin".into(),
            action: "keys.add".into(),
            alias: Some("a".into()),
            version: None,
            detail: detail.into(),
            prev_hash: prev.to_vec(),
            hash: Vec::new(),
        };
        row.hash = record_hash(prev, seq, &AuditFields::of_row(&row)).to_vec();
        row
    }

    fn chain(n: i64) -> Vec<AuditRow> {
        let mut rows: Vec<AuditRow> = Vec::new();
        for seq in 1..=n {
            let prev = rows.last().map_or(GENESIS_HASH.to_vec(), |r| r.hash.clone());
            rows.push(row(seq, &prev, "x"));
        }
        rows
    }

    fn verify(rows: &[AuditRow], head_seq: i64, head_hash: Vec<u8>) -> AuditVerification {
        let mut v = Verifier::new();
        rows.iter().for_each(|r| v.check(r));
        v.finish(Some(AuditHead { last_seq: head_seq, last_hash: head_hash }))
    }

    #[test]
    fn problems_as_a_table() {
        let rows = chain(5);
        let head = rows[4].hash.clone();
        assert_eq!(verify(&rows, 5, head.clone()).problem, None);
        assert_eq!(verify(&[], 0, GENESIS_HASH.to_vec()).problem, None);

        let mut edited = chain(5);
        edited[2].detail = "changed".into();
        let p = verify(&edited, 5, head.clone()).problem.expect("edit detected");
        assert_eq!((p.seq, p.description.as_str()), (3, "record 3 was edited (hash mismatch)"));

        let mut gap = chain(5);
        gap.remove(1);
        let p = verify(&gap, 5, head.clone()).problem.expect("gap detected");
        assert_eq!((p.seq, p.description.as_str()), (2, "record 2 is missing"));

        let truncated = &rows[..4];
        let p = verify(truncated, 5, head.clone()).problem.expect("truncation detected");
        assert_eq!((p.seq, p.description.as_str()), (5, "the newest record(s) after 4 were removed"));

        // A record replaced by a self-consistent one breaks the link to its successor.
        let mut replaced = chain(5);
        replaced[1] = row(2, &replaced[0].hash.clone(), "forged");
        let p = verify(&replaced, 5, head).problem.expect("replacement detected");
        assert_eq!(p.seq, 3);
    }
}
