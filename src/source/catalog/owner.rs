//! Which table or function a catalog object belongs to, from its key and
//! definition alone. The diagnosis asks this for every difference it
//! explains, so a project with a thousand tables and a thousand pending
//! migrations asks it tens of thousands of times: the table names are a
//! set ([`TableNames`]) and each question looks up the few names its key
//! and definition could start with, instead of trying every table.

use std::collections::BTreeSet;

/// Qualified table names (`schema.table`, quoted where SQL needs it), for
/// [`owner_table`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableNames {
    names: BTreeSet<String>,
    /// The length of the longest name: no candidate longer is looked up.
    longest: usize,
}

impl TableNames {
    /// Whether `name` is one of the tables.
    pub fn contains(&self, name: &str) -> bool {
        name.len() <= self.longest && self.names.contains(name)
    }

    /// The names, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }
}

impl FromIterator<String> for TableNames {
    fn from_iter<I: IntoIterator<Item = String>>(names: I) -> TableNames {
        let names: BTreeSet<String> = names.into_iter().collect();
        let longest = names.iter().map(String::len).max().unwrap_or(0);
        TableNames { names, longest }
    }
}

/// The table a catalog object belongs to (the table itself, or the table of
/// a column, constraint, index, policy, trigger, grant or comment): the
/// longest of `tables` that the key names — the whole rest of the key, or
/// its start up to a `.` or a space — or that the definition names after
/// ` ON ` (an index or trigger). Among names of equal length the greatest
/// wins, so the answer never depends on the order of the questions.
pub fn owner_table(key: &str, definition: &str, tables: &TableNames) -> Option<String> {
    let rest = key.split_once(' ').map(|(_, r)| r).unwrap_or("");
    let rest = rest
        .strip_prefix("table ")
        .or_else(|| rest.strip_prefix("column "))
        .unwrap_or(rest);
    let mut best: Option<&str> = None;
    consider(&mut best, rest, tables);
    for (i, c) in rest.char_indices() {
        if c == '.' || c == ' ' {
            consider(&mut best, &rest[..i], tables);
        }
    }
    // Every ` ON ` (overlapping ones too), each followed by a name and a
    // space; a long function body is scanned only a table name's length on.
    let mut from = 0;
    while let Some(at) = definition[from..].find(" ON ") {
        let after = &definition[from + at + " ON ".len()..];
        for (i, c) in after
            .char_indices()
            .take_while(|(i, _)| *i <= tables.longest)
        {
            if c == ' ' {
                consider(&mut best, &after[..i], tables);
            }
        }
        from += at + 1;
    }
    best.map(str::to_string)
}

/// Keeps `candidate` in `best` if it is a table and longer (or, as long,
/// greater) than what `best` holds.
fn consider<'a>(best: &mut Option<&'a str>, candidate: &'a str, tables: &TableNames) {
    let better = best.is_none_or(|b| (candidate.len(), candidate) > (b.len(), b));
    if better && tables.contains(candidate) {
        *best = Some(candidate);
    }
}

