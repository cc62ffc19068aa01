//! A Supabase-layout migrations folder (`supabase/migrations`), read with the rules
//! the Supabase CLI applies in `ListLocalMigrations` / `NewMigrationFromFile`, so the
//! versions, names, order and statements we compare with the ledger are the ones the
//! CLI would have pushed.
//!
//! # Rules
//!
//! * A migration is a file named `<version>_<name>.sql`: the CLI's pattern
//!   `^([0-9]+)_(.*)\.sql$` — the version is the leading ASCII digits, the name is
//!   everything between the `_` and the final `.sql` (it may be empty, hold `_` or `.`,
//!   but no newline), `.sql` is case-sensitive.
//! * Order is the CLI's: the folder listing sorted by file name, byte by byte. For
//!   versions of equal length (the usual 14-digit timestamps) that is version order;
//!   versions are strings, never numbers (`10_` sorts before `9_`, and `123_` before
//!   `12_`, since `_` sorts after the digits).
//! * Other files are skipped with a warning ([`Skipped`]), as the CLI does (it prints
//!   "Skipping migration …"), dot files such as `.gitkeep` included.
//! * Legacy init file: when the *first* entry of the sorted listing (files and folders
//!   count) is a file whose name contains 14 digits followed by `_init.sql` and those
//!   digits are below `20211209000000`, it is skipped: CLI versions before December 2021
//!   wrote the initial schema there and current ones never apply it. The same file
//!   anywhere else in the listing is an ordinary migration named `init`.
//! * Folders are ignored. Recent CLI versions also accept a folder `<version>_<name>/`
//!   holding exactly one `.sql` file as a migration; we do not read those and list such
//!   folders in [`Project::skipped`] so the gap is visible.
//! * Each migration's statements are [`split_and_trim`] of its text.
//! * A file the CLI's statement scanner cannot read (a statement longer than its buffer,
//!   see [`cli_rejects`]) makes the CLI stop with "token too long" instead of pushing it.
//!
//! # Deliberate deviations
//!
//! Where the CLI silently goes on, we stop with [`Error::Invalid`] naming the file: a
//! missing folder (the CLI sees no migrations at all), two files with the same version,
//! an unreadable file, a file that is not UTF-8 (the CLI stores its raw bytes). Where the
//! CLI itself fails on a file (the scanner limit above), we fail too, naming the file and
//! the statement, with the CLI's limit taken from `SUPABASE_SCANNER_BUFFER_SIZE` in our
//! environment. File
//! names that are not UTF-8 are skipped with a warning. A symbolic link to a folder
//! counts as a folder (the CLI would try to read it as a file and fail).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Error;
use crate::source::split::{ScannerBuffer, cli_rejects, split_and_trim};

/// One migration file, with the text and statements the CLI would push for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Migration {
    /// The leading digits of the file name, as the ledger's `version` column holds them.
    pub version: String,
    /// The part after `<version>_` and before `.sql`, as the ledger's `name` column holds it.
    pub name: String,
    /// Where the file is (the folder joined with the file name).
    pub path: PathBuf,
    /// The file's whole text.
    pub sql: String,
    /// `split_and_trim(sql)`: what the CLI stores in the ledger's `statements` column.
    pub statements: Vec<String>,
}

/// A folder entry that is not read as a migration, and why (a warning, not an error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Skipped {
    /// The skipped file or folder.
    pub path: PathBuf,
    /// Why it was skipped, in words for the report.
    pub reason: String,
}

/// A migrations folder: its migrations in the CLI's order and what was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Project {
    /// The folder that was read.
    pub dir: PathBuf,
    /// The migrations, in the order the CLI applies them.
    pub migrations: Vec<Migration>,
    /// Entries that are not migrations, in listing order.
    pub skipped: Vec<Skipped>,
}

