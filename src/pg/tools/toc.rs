//! The table of contents of a custom-format archive as `pg_restore -l -v`
//! prints it, and the choice of entries a restore replays (the list handed to
//! `pg_restore -L`). Everything here is pure: the facts about the live
//! database that a choice needs come in as arguments.
//!
//! A list line reads `<id>; <catalog oid> <oid> <DESC> <schema|-> <tag> <owner>`,
//! optionally followed by `;\tdepends on: <id> …`. Names are printed
//! unquoted, so a schema or owner name containing a space is not supported
//! (table and object names may contain spaces).

use std::collections::{BTreeMap, BTreeSet};

use crate::{Error, Result};

/// Entry kinds made of several words; matched before falling back to one word.
const MULTI_WORD_DESCS: &[&str] = &[
    "PUBLICATION TABLES IN SCHEMA",
    "TEXT SEARCH CONFIGURATION",
    "TEXT SEARCH DICTIONARY",
    "TEXT SEARCH TEMPLATE",
    "TEXT SEARCH PARSER",
    "MATERIALIZED VIEW DATA",
    "FOREIGN DATA WRAPPER",
    "DATABASE PROPERTIES",
    "PROCEDURAL LANGUAGE",
    "SUBSCRIPTION TABLE",
    "SEQUENCE OWNED BY",
    "MATERIALIZED VIEW",
    "PUBLICATION TABLE",
    "STATISTICS DATA",
    "OPERATOR FAMILY",
    "OPERATOR CLASS",
    "CHECK CONSTRAINT",
    "SECURITY LABEL",
    "BLOB METADATA",
    "ACCESS METHOD",
    "EVENT TRIGGER",
    "FK CONSTRAINT",
    "FOREIGN TABLE",
    "INDEX ATTACH",
    "LARGE OBJECT",
    "ROW SECURITY",
    "SEQUENCE SET",
    "TABLE ATTACH",
    "USER MAPPING",
    "DEFAULT ACL",
    "TABLE DATA",
    "SHELL TYPE",
];

/// Kinds that belong to a table (or to something that belongs to it) and come
/// back with it in [`select_tables`].
const ATTACHED: &[&str] = &[
    "TABLE DATA",
    "CONSTRAINT",
    "FK CONSTRAINT",
    "CHECK CONSTRAINT",
    "INDEX",
    "INDEX ATTACH",
    "TRIGGER",
    "ROW SECURITY",
    "POLICY",
    "RULE",
    "DEFAULT",
    "SEQUENCE",
    "SEQUENCE OWNED BY",
    "SEQUENCE SET",
    "COMMENT",
    "ACL",
    "SECURITY LABEL",
    "STATISTICS",
    "STATISTICS DATA",
    "PUBLICATION TABLE",
];

/// Attached kinds whose tag is `<table> <name>`: they may sit on another table.
const ON_A_TABLE: &[&str] = &[
    "CONSTRAINT",
    "FK CONSTRAINT",
    "CHECK CONSTRAINT",
    "TRIGGER",
    "POLICY",
    "RULE",
    "DEFAULT",
];

/// Session settings every restore script carries.
const SETTINGS: &[&str] = &["ENCODING", "STDSTRINGS", "SEARCHPATH"];

/// One archive entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub id: u32,
    pub desc: String,
    /// `-` for objects outside any schema.
    pub schema: String,
    pub tag: String,
    pub owner: String,
    pub deps: Vec<u32>,
}

/// A parsed `pg_restore -l -v` listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Toc {
    pub entries: Vec<Entry>,
    /// `Dumped from database version` (the server's).
    pub server_version: Option<String>,
    /// `Dumped by pg_dump version`.
    pub dump_version: Option<String>,
}

impl Toc {
    /// The server major the archive was taken from.
    pub fn server_major(&self) -> Option<u8> {
        self.server_version.as_deref().and_then(leading_major)
    }

    /// The major of the pg_dump that wrote the archive.
    pub fn dump_major(&self) -> Option<u8> {
        self.dump_version.as_deref().and_then(leading_major)
    }

