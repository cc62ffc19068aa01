//! PostgreSQL's client programs — `pg_dump`, `pg_restore`, `psql` — of the
//! server's own major, never the host's: a dump taken by an older pg_dump is
//! refused by the server, and one taken by a newer one may not restore. For a
//! harness database they are the harness image's own build, copied out to the
//! host and run as plain processes (or, where that build cannot run here,
//! inside its container through `docker exec`); for any other target they run
//! in a throw-away container of the right major's image (`docker run --rm
//! --network host`). This module takes the backup of Phase 1 of the plan
//! ([`PgTools::dump`]) and brings it back in the rollback procedures: whole
//! schemas ([`PgTools::restore_database`]) or "wrong tables dropped"
//! ([`PgTools::restore_tables`]), each in one transaction.

mod archive;
mod digest;
pub use digest::content_digest;
mod guard;
mod passfile;
mod run;
pub use run::TOOLS_LABEL;
mod script;
mod toc;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tracing::Instrument;

use sqlx::Connection;

use self::run::{Call, Input, Part, Sink};
use crate::pg::sandbox::Database;
use crate::pg::target::Target;
use crate::{Error, Result};

/// Where PostgreSQL's client programs run: on the host, copied out of the
/// harness image that serves the target (fastest); inside that container
/// (`docker exec`); or in a throw-away container of the right major's image
/// (`docker run --rm --network host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgTools {
    /// The harness image's own programs, in this folder on the host.
    Host {
        bin: PathBuf,
        major: u8,
        /// The harness server's published port and its container's own
        /// address: a target on `127.0.0.1` at that port is reached at the
        /// address directly (port 5432), past Docker's port proxy.
        direct: Option<(u16, String)>,
    },
    /// In this container; programs connect to its own server at 127.0.0.1:5432.
    Exec { container_id: String, major: u8 },
    /// In a fresh container of this image, reaching the target's host and port from the host network.
    Run { image: String, major: u8 },
}

/// Which schemas a dump holds and a whole-database restore brings back. The
/// default is every schema but the system ones; the engine's backup scope
/// also leaves out the Supabase platform's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpScope {
    /// Schemas left out, besides the system ones (`pg_*`, `information_schema`).
    pub exclude_schemas: Vec<String>,
    /// Definitions only, no rows (`pg_dump --schema-only`): for copies that
    /// need the shape of a database, never for a backup.
    pub schema_only: bool,
}

impl DumpScope {
    /// True for a schema the scope covers.
    pub fn includes(&self, schema: &str) -> bool {
        !(schema.starts_with("pg_")
            || schema == "information_schema"
            || self.exclude_schemas.iter().any(|s| s == schema))
    }
}

/// How `pg_dump` compresses an archive. pg_dump's default, gzip at level 6,
/// spends most of a dump's time compressing: on this project's machine kind
/// a million `collections` rows (296 MB on disk) took 4.3 s and made 46 MB.
/// zstd at level 1 (pg_dump 16 and later, built with zstd as every image
/// here is) took 1.7 s and made 32 MB; for 14 and 15, which know only gzip,
/// level 1 took 3.0 s and made 57 MB. Every pg_restore of the same major
/// reads either back, from a file or a pipe.
fn compression(major: u8) -> &'static str {
    if major >= 16 {
        "--compress=zstd:1"
    } else {
        "--compress=1"
    }
}

/// A finished backup: where it is, how big, its SHA-256 (hex) and the server major it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DumpInfo {
    /// The archive (custom format).
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
    /// The major of the server it was taken from (the archive's header says).
    pub major: u8,
}

impl PgTools {
    /// The tools of the image that serves `db` (they match its major by
    /// construction): on the host when they run here, else in its container.
    pub fn for_database(db: &Database) -> PgTools {
        let server = db.server();
        match &server.clients {
            Some(bin) => PgTools::Host {
                bin: bin.clone(),
                major: server.major,
                direct: server.direct.clone().map(|address| (server.port, address)),
            },
            None => PgTools::Exec {
                container_id: server.container_id.clone(),
                major: server.major,
            },
        }
    }

    /// The tools of PostgreSQL `major`, in a throw-away container of its image.
    pub async fn for_major(major: u8) -> Result<PgTools> {
        let image = crate::pg::sandbox::image::resolve(major).await?;
        Ok(PgTools::Run {
            image: image.reference(),
            major,
        })
    }