impl Project {
    /// Reads the migrations folder `dir` with the Supabase CLI's rules (module docs).
    /// Fails, naming the file, when the folder is missing, two files share a version, a
    /// migration cannot be read or is not UTF-8, or the CLI would refuse to split it
    /// with the scanner limit that `SUPABASE_SCANNER_BUFFER_SIZE` in this process's
    /// environment gives.
    pub fn load(dir: &Path) -> crate::Result<Project> {
        Project::load_with_scanner(dir, &ScannerBuffer::from_env())
    }

    /// [`Project::load`] with the CLI's scanner limit given instead of read from the
    /// environment.
    pub fn load_with_scanner(dir: &Path, scanner: &ScannerBuffer) -> crate::Result<Project> {
        let mut migrations = Vec::new();
        let mut skipped = Vec::new();
        for (index, entry) in list_folder(dir)?.into_iter().enumerate() {
            let path = dir.join(&entry.name);
            match classify(index, &entry) {
                Entry::Migration { version, name } => {
                    let sql = read_text(&path)?;
                    if let Some(rejection) = cli_rejects(&sql, scanner) {
                        return Err(Error::Invalid(format!(
                            "migration file {}: {rejection}",
                            path.display()
                        )));
                    }
                    let statements = split_and_trim(&sql);
                    migrations.push(Migration {
                        version,
                        name,
                        path,
                        sql,
                        statements,
                    });
                }
                Entry::Skipped(reason) => skipped.push(Skipped { path, reason }),
                Entry::Ignored => {}
            }
        }
        check_unique_versions(&migrations)?;
        Ok(Project {
            dir: dir.to_path_buf(),
            migrations,
            skipped,
        })
    }

    /// The migration with this version, if the folder has one.
    pub fn get(&self, version: &str) -> Option<&Migration> {
        self.migrations
            .iter()
            .find(|migration| migration.version == version)
    }

    /// The versions of all migrations, in the CLI's order.
    pub fn versions(&self) -> impl Iterator<Item = &str> {
        self.migrations
            .iter()
            .map(|migration| migration.version.as_str())
    }
}

impl Migration {
    /// The file name the CLI gives this migration: `<version>_<name>.sql`.
    pub fn file_name(&self) -> String {
        format!("{}_{}.sql", self.version, self.name)
    }
}

/// One entry of the folder listing.
struct Listed {
    name: OsString,
    is_dir: bool,
}

/// What an entry of the listing is.
enum Entry {
    Migration { version: String, name: String },
    Skipped(String),
    Ignored,
}

/// The folder's entries sorted by name, byte by byte, as Go's `fs.ReadDir` returns them.
fn list_folder(dir: &Path) -> crate::Result<Vec<Listed>> {
    let hint =
        "(hint: pass --migrations with the path of your project's supabase/migrations folder)";
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::Invalid(format!(
                "migrations folder {} is not a folder {hint}",
                dir.display()
            )));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Invalid(format!(
                "migrations folder {} does not exist {hint}",
                dir.display()
            )));
        }
        Err(err) => return Err(unlistable(dir, &err)),
    }
    let mut listed = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|err| unlistable(dir, &err))? {
        let entry = entry.map_err(|err| unlistable(dir, &err))?;
        // Follows symbolic links, so a link to a folder counts as a folder.
        let is_dir = entry.path().is_dir();
        listed.push(Listed {
            name: entry.file_name(),
            is_dir,
        });
    }
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(listed)
}

fn unlistable(dir: &Path, err: &std::io::Error) -> Error {
    Error::Invalid(format!(
        "cannot list migrations folder {}: {err} (hint: check that it is readable by this user)",
        dir.display()
    ))
}

