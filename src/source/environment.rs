//! What a target's platform gives every object a migration creates, read
//! without changing anything: the role migrations run as, its default
//! privileges (`pg_default_acl`), the roles and memberships migrations may
//! name, the installed extensions and the privileges on `public`.
//!
//! Real Supabase projects differ here — older and self-hosted projects, and
//! teams that revoked the API roles' defaults — and a migration's grants
//! depend on it: the same `CREATE FUNCTION` gives `anon` EXECUTE on one
//! project and not on another. The engine reproduces this environment on the
//! scratch database before it replays the migrations, so that their effects
//! are what they do *on this target*, and a grant that only the environment
//! gives is never taken for evidence that a migration is partial or drifted.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::{Error, Result};

/// The sorts of object default privileges apply to (`pg_default_acl.defaclobjtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DefaultObjects {
    /// Tables, views, materialized views (`r`).
    Tables,
    /// Sequences (`S`).
    Sequences,
    /// Functions and procedures (`f`).
    Functions,
    /// Types and domains (`T`).
    Types,
    /// Schemas (`n`).
    Schemas,
}

impl DefaultObjects {
    fn from_code(code: &str) -> Option<DefaultObjects> {
        Some(match code {
            "r" => DefaultObjects::Tables,
            "S" => DefaultObjects::Sequences,
            "f" => DefaultObjects::Functions,
            "T" => DefaultObjects::Types,
            "n" => DefaultObjects::Schemas,
            _ => return None,
        })
    }

    /// The words of `ALTER DEFAULT PRIVILEGES … ON <words>`.
    pub fn sql(self) -> &'static str {
        match self {
            DefaultObjects::Tables => "TABLES",
            DefaultObjects::Sequences => "SEQUENCES",
            DefaultObjects::Functions => "FUNCTIONS",
            DefaultObjects::Types => "TYPES",
            DefaultObjects::Schemas => "SCHEMAS",
        }
    }
}

/// One privilege the runner's default privileges give on new objects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DefaultPrivilege {
    /// The schema the rule is limited to; `None` for the role's global rule,
    /// which replaces PostgreSQL's built-in defaults for that sort of object.
    pub schema: Option<String>,
    pub objects: DefaultObjects,
    /// The role that receives it; `PUBLIC` for everyone.
    pub grantee: String,
    /// `SELECT`, `EXECUTE`, … as `aclexplode` names them.
    pub privilege: String,
    pub grantable: bool,
}

/// A privilege on the `public` schema.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SchemaPrivilege {
    /// The role that holds it; `PUBLIC` for everyone.
    pub grantee: String,
    /// `USAGE` or `CREATE`.
    pub privilege: String,
}

/// An installed extension and the schema its objects live in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Extension {
    pub name: String,
    pub schema: String,
}

/// The target's environment, as far as migrations can tell it apart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// The role migrations run as on the target: the connection's `current_user`.
    pub runner: String,
    /// The runner's default privileges (what its new objects get), sorted.
    pub default_privileges: Vec<DefaultPrivilege>,
    /// Roles that are not PostgreSQL's own (`pg_*`), sorted.
    pub roles: Vec<String>,
    /// `(member, role)`: `member` is a member of `role`; both in [`Environment::roles`].
    pub memberships: Vec<(String, String)>,
    /// Installed extensions, sorted (`plpgsql` left out: every database has it).
    pub extensions: Vec<Extension>,
    /// Privileges on the `public` schema, sorted (its owner's own left out).
    pub public_schema: Vec<SchemaPrivilege>,
}

