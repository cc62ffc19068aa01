//! What a ledger row's recorded statements did that today's file does not —
//! found by replay, like every effect: on a scratch database set up like the
//! target, the migrations run in order; where the ledger recorded other
//! statements than a file, those run first inside a transaction that is
//! rolled back after the catalog is read, then the file runs. The
//! difference between the two catalogs, set against the live one, explains
//! an edited migration in words ("the recorded version also creates column
//! `public.user_consents.ip_address` (text); the live database has it;
//! today's file does not create it").

use std::collections::BTreeMap;

use sqlx::Connection;

use crate::engine::effects::Effects;
use crate::engine::environment::Scratch;
use crate::pg::sandbox::Database;
use crate::source::catalog::{Catalog, CatalogOptions, Change, Difference, ObjectKind, diff};
use crate::source::environment::Environment;
use crate::source::ledger::Ledger;
use crate::source::project::Project;
use crate::{Error, Result};

/// How one migration's recorded statements differ from its file in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// `diff(file's catalog, recorded statements' catalog)` at that point of the replay.
    pub differences: Vec<Difference>,
    /// The recorded statements failed on the replay (the message), if they did.
    pub failed: Option<String>,
}

/// The variants of every local migration whose ledger row recorded other
/// statements than its file; empty (and no scratch database) when none did.
pub async fn recorded_variants(
    project: &Project,
    ledger: &Ledger,
    effects: &Effects,
    major: u8,
    options: &CatalogOptions,
    environment: &Environment,
) -> Result<BTreeMap<String, Variant>> {
    let edited: BTreeMap<&str, &[String]> = project
        .migrations
        .iter()
        .filter_map(|m| {
            let recorded = ledger.get(&m.version)?.statements.as_deref()?;
            (recorded != m.statements.as_slice()).then_some((m.version.as_str(), recorded))
        })
        .collect();
    if edited.is_empty() {
        return Ok(BTreeMap::new());
    }
    let scratch = Database::fresh(major, "variants").await?;
    let mut conn = scratch.connect().await?;
    let result = async {
        let mut setup = Scratch::prepare(&mut conn, environment).await?;
        let mut out = BTreeMap::new();
        for (index, m) in project.migrations.iter().enumerate() {
            if let Some(recorded) = edited.get(m.version.as_str()) {
                let variant =
                    try_recorded(&mut conn, recorded, options, &effects.prefix(index + 1)).await?;
                out.insert(m.version.clone(), variant);
            }
            let mut tx = conn
                .begin()
                .await
                .map_err(Error::db("starting a replay transaction"))?;
            for statement in &m.statements {
                sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::db(format!("replaying {}", m.file_name())))?;
            }
            tx.commit()
                .await
                .map_err(Error::db(format!("replaying {}", m.file_name())))?;
            setup.after_migration(&mut conn).await?;
        }
        Ok(out)
    }
    .await;
    conn.close().await.ok();
    scratch.drop_database().await?;
    result
}

/// Runs `recorded` in a transaction, reads the catalog, rolls back.
async fn try_recorded(
    conn: &mut sqlx::PgConnection,
    recorded: &[String],
    options: &CatalogOptions,
    file_catalog: &Catalog,
) -> Result<Variant> {
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::db("starting a variant replay"))?;
    for statement in recorded {
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut *tx)
            .await
        {
            tx.rollback().await.ok();
            return Ok(Variant {
                differences: Vec::new(),
                failed: Some(crate::engine::effects::db_message(&e)),
            });
        }
    }
    let catalog = Catalog::introspect(&mut tx, options).await?;
    tx.rollback()
        .await
        .map_err(Error::db("ending a variant replay"))?;
    Ok(Variant {
        differences: diff(file_catalog, &catalog),
        failed: None,
    })
}

/// The variant in words, each line set against the live database.
pub fn explain(
    variant: &Variant,
    live: &Catalog,
    is_environment: impl Fn(&str) -> bool,
) -> Vec<String> {
    if let Some(message) = &variant.failed {
        return vec![format!(
            "the recorded statements no longer run after the migrations before them ({message}), so what they did cannot be compared"
        )];
    }
    let live_says = |key: &str| {
        if live.get(key).is_some() {
            "the live database has it"
        } else {
            "the live database does not have it"
        }
    };
    let mut lines = Vec::new();
    for d in variant
        .differences
        .iter()
        .filter(|d| !is_environment(&d.key))
    {
        let what = shown(d);
        let line = match &d.change {
            Change::Unexpected { .. } => format!(
                "the recorded version also creates {what}; {}; today's file does not create it",
                live_says(&d.key)
            ),
            Change::Missing { .. } => format!(
                "today's file creates {what}, which the recorded version did not; {}",
                live_says(&d.key)
            ),
            Change::Changed { expected, found } => {
                let now = match live.get(&d.key) {
                    Some(o) if o.definition == *found => {
                        "the live database has the recorded form".to_string()
                    }
                    Some(o) if o.definition == *expected => {
                        "the live database has today's form".to_string()
                    }
                    Some(_) => "the live database has a third form".to_string(),
                    None => "the live database does not have it".to_string(),
                };
                format!(
                    "the recorded version defines {} as `{}`, today's file as `{}`; {now}",
                    d.key,
                    short(found),
                    short(expected)
                )
            }
        };
        lines.push(line);
    }
    lines
}

/// `column public.t.c (text)`; a definition only where it says something short.
fn shown(d: &Difference) -> String {
    let definition = match &d.change {
        Change::Missing { expected } => expected,
        Change::Unexpected { found } | Change::Changed { found, .. } => found,
    };
    let says_nothing = definition.is_empty()
        || definition == d.kind.label()
        || matches!(
            d.kind,
            ObjectKind::Function | ObjectKind::View | ObjectKind::MaterializedView
        )
        || definition.len() > 80;
    if says_nothing {
        d.key.clone()
    } else {
        format!("{} ({definition})", d.key)
    }
}

fn short(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::catalog::Object;

    #[test]
    fn a_recorded_column_the_file_lost_is_explained_against_the_live_table() {
        let mut live = Catalog::default();
        live.objects.insert(
            "column public.user_consents.ip_address".into(),
            Object {
                key: "column public.user_consents.ip_address".into(),
                kind: ObjectKind::Column,
                definition: "text".into(),
            },
        );
        let variant = Variant {
            differences: vec![
                Difference {
                    key: "column public.user_consents.ip_address".into(),
                    kind: ObjectKind::Column,
                    change: Change::Unexpected {
                        found: "text".into(),
                    },
                },
                Difference {
                    key: "grant public.user_consents anon".into(),
                    kind: ObjectKind::Grant,
                    change: Change::Unexpected {
                        found: "SELECT".into(),
                    },
                },
            ],
            failed: None,
        };
        let lines = explain(&variant, &live, |k| k.starts_with("grant "));
        assert_eq!(
            lines,
            vec!["the recorded version also creates column public.user_consents.ip_address (text); the live database has it; today's file does not create it".to_string()]
        );
    }
}
