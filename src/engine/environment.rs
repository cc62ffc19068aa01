//! The target's environment on the scratch database, and which grants are
//! the environment's rather than a migration's.
//!
//! Before the replay, `Scratch::prepare` makes the scratch database behave
//! like the target: its default privileges are replaced by the target
//! runner's (mapped onto the role that replays), the target's roles and
//! memberships exist, the platform's extensions are installed and `public`
//! carries the target's privileges. Rules for a schema that a migration
//! creates later are applied as soon as it exists (`Scratch::after_migration`).
//!
//! After the replay, [`GrantOrigins`] compares every object's grants with
//! what the environment's default privileges alone would give it: where they
//! agree (or where a grant goes to a role the environment hands privileges
//! to and no migration chose otherwise), a difference on the target is the
//! environment's — never evidence that a migration is partial or drifted.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::pg::sql::{quote_ident, sql_state};
use crate::source::catalog::{
    Catalog, ObjectKind, grant_definition, grant_grantee, grant_key, grant_object, schema_of,
};
use crate::source::environment::{DefaultObjects, DefaultPrivilege, Environment, REPLACES_BUILTIN};
use crate::{Error, Result};

/// The Supabase API roles: the platform's standard default privileges give
/// them everything new in `public`, so their grants are the environment's
/// unless a migration says otherwise.
pub const API_ROLES: &[&str] = &["anon", "authenticated", "service_role"];

/// Schemas whose extensions belong to the platform (installed before any migration).
const PLATFORM_EXTENSION_SCHEMAS: &[&str] =
    &["extensions", "pg_catalog", "graphql", "vault", "pgsodium"];

/// The environment being reproduced on one scratch database.
#[derive(Debug)]
pub(crate) struct Scratch<'a> {
    /// Schema-specific rules whose schema does not exist yet.
    pending: Vec<&'a DefaultPrivilege>,
}

impl<'a> Scratch<'a> {
    /// Sets up `conn`'s database (a fresh scratch clone) like the target.
    pub(crate) async fn prepare(
        conn: &mut PgConnection,
        env: &'a Environment,
    ) -> Result<Scratch<'a>> {
        exec(
            conn,
            "DELETE FROM pg_catalog.pg_default_acl",
            "clearing the scratch database's default privileges",
        )
        .await?;
        create_roles(conn, env).await?;
        let mut scratch = Scratch {
            pending: Vec::new(),
        };
        // Global rules first: they replace PostgreSQL's built-in defaults.
        for rule in env.default_privileges.iter().filter(|r| r.schema.is_none()) {
            exec(conn, &rule_sql(rule), "reproducing a default privilege").await?;
        }
        scratch.pending = env
            .default_privileges
            .iter()
            .filter(|r| r.schema.is_some())
            .collect();
        scratch.after_migration(conn).await?;
        install_platform_extensions(conn, env).await;
        reproduce_public(conn, env).await?;
        Ok(scratch)
    }

    /// Applies the rules whose schema now exists.
    pub(crate) async fn after_migration(&mut self, conn: &mut PgConnection) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let existing: Vec<String> = sqlx::query_scalar("SELECT nspname::text FROM pg_namespace")
            .fetch_all(&mut *conn)
            .await
            .map_err(Error::db("listing schemas"))?;
        let (ready, waiting): (Vec<&DefaultPrivilege>, Vec<&DefaultPrivilege>) = self
            .pending
            .iter()
            .partition(|r| r.schema.as_ref().is_some_and(|s| existing.contains(s)));
        for rule in ready {
            exec(conn, &rule_sql(rule), "reproducing a default privilege").await?;
        }
        self.pending = waiting;
        Ok(())
    }
}

/// `ALTER DEFAULT PRIVILEGES [IN SCHEMA s] GRANT|REVOKE …` for one rule, for
/// the role that runs it (the replay's).
fn rule_sql(rule: &DefaultPrivilege) -> String {
    let scope = rule
        .schema
        .as_deref()
        .map(|s| format!(" IN SCHEMA {}", quote_ident(s)))
        .unwrap_or_default();
    if rule.grantee == REPLACES_BUILTIN {
        let builtin = match rule.objects {
            DefaultObjects::Functions => "EXECUTE",
            DefaultObjects::Types => "USAGE",
            _ => return "SELECT 1".into(),
        };
        return format!(
            "ALTER DEFAULT PRIVILEGES{scope} REVOKE {builtin} ON {} FROM PUBLIC",
            rule.objects.sql()
        );
    }
    format!(
        "ALTER DEFAULT PRIVILEGES{scope} GRANT {} ON {} TO {}{}",
        rule.privilege,
        rule.objects.sql(),
        role(&rule.grantee),
        if rule.grantable {
            " WITH GRANT OPTION"
        } else {
            ""
        }
    )
}

