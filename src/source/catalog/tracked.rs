//! A catalog kept up to date piece by piece: after a change to a few roots
//! (see [`ObjectSet`]), only those roots are read again, and what changed is
//! returned as the same [`Difference`]s a [`diff()`](super::diff()) of two
//! whole catalogs would give. It remembers which root every key came from
//! and which sub-objects (indexes, constraints, policies, triggers, column
//! defaults) and partitions hang off each root, so that a dropped
//! sub-object can be traced back to its root.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::PgConnection;

use super::introspect::{ObjectSet, Reading, RootClass};
use super::{Catalog, CatalogOptions, Change, Difference, Object, ObjectKind, diff};
use crate::error::Result;

/// A catalog with the root of every object (see the module's doc).
#[derive(Debug, Clone, Default)]
pub struct TrackedCatalog {
    catalog: Catalog,
    keys_of: HashMap<u32, BTreeSet<String>>,
    root_of: HashMap<String, u32>,
    parts: HashMap<u32, u32>,
    children: HashMap<u32, BTreeSet<u32>>,
}

/// What to read again after a change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refresh {
    /// Roots that exist and may have changed, with their class.
    pub roots: BTreeMap<u32, RootClass>,
    /// Roots that may be gone (their objects are forgotten unless read again).
    pub gone: BTreeSet<u32>,
    /// Every grant may have changed (`GRANT`/`REVOKE` name no object).
    pub grants: bool,
}

impl Refresh {
    /// Nothing to read again.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty() && self.gone.is_empty() && !self.grants
    }
}

impl TrackedCatalog {
    /// Reads the whole catalog of the database behind `conn`.
    pub async fn read(conn: &mut PgConnection, options: &CatalogOptions) -> Result<TrackedCatalog> {
        let reading = Catalog::introspect_objects(conn, options, &ObjectSet::everything()).await?;
        let mut tracked = TrackedCatalog::default();
        tracked.absorb(reading, &mut HashMap::new());
        Ok(tracked)
    }

    /// The catalog as it stands.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Takes the catalog out, leaving an empty tracker.
    pub fn into_catalog(self) -> Catalog {
        self.catalog
    }

    /// Whether `oid` is a root some object was read from.
    pub fn is_root(&self, oid: u32) -> bool {
        self.keys_of.contains_key(&oid)
    }

    /// The root a sub-object (index, constraint, policy, trigger, column
    /// default) hung off when it was last read.
    pub fn root_of_part(&self, oid: u32) -> Option<u32> {
        self.parts.get(&oid).copied()
    }

