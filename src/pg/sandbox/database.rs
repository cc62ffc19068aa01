//! Scenario databases: each test or rehearsal step gets its own database,
//! cloned from a template that already holds the Supabase shim
//! (`CREATE DATABASE … TEMPLATE …`); any database can be cloned the same way
//! ([`Database::clone_as`]: the rehearsal restores its capture once and
//! clones it for the repair and each drill). PostgreSQL refuses to clone a template
//! while anything is connected to it, so the template is built once per
//! server under a lock and never left with an open connection; clones then
//! run concurrently (retried if a stray session holds the template).

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::admin::{self, AdminError};
use super::server::{PgServer, unique};
use crate::pg::sql::{quote_ident, sql_state};
use crate::pg::target::Target;
use crate::{Error, Result};

/// The Supabase shim applied to every template (see the file's header for what it emulates).
pub const SUPABASE_SHIM: &str = include_str!("supabase_shim.sql");

/// Name of the template database that carries the shim.
pub const TEMPLATE: &str = "phantom_template";
/// Name of the template without the shim (`PHANTOM_SHIM=off`, or a plain server).
pub const BARE_TEMPLATE: &str = "template0";

/// A database of its own on a harness server.
#[derive(Debug, Clone)]
pub struct Database {
    pub name: String,
    pub major: u8,
    server: PgServer,
}

/// Whether templates get the shim: on unless `PHANTOM_SHIM=off` (e.g. with
/// `PHANTOM_PG_IMAGE=supabase/postgres`, which has the real thing).
pub fn shim_enabled() -> bool {
    !matches!(
        std::env::var("PHANTOM_SHIM").as_deref(),
        Ok("off" | "0" | "false")
    )
}

impl Database {
    /// A fresh database on the process-wide server for `major`.
    pub async fn fresh(major: u8, label: &str) -> Result<Database> {
        let server = PgServer::shared(major).await?;
        Database::create(server, label).await
    }

    /// A fresh database on `server`, cloned from its shim template.
    pub async fn create(server: &PgServer, label: &str) -> Result<Database> {
        let template = ensure_template(server).await?;
        let name = format!("{}_{}", sanitise(label), unique());
        clone_template(server, template, &name).await?;
        Ok(Database {
            name,
            major: server.major,
            server: server.clone(),
        })
    }

    /// A copy of this database on the same server (`CREATE DATABASE …
    /// TEMPLATE` this one, files copied): a restored capture is cloned for the
    /// repair and for every drill instead of being restored again. Nothing
    /// may stay connected to this database while it is cloned (a busy
    /// template is retried).
    pub async fn clone_as(&self, label: &str) -> Result<Database> {
        let name = format!("{}_{}", sanitise(label), unique());
        clone_template(&self.server, &self.name, &name).await?;
        Ok(Database {
            name,
            major: self.major,
            server: self.server.clone(),
        })
    }

    /// [`Database::clone_as`] under exactly `name` (which no database on the
    /// server may have): a rehearsal's drills are clones under the name of
    /// the copy whose backup they reuse, a backup belonging to its database's name.
    pub async fn clone_named(&self, name: &str) -> Result<Database> {
        clone_template(&self.server, &self.name, name).await?;
        Ok(Database {
            name: name.to_string(),
            major: self.major,
            server: self.server.clone(),
        })
    }

    /// A target for this database (as the superuser).
    pub fn target(&self) -> Target {
        self.server.target(&self.name)
    }

    /// The server it lives on.
    pub fn server(&self) -> &PgServer {
        &self.server
    }

    /// One connection to it.
    pub async fn connect(&self) -> Result<PgConnection> {
        self.server.connect_target(&self.name).connect().await
    }

    /// Creates, without login, those of `roles` the server lacks — the roles a
    /// capture restored here names (roles are cluster-wide, no part of a dump).
    pub async fn create_roles(&self, roles: &[String]) -> Result<()> {
        let mut conn = self.connect().await?;
        for role in roles {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)")
                    .bind(role)
                    .fetch_one(&mut conn)
                    .await
                    .map_err(Error::db("looking up a role"))?;
            if exists {
                continue;
            }
            let sql = format!("CREATE ROLE {} NOLOGIN", quote_ident(role));
            if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
            {
                // Another test or rehearsal on this server may have just created it.
                if sql_state(&e).as_deref() != Some("42710") {
                    return Err(Error::db(format!("creating role {role}"))(e));
                }
            }
        }
        conn.close().await.ok();
        Ok(())
    }

    /// Drops the database (closing any session still connected to it).
    pub async fn drop_database(self) -> Result<()> {
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        );
        admin_execute(&self.server, sql)
            .await
            .map_err(admin_error(format!("dropping database {}", self.name)))
    }
}