    /// The `TABLE` entry of `schema.table`.
    pub fn table(&self, schema: &str, table: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.desc == "TABLE" && e.schema == schema && e.tag == table)
    }
}

/// `17.10 (Debian …)` → 17.
fn leading_major(version: &str) -> Option<u8> {
    let digits: String = version
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Parses `pg_restore -l -v` output.
pub(crate) fn parse(listing: &str) -> Result<Toc> {
    let mut toc = Toc::default();
    for line in listing.lines() {
        if let Some(comment) = line.strip_prefix(';') {
            let comment = comment.trim();
            if let Some(deps) = comment.strip_prefix("depends on:") {
                let Some(last) = toc.entries.last_mut() else {
                    continue;
                };
                last.deps.extend(
                    deps.split_whitespace()
                        .filter_map(|d| d.parse::<u32>().ok()),
                );
            } else if let Some(v) = comment.strip_prefix("Dumped from database version:") {
                toc.server_version = Some(v.trim().to_string());
            } else if let Some(v) = comment.strip_prefix("Dumped by pg_dump version:") {
                toc.dump_version = Some(v.trim().to_string());
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let entry = parse_entry(line).ok_or_else(|| {
            Error::Invalid(format!(
                "unreadable line in the archive's table of contents: {line:?}"
            ))
        })?;
        toc.entries.push(entry);
    }
    Ok(toc)
}

fn parse_entry(line: &str) -> Option<Entry> {
    let (id, rest) = line.split_once("; ")?;
    let id = id.trim().parse().ok()?;
    let mut parts = rest.splitn(3, ' ');
    let (_catalog, _oid, rest) = (parts.next()?, parts.next()?, parts.next()?);
    let desc = MULTI_WORD_DESCS
        .iter()
        .find(|d| rest.strip_prefix(**d).is_some_and(|r| r.starts_with(' ')))
        .map(|d| d.to_string())
        .unwrap_or_else(|| rest.split(' ').next().unwrap_or_default().to_string());
    let rest = rest.get(desc.len() + 1..)?;
    let (schema, rest) = rest.split_once(' ')?;
    let (tag, owner) = rest.rsplit_once(' ').unwrap_or((rest, ""));
    Some(Entry {
        id,
        desc,
        schema: schema.to_string(),
        tag: tag.to_string(),
        owner: owner.to_string(),
        deps: Vec::new(),
    })
}

/// What a whole-schema restore needs to know about the live database.
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveGlobals {
    /// Schemas being restored.
    pub in_scope: BTreeSet<String>,
    /// Installed extensions and the schema each lives in.
    pub extensions: BTreeMap<String, String>,
    /// The schema the archive creates each missing extension in (see [`extension_schemas`]).
    pub archived_extensions: BTreeMap<String, String>,
    /// Existing publications.
    pub publications: BTreeSet<String>,
}

/// Entries a whole-schema restore replays: everything inside the schemas in
/// scope, those schemas themselves (with comments, grants), extensions that
/// live in them (the restore drops those) or that are missing and belong in
/// them, and missing publications. Objects outside any schema that still
/// exist (event triggers, casts, the database's own settings …) and
/// extensions of schemas out of scope are left alone.
pub(crate) fn select_schemas(toc: &Toc, live: &LiveGlobals) -> Vec<u32> {
    let keep_extension = |name: &str| {
        let schema = live
            .extensions
            .get(name)
            .or_else(|| live.archived_extensions.get(name));
        schema.is_none_or(|schema| live.in_scope.contains(schema))
    };
    toc.entries
        .iter()
        .filter(|e| {
            if SETTINGS.contains(&e.desc.as_str()) {
                return true;
            }
            if e.schema != "-" {
                return live.in_scope.contains(&e.schema);
            }
            match (e.desc.as_str(), e.tag.split_once(' ')) {
                ("SCHEMA", _) => live.in_scope.contains(&e.tag),
                ("EXTENSION", _) => keep_extension(&e.tag),
                ("PUBLICATION", _) => !live.publications.contains(&e.tag),
                ("COMMENT" | "ACL" | "SECURITY LABEL", Some(("SCHEMA", name))) => {
                    live.in_scope.contains(name)
                }
                ("COMMENT" | "ACL" | "SECURITY LABEL", Some(("EXTENSION", name))) => {
                    keep_extension(name)
                }
                ("COMMENT" | "SECURITY LABEL", Some(("PUBLICATION", name))) => {
                    !live.publications.contains(name)
                }
                _ => false,
            }
        })
        .map(|e| e.id)
        .collect()
}

/// An entry that belongs to a table not being restored but depends on one
/// that is (a foreign key pointing at it, a policy reading it …). The caller
/// keeps it only when its table exists and the object itself is missing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Foreign {
    pub id: u32,
    pub desc: String,
    pub schema: String,
    pub table: String,
    /// The object's own name (constraint, policy, trigger, rule; the column for a default).
    pub name: String,
}

/// Entries that bring back `tables` (`(schema, table)` pairs, all present in
/// the archive): their definitions and data, and everything attached to them.
/// `accepted` holds ids of [`Foreign`] entries the caller decided to keep;
/// the second value lists every foreign candidate met.
pub(crate) fn select_tables(
    toc: &Toc,
    tables: &[(String, String)],
    accepted: &BTreeSet<u32>,
) -> (Vec<u32>, Vec<Foreign>) {
    let restored: BTreeSet<(String, String)> = tables.iter().cloned().collect();
    let by_id: BTreeMap<u32, &Entry> = toc.entries.iter().map(|e| (e.id, e)).collect();
    let mut selected: BTreeSet<u32> = toc
        .entries
        .iter()
        .filter(|e| SETTINGS.contains(&e.desc.as_str()))
        .chain(tables.iter().filter_map(|(s, t)| toc.table(s, t)))
        .map(|e| e.id)
        .collect();
    let mut foreign = BTreeSet::new();
    loop {
        let before = selected.len();
        for e in &toc.entries {
            let attached =
                ATTACHED.contains(&e.desc.as_str()) && e.deps.iter().any(|d| selected.contains(d));
            if selected.contains(&e.id) || !attached {
                continue;
            }
            if !ON_A_TABLE.contains(&e.desc.as_str()) {
                selected.insert(e.id);
                continue;
            }
            let Some(table) = owning_table(e, &restored, &by_id) else {
                continue;
            };
            if restored.contains(&(e.schema.clone(), table.clone())) || accepted.contains(&e.id) {
                selected.insert(e.id);
            } else {
                let name = e.tag[table.len() + 1..].to_string();
                foreign.insert(Foreign {
                    id: e.id,
                    desc: e.desc.clone(),
                    schema: e.schema.clone(),
                    table,
                    name,
                });
            }
        }
        if selected.len() == before {
            break;
        }
    }
    let ids = toc
        .entries
        .iter()
        .map(|e| e.id)
        .filter(|id| selected.contains(id))
        .collect();
    (ids, foreign.into_iter().collect())
}

/// The table an entry tagged `<table> <name>` sits on: the longest restored
/// or depended-on table of its schema whose name starts the tag.
fn owning_table(
    e: &Entry,
    restored: &BTreeSet<(String, String)>,
    by_id: &BTreeMap<u32, &Entry>,
) -> Option<String> {
    let from_deps = e
        .deps
        .iter()
        .filter_map(|d| by_id.get(d))
        .filter(|d| d.desc == "TABLE" && d.schema == e.schema)
        .map(|d| d.tag.as_str());
    let from_restored = restored
        .iter()
        .filter(|(s, _)| *s == e.schema)
        .map(|(_, t)| t.as_str());
    from_deps
        .chain(from_restored)
        .filter(|t| {
            e.tag.len() > t.len() + 1 && e.tag.starts_with(*t) && e.tag.as_bytes()[t.len()] == b' '
        })
        .max_by_key(|t| t.len())
        .map(str::to_string)
}

/// Extension → schema, from the `CREATE EXTENSION IF NOT EXISTS <name> WITH
/// SCHEMA <schema>;` lines pg_restore writes for extension entries.
pub(crate) fn extension_schemas(sql: &str) -> BTreeMap<String, String> {
    sql.lines()
        .filter_map(|line| line.strip_prefix("CREATE EXTENSION IF NOT EXISTS "))
        .filter_map(|rest| {
            rest.trim_end()
                .strip_suffix(';')?
                .split_once(" WITH SCHEMA ")
        })
        .map(|(name, schema)| (unquote(name), unquote(schema)))
        .collect()
}

/// `"a""b"` → `a"b`; a bare identifier as it is.
fn unquote(ident: &str) -> String {
    let ident = ident.trim();
    match ident.strip_prefix('"').and_then(|i| i.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => ident.to_string(),
    }
}

/// The `pg_restore -L` list for `ids`: one `<id>;` line each.
pub(crate) fn use_list(ids: &[u32]) -> String {
    ids.iter().map(|id| format!("{id};\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    /// Shaped on `pg_restore -l -v` output of PostgreSQL 17 (trimmed), plus a
    /// table whose name has a space and a few objects outside any schema.
    const LISTING: &str = ";
; Archive created at 2026-11-25 21:30:48 UTC
;     dbname: t1
;     Dumped from database version: 17.10 (Debian 17.10-1)
;     Dumped by pg_dump version: 17.10
;
; Selected TOC Entries:
;
2631; 0 0 ENCODING - ENCODING 
2634; 1262 16384 DATABASE - t1 postgres
2635; 0 0 ACL - SCHEMA public pg_database_owner
;\tdepends on: 8
9; 2615 16488 SCHEMA - supabase_migrations postgres
2; 3079 16412 EXTENSION - pgcrypto 
2636; 0 0 COMMENT - EXTENSION pgcrypto 
;\tdepends on: 2
3; 3079 16413 EXTENSION - pg_trgm 
268; 1255 16486 FUNCTION public handle_new_user() postgres
225; 1259 16463 TABLE public members postgres
2639; 0 0 ACL public TABLE members postgres
;\tdepends on: 225
224; 1259 16462 SEQUENCE public members_id_seq postgres
;\tdepends on: 225
2640; 0 0 SEQUENCE OWNED BY public members_id_seq postgres
;\tdepends on: 224
223; 1259 16453 TABLE public orgs postgres
2642; 0 0 COMMENT public TABLE orgs postgres
;\tdepends on: 223
226; 1259 16489 TABLE supabase_migrations schema_migrations postgres
;\tdepends on: 9
230; 1259 16500 TABLE public order items postgres
2463; 2604 16466 DEFAULT public members id postgres
;\tdepends on: 224 225 225
2627; 0 16463 TABLE DATA public members postgres
;\tdepends on: 225
2625; 0 16453 TABLE DATA public orgs postgres
;\tdepends on: 223
2468; 2606 16459 CONSTRAINT public orgs orgs_pkey postgres
;\tdepends on: 223
2471; 1259 16482 INDEX public members_user_idx postgres
;\tdepends on: 225
2474; 2606 16472 FK CONSTRAINT public members members_org_id_fkey postgres
;\tdepends on: 225 223 2468
2480; 2606 16600 FK CONSTRAINT public order items order items_org_fkey postgres
;\tdepends on: 230 223 2468
2622; 0 16463 ROW SECURITY public members postgres
;\tdepends on: 225
2623; 3256 16483 POLICY public members members_self postgres
;\tdepends on: 225 225
2100; 6104 16522 PUBLICATION - supabase_realtime postgres
2101; 3466 16530 EVENT TRIGGER - ddl_watch postgres
2103; 826 16450 DEFAULT ACL public DEFAULT PRIVILEGES FOR SEQUENCES postgres
2104; 826 16451 DEFAULT ACL - DEFAULT PRIVILEGES FOR TABLES postgres
";

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_entries_dependencies_and_versions() {
        let toc = parse(LISTING).unwrap();
        assert_eq!(toc.server_major(), Some(17));
        assert_eq!(toc.dump_major(), Some(17));
        assert_eq!(toc.entries.len(), 29);
        let fk = toc.entries.iter().find(|e| e.id == 2474).unwrap();
        assert_eq!(
            fk,
            &Entry {
                id: 2474,
                desc: "FK CONSTRAINT".into(),
                schema: "public".into(),
                tag: "members members_org_id_fkey".into(),
                owner: "postgres".into(),
                deps: vec![225, 223, 2468],
            }
        );
        let ext = toc.entries.iter().find(|e| e.id == 2).unwrap();
        assert_eq!(
            (
                ext.desc.as_str(),
                ext.schema.as_str(),
                ext.tag.as_str(),
                ext.owner.as_str()
            ),
            ("EXTENSION", "-", "pgcrypto", "")
        );
        assert_eq!(toc.table("public", "order items").map(|e| e.id), Some(230));
        let acl = toc.entries.iter().find(|e| e.id == 2104).unwrap();
        assert_eq!(
            (acl.desc.as_str(), acl.schema.as_str()),
            ("DEFAULT ACL", "-")
        );
        assert!(parse("12; not an entry").is_err());
    }

    #[test]
    fn schema_restore_keeps_the_scope_and_what_its_drop_takes_along() {
        let toc = parse(LISTING).unwrap();
        let mut live = LiveGlobals {
            in_scope: set(&["public", "supabase_migrations"]),
            extensions: [("pgcrypto", "extensions"), ("pg_trgm", "public")]
                .into_iter()
                .map(|(n, s)| (n.to_string(), s.to_string()))
                .collect(),
            archived_extensions: BTreeMap::new(),
            publications: set(&["supabase_realtime"]),
        };
        let expected = vec![
            2631, 2635, 9, 3, 268, 225, 2639, 224, 2640, 223, 2642, 226, 230, 2463, 2627, 2625,
            2468, 2471, 2474, 2480, 2622, 2623, 2103,
        ];
        assert_eq!(select_schemas(&toc, &live), expected);

        // A missing extension that belongs in scope and a missing publication come back;
        // a schema out of scope does not, nor a missing extension of such a schema.
        live.extensions.remove("pgcrypto");
        live.extensions.remove("pg_trgm");
        live.archived_extensions = extension_schemas(
            "SET x = 1;\nCREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;\n\
             CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA \"extensions\";\n",
        );
        assert_eq!(
            live.archived_extensions.get("pg_trgm").map(String::as_str),
            Some("extensions")
        );
        live.publications.clear();
        live.in_scope = set(&["public"]);
        let ids = select_schemas(&toc, &live);
        for id in [2, 2636, 2100] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        for id in [3, 9, 226, 2634, 2101, 2104] {
            assert!(!ids.contains(&id), "{id} should not be replayed: {ids:?}");
        }
    }

    #[test]
    fn table_restore_takes_attached_objects_and_offers_foreign_ones() {
        let toc = parse(LISTING).unwrap();
        let members = [("public".to_string(), "members".to_string())];
        let (ids, foreign) = select_tables(&toc, &members, &BTreeSet::new());
        assert_eq!(
            ids,
            vec![
                2631, 225, 2639, 224, 2640, 2463, 2627, 2471, 2474, 2622, 2623
            ]
        );
        assert_eq!(foreign, vec![]);

        let orgs = [("public".to_string(), "orgs".to_string())];
        let (ids, foreign) = select_tables(&toc, &orgs, &BTreeSet::new());
        assert_eq!(ids, vec![2631, 223, 2642, 2625, 2468]);
        let names: Vec<(u32, &str, &str)> = foreign
            .iter()
            .map(|f| (f.id, f.table.as_str(), f.name.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                (2474, "members", "members_org_id_fkey"),
                (2480, "order items", "order items_org_fkey")
            ]
        );

        let (ids, _) = select_tables(&toc, &orgs, &BTreeSet::from([2474]));
        assert_eq!(ids, vec![2631, 223, 2642, 2625, 2468, 2474]);
        assert_eq!(use_list(&[3, 17]), "3;\n17;\n");
    }
}