    /// The partitions of `root` when it was last read.
    pub fn children_of(&self, root: u32) -> impl Iterator<Item = u32> + '_ {
        self.children.get(&root).into_iter().flatten().copied()
    }

    /// Reads the whole catalog again; returns what changed.
    pub async fn reread(
        &mut self,
        conn: &mut PgConnection,
        options: &CatalogOptions,
    ) -> Result<Vec<Difference>> {
        let fresh = TrackedCatalog::read(conn, options).await?;
        let changes = diff(&fresh.catalog, &self.catalog);
        *self = fresh;
        Ok(changes)
    }

    /// Reads `refresh`'s roots (and every grant, if asked) again; returns
    /// what changed, sorted by key.
    pub async fn refresh(
        &mut self,
        conn: &mut PgConnection,
        options: &CatalogOptions,
        refresh: &Refresh,
    ) -> Result<Vec<Difference>> {
        let (roots, grants) = read_again(conn, options, refresh).await?;
        let mut before: HashMap<String, Option<Object>> = HashMap::new();
        for root in refresh.roots.keys().chain(&refresh.gone) {
            self.forget_root(*root, &mut before);
        }
        if refresh.grants {
            for key in self.grant_keys() {
                self.forget_key(&key, &mut before);
            }
        }
        if let Some(reading) = roots {
            for root in refresh.roots.keys() {
                self.children.remove(root);
            }
            self.absorb(reading, &mut before);
        }
        if let Some(reading) = grants {
            self.absorb(reading, &mut before);
        }
        let catalog = &self.catalog;
        Ok(changes(before.iter().map(|(key, old)| {
            (key, catalog.objects.get(key), old.as_ref())
        })))
    }

    /// What [`refresh`](Self::refresh) would return, without changing the
    /// catalog kept here: for a change that is tried and rolled back (a
    /// ledger row's recorded statements, run where today's file runs).
    pub async fn changes_if_read(
        &self,
        conn: &mut PgConnection,
        options: &CatalogOptions,
        refresh: &Refresh,
    ) -> Result<Vec<Difference>> {
        let (roots, grants) = read_again(conn, options, refresh).await?;
        // Every key the refresh would forget is gone unless a reading has it.
        let mut now: HashMap<String, Option<Object>> = HashMap::new();
        for root in refresh.roots.keys().chain(&refresh.gone) {
            for key in self.keys_of.get(root).into_iter().flatten() {
                if self.root_of.get(key) == Some(root) {
                    now.insert(key.clone(), None);
                }
            }
        }
        if refresh.grants {
            now.extend(self.grant_keys().into_iter().map(|key| (key, None)));
        }
        for reading in roots.into_iter().chain(grants) {
            let mut objects = reading.catalog.objects;
            for (key, _) in reading.owners {
                if let Some(object) = objects.remove(&key) {
                    now.insert(key, Some(object)); // the first occurrence, as `absorb`
                }
            }
        }
        Ok(changes(now.iter().map(|(key, new)| {
            (key, new.as_ref(), self.catalog.objects.get(key))
        })))
    }

    fn grant_keys(&self) -> Vec<String> {
        self.catalog
            .objects
            .values()
            .filter(|o| o.kind == ObjectKind::Grant)
            .map(|o| o.key.clone())
            .collect()
    }

    /// Removes every object of `root`, remembering the old values in `before`.
    fn forget_root(&mut self, root: u32, before: &mut HashMap<String, Option<Object>>) {
        for key in self.keys_of.remove(&root).unwrap_or_default() {
            if self.root_of.get(&key) == Some(&root) {
                self.root_of.remove(&key);
                let old = self.catalog.objects.remove(&key);
                before.entry(key).or_insert(old);
            }
        }
    }

    fn forget_key(&mut self, key: &str, before: &mut HashMap<String, Option<Object>>) {
        if let Some(root) = self.root_of.remove(key)
            && let Some(keys) = self.keys_of.get_mut(&root)
        {
            keys.remove(key);
        }
        let old = self.catalog.objects.remove(key);
        before.entry(key.to_string()).or_insert(old);
    }

    /// Adds what a read returned, remembering the old values of the keys it sets.
    fn absorb(&mut self, reading: Reading, before: &mut HashMap<String, Option<Object>>) {
        let Reading {
            catalog,
            owners,
            parts,
            children,
        } = reading;
        let mut objects = catalog.objects;
        for (key, root) in owners {
            let Some(object) = objects.remove(&key) else {
                continue; // a key read twice: the first occurrence took it
            };
            if let Some(previous) = self.root_of.insert(key.clone(), root)
                && previous != root
                && let Some(keys) = self.keys_of.get_mut(&previous)
            {
                keys.remove(&key);
            }
            self.keys_of.entry(root).or_default().insert(key.clone());
            let old = self.catalog.objects.insert(key.clone(), object);
            before.entry(key).or_insert(old);
        }
        for (part, root) in parts {
            self.parts.insert(part, root);
        }
        for (child, parent) in children {
            self.children.entry(parent).or_default().insert(child);
        }
    }
}

/// The readings a refresh asks for: its roots, then every grant (if asked).
async fn read_again(
    conn: &mut PgConnection,
    options: &CatalogOptions,
    refresh: &Refresh,
) -> Result<(Option<Reading>, Option<Reading>)> {
    let roots = if refresh.roots.is_empty() {
        None
    } else {
        let set = ObjectSet::roots(refresh.roots.clone());
        Some(Catalog::introspect_objects(conn, options, &set).await?)
    };
    let grants = if refresh.grants {
        let set = ObjectSet::kind(ObjectKind::Grant);
        Some(Catalog::introspect_objects(conn, options, &set).await?)
    } else {
        None
    };
    Ok((roots, grants))
}

/// `(key, new, old)` as the differences [`diff()`] would give, sorted by key.
fn changes<'a>(
    pairs: impl Iterator<Item = (&'a String, Option<&'a Object>, Option<&'a Object>)>,
) -> Vec<Difference> {
    let definition = |o: Option<&'a Object>| o.map(|o| o.definition.as_str());
    let mut out: Vec<Difference> = pairs
        .filter_map(|(key, new, old)| {
            let change = Change::between(definition(new), definition(old))?;
            Some(Difference {
                key: key.clone(),
                kind: new.or(old)?.kind,
                change,
            })
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}
