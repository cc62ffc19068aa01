//! The success checklist of the incident plan, generalised. The plan checks
//! that tables exist and counts match; that misses a table that survived
//! `CREATE TABLE IF NOT EXISTS` with another shape, so here the whole schema
//! is compared with a clean replay of every migration, besides the ledger,
//! the seed rows and the data of every table that existed before.

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;

use crate::Result;
use crate::engine::backup::{DataSnapshot, TableComparison};
use crate::engine::diagnose::{Status, diagnose};
use crate::engine::effects::{Effects, project_rows};
use crate::engine::plan::{Plan, Tolerated};
use crate::source::catalog::{Catalog, CatalogOptions, diff};
use crate::source::ledger::Ledger;
use crate::source::project::Project;
use crate::text::count;

/// What the checklist looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Check seed rows (false on a schema-only copy).
    pub data: bool,
    /// Tables the application writes to during the repair, or that a
    /// re-applied migration alters: they may gain rows but not lose any.
    pub live_tables: Vec<String>,
    /// Differences from a clean replay that are to stay as they were: the
    /// environment's, and pre-existing drift the user accepted.
    pub tolerated: Tolerated,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            data: true,
            live_tables: Vec::new(),
            tolerated: Tolerated::default(),
        }
    }
}

impl VerifyOptions {
    /// These options, tolerating what `plan` tolerates.
    pub fn for_plan(&self, plan: &Plan) -> VerifyOptions {
        VerifyOptions {
            tolerated: plan.tolerated.clone(),
            ..self.clone()
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub evidence: Vec<String>,
}

/// The checklist and the data preservation table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Verification {
    pub checks: Vec<Check>,
    pub preservation: Vec<TableComparison>,
}

impl Verification {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The failed checks.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }
}

/// Runs the checklist against `conn`. `before` is Phase 1's record of the
/// tables that existed before the repair (their data must be unchanged).
/// `scope` says whether there is data to check and which tables the
/// application may write to meanwhile.
pub async fn verify(
    conn: &mut PgConnection,
    project: &Project,
    effects: &Effects,
    before: Option<&DataSnapshot>,
    options: &CatalogOptions,
    scope: &VerifyOptions,
) -> Result<Verification> {
    let ledger = Ledger::read(conn).await?;
    let live = Catalog::introspect(conn, options).await?;
    let mut checks = vec![ledger_check(project, &ledger)];
    let diagnosis = diagnose(project, &ledger, &live, effects);
    let out_of_sync: Vec<String> = diagnosis
        .entries
        .iter()
        .filter(|e| !matches!(e.status, Status::Applied | Status::Edited))
        .map(|e| format!("{} {}: {}", e.version, e.name, e.status.label()))
        .collect();
    checks.push(Check {
        name: match project.migrations.len() {
            1 => "The one migration applied (Local = Remote in `migration list`)".to_string(),
            n => format!("All {n} migrations applied (Local = Remote in `migration list`)"),
        },
        passed: out_of_sync.is_empty(),
        evidence: out_of_sync,
    });
    checks.extend(schema_checks(effects, &live, &scope.tolerated));
    if scope.data {
        checks.push(seed_check(conn, effects).await?);
    }
    let preservation = match before {
        Some(snapshot) => {
            let after =
                crate::engine::backup::guard::capture_changed(conn, snapshot, &scope.live_tables)
                    .await?;
            let comparison = snapshot.compare_allowing_growth(&after, &scope.live_tables);
            let changed: Vec<String> = comparison
                .iter()
                .filter(|c| !c.preserved)
                .map(|c| match &c.after {
                    Some(a) => format!(
                        "{}: {} before, {} after, checksum {}",
                        c.table,
                        count(c.before.rows, "row"),
                        a.rows,
                        if a.checksum == c.before.checksum {
                            "equal"
                        } else {
                            "differs"
                        }
                    ),
                    None => format!("{}: missing", c.table),
                })
                .collect();
            checks.push(Check {
                name: format!(
                    "Data of the {} that existed before is unchanged (counts and checksums)",
                    count(comparison.len(), "table")
                ),
                passed: changed.is_empty(),
                evidence: changed,
            });
            comparison
        }
        None => Vec::new(),
    };
    Ok(Verification {
        checks,
        preservation,
    })
}

