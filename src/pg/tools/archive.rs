//! Reading a custom-format archive and turning it into SQL with the tools
//! container: its table of contents (`pg_restore --list --verbose`, read
//! once per content in a process), the SQL of chosen entries to read
//! (`pg_restore --use-list`, written to a private temporary file), and a
//! restore of chosen entries, their SQL piped into psql inside the container
//! between phantom-sync's own opening and closing statements.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::run::{self, Call, Input, Part, Sink};
use super::{PgTools, toc};
use crate::pg::target::Target;
use crate::{Error, Result};

/// The SQL of some archive entries, in a private temporary file removed on drop.
pub(crate) struct ScriptFile(pub PathBuf);

impl Drop for ScriptFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The schemas the archive creates its missing extensions in (the list does not say).
pub(crate) async fn archived_extensions(
    tools: &PgTools,
    dump: &Path,
    toc: &toc::Toc,
    live: &toc::LiveGlobals,
) -> Result<BTreeMap<String, String>> {
    let missing: Vec<u32> = toc
        .entries
        .iter()
        .filter(|e| e.desc == "EXTENSION" && !live.extensions.contains_key(&e.tag))
        .map(|e| e.id)
        .collect();
    if missing.is_empty() {
        return Ok(Default::default());
    }
    let script = script_for(tools, dump, &missing).await?;
    let sql = tokio::fs::read_to_string(&script.0)
        .await
        .map_err(Error::io("read", &script.0))?;
    Ok(toc::extension_schemas(&sql))
}

/// `pg_restore --list --verbose` of an archive, parsed.
pub(crate) async fn list(tools: &PgTools, dump: &Path) -> Result<toc::Toc> {
    if !dump.is_file() {
        return Err(Error::Invalid(format!(
            "{}: no such backup file",
            dump.display()
        )));
    }
    let path = dump.to_path_buf();
    let (_, sha256) = tokio::task::spawn_blocking(move || crate::files::sha256(&path))
        .await
        .map_err(|e| Error::Environment(e.to_string()))??;
    list_known(tools, dump, &sha256).await
}

/// [`list`] of an archive whose SHA-256 is known (its writer computed it).
/// A restore lists its archive, and so do the role scan before it and the
/// dump's read-back: each listing is a `docker exec` that streams the whole
/// archive. An archive already listed in this process by the same major's
/// pg_restore is not listed again: the key is its content, so a file
/// changed since then (cut short, swapped) is read anew.
pub(crate) async fn list_known(tools: &PgTools, dump: &Path, sha256: &str) -> Result<toc::Toc> {
    let key = (tools.major(), sha256.to_string());
    if let Some(toc) = listed::get(&key) {
        return Ok(toc);
    }
    let call = Call {
        tool: "pg_restore",
        program: "pg_restore",
        args: vec!["--list".into(), "--verbose".into()],
        target: None,
        input: Input::Parts(vec![Part::File(dump.to_path_buf())]),
        sink: Sink::Capture,
        doing: format!("reading the table of contents of {}", dump.display()),
    };
    let listing = run::run(tools, call).await?;
    let toc = toc::parse(&String::from_utf8_lossy(&listing.stdout))?;
    listed::put(key, &toc);
    Ok(toc)
}

/// The tables of contents this process has read, by pg_restore's major and
/// the archive's SHA-256: the last [`listed::KEPT`], oldest first.
mod listed {
    use std::sync::Mutex;

    use super::toc::Toc;
    use crate::recent::Recent;

    pub(super) type Key = (u8, String);

    /// Enough for the archives one run handles (a backup, its safety
    /// backup, the schema copies of the predictions).
    pub(super) const KEPT: usize = 32;

    static MEMORY: Mutex<Recent<Key, Toc>> = Mutex::new(Recent::new(KEPT));

    fn memory() -> std::sync::MutexGuard<'static, Recent<Key, Toc>> {
        MEMORY.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn get(key: &Key) -> Option<Toc> {
        memory().get(key)
    }

    pub(super) fn put(key: Key, toc: &Toc) {
        memory().put(key, toc);
    }
}

/// The SQL that replays the entries `ids` of an archive (`pg_restore --use-list`), in a temporary file.
pub(crate) async fn script_for(tools: &PgTools, dump: &Path, ids: &[u32]) -> Result<ScriptFile> {
    let list = toc::use_list(ids);
    let path = std::env::temp_dir().join(format!(
        "phantom-sync-restore-{}-{}.sql",
        std::process::id(),
        unique()
    ));
    let script = ScriptFile(path.clone());
    let call = Call {
        tool: "pg_restore",
        program: "sh",
        args: vec!["-c".into(), USE_LIST_SH.into(), "pg_restore".into()],
        target: None,
        input: Input::Parts(vec![
            Part::Bytes(format!("{}\n{list}", list.len()).into_bytes()),
            Part::File(dump.to_path_buf()),
        ]),
        sink: Sink::File(path),
        doing: format!("turning {} into SQL", dump.display()),
    };
    run::run(tools, call).await?;
    Ok(script)
}