/// Applies the CLI's rules to the entry at `index` of the sorted listing.
fn classify(index: usize, entry: &Listed) -> Entry {
    let Some(name) = entry.name.to_str() else {
        return Entry::Skipped(
            "file name is not valid UTF-8, so it cannot name a migration version".into(),
        );
    };
    if entry.is_dir {
        return match parse_version_prefix(name) {
            Some(_) => Entry::Skipped(
                "folder: recent Supabase CLI versions apply a <version>_<name>/ folder holding one .sql \
                 file as a migration; phantom-sync does not read folder migrations"
                    .into(),
            ),
            None => Entry::Ignored,
        };
    }
    if index == 0 && legacy_init_timestamp(name).is_some_and(|stamp| stamp < 20211209000000) {
        return Entry::Skipped(
            "legacy initial schema of CLI versions before 2021-12-09 (first file, <timestamp>_init.sql), \
             which the Supabase CLI never applies (hint: rename it, replacing \"init\", to have it applied)"
                .into(),
        );
    }
    match parse_file_name(name) {
        Some((version, name)) => Entry::Migration {
            version: version.into(),
            name: name.into(),
        },
        None => Entry::Skipped(
            "file name does not match <version>_<name>.sql (digits, \"_\", a name, \".sql\"), \
             so the Supabase CLI skips it too"
                .into(),
        ),
    }
}

/// The leading ASCII digits of `name` and the rest after the `_` that must follow them.
fn parse_version_prefix(name: &str) -> Option<(&str, &str)> {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let rest = name[digits..].strip_prefix('_')?;
    Some((&name[..digits], rest))
}

/// `^([0-9]+)_(.*)\.sql$` as Go's regexp reads it (`.` excludes `\n`, `$` is the end).
fn parse_file_name(file_name: &str) -> Option<(&str, &str)> {
    let (version, rest) = parse_version_prefix(file_name)?;
    let name = rest.strip_suffix(".sql")?;
    (!name.contains('\n')).then_some((version, name))
}

/// The digits of the leftmost `([0-9]{14})_init\.sql` anywhere in `name` (unanchored,
/// like the CLI's pattern).
fn legacy_init_timestamp(name: &str) -> Option<u64> {
    let bytes = name.as_bytes();
    (0..bytes.len()).find_map(|start| {
        let digits = bytes.get(start..start + 14)?;
        let follows = bytes.get(start + 14..)?;
        if digits.iter().all(u8::is_ascii_digit) && follows.starts_with(b"_init.sql") {
            std::str::from_utf8(digits).ok()?.parse().ok()
        } else {
            None
        }
    })
}

/// The file's text; unreadable and non-UTF-8 files are errors naming the file.
fn read_text(path: &Path) -> crate::Result<String> {
    let bytes = std::fs::read(path).map_err(|err| {
        Error::Invalid(format!(
            "cannot read migration file {}: {err} (hint: check that it exists and is readable by this user)",
            path.display()
        ))
    })?;
    String::from_utf8(bytes).map_err(|err| {
        Error::Invalid(format!(
            "migration file {} is not valid UTF-8 at byte offset {} (hint: re-save it as UTF-8)",
            path.display(),
            err.utf8_error().valid_up_to()
        ))
    })
}

