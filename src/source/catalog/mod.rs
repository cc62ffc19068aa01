//! The schema of a live database as data: every user object (tables,
//! columns, constraints, indexes, RLS, policies, functions, triggers, views,
//! sequences, types, comments, grants, extensions) becomes one [`Object`] with
//! a stable, human-readable key and a canonical definition text. The text is
//! the same on PostgreSQL 14–18 for the same schema and never mentions OIDs,
//! owners or anything else that varies between databases, so two catalogs —
//! a clean replay of the migrations and the real target — can be compared
//! with [`diff()`], fingerprinted, and snapshot-tested.
//!
//! Reading the database lives in `introspect` and `relations` (with the SQL
//! in `queries`), the canonical-text rules in `canonical`, and the
//! comparison in `diff`. A read can be limited to a few objects and their
//! dependents ([`ObjectSet`]); `tracked` keeps a catalog up to date that way
//! ([`TrackedCatalog`]), which is how a replay follows the schema migration
//! by migration without reading the whole catalog after each one.

mod canonical;
mod diff;
mod group;
mod introspect;
mod owner;
mod queries;
mod relations;
mod row;
mod tracked;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use diff::{Change, Difference, diff};
pub use group::{Group, group, parts_phrase};
pub use introspect::{ObjectSet, Reading, RootClass};
pub use owner::{TableNames, owner_function, owner_table};
pub use tracked::{Refresh, TrackedCatalog};

/// Schemas that belong to the Supabase platform (or its local shim), never
/// to a project's migrations. System schemas (`pg_catalog`,
/// `information_schema`, `pg_toast*`, `pg_temp*`, every `pg_*`) are always
/// skipped and need not be listed. (The ledger's schema is listed too: it is
/// compared on its own, and a backup keeps it — see `tools::DumpScope`.)
pub(crate) const PLATFORM_SCHEMAS: &[&str] = &[
    "auth",
    "extensions",
    "storage",
    "realtime",
    "graphql",
    "graphql_public",
    "vault",
    "pgsodium",
    "pgsodium_masks",
    "supabase_functions",
    "net",
    "cron",
    "supabase_migrations",
    "pgbouncer",
    "pgtle",
    "_realtime",
    "_analytics",
    "_supavisor",
];

/// Which schemas to look at when reading a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogOptions {
    /// Schema names to leave out, besides the system schemas (always left out).
    /// The default lists the Supabase platform and shim schemas.
    pub exclude_schemas: Vec<String>,
}

impl Default for CatalogOptions {
    /// Leaves out the Supabase platform schemas (`auth`, `extensions`,
    /// `storage`, `realtime`, `graphql`, `graphql_public`, `vault`,
    /// `pgsodium`, `supabase_functions`, `net`, `cron`,
    /// `supabase_migrations`, and a few internal ones such as `pgbouncer`).
    fn default() -> Self {
        CatalogOptions {
            exclude_schemas: PLATFORM_SCHEMAS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// What sort of database object an [`Object`] describes; also the first word(s) of its key.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Schema,
    Extension,
    Type,
    Sequence,
    Table,
    Column,
    Constraint,
    Index,
    RowSecurity,
    Policy,
    Function,
    Trigger,
    View,
    MaterializedView,
    Comment,
    Grant,
}

impl ObjectKind {
    /// The words that start this kind's keys (`"table"`, `"rls"`, `"materialized view"` …).
    pub fn label(self) -> &'static str {
        match self {
            ObjectKind::Schema => "schema",
            ObjectKind::Extension => "extension",
            ObjectKind::Type => "type",
            ObjectKind::Sequence => "sequence",
            ObjectKind::Table => "table",
            ObjectKind::Column => "column",
            ObjectKind::Constraint => "constraint",
            ObjectKind::Index => "index",
            ObjectKind::RowSecurity => "rls",
            ObjectKind::Policy => "policy",
            ObjectKind::Function => "function",
            ObjectKind::Trigger => "trigger",
            ObjectKind::View => "view",
            ObjectKind::MaterializedView => "materialized view",
            ObjectKind::Comment => "comment",
            ObjectKind::Grant => "grant",
        }
    }
}

/// One database object: a stable key (e.g. `column public.organizations.slug`)
/// and its canonical definition (e.g. `text not null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    /// What sort of object this is.
    pub kind: ObjectKind,
    /// `<kind label> <qualified name>`; unique within a catalog.
    pub key: String,
    /// Canonical definition; equal texts mean equal objects.
    pub definition: String,
}

impl Object {
    /// An object whose key is `<kind label> <name>`.
    pub(crate) fn new(kind: ObjectKind, name: &str, definition: impl Into<String>) -> Object {
        Object {
            kind,
            key: format!("{} {}", kind.label(), name),
            definition: definition.into(),
        }
    }
}