    /// The major of these programs.
    pub fn major(&self) -> u8 {
        match self {
            PgTools::Host { major, .. }
            | PgTools::Exec { major, .. }
            | PgTools::Run { major, .. } => *major,
        }
    }

    /// The target server's major, from `SHOW server_version_num`.
    pub async fn server_major(target: &Target) -> Result<u8> {
        let mut conn = target.connect().await?;
        let num: std::result::Result<String, _> = sqlx::query_scalar("SHOW server_version_num")
            .fetch_one(&mut conn)
            .await;
        conn.close().await.ok();
        let num = num.map_err(Error::db(format!("reading the server version of {target}")))?;
        num.trim()
            .parse::<u32>()
            .ok()
            .and_then(|n| u8::try_from(n / 10_000).ok())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{target} reports server_version_num {num:?}, which is not a version number"
                ))
            })
    }

    /// Dumps the schemas in `scope` with `pg_dump --format=custom` into
    /// `out`. The archive is written to `<out>.partial`, read back
    /// (`pg_restore --list`) and only then renamed over `out`, so a failed
    /// dump never leaves a file that looks complete, nor spoils an earlier one.
    pub async fn dump(&self, target: &Target, out: &Path, scope: &DumpScope) -> Result<DumpInfo> {
        let partial = partial_path(out);
        let span = tracing::info_span!(
            target: "phantom_sync::progress",
            "pg_dump",
            task = %format!("pg_dump of {target}")
        );
        let (written, major) = match self.dump_to(target, &partial, scope).instrument(span).await {
            Ok(done) => done,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        tokio::fs::rename(&partial, out)
            .await
            .map_err(Error::io("rename into place", out))?;
        Ok(DumpInfo {
            path: out.to_path_buf(),
            bytes: written.bytes,
            sha256: written.sha256,
            major,
        })
    }

    /// Writes the archive and reads it back; returns its size and hash and the server's major.
    async fn dump_to(
        &self,
        target: &Target,
        partial: &Path,
        scope: &DumpScope,
    ) -> Result<(run::Finished, u8)> {
        let mut args: Vec<String> = [
            "--format=custom",
            compression(self.major()),
            "--no-password",
            "--no-subscriptions",
        ]
        .map(String::from)
        .to_vec();
        args.extend(
            scope
                .exclude_schemas
                .iter()
                .map(|s| format!("--exclude-schema={}", literal_pattern(s))),
        );
        if scope.schema_only {
            args.push("--schema-only".into());
        }
        let call = Call {
            tool: "pg_dump",
            program: "pg_dump",
            args,
            target: Some(target),
            input: Input::Null,
            sink: Sink::File(partial.to_path_buf()),
            doing: format!("dumping {target} to {}", partial.display()),
        };
        let written = run::run(self, call).await?;
        let major = archive::list_known(self, partial, &written.sha256)
            .await?
            .server_major()
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: the archive does not say which server version it came from",
                    partial.display()
                ))
            })?;
        Ok((written, major))
    }

    /// Reads an archive's table of contents (`pg_restore --list`): fails
    /// unless it is a whole, readable custom-format archive.
    pub async fn check_archive(&self, dump: &Path) -> Result<()> {
        archive::list(self, dump).await.map(|_| ())
    }

    /// Every role an archive names — owners and grantees — so that a
    /// rehearsal copy can create them first (roles are cluster-wide and no
    /// part of a database dump).
    pub async fn archive_roles(&self, dump: &Path) -> Result<Vec<String>> {
        let toc = archive::list(self, dump).await?;
        let mut roles: BTreeSet<String> = toc
            .entries
            .iter()
            .map(|e| e.owner.clone())
            .filter(|o| !o.is_empty() && o != "-")
            .collect();
        let acls: Vec<u32> = toc
            .entries
            .iter()
            .filter(|e| e.desc == "ACL" || e.desc == "DEFAULT ACL")
            .map(|e| e.id)
            .collect();
        if !acls.is_empty() {
            let script = archive::script_for(self, dump, &acls).await?;
            let sql = tokio::fs::read_to_string(&script.0)
                .await
                .map_err(Error::io("read", &script.0))?;
            roles.extend(sql.lines().filter_map(grantee));
        }
        roles.retain(|r| r != "PUBLIC" && !r.starts_with("pg_"));
        Ok(roles.into_iter().collect())
    }

    /// The ids of the `auth.users` rows an archive holds (a dump of a whole
    /// Supabase database has them), or `None` when it holds none: a rehearsal
    /// copy needs them for the foreign keys that point into `auth`.
    pub async fn archive_user_ids(&self, dump: &Path) -> Result<Option<Vec<String>>> {
        let toc = archive::list(self, dump).await?;
        let Some(entry) = toc
            .entries
            .iter()
            .find(|e| e.desc == "TABLE DATA" && e.schema == "auth" && e.tag == "users")
        else {
            return Ok(None);
        };
        let script = archive::script_for(self, dump, &[entry.id]).await?;
        let sql = tokio::fs::read_to_string(&script.0)
            .await
            .map_err(Error::io("read", &script.0))?;
        Ok(Some(copy_column(&sql, "id")))
    }

    /// Brings every schema in `scope` back to the archive's state in one
    /// transaction: drops the schemas in scope that exist now (with whatever
    /// was created in them since), recreates them from the archive — objects,
    /// data, grants, RLS, policies — and recreates the objects outside the
    /// scope that the drop took along (triggers on `auth.users` calling a
    /// `public` function, …). Schemas outside `scope` are not touched. Use
    /// the scope the archive was made with.
    pub async fn restore_database(
        &self,
        target: &Target,
        dump: &Path,
        scope: &DumpScope,
    ) -> Result<()> {
        let span = tracing::info_span!(
            target: "phantom_sync::progress",
            "restore",
            task = %format!("restoring {} into {target}", dump.display())
        );
        async {
            let toc = archive::list(self, dump).await?;
            let archived: BTreeSet<String> = toc
                .entries
                .iter()
                .map(|e| {
                    if e.desc == "SCHEMA" {
                        e.tag.clone()
                    } else {
                        e.schema.clone()
                    }
                })
                .filter(|s| s != "-")
                .collect();
            let mut live = guard::for_schemas(target, scope, &archived).await?;
            live.globals.archived_extensions =
                archive::archived_extensions(self, dump, &toc, &live.globals).await?;
            // An archive that names no pg_dump version is taken to be a recent one.
            let dump_major = toc.dump_major().or(toc.server_major()).unwrap_or(15);
            let ids = toc::select_schemas(&toc, &live.globals);
            let mut head = script::begin(&[]);
            head.push_str(&script::drop_schemas(&live.live_schemas));
            if live.globals.in_scope.contains("public") {
                head.push_str(&script::fresh_public(dump_major, &live));
            }
            let tail = format!(
                "\n-- objects outside the restored schemas that the drop took along\n{}\n{}",
                live.keep.join("\n"),
                script::commit()
            );
            let schemas: Vec<&str> = live.globals.in_scope.iter().map(String::as_str).collect();
            let doing = format!(
                "restoring schemas {} of {target} from {}",
                schemas.join(", "),
                dump.display()
            );
            archive::restore_entries(self, target, dump, &ids, head, tail, doing).await
        }
        .instrument(span)
        .await
    }

    /// "Wrong tables dropped": recreates `tables` (`schema.table`) from the
    /// archive with their data, constraints, indexes, triggers, RLS flags,
    /// policies, grants and comments, plus the foreign keys, policies and
    /// defaults of other tables that pointed at them and went with the drop,
    /// in one transaction. A table that still exists is an error: live data
    /// is never overwritten.
    pub async fn restore_tables(
        &self,
        target: &Target,
        dump: &Path,
        tables: &[String],
    ) -> Result<()> {
        let names = table_names(tables)?;
        let toc = archive::list(self, dump).await?;
        if let Some((s, t)) = names.iter().find(|(s, t)| toc.table(s, t).is_none()) {
            return Err(Error::Invalid(format!(
                "{s}.{t} is not in the backup {} (hint: `pg_restore --list` shows the tables it holds)",
                dump.display()
            )));
        }
        let mut conn = target.connect().await?;
        let accepted = async {
            guard::tables_missing(&mut conn, target, &names).await?;
            let (_, foreign) = toc::select_tables(&toc, &names, &BTreeSet::new());
            guard::missing_foreign(&mut conn, target, &foreign).await
        }
        .await;
        conn.close().await.ok();
        let (ids, _) = toc::select_tables(&toc, &names, &accepted?);
        let schemas: Vec<String> = names.iter().map(|(s, _)| s.clone()).collect();
        let mut head = script::begin(&schemas);
        for (schema, table) in &names {
            head.push_str(&script::table_absent(schema, table));
        }
        let shown: Vec<String> = names.iter().map(|(s, t)| format!("{s}.{t}")).collect();
        let doing = format!(
            "restoring tables {} of {target} from {}",
            shown.join(", "),
            dump.display()
        );
        archive::restore_entries(
            self,
            target,
            dump,
            &ids,
            head,
            script::commit().to_string(),
            doing,
        )
        .await
    }

    /// Runs `sql` with psql (`ON_ERROR_STOP`) in one transaction and returns
    /// its output. The script is wrapped in `BEGIN`/`COMMIT` rather than run
    /// with `--single-transaction`, so that input cut short never commits; it
    /// must not manage transactions itself.
    pub async fn psql_script(&self, target: &Target, sql: &str) -> Result<String> {
        let script = format!("BEGIN;\n{sql}\n;\nCOMMIT;\n").into_bytes();
        let args = archive::psql_args(false);
        let call = Call {
            tool: "psql",
            program: "psql",
            args,
            target: Some(target),
            input: Input::Parts(vec![Part::Bytes(script)]),
            sink: Sink::Capture,
            doing: format!("running a script on {target}"),
        };
        let out = String::from_utf8_lossy(&run::run(self, call).await?.stdout).into_owned();
        let out = out.strip_prefix("BEGIN\n").unwrap_or(&out);
        Ok(out.strip_suffix("COMMIT\n").unwrap_or(out).to_string())
    }
}

