//! What `make runbook-shot` runs: renders a rehearsal's runbook again from
//! its `rehearsal.json` with this build's renderers (`runbook.md`,
//! `runbook.html`), then takes a screenshot of the page's top with headless
//! Chromium at 1280×900 — what a person opening it on a laptop sees first —
//! and prints the PNG's path.
//!
//! `cargo run --example runbook_shot -- [DIR]` (default `.phantom/rehearsal`;
//! run `phantom-sync rehearse --out DIR` first).

use std::path::PathBuf;
use std::process::ExitCode;

use phantom_sync::rehearse::{DEFAULT_OUT, RUNBOOK_HTML, Rehearsal};
use phantom_sync::testkit::browser::{Browser, Window};

fn main() -> ExitCode {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| DEFAULT_OUT.to_string()),
    );
    let shot = || -> phantom_sync::Result<PathBuf> {
        let rehearsal = Rehearsal::load(&dir)?;
        rehearsal.write_runbook()?;
        let png = dir.join("runbook.png");
        Browser::find()?.screenshot(
            &dir.join(RUNBOOK_HTML),
            Window {
                width: 1280,
                height: 900,
            },
            &png,
        )?;
        Ok(png)
    };
    match shot() {
        Ok(png) => {
            println!("{}", png.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
