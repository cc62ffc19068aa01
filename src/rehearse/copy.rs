//! A copy of the capture to work on: a fresh database with the Supabase
//! shim on a server of the capture's major, the capture's roles created
//! there (without login), the ids of `auth.users` its foreign keys need, then
//! the dump restored.

use std::path::Path;

use super::capture::Capture;
use crate::engine::backup::dump_scope;
use crate::pg::sandbox::Database;
use crate::pg::tools::PgTools;
use crate::{Error, Result};

/// A fresh database holding the capture.
pub(crate) async fn restore_copy(capture: &Capture, dump: &Path, label: &str) -> Result<Database> {
    let copy = Database::fresh(capture.major, label).await?;
    match fill(&copy, capture, dump).await {
        Ok(()) => Ok(copy),
        Err(e) => {
            let _ = copy.drop_database().await;
            Err(e)
        }
    }
}

async fn fill(copy: &Database, capture: &Capture, dump: &Path) -> Result<()> {
    let tools = PgTools::for_database(copy);
    copy.create_roles(&tools.archive_roles(dump).await?).await?;
    let users = match &capture.users {
        Some(users) => users.clone(),
        None => tools.archive_user_ids(dump).await?.unwrap_or_default(),
    };
    let mut conn = copy.connect().await?;
    sqlx::query("INSERT INTO auth.users (id) SELECT unnest($1::text[])::uuid")
        .bind(&users)
        .execute(&mut conn)
        .await
        .map_err(Error::db("copying the ids of auth.users"))?;
    drop(conn);
    tools
        .restore_database(&copy.target(), dump, &dump_scope())
        .await
        .map_err(|e| match (&capture.users, e) {
            (None, Error::Tool { tool, detail })
                if detail.contains("auth") || detail.contains("\"users\"") =>
            {
                Error::Tool {
                    tool,
                    detail: format!(
                        "{detail}\n(hint: make the dump of the whole database — pg_dump -Fc with the auth schema — so that the copy gets the auth.users rows its foreign keys need)"
                    ),
                }
            }
            (_, e) => e,
        })
}