/// Replays the entries `ids` of an archive into `target` between `head`
/// and `tail`: `head` opens the transaction and `tail` commits it, so a
/// replay cut short commits nothing. pg_restore's SQL goes straight into psql
/// inside the tools container ([`RESTORE_SH`]); taking it out to a file on
/// the host and sending it back in cost two passes of the whole SQL through
/// Docker's pipes (3 of 8 s for a million rows).
pub(crate) async fn restore_entries(
    tools: &PgTools,
    target: &Target,
    dump: &Path,
    ids: &[u32],
    head: String,
    tail: String,
    doing: String,
) -> Result<()> {
    let mut parts: Vec<Part> = [toc::use_list(ids), head, tail]
        .into_iter()
        .map(|part| Part::Bytes(format!("{}\n{part}", part.len()).into_bytes()))
        .collect();
    parts.push(Part::File(dump.to_path_buf()));
    let mut args = vec!["-c".into(), RESTORE_SH.into(), "psql".into()];
    args.extend(psql_args(true));
    let call = Call {
        tool: "psql",
        program: "sh",
        args,
        target: Some(target),
        input: Input::Parts(parts),
        sink: Sink::Capture,
        doing,
    };
    run::run(tools, call).await.map(|_| ())
}

/// Reads three sized parts from stdin — a `pg_restore --use-list` list, the
/// SQL before the entries and the SQL after them — then pipes the head,
/// pg_restore's SQL of the archive (the rest of stdin) and the tail into
/// psql (its arguments are the script's). Unless pg_restore and the tail
/// both went through, the tail's `COMMIT` was never sent: psql ends inside
/// the open transaction, nothing is committed, and the script fails.
pub(crate) const RESTORE_SH: &str = r#"set -eu
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for part in list head tail; do
  IFS= read -r size
  head -c "$size" > "$dir/$part"
done
{
  cat "$dir/head"
  if pg_restore --use-list="$dir/list" --file=- && cat "$dir/tail"; then
    : > "$dir/sent"
  fi
} | psql "$@"
if [ ! -e "$dir/sent" ]; then
  echo "pg_restore failed: nothing was committed" >&2
  exit 1
fi
"#;

/// Reads the size of a `pg_restore --use-list` list and the list from stdin,
/// then lets pg_restore read the archive from the rest of stdin.
pub(crate) const USE_LIST_SH: &str = r#"set -eu
list=$(mktemp)
trap 'rm -f "$list"' EXIT
IFS= read -r size
head -c "$size" > "$list"
pg_restore --use-list="$list" --file=-
"#;

pub(crate) fn psql_args(quiet: bool) -> Vec<String> {
    let mut args: Vec<String> = ["--no-psqlrc", "--no-password", "--set=ON_ERROR_STOP=1"]
        .map(String::from)
        .to_vec();
    if quiet {
        args.push("--quiet".into());
    }
    args.push("--file=-".into());
    args
}

/// A process-unique number (for temporary file names).
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::listed::{KEPT, Key};
    use super::toc::Toc;
    use crate::recent::Recent;

    fn toc(version: &str) -> Toc {
        Toc {
            server_version: Some(version.into()),
            ..Toc::default()
        }
    }

    #[test]
    fn a_listing_is_kept_by_major_and_content() {
        let mut listed: Recent<Key, Toc> = Recent::new(KEPT);
        listed.put((17, "abc".into()), &toc("17.10"));
        assert_eq!(listed.get(&(17, "abc".into())), Some(toc("17.10")));
        assert_eq!(listed.get(&(16, "abc".into())), None, "another major");
        assert_eq!(listed.get(&(17, "abd".into())), None, "other content");
    }

    #[test]
    fn only_the_latest_listings_are_kept() {
        let mut listed: Recent<Key, Toc> = Recent::new(KEPT);
        let key = |i: usize| (14, format!("sha-{i}"));
        for i in 0..=KEPT {
            listed.put(key(i), &toc(&i.to_string()));
        }
        assert_eq!(listed.get(&key(0)), None, "the oldest made way");
        assert_eq!(listed.get(&key(1)), Some(toc("1")));
        assert_eq!(listed.get(&key(KEPT)), Some(toc(&KEPT.to_string())));
    }
}