/// Serialises building the template, per server (keyed by container id).
fn template_lock(server: &PgServer) -> std::sync::Arc<tokio::sync::Mutex<bool>> {
    static LOCKS: OnceLock<Mutex<BTreeMap<String, std::sync::Arc<tokio::sync::Mutex<bool>>>>> =
        OnceLock::new();
    let mut map = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry(server.container_id.clone()).or_default().clone()
}

/// Creates the shim template once per server; returns the template to clone.
async fn ensure_template(server: &PgServer) -> Result<&'static str> {
    if !shim_enabled() {
        return Ok(BARE_TEMPLATE);
    }
    let lock = template_lock(server);
    let mut ready = lock.lock().await;
    if *ready {
        return Ok(TEMPLATE);
    }
    let mut admin = server.connect_target("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)")
            .bind(TEMPLATE)
            .fetch_one(&mut admin)
            .await
            .map_err(Error::db("looking for the template database"))?;
    if !exists {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {TEMPLATE} TEMPLATE template0"
        )))
        .execute(&mut admin)
        .await
        .map_err(Error::db("creating the template database"))?;
        let mut conn = server.connect_target(TEMPLATE).connect().await?;
        sqlx::raw_sql(SUPABASE_SHIM)
            .execute(&mut conn)
            .await
            .map_err(Error::db(
                "applying the Supabase shim (src/pg/sandbox/supabase_shim.sql) to the template",
            ))?;
        conn.close().await.ok();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {TEMPLATE} WITH IS_TEMPLATE true"
        )))
        .execute(&mut admin)
        .await
        .map_err(Error::db("marking the template database"))?;
    }
    admin.close().await.ok();
    *ready = true;
    Ok(TEMPLATE)
}

/// `CREATE DATABASE name TEMPLATE template`, retried while the template is busy.
async fn clone_template(server: &PgServer, template: &str, name: &str) -> Result<()> {
    let template = &quote_ident(template);
    // FILE_COPY copies the template's files (fast for small templates); PG14 knows no other way.
    let strategy = if server.major >= 15 {
        " STRATEGY FILE_COPY"
    } else {
        ""
    };
    let sql = format!(
        "CREATE DATABASE {} TEMPLATE {template}{strategy}",
        quote_ident(name)
    );
    // Clones run concurrently: nothing ever stays connected to the template
    // once `ensure_template` has returned, and a clone racing with a stray
    // session is retried.
    let mut attempt = 0;
    loop {
        match admin_execute(server, sql.clone()).await {
            Err(AdminError::Statement(e)) if is_template_busy(&e) && attempt < 50 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
            }
            other => {
                return other.map_err(admin_error(format!(
                    "creating database {name} from template {template}"
                )));
            }
        }
    }
}

/// Runs `sql` as the superuser on `server`, over a kept connection.
async fn admin_execute(server: &PgServer, sql: String) -> std::result::Result<(), AdminError> {
    admin::execute(
        &server.container_id,
        &server.connect_target("postgres"),
        sql,
    )
    .await
}

/// Turns an admin failure into the crate's error, naming what was being done.
fn admin_error(context: String) -> impl FnOnce(AdminError) -> Error {
    move |e| match e {
        AdminError::Connect(e) => e,
        AdminError::Statement(e) => Error::db(context)(e),
    }
}

/// SQLSTATE 55006: "source database is being accessed by other users".
fn is_template_busy(e: &sqlx::Error) -> bool {
    sql_state(e).as_deref() == Some("55006")
}

fn sanitise(label: &str) -> String {
    let cleaned: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    if cleaned.is_empty() {
        "db".into()
    } else {
        format!("s_{cleaned}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_safe_identifiers() {
        assert_eq!(sanitise("Plan's exact state"), "s_plan_s_exact_state");
        assert_eq!(sanitise(""), "db");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