/// The `db pull` check, generalised: the schema equals a clean replay of
/// every migration, except for what the plan tolerates — which must still be
/// there exactly as it was (the repair changed none of it).
fn schema_checks(effects: &Effects, live: &Catalog, tolerated: &Tolerated) -> Vec<Check> {
    let remaining: Vec<String> = diff(effects.final_catalog(), live)
        .iter()
        .map(|d| d.describe())
        .collect();
    let untolerated: Vec<String> = remaining
        .iter()
        .filter(|d| !tolerated.covers(d))
        .cloned()
        .collect();
    let tolerated_count = remaining.len() - untolerated.len();
    let mut name =
        "Schema equals a clean replay of every migration (the `db pull` check)".to_string();
    if tolerated_count > 0 {
        name.push_str(&format!(
            ", apart from {tolerated_count} tolerated difference{}",
            if tolerated_count == 1 { "" } else { "s" }
        ));
    }
    let mut checks = vec![Check {
        name,
        passed: untolerated.is_empty(),
        evidence: untolerated,
    }];
    if !tolerated.pre_existing.is_empty() {
        let changed: Vec<String> = tolerated
            .pre_existing
            .iter()
            .filter(|d| !remaining.contains(&d.description))
            .map(|d| format!("{}: no longer as it was", d.description))
            .collect();
        let mut evidence: Vec<String> = tolerated
            .pre_existing
            .iter()
            .map(|d| match (&d.table, d.rows) {
                (Some(t), Some(n)) => {
                    format!("{} ({t}: {n} rows before the repair)", d.description)
                }
                _ => d.description.clone(),
            })
            .collect();
        evidence.extend(changed.iter().cloned());
        checks.push(Check {
            name: format!(
                "Pre-existing drift kept as it was ({} accepted difference{})",
                tolerated.pre_existing.len(),
                if tolerated.pre_existing.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ),
            passed: changed.is_empty(),
            evidence,
        });
    }
    checks
}

fn ledger_check(project: &Project, ledger: &Ledger) -> Check {
    let mut evidence = Vec::new();
    for m in &project.migrations {
        match ledger.get(&m.version) {
            None => evidence.push(format!("{}: not in the ledger", m.file_name())),
            Some(row) if row.name.as_deref() != Some(m.name.as_str()) => evidence.push(format!(
                "{}: recorded with name {:?}",
                m.file_name(),
                row.name
            )),
            Some(_) => {}
        }
    }
    for row in &ledger.rows {
        if project.get(&row.version).is_none() {
            evidence.push(format!("{}: in the ledger, no local file", row.version));
        }
    }
    Check {
        name: "Ledger lists exactly the local migrations".into(),
        passed: evidence.is_empty(),
        evidence,
    }
}

async fn seed_check(conn: &mut PgConnection, effects: &Effects) -> Result<Check> {
    let mut evidence = Vec::new();
    let mut expected_rows = 0;
    for (table, rows) in &effects.seed {
        expected_rows += rows.len();
        let columns = columns_of(rows);
        let found = match project_rows(conn, table, &columns).await {
            Ok(found) => found,
            Err(_) => {
                evidence.push(format!("{table}: cannot be read (missing?)"));
                continue;
            }
        };
        let missing: Vec<&String> = rows.iter().filter(|r| !found.contains(r)).collect();
        if let Some(first) = missing.first() {
            evidence.push(format!(
                "{table}: {} of {} seed rows missing, e.g. {first}",
                missing.len(),
                rows.len()
            ));
        }
    }
    if !evidence.is_empty() {
        evidence.push(
            "hint: seed statements insert only where the rows they reference exist (e.g. the organization a catalog belongs to); insert the missing rows, then verify again".into(),
        );
    }
    Ok(Check {
        name: format!(
            "Seed data present ({} in {})",
            count(expected_rows, "row"),
            count(effects.seed.len(), "table")
        ),
        passed: evidence.is_empty(),
        evidence,
    })
}