/// The function a grant or comment belongs to (`grant public.f(uuid) anon`
/// → `public.f(uuid)`), among `functions` (signatures as in function keys).
pub fn owner_function(key: &str, functions: &[String]) -> Option<String> {
    let rest = key
        .strip_prefix("grant ")
        .or_else(|| key.strip_prefix("comment function "))?;
    functions
        .iter()
        .filter(|f| rest == f.as_str() || rest.starts_with(&format!("{f} ")))
        .max_by_key(|f| f.len())
        .cloned()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn tables(names: &[&str]) -> TableNames {
        names.iter().map(|n| n.to_string()).collect()
    }

    /// The rule stated plainly: try every table (how it was written before
    /// the set; the property below holds the lookup to it).
    fn by_scanning(key: &str, definition: &str, tables: &TableNames) -> Option<String> {
        let rest = key.split_once(' ').map(|(_, r)| r).unwrap_or("");
        let rest = rest
            .strip_prefix("table ")
            .or_else(|| rest.strip_prefix("column "))
            .unwrap_or(rest);
        tables
            .iter()
            .filter(|t| {
                rest == *t
                    || rest.starts_with(&format!("{t}."))
                    || rest.starts_with(&format!("{t} "))
                    || definition.contains(&format!(" ON {t} "))
            })
            .max_by_key(|t| t.len())
            .map(str::to_string)
    }

    #[test]
    fn each_kind_of_key_finds_its_table() {
        let t = tables(&["public.t", "public.t_1", "app.\"my table\""]);
        let owner = |key: &str, def: &str| owner_table(key, def, &t);
        assert_eq!(owner("table public.t", ""), Some("public.t".into()));
        assert_eq!(
            owner("column public.t_1.name", ""),
            Some("public.t_1".into())
        );
        assert_eq!(
            owner("policy public.t_1 owners", ""),
            Some("public.t_1".into())
        );
        assert_eq!(
            owner("grant public.t anon SELECT", ""),
            Some("public.t".into())
        );
        assert_eq!(
            owner("column app.\"my table\".id", ""),
            Some("app.\"my table\"".into())
        );
        assert_eq!(
            owner(
                "index public.t_1_owner_idx",
                "CREATE INDEX t_1_owner_idx ON public.t_1 USING btree (owner_id)"
            ),
            Some("public.t_1".into())
        );
        assert_eq!(
            owner(
                "index app.idx",
                "CREATE INDEX idx ON app.\"my table\" USING btree (id)"
            ),
            Some("app.\"my table\"".into())
        );
        assert_eq!(owner("function public.f()", "select 1"), None);
        // ` ON ` twice in a row: the name follows the second.
        assert_eq!(
            owner("index public.i", "CREATE INDEX i ON ON public.t "),
            Some("public.t".into())
        );
        // Two names of one length: the greater.
        assert_eq!(
            owner_table("column a.b.c", " ON a.c ", &tables(&["a.b", "a.c"])),
            Some("a.c".into())
        );
        assert_eq!(owner("column public.t_2.x", ""), None);
    }

    #[test]
    fn owner_function_takes_the_longest_signature_the_key_starts_with() {
        let functions = vec!["public.f()".to_string(), "public.f(uuid)".to_string()];
        assert_eq!(
            owner_function("grant public.f(uuid) anon EXECUTE", &functions),
            Some("public.f(uuid)".into())
        );
        assert_eq!(owner_function("table public.f()", &functions), None);
    }

    /// Names built from few characters, so that prefixes, dots, spaces and
    /// ` ON ` collide often.
    fn name() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[ab. ON]{1,6}").expect("a valid pattern")
    }

    /// A key or definition made of table names (so that they match often),
    /// with dots, spaces and `ON`s between them.
    fn made_of(names: &[String], picks: &[(prop::sample::Index, &str)]) -> String {
        picks
            .iter()
            .map(|(i, glue)| format!("{}{glue}", i.get(names)))
            .collect()
    }

    proptest! {
        #[test]
        fn the_lookup_answers_as_trying_every_table_does(
            names in proptest::collection::vec(name(), 1..8),
            kind in prop_oneof![Just("table"), Just("column"), Just("index"), Just("grant")],
            key in proptest::collection::vec((any::<prop::sample::Index>(), prop_oneof![Just(""), Just("."), Just(" ")]), 1..3),
            definition in proptest::collection::vec((any::<prop::sample::Index>(), prop_oneof![Just(" ON "), Just(" "), Just(" ON ON "), Just("x")]), 0..5),
        ) {
            let tables: TableNames = names.iter().cloned().collect();
            let key = format!("{kind} {}", made_of(&names, &key));
            let definition = format!(" ON {}", made_of(&names, &definition));
            prop_assert_eq!(
                owner_table(&key, &definition, &tables),
                by_scanning(&key, &definition, &tables)
            );
        }
    }
}