/// The user schema of one database: every object, ordered by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Objects by key.
    pub objects: BTreeMap<String, Object>,
}

impl Catalog {
    /// A catalog of `(key, kind, definition)` entries, keys taken as written:
    /// the fixtures of unit tests that compare catalogs.
    #[cfg(test)]
    pub(crate) fn from_entries(entries: &[(&str, ObjectKind, &str)]) -> Catalog {
        let mut catalog = Catalog::default();
        for (key, kind, definition) in entries {
            catalog.insert(Object {
                key: key.to_string(),
                kind: *kind,
                definition: definition.to_string(),
            });
        }
        catalog
    }

    /// Adds an object (a later object with the same key replaces the earlier).
    pub(crate) fn insert(&mut self, object: Object) {
        self.objects.insert(object.key.clone(), object);
    }

    /// One line per object, `<key>: <definition>`, in key order. Newlines and
    /// carriage returns inside a line are written as `\n` and `\r`. Identical
    /// on every supported PostgreSQL major for the same schema; this is what
    /// snapshots store.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for object in self.objects.values() {
            let line = format!("{}: {}", object.key, object.definition);
            text.push_str(&line.replace('\n', "\\n").replace('\r', "\\r"));
            text.push('\n');
        }
        text
    }

    /// SHA-256 (lowercase hex) of [`Catalog::to_text`]: equal fingerprints, equal schemas.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.to_text().as_bytes());
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Every table as `schema.table` (identifiers quoted where SQL needs it), sorted.
    pub fn tables(&self) -> Vec<String> {
        let prefix = format!("{} ", ObjectKind::Table.label());
        self.objects
            .values()
            .filter(|object| object.kind == ObjectKind::Table)
            .filter_map(|object| object.key.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }

    /// [`Catalog::tables`] as a set, for [`owner_table`].
    pub fn table_names(&self) -> TableNames {
        self.tables().into_iter().collect()
    }

    /// The object with this key, if present.
    pub fn get(&self, key: &str) -> Option<&Object> {
        self.objects.get(key)
    }

    /// A catalog holding only the objects for which `keep` returns true.
    pub fn filter(&self, keep: impl Fn(&Object) -> bool) -> Catalog {
        Catalog {
            objects: self
                .objects
                .iter()
                .filter(|(_, object)| keep(object))
                .map(|(key, object)| (key.clone(), object.clone()))
                .collect(),
        }
    }
}

/// The key of a grant on `object` (a table, view, sequence or function name
/// as in its own key) to `grantee` (`None` for PUBLIC).
pub fn grant_key(object: &str, grantee: Option<&str>) -> String {
    let grantee = grantee
        .map(canonical::ident)
        .unwrap_or_else(|| "PUBLIC".into());
    format!("grant {object} {grantee}")
}

