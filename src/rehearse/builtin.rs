//! The built-in incident, compiled into the binary: the incident plan's eight
//! migrations, the data `collections` and `user_consents` held, and the
//! scenario that puts them in the plan's state (two phantom, two pending). It
//! is written out to a folder so that `phantom-sync rehearse` works from any
//! directory, also after `cargo install`, and so the runbook can point at the
//! migrations it rehearsed.

use std::path::{Path, PathBuf};

use crate::Result;
use crate::files::write_atomic;

/// The scenario file's name (and the scenario's name).
pub const SCENARIO: &str = "plan-exact-state";

/// The files of the incident, relative to the folder they are written to.
const FILES: &[(&str, &str)] = &[
    (
        "plan-exact-state.toml",
        include_str!("../../scenarios/plan-exact-state.toml"),
    ),
    (
        "prompt-manager/existing-data.sql",
        include_str!("../../scenarios/prompt-manager/existing-data.sql"),
    ),
    (
        "prompt-manager/supabase/migrations/20250328135512_collections.sql",
        include_str!(
            "../../scenarios/prompt-manager/supabase/migrations/20250328135512_collections.sql"
        ),
    ),
    (
        "prompt-manager/supabase/migrations/20250328201010_drop-rls.sql",
        include_str!(
            "../../scenarios/prompt-manager/supabase/migrations/20250328201010_drop-rls.sql"
        ),
    ),
    (
        "prompt-manager/supabase/migrations/20250402082709_add_rls_to_collections.sql",
        include_str!(
            "../../scenarios/prompt-manager/supabase/migrations/20250402082709_add_rls_to_collections.sql"
        ),
    ),
    (
        "prompt-manager/supabase/migrations/20250411083417_create_user_consents.sql",
        include_str!(
            "../../scenarios/prompt-manager/supabase/migrations/20250411083417_create_user_consents.sql"
        ),
    ),
    (
        "prompt-manager/supabase/migrations/20250413093000_prompt_manager_orgs.sql",
        include_str!(
            "../../scenarios/prompt-manager/supabase/migrations/20250413093000_prompt_manager_orgs.sql"
        ),
    ),
    (
        "prompt-manager/supabase/migrations/20251001211923_prompt_manager_catalog.sql",
        include_str!(
            "../../scenarios/prompt-manager/supabase/migrations/20251001211923_prompt_manager_catalog.sql"
        ),
    ),
    (
        "prompt-manager/supabase/migrations/20251002100000_localize_prompts_table.sql",
        include_str!(
            "../../scenarios/prompt-manager/supabase/migrations/20251002100000_localize_prompts_table.sql"
        ),
    ),
    (
        "prompt-manager/supabase/migrations/20251003000000_organization_invites.sql",
        include_str!(
            "../../scenarios/prompt-manager/supabase/migrations/20251003000000_organization_invites.sql"
        ),
    ),
];

/// Writes the incident into `dir` (replacing what an earlier run wrote) and
/// returns the path of its scenario file.
pub fn write(dir: &Path) -> Result<PathBuf> {
    for (name, text) in FILES {
        write_atomic(&dir.join(name), text)?;
    }
    Ok(dir.join(format!("{SCENARIO}.toml")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_incident_is_the_repositorys() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let migrations = root.join("prompt-manager/supabase/migrations");
        let on_disk = std::fs::read_dir(&migrations).unwrap().count();
        let embedded = FILES
            .iter()
            .filter(|(name, _)| name.contains("/migrations/"))
            .count();
        assert_eq!(embedded, on_disk, "every fixture migration is embedded");
        for (name, text) in FILES {
            assert_eq!(
                std::fs::read_to_string(root.join(name)).unwrap(),
                *text,
                "{name}"
            );
        }
    }

    #[test]
    fn written_files_load_as_the_scenario() {
        let dir = crate::files::temp_dir("builtin").unwrap();
        let path = write(dir.path()).unwrap();
        let scenario = crate::testkit::scenario::Scenario::load(&path).unwrap();
        assert_eq!(scenario.name, SCENARIO);
        assert_eq!(scenario.project().unwrap().migrations.len(), 8);
    }
}
