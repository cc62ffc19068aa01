//! Builds a scenario's starting state on a fresh database that has the
//! Supabase shim. Migrations are visited in the fixture's order and each gets
//! its role from the file: pushed like `db push` (statements and ledger row in
//! one transaction), applied without a row, partly applied, recorded under
//! other statements or another version, or recorded but absent — the last by
//! the mechanism `state.origin` names. Then come the remote-only rows, the
//! "restore-newer-ledger" replay, and last the drift SQL.

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};

use super::{Origin, Ran, Scenario, State, bulk, validate};
use crate::error::{Error, Result};
use crate::pg::sql::{quote_literal, sql_state};
use crate::source::ledger::{self, Ledger};
use crate::source::project::{Migration, Project};

/// SQLSTATE 57014, `query_canceled`: what a statement timeout raises.
const QUERY_CANCELED: &str = "57014";

/// What the state does with one local migration.
enum Role<'a> {
    Applied,
    Phantom,
    Partial(&'a [usize]),
    Unrecorded,
    Edited(&'a [String], Ran),
    ReVersioned(&'a str),
    Pending,
}

/// Produces `scenario`'s starting state through `conn`, a connection to a
/// fresh database with the Supabase shim (e.g. `pg::sandbox::Database::fresh`).
/// `project` is the scenario's fixture (`scenario.project()`); the versions
/// the file names are checked against it first. Every step commits, so the
/// state is there for any other connection once this returns. The data
/// script's `fixture.*` settings stay set on `conn`.
pub async fn build_state(
    scenario: &Scenario,
    project: &Project,
    conn: &mut PgConnection,
) -> Result<()> {
    validate::against(scenario, project)?;
    let state = &scenario.state;
    run_sql(conn, scenario, "state.environment", &state.environment).await?;
    if !state.no_ledger {
        ledger::ensure_table(conn).await?;
    }
    let data_after = data_after(state, project);
    let mut newer_ledger = Vec::new();
    for migration in &project.migrations {
        match role(state, &migration.version) {
            Role::Applied => {
                push(
                    conn,
                    scenario,
                    migration,
                    all(migration),
                    Some((&migration.version, &migration.statements)),
                )
                .await?
            }
            Role::Unrecorded => push(conn, scenario, migration, all(migration), None).await?,
            Role::Partial(numbers) => {
                let chosen = numbered(migration)
                    .filter(|(n, _)| numbers.contains(n))
                    .collect();
                push(
                    conn,
                    scenario,
                    migration,
                    chosen,
                    Some((&migration.version, &migration.statements)),
                )
                .await?;
            }
            Role::Edited(recorded, Ran::File) => {
                push(
                    conn,
                    scenario,
                    migration,
                    all(migration),
                    Some((&migration.version, recorded)),
                )
                .await?
            }
            Role::Edited(recorded, Ran::Recorded) => {
                let ran: Vec<(usize, &String)> = recorded
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (i + 1, s))
                    .collect();
                push(
                    conn,
                    scenario,
                    migration,
                    ran,
                    Some((&migration.version, recorded)),
                )
                .await?
            }
            Role::ReVersioned(version) => {
                push(
                    conn,
                    scenario,
                    migration,
                    all(migration),
                    Some((version, &migration.statements)),
                )
                .await?
            }
            Role::Phantom => match state.origin.unwrap_or(Origin::LedgerOnly) {
                Origin::LedgerOnly => {
                    ledger::mark_applied(
                        conn,
                        &migration.version,
                        &migration.name,
                        &migration.statements,
                    )
                    .await?;
                }
                Origin::CommitThenRollback => {
                    commit_then_rollback(conn, scenario, migration).await?
                }
                Origin::HandEdited => hand_edited(conn, migration).await?,
                Origin::RestoreNewerLedger => newer_ledger.push(migration),
            },
            Role::Pending => {}
        }
        if data_after.as_deref() == Some(migration.version.as_str()) {
            run_data(conn, scenario).await?;
        }
    }
    remote_only(conn, scenario).await?;
    if !newer_ledger.is_empty() {
        restore_newer_ledger(conn, scenario, &newer_ledger).await?;
    }
    for row in &state.recorded {
        let statements: Vec<String> = match project.get(&row.version) {
            Some(m) if row.statements.is_empty() => {
                m.statements.iter().chain(&row.append).cloned().collect()
            }
            _ => row.statements.clone(),
        };
        sqlx::query(
            "UPDATE supabase_migrations.schema_migrations SET statements = $1 WHERE version = $2",
        )
        .bind(&statements)
        .bind(&row.version)
        .execute(&mut *conn)
        .await
        .map_err(Error::db(format!(
            "{}: state.recorded {}",
            scenario.path.display(),
            row.version
        )))?;
    }
    run_sql(conn, scenario, "state.drift", &state.drift).await
}

/// Runs a list of SQL texts from the scenario file, each naming its field on failure.
async fn run_sql(
    conn: &mut PgConnection,
    scenario: &Scenario,
    field: &str,
    list: &[String],
) -> Result<()> {
    for (index, sql) in list.iter().enumerate() {
        sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .execute(&mut *conn)
            .await
            .map_err(Error::db(format!(
                "{}: {field}[{index}]",
                scenario.path.display()
            )))?;
    }
    Ok(())
}

fn role<'a>(state: &'a State, version: &str) -> Role<'a> {
    let is = |list: &[String]| list.iter().any(|v| v == version);
    if is(&state.applied) {
        Role::Applied
    } else if is(&state.phantom) {
        Role::Phantom
    } else if is(&state.unrecorded) {
        Role::Unrecorded
    } else if let Some(partial) = state.partial.iter().find(|p| p.version == version) {
        Role::Partial(&partial.statements)
    } else if let Some(edited) = state.edited.iter().find(|e| e.version == version) {
        Role::Edited(&edited.statements, edited.ran)
    } else if let Some(moved) = state.re_versioned.iter().find(|r| r.version == version) {
        Role::ReVersioned(&moved.recorded_as)
    } else {
        Role::Pending
    }
}