/// Two files with one version would give the ledger two rows for one key.
fn check_unique_versions(migrations: &[Migration]) -> crate::Result<()> {
    let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
    for migration in migrations {
        if let Some(first) = seen.insert(&migration.version, &migration.path) {
            return Err(Error::Invalid(format!(
                "migration files {} and {} have the same version {} (hint: give one of them a new \
                 version, e.g. a later timestamp, so every version is unique)",
                first.display(),
                migration.path.display(),
                migration.version
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use rstest::rstest;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A folder under the system temp dir, removed when the test ends (even on panic).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "phantom-sync-project-{}-{unique}",
                std::process::id()
            ));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        fn file(&self, name: &str, contents: &[u8]) -> &TempDir {
            std::fs::write(self.0.join(name), contents).unwrap();
            self
        }

        fn folder(&self, name: &str) -> &TempDir {
            std::fs::create_dir_all(self.0.join(name)).unwrap();
            self
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn skipped_names(project: &Project) -> Vec<String> {
        let names = project.skipped.iter().map(|s| s.path.file_name().unwrap());
        names
            .map(|name| name.to_string_lossy().into_owned())
            .collect()
    }

    fn versions(project: &Project) -> Vec<&str> {
        project.versions().collect()
    }

    fn invalid_message(result: crate::Result<Project>) -> String {
        match result {
            Err(Error::Invalid(message)) => message,
            other => panic!("expected Error::Invalid, got {other:?}"),
        }
    }

    #[test]
    fn loads_migrations_and_skips_other_files() {
        let dir = TempDir::new();
        dir.file(
            "20240102000000_add_slug.sql",
            b"alter table t add column slug text;",
        )
        .file(
            "20240101000000_create_t.sql",
            b"-- t\ncreate table t (id int);\ninsert into t values (1)",
        )
        .file("README.md", b"# notes")
        .file(".gitkeep", b"")
        .folder("archive");
        let project = Project::load(&dir.0).unwrap();

        assert_eq!(project.dir, dir.0);
        assert_eq!(versions(&project), ["20240101000000", "20240102000000"]);
        let first = &project.migrations[0];
        assert_eq!(first.name, "create_t");
        assert_eq!(first.path, dir.0.join("20240101000000_create_t.sql"));
        assert_eq!(
            first.sql,
            "-- t\ncreate table t (id int);\ninsert into t values (1)"
        );
        assert_eq!(
            first.statements,
            ["-- t\ncreate table t (id int)", "insert into t values (1)"]
        );
        assert_eq!(first.file_name(), "20240101000000_create_t.sql");
        assert_eq!(
            project.get("20240102000000").map(|m| m.name.as_str()),
            Some("add_slug")
        );
        assert_eq!(project.get("20240103000000"), None);
        assert_eq!(skipped_names(&project), [".gitkeep", "README.md"]);
        assert!(project.skipped[1].reason.contains("<version>_<name>.sql"));
    }

    #[test]
    fn orders_by_file_name_like_the_cli() {
        let dir = TempDir::new();
        for name in ["9_a.sql", "12_d.sql", "123_c.sql", "10_b.sql"] {
            dir.file(name, b"select 1;");
        }
        let project = Project::load(&dir.0).unwrap();
        assert_eq!(versions(&project), ["10", "123", "12", "9"]);
    }

    #[test]
    fn skips_a_legacy_init_file_only_when_it_comes_first() {
        let dir = TempDir::new();
        dir.file("20211208235959_init.sql", b"create schema legacy;")
            .file("20220101000000_next.sql", b"select 1;");
        let project = Project::load(&dir.0).unwrap();
        assert_eq!(versions(&project), ["20220101000000"]);
        assert_eq!(skipped_names(&project), ["20211208235959_init.sql"]);
        assert!(project.skipped[0].reason.contains("init"));

        // Anything sorting before it (here a dot file) makes it an ordinary migration.
        dir.file(".gitkeep", b"");
        let project = Project::load(&dir.0).unwrap();
        assert_eq!(versions(&project), ["20211208235959", "20220101000000"]);
        assert_eq!(project.migrations[0].name, "init");
    }

    #[test]
    fn keeps_an_init_file_dated_from_2021_12_09_on() {
        let dir = TempDir::new();
        dir.file("20211209000000_init.sql", b"select 1;");
        let project = Project::load(&dir.0).unwrap();
        assert_eq!(versions(&project), ["20211209000000"]);
        assert!(project.skipped.is_empty());
    }

    #[test]
    fn lists_folder_migrations_as_skipped_and_ignores_other_folders() {
        let dir = TempDir::new();
        dir.folder("20240101000000_drizzle")
            .folder("snippets")
            .file("20240102000000_b.sql", b"select 1;");
        let project = Project::load(&dir.0).unwrap();
        assert_eq!(versions(&project), ["20240102000000"]);
        assert_eq!(skipped_names(&project), ["20240101000000_drizzle"]);
        assert!(project.skipped[0].reason.contains("folder"));
    }

    #[test]
    fn missing_folder_is_invalid_with_a_hint() {
        let dir = TempDir::new();
        let missing = dir.0.join("supabase").join("migrations");
        let message = invalid_message(Project::load(&missing));
        assert!(
            message.contains(&missing.display().to_string()),
            "{message}"
        );
        assert!(
            message.contains("does not exist") && message.contains("--migrations"),
            "{message}"
        );
    }

    #[test]
    fn duplicate_versions_name_both_files() {
        let dir = TempDir::new();
        dir.file("20240101000000_a.sql", b"select 1;")
            .file("20240101000000_b.sql", b"select 2;");
        let message = invalid_message(Project::load(&dir.0));
        assert!(message.contains("20240101000000_a.sql"), "{message}");
        assert!(message.contains("20240101000000_b.sql"), "{message}");
    }

    #[test]
    fn non_utf8_file_reports_the_byte_offset() {
        let dir = TempDir::new();
        dir.file("20240101000000_a.sql", b"select 1;\xff");
        let message = invalid_message(Project::load(&dir.0));
        assert!(message.contains("20240101000000_a.sql"), "{message}");
        assert!(message.contains("byte offset 9"), "{message}");
    }

    #[test]
    fn file_the_cli_cannot_scan_is_invalid_with_the_fix() {
        let dir = TempDir::new();
        let long = format!("-- seed\ninsert into t values {}", "(1),".repeat(70_000));
        dir.file("20240101000000_a.sql", b"select 1;")
            .file("20240102000000_seed.sql", long.as_bytes());
        let message = invalid_message(Project::load_with_scanner(&dir.0, &ScannerBuffer::Default));
        for part in [
            "20240102000000_seed.sql",
            "token too long",
            "line 1",
            "no separating `;`",
            "SUPABASE_SCANNER_BUFFER_SIZE=5MB",
        ] {
            assert!(message.contains(part), "{part:?} missing in: {message}");
        }

        // With a larger limit set, as the CLI would run with it, the file loads.
        let larger = ScannerBuffer::from_setting(Some("1MB"));
        let project = Project::load_with_scanner(&dir.0, &larger).unwrap();
        assert_eq!(project.migrations[1].statements, [long]);
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_file_is_invalid() {
        // A dangling link cannot be read, even by root.
        let dir = TempDir::new();
        let link = dir.0.join("20240101000000_gone.sql");
        std::os::unix::fs::symlink(dir.0.join("nowhere.sql"), &link).unwrap();
        let message = invalid_message(Project::load(&dir.0));
        assert!(message.contains("cannot read migration file"), "{message}");
        assert!(message.contains("20240101000000_gone.sql"), "{message}");
    }

    #[rstest]
    #[case::timestamp("20240101000000_create_t.sql", Some(("20240101000000", "create_t")))]
    #[case::version_is_leading_digits_only("2024_01_x.sql", Some(("2024", "01_x")))]
    #[case::empty_name("7_.sql", Some(("7", "")))]
    #[case::dots_in_name("1_a.b.sql", Some(("1", "a.b")))]
    #[case::no_digits("_a.sql", None)]
    #[case::no_underscore("20240101.sql", None)]
    #[case::upper_case_extension("1_a.SQL", None)]
    #[case::other_extension("1_a.sql.bak", None)]
    #[case::newline_in_name("1_a\nb.sql", None)]
    fn file_name_pattern(#[case] file_name: &str, #[case] expected: Option<(&str, &str)>) {
        assert_eq!(parse_file_name(file_name), expected);
    }

    #[rstest]
    #[case::plain("20211208000000_init.sql", Some(20211208000000))]
    #[case::unanchored("020211208000000_init.sql", Some(20211208000000))]
    #[case::too_few_digits("2021120800000_init.sql", None)]
    #[case::other_name("20211208000000_initial.sql", None)]
    fn legacy_init_pattern(#[case] file_name: &str, #[case] expected: Option<u64>) {
        assert_eq!(legacy_init_timestamp(file_name), expected);
    }
}