/// `schema.table` names, split and deduplicated.
fn table_names(tables: &[String]) -> Result<Vec<(String, String)>> {
    if tables.is_empty() {
        return Err(Error::Invalid(
            "no table to restore (hint: name them as schema.table, e.g. public.collections)".into(),
        ));
    }
    let mut names: Vec<(String, String)> = Vec::new();
    for name in tables {
        let pair = name
            .split_once('.')
            .filter(|(s, t)| !s.is_empty() && !t.is_empty())
            .map(|(s, t)| (s.to_string(), t.to_string()))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "table {name:?}: expected schema.table (hint: e.g. public.collections)"
                ))
            })?;
        if !names.contains(&pair) {
            names.push(pair);
        }
    }
    Ok(names)
}

/// A pg_dump pattern that matches exactly `name` (double quotes make every character literal).
fn literal_pattern(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `<out>.partial`.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// The role a `GRANT … TO role;` / `REVOKE … FROM role;` line names.
fn grantee(line: &str) -> Option<String> {
    let line = line
        .trim()
        .trim_end_matches(';')
        .trim_end_matches(" WITH GRANT OPTION");
    let rest = if line.starts_with("GRANT ") {
        line.rsplit_once(" TO ")?.1
    } else if line.starts_with("REVOKE ") {
        line.rsplit_once(" FROM ")?.1
    } else {
        return None;
    };
    let name = rest.trim();
    Some(
        match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => name.to_string(),
        },
    )
}