fn role(name: &str) -> String {
    if name == "PUBLIC" {
        "PUBLIC".into()
    } else {
        quote_ident(name)
    }
}

/// The target's roles (without login) and memberships. Roles are
/// cluster-wide: another database on the same scratch server may have made
/// them already, which is fine.
async fn create_roles(conn: &mut PgConnection, env: &Environment) -> Result<()> {
    for name in &env.roles {
        let sql = format!(
            "DO $$ BEGIN CREATE ROLE {} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
            quote_ident(name)
        );
        exec(conn, &sql, "creating a role the target has").await?;
    }
    for (member, of) in &env.memberships {
        let sql = format!("GRANT {} TO {}", quote_ident(of), quote_ident(member));
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await
        {
            // A membership that would make a loop, or one granted already by another clone.
            tracing::debug!("role membership {member} → {of} not reproduced: {e}");
        }
    }
    Ok(())
}

/// Extensions the platform installs before any migration runs (those in its
/// own schemas); a migration's own `CREATE EXTENSION` must still find them
/// missing, so extensions in the project's schemas are left to the replay.
async fn install_platform_extensions(conn: &mut PgConnection, env: &Environment) {
    for ext in env
        .extensions
        .iter()
        .filter(|e| PLATFORM_EXTENSION_SCHEMAS.contains(&e.schema.as_str()))
    {
        let sql = format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {schema}",
            quote_ident(&ext.name),
            schema = quote_ident(&ext.schema)
        );
        // Plain statements on an autocommit connection: a failed one changes nothing.
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await
        {
            tracing::debug!(
                "extension {} not available on the scratch server: {e}",
                ext.name
            );
        }
    }
}

/// `public`'s privileges as the target has them (its owner's aside).
async fn reproduce_public(conn: &mut PgConnection, env: &Environment) -> Result<()> {
    let current: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END \
           FROM pg_namespace n, LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a \
          WHERE n.nspname = 'public' AND a.grantee <> n.nspowner",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::db("reading the scratch database's privileges on public"))?;
    for grantee in current {
        exec(
            conn,
            &format!("REVOKE ALL ON SCHEMA public FROM {}", role(&grantee)),
            "resetting privileges on public",
        )
        .await?;
    }
    for p in &env.public_schema {
        exec(
            conn,
            &format!(
                "GRANT {} ON SCHEMA public TO {}",
                p.privilege,
                role(&p.grantee)
            ),
            "reproducing privileges on public",
        )
        .await?;
    }
    Ok(())
}

async fn exec(conn: &mut PgConnection, sql: &str, doing: &str) -> Result<()> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| {
            let code = sql_state(&e).unwrap_or_default();
            Error::db(format!("{doing} on the scratch database ({sql}) [{code}]"))(e)
        })
}

/// Where each grant of a clean replay comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantOrigins {
    /// Grant keys where the replay differs from what the environment alone
    /// gives: a migration granted or revoked them on purpose.
    pub explicit: BTreeSet<String>,
    /// Roles the environment hands privileges to (its default-privilege
    /// grantees, PUBLIC and the Supabase API roles).
    pub environment_roles: BTreeSet<String>,
}

impl GrantOrigins {
    /// Compares every grantable object of `replayed` with `env`'s defaults.
    pub fn of(replayed: &Catalog, env: &Environment) -> GrantOrigins {
        let mut explicit = BTreeSet::new();
        let grants: BTreeMap<&str, &str> = replayed
            .objects
            .values()
            .filter(|o| o.kind == ObjectKind::Grant)
            .map(|o| (o.key.as_str(), o.definition.as_str()))
            .collect();
        for object in replayed.objects.values() {
            let objects = match object.kind {
                ObjectKind::Table | ObjectKind::View | ObjectKind::MaterializedView => {
                    DefaultObjects::Tables
                }
                ObjectKind::Sequence => DefaultObjects::Sequences,
                ObjectKind::Function => DefaultObjects::Functions,
                _ => continue,
            };
            let name = &object.key[object.kind.label().len() + 1..];
            let Some(schema) = schema_of(name) else {
                continue;
            };
            let mut expected: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
            for (grantee, privilege, grantable) in env.default_grants(objects, &schema) {
                expected
                    .entry(grantee)
                    .or_default()
                    .insert(privilege, grantable);
            }
            let expected: BTreeMap<String, String> = expected
                .into_iter()
                .map(|(grantee, privileges)| {
                    let who = (grantee != "PUBLIC").then_some(grantee.as_str());
                    (grant_key(name, who), grant_definition(&privileges))
                })
                .collect();
            let prefix = format!("grant {name} ");
            // Column grants (`grant public.t.c …`) never share this prefix.
            let mut keys: BTreeSet<String> = expected.keys().cloned().collect();
            keys.extend(
                grants
                    .keys()
                    .filter(|k| k.starts_with(&prefix))
                    .map(|k| k.to_string()),
            );
            for key in keys {
                if expected.get(&key).map(String::as_str) != grants.get(key.as_str()).copied() {
                    explicit.insert(key);
                }
            }
        }
        // Column grants never come from default privileges.
        for key in grants.keys() {
            if !explicit.contains(*key) && is_column_grant(key, replayed) {
                explicit.insert(key.to_string());
            }
        }
        let mut environment_roles: BTreeSet<String> = env
            .default_privileges
            .iter()
            .filter(|p| p.grantee != REPLACES_BUILTIN)
            .map(|p| p.grantee.clone())
            .collect();
        environment_roles.insert("PUBLIC".into());
        environment_roles.extend(API_ROLES.iter().map(|r| r.to_string()));
        GrantOrigins {
            explicit,
            environment_roles,
        }
    }