/// The column names of projected seed rows (JSON objects with sorted keys).
fn columns_of(rows: &[String]) -> Vec<String> {
    rows.first()
        .and_then(|r| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(r).ok())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, passed: bool) -> Check {
        Check {
            name: name.into(),
            passed,
            evidence: Vec::new(),
        }
    }

    use crate::engine::diagnose::Drift;
    use crate::engine::diagnose::fixtures::{catalog, effect, ledger, migration, project};
    use crate::source::catalog::{Change, Difference, ObjectKind};

    /// A table no migration made, as pre-existing drift.
    fn hand_made(description: &str, rows: Option<i64>) -> Drift {
        Drift {
            difference: Difference {
                key: "table public.hand_made".into(),
                kind: ObjectKind::Table,
                change: Change::Unexpected {
                    found: "table".into(),
                },
            },
            description: description.into(),
            table: Some("public.hand_made".into()),
            rows,
        }
    }

    const A: &str = "create table public.a (id int)";
    const B: &str = "create table public.b (id int)";

    #[test]
    fn the_ledger_must_list_exactly_the_local_migrations_under_their_names() {
        let project = project(vec![migration("1", A), migration("2", B)]);
        assert!(ledger_check(&project, &ledger(&[("1", A), ("2", B)])).passed);
        let missing = ledger_check(&project, &ledger(&[("1", A)]));
        assert!(!missing.passed);
        assert_eq!(missing.evidence, vec!["2_m2.sql: not in the ledger"]);
        let extra = ledger_check(&project, &ledger(&[("1", A), ("2", B), ("3", B)]));
        assert_eq!(extra.evidence, vec!["3: in the ledger, no local file"]);
        let mut renamed = ledger(&[("1", A), ("2", B)]);
        renamed.rows[1].name = Some("other".into());
        let renamed = ledger_check(&project, &renamed);
        assert!(!renamed.passed);
        assert!(
            renamed.evidence[0].contains("recorded with name"),
            "{renamed:?}"
        );
    }

    #[test]
    fn the_schema_check_counts_what_is_tolerated_and_proves_drift_unchanged() {
        let effects = Effects::new(
            Catalog::default(),
            vec![effect("1", &["public.a"], &[])],
            Default::default(),
        );
        let exact = schema_checks(&effects, &catalog(&["public.a"]), &Tolerated::default());
        assert_eq!(exact.len(), 1);
        assert!(exact[0].passed && !exact[0].name.contains("tolerated"));

        let live = catalog(&["public.a", "public.hand_made"]);
        let extra = schema_checks(&effects, &live, &Tolerated::default());
        assert!(
            !extra[0].passed && !extra[0].name.contains("tolerated"),
            "{extra:?}"
        );
        let description = extra[0].evidence[0].clone();

        let drift = hand_made(&description, Some(2));
        let tolerated = Tolerated {
            environment: Vec::new(),
            pre_existing: vec![drift],
        };
        let kept = schema_checks(&effects, &live, &tolerated);
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(kept[0].passed, "{kept:?}");
        assert!(
            kept[0].name.ends_with("apart from 1 tolerated difference"),
            "{kept:?}"
        );
        assert!(kept[1].passed, "{kept:?}");
        assert!(
            kept[1].evidence[0].contains("2 rows before the repair"),
            "{kept:?}"
        );

        // The drift is gone after the repair: it was not kept as it was.
        let gone = schema_checks(&effects, &catalog(&["public.a"]), &tolerated);
        assert!(gone[0].passed && !gone[1].passed, "{gone:?}");
        assert!(
            gone[1]
                .evidence
                .iter()
                .any(|e| e.ends_with("no longer as it was"))
        );
    }

    #[test]
    fn seed_rows_are_read_back_by_the_columns_they_were_projected_on() {
        let rows = vec![
            r#"{"id":1,"name":"free"}"#.to_string(),
            r#"{"id":2,"name":"pro"}"#.to_string(),
        ];
        assert_eq!(columns_of(&rows), vec!["id", "name"]);
        assert!(columns_of(&[]).is_empty());
        assert!(columns_of(&["not json".to_string()]).is_empty());
    }

    #[test]
    fn the_options_for_a_plan_tolerate_what_the_plan_tolerates_and_keep_the_rest() {
        let drift = hand_made("hand made", None);
        let plan = Plan {
            tolerated: Tolerated {
                environment: Vec::new(),
                pre_existing: vec![drift],
            },
            fingerprint: "f".into(),
            digest: String::new(),
            options: Default::default(),
            data_at_risk: Vec::new(),
            steps: Vec::new(),
            refusals: Vec::new(),
            warnings: Vec::new(),
        };
        let options = VerifyOptions {
            data: false,
            live_tables: vec!["public.events".into()],
            tolerated: Tolerated::default(),
        };
        let for_plan = options.for_plan(&plan);
        assert_eq!(for_plan.tolerated, plan.tolerated);
        assert!(!for_plan.data);
        assert_eq!(for_plan.live_tables, vec!["public.events"]);
    }

    #[test]
    fn a_verification_passes_only_when_every_check_does() {
        let all = Verification {
            checks: vec![check("ledger", true), check("schema", true)],
            preservation: Vec::new(),
        };
        assert!(all.passed());
        assert!(all.failures().is_empty());
        let one_failed = Verification {
            checks: vec![check("ledger", true), check("schema", false)],
            preservation: Vec::new(),
        };
        assert!(!one_failed.passed());
        let failed: Vec<&str> = one_failed
            .failures()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(failed, vec!["schema"]);
    }
}
