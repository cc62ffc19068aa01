//! Plain-data inputs for the unit tests of `diagnose` and `plan`: a project,
//! a ledger, a live catalog and the replay's effects, made by hand.

use std::path::PathBuf;

use crate::engine::effects::MigrationEffects;
use crate::source::catalog::{Catalog, Change, Difference, Object, ObjectKind};
use crate::source::ledger::{Ledger, LedgerRow};
use crate::source::project::{Migration, Project};

pub(crate) fn migration(version: &str, sql: &str) -> Migration {
    Migration {
        version: version.into(),
        name: format!("m{version}"),
        path: PathBuf::from(format!("{version}_m{version}.sql")),
        sql: sql.into(),
        statements: vec![sql.to_string()],
    }
}

pub(crate) fn project(migrations: Vec<Migration>) -> Project {
    Project {
        dir: PathBuf::from("supabase/migrations"),
        migrations,
        skipped: Vec::new(),
    }
}

/// A ledger holding `(version, statement)` rows.
pub(crate) fn ledger(rows: &[(&str, &str)]) -> Ledger {
    Ledger {
        exists: true,
        rows: rows
            .iter()
            .map(|(version, sql)| LedgerRow {
                version: version.to_string(),
                name: Some(format!("m{version}")),
                statements: Some(vec![sql.to_string()]),
            })
            .collect(),
    }
}

/// What a migration did: tables it created and tables it dropped.
pub(crate) fn effect(version: &str, created: &[&str], dropped: &[&str]) -> MigrationEffects {
    let table = |name: &str, change: Change| Difference {
        key: format!("table {name}"),
        kind: ObjectKind::Table,
        change,
    };
    let mut changes: Vec<Difference> = created
        .iter()
        .map(|t| {
            table(
                t,
                Change::Missing {
                    expected: "table".into(),
                },
            )
        })
        .collect();
    changes.extend(dropped.iter().map(|t| {
        table(
            t,
            Change::Unexpected {
                found: "table".into(),
            },
        )
    }));
    MigrationEffects {
        version: version.into(),
        changes,
    }
}

pub(crate) fn catalog(tables: &[&str]) -> Catalog {
    let mut catalog = Catalog::default();
    for t in tables {
        catalog.insert(Object::new(ObjectKind::Table, t, "table"));
    }
    catalog
}
