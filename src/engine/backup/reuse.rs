//! Phase 1 without reading everything again, for the rehearsal's rollback
//! drills: each drill starts from the very state the rehearsal's repair
//! backed up moments before (a clone of the same restored capture, under the
//! same database name), so its Phase 1 links that backup's files into its
//! own new folder instead of checksumming every table and dumping the
//! database again. Nothing is taken on trust: the backup must verify against
//! its manifest, be a complete repair backup, belong to this database and
//! have been taken for this very plan (the same diagnosis fingerprint).
//! Never used outside a rehearsal: a repair of a real database always takes
//! its own backup.

use std::path::Path;

use super::manifest::{self, BackupKind, DatabaseIdentity, Manifest};
use crate::error::{Error, Result};

/// Checks `from` as a backup of `live`'s current state for the plan
/// `plan_fingerprint`, then links its files into `into` (see [`link_files`]).
#[cfg(test)]
fn link(from: &Path, into: &Path, live: &DatabaseIdentity, plan_fingerprint: &str) -> Result<()> {
    check(from, live, plan_fingerprint)?;
    link_files(from, into)
}

/// Whether `from` may stand for `live`'s current state under the plan
/// `plan_fingerprint`: it verifies against its manifest, is a repair's
/// Phase 1, of this database, for this plan.
pub(crate) fn check(
    from: &Path,
    live: &DatabaseIdentity,
    plan_fingerprint: &str,
) -> Result<Manifest> {
    let checked = manifest::verify(from)?;
    if checked.kind != BackupKind::Repair {
        return Err(refused(
            from,
            "it is a rollback's safety backup, not a repair's Phase 1".into(),
        ));
    }
    manifest::check_identity(from, &checked, live)?;
    if checked.plan_fingerprint != plan_fingerprint {
        return Err(refused(
            from,
            format!(
                "it was taken for the plan {}, this repair's plan is {}: the state differs",
                short(&checked.plan_fingerprint),
                short(plan_fingerprint)
            ),
        ));
    }
    Ok(checked)
}

/// Links (or, across file systems, copies) the files of the backup `from`
/// into `into` (the run's new folder, which holds at most its journal),
/// never over a file. The manifest is not carried over: the caller writes
/// its own once Phase 1 is complete.
pub(crate) fn link_files(from: &Path, into: &Path) -> Result<()> {
    std::fs::create_dir_all(into).map_err(Error::io("create", into))?;
    for name in manifest::REQUIRED {
        let (source, target) = (from.join(name), into.join(name));
        if target.exists() {
            return Err(Error::BackupExists {
                dir: into.to_path_buf(),
            });
        }
        if std::fs::hard_link(&source, &target).is_err() {
            std::fs::copy(&source, &target).map_err(Error::io("copy", &source))?;
        }
    }
    Ok(())
}

fn refused(dir: &Path, problem: String) -> Error {
    Error::BackupRejected {
        dir: dir.to_path_buf(),
        problem,
        hint: "let Phase 1 take a new backup (this one cannot stand for the state being repaired)"
            .into(),
    }
}

fn short(fingerprint: &str) -> &str {
    &fingerprint[..12.min(fingerprint.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(database: &str) -> DatabaseIdentity {
        DatabaseIdentity {
            system_identifier: "7000000000000000001".into(),
            database: database.into(),
            server_major: 17,
        }
    }

    /// A complete repair backup of `database` for the plan `fingerprint`.
    fn backup(
        parent: &Path,
        database: &str,
        fingerprint: &str,
        kind: BackupKind,
    ) -> std::path::PathBuf {
        let dir = parent.join(format!("{database}-{fingerprint}"));
        std::fs::create_dir_all(&dir).unwrap();
        for name in manifest::REQUIRED {
            std::fs::write(dir.join(name), format!("{name} of {database}")).unwrap();
        }
        manifest::write(&dir, kind, identity(database), fingerprint).unwrap();
        dir
    }

    #[test]
    fn a_backup_of_the_same_state_is_linked_file_for_file_without_its_manifest() {
        let parent = crate::files::temp_dir("reuse").unwrap();
        let from = backup(
            parent.path(),
            "copy",
            "f1f1f1f1f1f1f1f1",
            BackupKind::Repair,
        );
        let into = parent.path().join("drill");
        link(&from, &into, &identity("copy"), "f1f1f1f1f1f1f1f1").unwrap();
        for name in manifest::REQUIRED {
            assert_eq!(
                std::fs::read(into.join(name)).unwrap(),
                std::fs::read(from.join(name)).unwrap(),
                "{name}"
            );
        }
        assert!(!into.join(manifest::MANIFEST_FILE).exists());
    }

    #[test]
    fn a_backup_for_another_plan_another_database_or_a_rollback_is_refused_and_nothing_is_linked() {
        let parent = crate::files::temp_dir("reuse-refused").unwrap();
        let from = backup(
            parent.path(),
            "copy",
            "f1f1f1f1f1f1f1f1",
            BackupKind::Repair,
        );
        let safety = backup(parent.path(), "copy", "", BackupKind::PreRollback);
        let cases = [
            (
                &from,
                identity("copy"),
                "e2e2e2e2e2e2e2e2",
                "plan f1f1f1f1f1f1",
            ),
            (
                &from,
                identity("other"),
                "f1f1f1f1f1f1f1f1",
                "database \"copy\"",
            ),
            (&safety, identity("copy"), "", "safety backup"),
        ];
        for (i, (dir, live, fingerprint, says)) in cases.into_iter().enumerate() {
            let into = parent.path().join(format!("drill-{i}"));
            let error = link(dir, &into, &live, fingerprint)
                .unwrap_err()
                .to_string();
            assert!(error.contains(says), "case {i}: {error}");
            assert!(!into.exists(), "case {i}: nothing may be linked");
        }
    }

    #[test]
    fn a_tampered_backup_is_refused() {
        let parent = crate::files::temp_dir("reuse-tampered").unwrap();
        let from = backup(
            parent.path(),
            "copy",
            "f1f1f1f1f1f1f1f1",
            BackupKind::Repair,
        );
        std::fs::write(from.join("data.json"), "{}").unwrap();
        let into = parent.path().join("drill");
        let error = link(&from, &into, &identity("copy"), "f1f1f1f1f1f1f1f1").unwrap_err();
        assert!(error.to_string().contains("data.json"), "{error}");
        assert!(!into.exists());
    }
}