/// The values of `column` in the first `COPY … FROM stdin;` block of `sql`.
fn copy_column(sql: &str, column: &str) -> Vec<String> {
    let mut lines = sql.lines();
    let Some(header) = lines.by_ref().find(|l| l.starts_with("COPY ")) else {
        return Vec::new();
    };
    let columns: Vec<&str> = header
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(cols, _)| cols.split(", ").map(|c| c.trim_matches('"')).collect())
        .unwrap_or_default();
    let Some(index) = columns.iter().position(|c| *c == column) else {
        return Vec::new();
    };
    lines
        .take_while(|l| *l != "\\.")
        .filter_map(|l| l.split('\t').nth(index))
        .filter(|v| *v != "\\N")
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn the_default_scope_leaves_out_system_schemas_only() {
        let scope = DumpScope::default();
        assert!(scope.includes("public") && scope.includes("auth"));
        assert!(!scope.includes("pg_toast") && !scope.includes("information_schema"));
    }

    #[test]
    fn table_names_need_a_schema() {
        let names = table_names(&["public.a".into(), "app.b c".into(), "public.a".into()]).unwrap();
        assert_eq!(
            names,
            vec![("public".into(), "a".into()), ("app".into(), "b c".into())]
        );
        let err = table_names(&["collections".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected schema.table"), "{err}");
        assert!(table_names(&[]).is_err());
    }

    #[test]
    fn patterns_and_paths() {
        assert_eq!(literal_pattern("auth"), "\"auth\"");
        assert_eq!(literal_pattern("we\"ird*"), "\"we\"\"ird*\"");
        assert_eq!(
            partial_path(Path::new("/b/x.dump")),
            PathBuf::from("/b/x.dump.partial")
        );
    }
}