/// `state.data_after`, or the last version of `state.applied` in fixture order.
fn data_after(state: &State, project: &Project) -> Option<String> {
    state.data.as_ref()?;
    state.data_after.clone().or_else(|| {
        project
            .versions()
            .filter(|v| state.applied.iter().any(|a| a == v))
            .last()
            .map(str::to_string)
    })
}

/// A migration's statements with their 1-based numbers.
fn numbered(migration: &Migration) -> impl Iterator<Item = (usize, &String)> {
    migration
        .statements
        .iter()
        .enumerate()
        .map(|(i, s)| (i + 1, s))
}

fn all(migration: &Migration) -> Vec<(usize, &String)> {
    numbered(migration).collect()
}

/// Runs `statements` of `migration` and, when `record` says so, inserts its
/// ledger row `(version, file name, statements)` — one transaction, as `db push`.
async fn push(
    conn: &mut PgConnection,
    scenario: &Scenario,
    migration: &Migration,
    statements: Vec<(usize, &String)>,
    record: Option<(&str, &[String])>,
) -> Result<()> {
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::db("starting a scenario transaction"))?;
    run_statements(&mut tx, scenario, migration, &statements).await?;
    if let Some((version, recorded)) = record {
        ledger::mark_applied(&mut tx, version, &migration.name, recorded).await?;
    }
    tx.commit().await.map_err(Error::db(format!(
        "committing migration {}",
        migration.version
    )))
}

async fn run_statements(
    conn: &mut PgConnection,
    scenario: &Scenario,
    migration: &Migration,
    statements: &[(usize, &String)],
) -> Result<()> {
    for (number, sql) in statements {
        sqlx::raw_sql(AssertSqlSafe((*sql).clone()))
            .execute(&mut *conn)
            .await
            .map_err(Error::db(format!(
                "{}: building the state: migration {}, statement {number}",
                scenario.path.display(),
                migration.version
            )))?;
    }
    Ok(())
}

/// The incident's mechanism: the ledger row commits on its own, then the
/// migration runs in a transaction that fails and rolls back — at its first
/// failing statement (a later phantom whose prerequisites are absent fails
/// so), or else at a 1 ms statement timeout after its last statement.
async fn commit_then_rollback(
    conn: &mut PgConnection,
    scenario: &Scenario,
    migration: &Migration,
) -> Result<()> {
    ledger::mark_applied(
        conn,
        &migration.version,
        &migration.name,
        &migration.statements,
    )
    .await?;
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::db("starting the migration that will fail"))?;
    for statement in &migration.statements {
        if sqlx::raw_sql(AssertSqlSafe(statement.clone()))
            .execute(&mut *tx)
            .await
            .is_err()
        {
            return tx.rollback().await.map_err(Error::db(format!(
                "rolling back migration {}",
                migration.version
            )));
        }
    }
    sqlx::raw_sql("SET LOCAL statement_timeout = 1")
        .execute(&mut *tx)
        .await
        .map_err(Error::db("setting a 1 ms statement timeout"))?;
    let timed_out = sqlx::raw_sql("SELECT pg_sleep(5)").execute(&mut *tx).await;
    match timed_out {
        Err(err) if sql_state(&err).as_deref() == Some(QUERY_CANCELED) => {
            tx.rollback().await.map_err(Error::db(format!(
                "rolling back migration {}",
                migration.version
            )))
        }
        Err(err) => Err(Error::db(format!(
            "timing out migration {}",
            migration.version
        ))(err)),
        Ok(_) => Err(Error::Invalid(format!(
            "{}: migration {} did not time out under a 1 ms statement timeout (hint: use origin = \"ledger-only\" on this server)",
            scenario.path.display(),
            migration.version
        ))),
    }
}