impl Environment {
    /// Reads the environment through `conn`, read-only.
    pub async fn capture(conn: &mut PgConnection) -> Result<Environment> {
        let runner: String = sqlx::query_scalar("SELECT current_user::text")
            .fetch_one(&mut *conn)
            .await
            .map_err(Error::db("reading the connection's role"))?;
        let rows: Vec<(Option<String>, String, String, String, bool)> = sqlx::query_as(
            "SELECT nullif(d.defaclnamespace, 0)::regnamespace::text, d.defaclobjtype::text, \
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END, \
                    a.privilege_type, a.is_grantable \
               FROM pg_default_acl d, LATERAL aclexplode(d.defaclacl) a \
              WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user) \
                AND a.grantee <> d.defaclrole AND a.privilege_type <> 'MAINTAIN'",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db("reading default privileges (pg_default_acl)"))?;
        let mut default_privileges: Vec<DefaultPrivilege> = rows
            .into_iter()
            .filter_map(|(schema, code, grantee, privilege, grantable)| {
                Some(DefaultPrivilege {
                    schema,
                    objects: DefaultObjects::from_code(&code)?,
                    grantee,
                    privilege,
                    grantable,
                })
            })
            .collect();
        default_privileges.sort();
        default_privileges.dedup();
        // The global rows of the object sorts that have one (they replace the built-in defaults).
        let global_rows: Vec<String> = sqlx::query_scalar(
            "SELECT d.defaclobjtype::text FROM pg_default_acl d \
              WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user) \
                AND d.defaclnamespace = 0",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db("reading default privileges (pg_default_acl)"))?;
        let mut env = Environment {
            runner,
            default_privileges,
            ..Environment::default()
        };
        env.mark_replaced_builtins(&global_rows);
        env.read_roles(conn).await?;
        env.read_extensions_and_public(conn).await?;
        Ok(env)
    }

    /// A global rule with no row for PUBLIC means the built-in PUBLIC default
    /// was revoked; remember it as a marker row so reproduction and the
    /// expected grants both see it.
    fn mark_replaced_builtins(&mut self, global_codes: &[String]) {
        for code in global_codes {
            let Some(objects) = DefaultObjects::from_code(code) else {
                continue;
            };
            let marker = DefaultPrivilege {
                schema: None,
                objects,
                grantee: REPLACES_BUILTIN.into(),
                privilege: String::new(),
                grantable: false,
            };
            if !self.default_privileges.contains(&marker) {
                self.default_privileges.push(marker);
            }
        }
        self.default_privileges.sort();
    }

    async fn read_roles(&mut self, conn: &mut PgConnection) -> Result<()> {
        self.roles = sqlx::query_scalar(
            "SELECT rolname::text FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db("reading roles"))?;
        self.memberships = sqlx::query_as(
            "SELECT m.rolname::text, r.rolname::text FROM pg_auth_members a \
               JOIN pg_roles m ON m.oid = a.member JOIN pg_roles r ON r.oid = a.roleid \
              WHERE m.rolname !~ '^pg_' AND r.rolname !~ '^pg_' ORDER BY 1, 2",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db("reading role memberships"))?;
        self.memberships.dedup();
        Ok(())
    }

    async fn read_extensions_and_public(&mut self, conn: &mut PgConnection) -> Result<()> {
        let extensions: Vec<(String, String)> = sqlx::query_as(
            "SELECT e.extname::text, n.nspname::text FROM pg_extension e \
               JOIN pg_namespace n ON n.oid = e.extnamespace \
              WHERE e.extname <> 'plpgsql' ORDER BY 1",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db("reading installed extensions"))?;
        self.extensions = extensions
            .into_iter()
            .map(|(name, schema)| Extension { name, schema })
            .collect();
        let public: Vec<(String, String)> = sqlx::query_as(
            "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END, \
                    a.privilege_type \
               FROM pg_namespace n, LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a \
              WHERE n.nspname = 'public' AND a.grantee <> n.nspowner ORDER BY 1, 2",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db("reading the privileges on schema public"))?;
        self.public_schema = public
            .into_iter()
            .map(|(grantee, privilege)| SchemaPrivilege { grantee, privilege })
            .collect();
        Ok(())
    }

    /// A hash of everything above: replays made under equal environments are interchangeable.
    pub fn fingerprint(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        format!("{:x}", Sha256::digest(text.as_bytes()))
    }

    /// The privileges the runner's new `objects` in `schema` get, per grantee:
    /// PostgreSQL's built-in default (PUBLIC EXECUTE on functions, PUBLIC
    /// USAGE on types) unless a global rule replaced it, plus every matching rule.
    pub fn default_grants(
        &self,
        objects: DefaultObjects,
        schema: &str,
    ) -> BTreeSet<(String, String, bool)> {
        let mut out = BTreeSet::new();
        let replaced = self
            .default_privileges
            .iter()
            .any(|p| p.objects == objects && p.schema.is_none() && p.grantee == REPLACES_BUILTIN);
        if !replaced {
            match objects {
                DefaultObjects::Functions => {
                    out.insert(("PUBLIC".into(), "EXECUTE".into(), false));
                }
                DefaultObjects::Types => {
                    out.insert(("PUBLIC".into(), "USAGE".into(), false));
                }
                _ => {}
            }
        }
        for p in &self.default_privileges {
            let applies = p.schema.as_deref().is_none_or(|s| s == schema);
            if p.objects == objects && applies && p.grantee != REPLACES_BUILTIN {
                out.insert((p.grantee.clone(), p.privilege.clone(), p.grantable));
            }
        }
        out
    }

    /// What the environment is, in a few lines for reports.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!("migrations run as role `{}`", self.runner)];
        let mut rules: Vec<String> = Vec::new();
        for objects in [
            DefaultObjects::Tables,
            DefaultObjects::Sequences,
            DefaultObjects::Functions,
            DefaultObjects::Types,
        ] {
            let mut by_scope: std::collections::BTreeMap<String, BTreeSet<String>> =
                Default::default();
            for p in self
                .default_privileges
                .iter()
                .filter(|p| p.objects == objects && p.grantee != REPLACES_BUILTIN)
            {
                let scope = p
                    .schema
                    .as_deref()
                    .map(|s| format!("in {s}"))
                    .unwrap_or_else(|| "everywhere".into());
                by_scope.entry(scope).or_default().insert(p.grantee.clone());
            }
            for (scope, grantees) in by_scope {
                let list: Vec<&str> = grantees.iter().map(String::as_str).collect();
                rules.push(format!(
                    "new {} {scope} are granted to {}",
                    objects.sql().to_lowercase(),
                    list.join(", ")
                ));
            }
        }
        if rules.is_empty() {
            lines.push(
                "no default privileges: new objects get PostgreSQL's built-in ones only".into(),
            );
        } else {
            lines.extend(rules);
        }
        let mut text = String::new();
        for e in &self.extensions {
            let _ = write!(
                text,
                "{}{} ({})",
                if text.is_empty() { "" } else { ", " },
                e.name,
                e.schema
            );
        }
        if !text.is_empty() {
            lines.push(format!("extensions: {text}"));
        }
        lines
    }
}