/// A grant's canonical definition: privileges sorted, each marked when it
/// can be passed on (`SELECT, UPDATE (with grant option)`).
pub fn grant_definition(privileges: &BTreeMap<String, bool>) -> String {
    privileges
        .iter()
        .map(|(privilege, grantable)| {
            if *grantable {
                format!("{privilege} (with grant option)")
            } else {
                privilege.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A grant key's two parts: the object as its own key names it, and the
/// grantee as written (quoted if it needs quotes).
fn grant_parts(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("grant ")?;
    if let Some(inner) = rest.strip_suffix('"') {
        let start = inner.rfind(" \"")?;
        return Some((&rest[..start], &rest[start + 1..]));
    }
    rest.rsplit_once(' ')
}

/// The grantee a grant key names (`PUBLIC` or the role, unquoted).
pub fn grant_grantee(key: &str) -> Option<String> {
    let (_, grantee) = grant_parts(key)?;
    Some(
        match grantee.strip_prefix('"').and_then(|g| g.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => grantee.to_string(),
        },
    )
}

/// The object a grant key is about, as that object's own key names it
/// (`grant public.f(uuid) anon` → `public.f(uuid)`).
pub fn grant_object(key: &str) -> Option<&str> {
    grant_parts(key).map(|(object, _)| object)
}

/// The schema and object of a qualified name as keys write it, unquoted
/// (`public.t` → (`public`, `t`); `"My App"."T"` → (`My App`, `T`)).
pub fn split_qualified(name: &str) -> Option<(String, String)> {
    let schema = schema_of(name)?;
    let rest = if name.starts_with('"') {
        &name[canonical::ident(&schema).len().max(schema.len() + 2)..]
    } else {
        &name[schema.len()..]
    };
    let object = rest.strip_prefix('.')?;
    let object = match object.strip_prefix('"').and_then(|o| o.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => object.to_string(),
    };
    Some((schema, object))
}

/// The schema of a qualified name as keys write it (`public.t`, `"My App".t`).
pub fn schema_of(name: &str) -> Option<String> {
    if let Some(quoted) = name.strip_prefix('"') {
        let mut schema = String::new();
        let mut chars = quoted.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    schema.push('"');
                }
                '"' => return Some(schema),
                other => schema.push(other),
            }
        }
        return None;
    }
    name.split_once('.').map(|(s, _)| s.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn grant_keys_name_object_and_grantee() {
        assert_eq!(grant_key("public.t", Some("anon")), "grant public.t anon");
        assert_eq!(
            grant_key("public.f(uuid)", None),
            "grant public.f(uuid) PUBLIC"
        );
        assert_eq!(
            grant_key("public.t", Some("Read Only")),
            "grant public.t \"Read Only\""
        );
        assert_eq!(
            grant_grantee("grant public.t anon").as_deref(),
            Some("anon")
        );
        assert_eq!(
            grant_grantee("grant public.t \"Read Only\"").as_deref(),
            Some("Read Only")
        );
        assert_eq!(schema_of("public.t").as_deref(), Some("public"));
        assert_eq!(schema_of("\"My.App\".t").as_deref(), Some("My.App"));
        assert_eq!(
            split_qualified("public.t"),
            Some(("public".into(), "t".into()))
        );
        assert_eq!(
            split_qualified("\"My.App\".\"T x\""),
            Some(("My.App".into(), "T x".into()))
        );
        let privileges =
            BTreeMap::from([("UPDATE".to_string(), true), ("SELECT".to_string(), false)]);
        assert_eq!(
            grant_definition(&privileges),
            "SELECT, UPDATE (with grant option)"
        );
    }

    use super::*;
    use pretty_assertions::assert_eq;

    fn sample() -> Catalog {
        let mut catalog = Catalog::default();
        catalog.insert(Object::new(
            ObjectKind::Table,
            "public.organizations",
            "table",
        ));
        catalog.insert(Object::new(
            ObjectKind::Column,
            "public.organizations.slug",
            "text not null",
        ));
        catalog.insert(Object::new(ObjectKind::Schema, "public", "schema"));
        catalog.insert(Object::new(ObjectKind::Table, "app.audit", "table"));
        catalog.insert(Object::new(
            ObjectKind::Comment,
            "table app.audit",
            "Audit trail\nof changes",
        ));
        catalog
    }

    #[test]
    fn to_text_lists_objects_in_key_order_one_per_line() {
        let expected = "column public.organizations.slug: text not null\n\
                        comment table app.audit: Audit trail\\nof changes\n\
                        schema public: schema\n\
                        table app.audit: table\n\
                        table public.organizations: table\n";
        assert_eq!(sample().to_text(), expected);
    }

    #[test]
    fn to_text_does_not_depend_on_insertion_order() {
        let mut reversed = Catalog::default();
        for object in sample().objects.values().rev() {
            reversed.insert(object.clone());
        }
        assert_eq!(reversed.to_text(), sample().to_text());
    }

    #[test]
    fn fingerprint_is_sha256_hex_of_text_and_stable() {
        let empty = Catalog::default();
        // SHA-256 of the empty string.
        assert_eq!(
            empty.fingerprint(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(sample().fingerprint(), sample().fingerprint());
        assert_eq!(sample().fingerprint().len(), 64);
        let mut changed = sample();
        changed.insert(Object::new(
            ObjectKind::Column,
            "public.organizations.slug",
            "text",
        ));
        assert_ne!(changed.fingerprint(), sample().fingerprint());
    }

    #[test]
    fn tables_lists_qualified_names_sorted() {
        assert_eq!(sample().tables(), vec!["app.audit", "public.organizations"]);
    }

    #[test]
    fn get_and_filter_select_objects() {
        let catalog = sample();
        assert_eq!(
            catalog
                .get("column public.organizations.slug")
                .map(|o| o.definition.as_str()),
            Some("text not null")
        );
        assert_eq!(catalog.get("column public.organizations.name"), None);
        let tables = catalog.filter(|object| object.kind == ObjectKind::Table);
        assert_eq!(tables.objects.len(), 2);
        assert!(tables.objects.values().all(|o| o.kind == ObjectKind::Table));
    }

    #[test]
    fn default_options_exclude_the_supabase_platform_schemas() {
        let options = CatalogOptions::default();
        for schema in [
            "auth",
            "extensions",
            "storage",
            "supabase_migrations",
            "cron",
            "vault",
        ] {
            assert!(
                options.exclude_schemas.iter().any(|s| s == schema),
                "{schema}"
            );
        }
        assert!(!options.exclude_schemas.iter().any(|s| s == "public"));
    }

    #[test]
    fn serde_round_trip_keeps_the_catalog() {
        let json = serde_json::to_string(&sample()).unwrap();
        let back: Catalog = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sample());
        assert!(
            serde_json::to_string(&ObjectKind::MaterializedView)
                .unwrap()
                .contains("materialized_view")
        );
    }
}