    /// True when a difference on `key` is the environment's: a grant no
    /// migration chose, to a role the environment hands privileges to.
    pub fn is_environment(&self, key: &str) -> bool {
        key.starts_with("grant ")
            && !self.explicit.contains(key)
            && grant_grantee(key).is_some_and(|g| self.environment_roles.contains(&g))
    }
}

fn is_column_grant(key: &str, catalog: &Catalog) -> bool {
    grant_object(key).is_some_and(|on| catalog.get(&format!("column {on}")).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(objects: &[(&str, ObjectKind, &str)]) -> Catalog {
        Catalog::from_entries(objects)
    }

    fn env_with(rules: Vec<DefaultPrivilege>) -> Environment {
        Environment {
            runner: "postgres".into(),
            default_privileges: rules,
            ..Environment::default()
        }
    }

    fn rule(objects: DefaultObjects, grantee: &str, privilege: &str) -> DefaultPrivilege {
        DefaultPrivilege {
            schema: Some("public".into()),
            objects,
            grantee: grantee.into(),
            privilege: privilege.into(),
            grantable: false,
        }
    }

    #[test]
    fn grants_the_defaults_give_are_the_environments() {
        let env = env_with(vec![rule(DefaultObjects::Functions, "anon", "EXECUTE")]);
        let replayed = catalog(&[
            ("function public.f()", ObjectKind::Function, "function () …"),
            ("grant public.f() PUBLIC", ObjectKind::Grant, "EXECUTE"),
            ("grant public.f() anon", ObjectKind::Grant, "EXECUTE"),
            ("grant public.f() reporting", ObjectKind::Grant, "EXECUTE"),
        ]);
        let origins = GrantOrigins::of(&replayed, &env);
        assert!(origins.is_environment("grant public.f() anon"));
        assert!(origins.is_environment("grant public.f() PUBLIC"));
        assert!(
            !origins.is_environment("grant public.f() reporting"),
            "a migration granted it"
        );
        assert!(
            origins.is_environment("grant public.f() authenticated"),
            "an API role no migration named"
        );
        assert!(
            !origins.is_environment("grant public.f() analytics"),
            "a role the environment never grants to"
        );
        assert!(!origins.is_environment("column public.t.x"));
    }

    #[test]
    fn a_revoke_the_migration_made_is_explicit() {
        let env = env_with(vec![rule(DefaultObjects::Tables, "anon", "SELECT")]);
        // The defaults would give anon SELECT; the replay has none: the migration revoked it.
        let replayed = catalog(&[("table public.t", ObjectKind::Table, "table")]);
        let origins = GrantOrigins::of(&replayed, &env);
        assert!(origins.explicit.contains("grant public.t anon"));
        assert!(!origins.is_environment("grant public.t anon"));
    }

    #[test]
    fn rules_become_alter_default_privileges() {
        assert_eq!(
            rule_sql(&rule(DefaultObjects::Tables, "anon", "SELECT")),
            "ALTER DEFAULT PRIVILEGES IN SCHEMA \"public\" GRANT SELECT ON TABLES TO \"anon\""
        );
        let marker = DefaultPrivilege {
            schema: None,
            objects: DefaultObjects::Functions,
            grantee: REPLACES_BUILTIN.into(),
            privilege: String::new(),
            grantable: false,
        };
        assert_eq!(
            rule_sql(&marker),
            "ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC"
        );
    }
}