/// The grantee of a marker row: "this global rule replaces PostgreSQL's built-in default".
pub const REPLACES_BUILTIN: &str = "(replaces the built-in default)";

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        schema: Option<&str>,
        objects: DefaultObjects,
        grantee: &str,
        privilege: &str,
    ) -> DefaultPrivilege {
        DefaultPrivilege {
            schema: schema.map(str::to_string),
            objects,
            grantee: grantee.into(),
            privilege: privilege.into(),
            grantable: false,
        }
    }

    #[test]
    fn default_grants_follow_the_builtin_and_the_rules() {
        let mut env = Environment {
            runner: "postgres".into(),
            default_privileges: vec![
                rule(Some("public"), DefaultObjects::Tables, "anon", "SELECT"),
                rule(None, DefaultObjects::Tables, "audit", "SELECT"),
            ],
            ..Environment::default()
        };
        let tables = env.default_grants(DefaultObjects::Tables, "public");
        assert_eq!(tables.len(), 2);
        assert_eq!(
            env.default_grants(DefaultObjects::Tables, "private").len(),
            1
        );
        assert_eq!(
            env.default_grants(DefaultObjects::Functions, "public"),
            BTreeSet::from([("PUBLIC".to_string(), "EXECUTE".to_string(), false)])
        );
        env.mark_replaced_builtins(&["f".to_string()]);
        assert!(
            env.default_grants(DefaultObjects::Functions, "public")
                .is_empty()
        );
        let described = env.describe().join("\n");
        assert!(
            described.contains("new tables in public are granted to anon"),
            "{described}"
        );
        assert!(
            described.contains("new tables everywhere are granted to audit"),
            "{described}"
        );
    }

    #[test]
    fn fingerprints_tell_environments_apart() {
        let a = Environment {
            runner: "postgres".into(),
            ..Environment::default()
        };
        let mut b = a.clone();
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.default_privileges.push(rule(
            Some("public"),
            DefaultObjects::Functions,
            "anon",
            "EXECUTE",
        ));
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