/// What a person types in the SQL editor: version and name, no statements.
async fn hand_edited(conn: &mut PgConnection, migration: &Migration) -> Result<()> {
    let sql = format!(
        "INSERT INTO supabase_migrations.schema_migrations (version, name) VALUES ({}, {})",
        quote_literal(&migration.version),
        quote_literal(&migration.name)
    );
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .map_err(Error::db(format!(
            "inserting ledger row {} by hand",
            migration.version
        )))?;
    Ok(())
}

/// Pushes `migrations` in a transaction, reads the ledger it leaves (the newer
/// ledger), rolls the transaction back (the schema as the older backup has
/// it) and restores the newer ledger over it.
async fn restore_newer_ledger(
    conn: &mut PgConnection,
    scenario: &Scenario,
    migrations: &[&Migration],
) -> Result<()> {
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::db("starting the newer push"))?;
    for migration in migrations {
        run_statements(&mut tx, scenario, migration, &all(migration)).await?;
        ledger::mark_applied(
            &mut tx,
            &migration.version,
            &migration.name,
            &migration.statements,
        )
        .await?;
    }
    let newer = Ledger::read(&mut tx).await?;
    tx.rollback()
        .await
        .map_err(Error::db("rolling back to the older schema"))?;
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::db("starting the ledger restore"))?;
    ledger::restore(&mut tx, &newer).await?;
    tx.commit()
        .await
        .map_err(Error::db("committing the newer ledger"))
}

/// Remote-only rows: their statements run and the row is recorded, as a push
/// from another checkout would have done.
async fn remote_only(conn: &mut PgConnection, scenario: &Scenario) -> Result<()> {
    for (index, remote) in scenario.state.remote_only.iter().enumerate() {
        let mut tx = conn
            .begin()
            .await
            .map_err(Error::db("starting a remote-only push"))?;
        for sql in &remote.statements {
            sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                .execute(&mut *tx)
                .await
                .map_err(Error::db(format!(
                    "{}: state.remote_only[{index}]",
                    scenario.path.display()
                )))?;
        }
        ledger::mark_applied(&mut tx, &remote.version, &remote.name, &remote.statements).await?;
        tx.commit().await.map_err(Error::db(format!(
            "committing remote-only row {}",
            remote.version
        )))?;
    }
    Ok(())
}

/// Runs the data script with the `data_scale` session settings, in one
/// transaction; with `data_bulk`, as a bulk load whose foreign keys are
/// checked once at the end.
async fn run_data(conn: &mut PgConnection, scenario: &Scenario) -> Result<()> {
    let Some(path) = scenario.data_path() else {
        return Ok(());
    };
    let sql = std::fs::read_to_string(&path).map_err(Error::io("reading data script", &path))?;
    let mut tx = conn
        .begin()
        .await
        .map_err(Error::db("starting the data script"))?;
    for (setting, value) in &scenario.state.data_scale {
        sqlx::query("SELECT set_config($1, $2, false)")
            .bind(setting)
            .bind(value.to_string())
            .execute(&mut *tx)
            .await
            .map_err(Error::db(format!(
                "{}: state.data_scale.{setting}",
                scenario.path.display()
            )))?;
    }
    if scenario.state.data_bulk {
        bulk::begin(&mut tx, scenario).await?;
    }
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut *tx)
        .await
        .map_err(Error::db(format!(
            "{}: running {}",
            scenario.path.display(),
            path.display()
        )))?;
    if scenario.state.data_bulk {
        bulk::end(&mut tx, scenario).await?;
    }
    tx.commit()
        .await
        .map_err(Error::db("committing the data script"))
}
