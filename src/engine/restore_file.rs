//! `phantom-sync restore-file VERSION`: writes a migration file from what
//! the ledger recorded for it — for an applied migration edited after it
//! ran, or a remote-only row whose file is lost. The file is written for
//! review, never over an existing one unless asked, and only if the Supabase
//! CLI would split it back into exactly the recorded statements (so, once in
//! the migrations folder, the ledger row and the file agree byte for byte).

use std::path::{Path, PathBuf};

use crate::files::write_atomic;
use crate::source::ledger::Ledger;
use crate::source::project::Project;
use crate::source::split::split_and_trim;
use crate::{Error, Result};

/// Where `restore-file` writes unless told otherwise.
pub const DEFAULT_OUT: &str = ".phantom/restored";

/// A file written from the ledger.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct RestoredFile {
    pub version: String,
    pub path: PathBuf,
    pub statements: usize,
    /// The local file of the same version that differs, if there is one.
    pub replaces: Option<PathBuf>,
}

/// The file text for `statements`: each followed by `;` and a blank line.
/// No comment is added: a leading comment would become part of the first
/// statement as the CLI stores it, and the file would differ from the ledger.
pub fn file_text(statements: &[String]) -> String {
    statements.iter().map(|s| format!("{s};\n\n")).collect()
}

/// Writes `<out>/<version>_<name>.sql` from the ledger row of `version`.
pub fn restore_file(
    ledger: &Ledger,
    project: Option<&Project>,
    version: &str,
    out: &Path,
    force: bool,
) -> Result<RestoredFile> {
    let row = ledger.get(version).ok_or_else(|| {
        Error::Invalid(format!(
            "restore-file {version}: the ledger has no row with this version (hint: `phantom-sync list` shows the recorded versions)"
        ))
    })?;
    let statements = row.statements.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
        Error::Invalid(format!(
            "restore-file {version}: the ledger row recorded no statements (it was written by hand or by an old CLI), so there is nothing to restore (hint: take the file from version control)"
        ))
    })?;
    let local = project.and_then(|p| p.get(version));
    let name = row
        .name
        .clone()
        .or_else(|| local.map(|m| m.name.clone()))
        .unwrap_or_else(|| "restored".into());
    let text = file_text(statements);
    if split_and_trim(&text) != statements {
        return Err(Error::Invalid(format!(
            "restore-file {version}: the recorded statements would not split back into themselves as a file (the Supabase CLI would store them differently), so no file was written (hint: copy them from `phantom-sync list --json` by hand)"
        )));
    }
    let path = out.join(format!("{version}_{name}.sql"));
    if path.exists() && !force {
        return Err(Error::Invalid(format!(
            "{}: already exists; nothing was written (hint: choose another --out, or add --force to replace it)",
            path.display()
        )));
    }
    write_atomic(&path, &text)?;
    Ok(RestoredFile {
        version: version.to_string(),
        path,
        statements: statements.len(),
        replaces: local
            .filter(|m| m.statements.as_slice() != statements)
            .map(|m| m.path.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::ledger::LedgerRow;

    fn ledger(statements: Option<Vec<&str>>) -> Ledger {
        Ledger {
            exists: true,
            rows: vec![LedgerRow {
                version: "20250411083417".into(),
                name: Some("create_user_consents".into()),
                statements: statements.map(|s| s.into_iter().map(String::from).collect()),
            }],
        }
    }

    #[test]
    fn a_restored_file_splits_back_into_the_recorded_statements() {
        let dir = crate::files::temp_dir("restore").unwrap();
        let recorded = vec![
            "create table public.user_consents (id uuid primary key, ip_address text)",
            "comment on column public.user_consents.ip_address is 'where; from'",
            "create function f() returns int language sql as $$ select 1; $$",
        ];
        let done = restore_file(
            &ledger(Some(recorded.clone())),
            None,
            "20250411083417",
            dir.path(),
            false,
        )
        .unwrap();
        assert_eq!(
            done.path,
            dir.path().join("20250411083417_create_user_consents.sql")
        );
        let project = Project::load(dir.path()).unwrap();
        let expected: Vec<String> = recorded.iter().map(|s| s.to_string()).collect();
        assert_eq!(project.migrations[0].statements, expected);
        assert_eq!(project.migrations[0].name, "create_user_consents");
        let again = restore_file(
            &ledger(Some(recorded)),
            None,
            "20250411083417",
            dir.path(),
            false,
        );
        assert!(again.unwrap_err().to_string().contains("already exists"));
    }

    #[test]
    fn rows_without_statements_cannot_be_restored() {
        let dir = crate::files::temp_dir("restore").unwrap();
        let err =
            restore_file(&ledger(None), None, "20250411083417", dir.path(), false).unwrap_err();
        assert!(err.to_string().contains("recorded no statements"), "{err}");
        let err = restore_file(&ledger(None), None, "1", dir.path(), false).unwrap_err();
        assert!(
            err.to_string().contains("no row with this version"),
            "{err}"
        );
    }
}
