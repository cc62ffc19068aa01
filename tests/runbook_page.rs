//! The runbook as a person opens it: the page rendered from a real
//! rehearsal's results — `tests/data/rehearsal.json`, what `phantom-sync
//! rehearse` saved for the built-in incident (its output folder renamed
//! `.phantom/rehearsal`) — loaded by headless Chromium in a 1280×800 window.
//! A saved rehearsal rather than one run here: the page is checked without
//! Docker, in a second, on exactly the data a real run produces (the
//! rehearsal itself is tested by `tests/rehearse.rs`).
//!
//! The page has no script; the test loads a copy with a probe appended that
//! measures the laid-out page and writes what it found into the DOM, which
//! `chromium --dump-dom` hands back. Chromium is required: `make test`
//! installs it, and without it this test fails saying how to install it.

use std::path::{Path, PathBuf};

use phantom_sync::rehearse::Rehearsal;
use phantom_sync::report::runbook_html;
use phantom_sync::testkit::browser::{Browser, Window, processes_naming};
use serde::Deserialize;

const WINDOW: Window = Window {
    width: 1280,
    height: 800,
};

/// Measures the laid-out page; its findings go into `<pre id="probe">`.
const PROBE: &str = r##"<script>
(() => {
  const below = (a, b) => !!(a && b && (a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING));
  const box = (e) => { const r = e.getBoundingClientRect(); return { top: r.top + scrollY, bottom: r.bottom + scrollY }; };
  const first = [...document.body.children].find((e) => e.tagName !== "SCRIPT" && e.textContent.trim());
  const verdict = document.getElementById("verdict");
  const commands = document.querySelector("#commands pre");
  const fold = document.querySelector("details");
  const lines = (e) => { const r = document.createRange(); r.selectNodeContents(e); return new Set([...r.getClientRects()].map((x) => Math.round(x.top))).size; };
  const dates = [...document.querySelectorAll("#migrations td:nth-child(3)")];
  const prose = document.body.cloneNode(true);
  prose.querySelectorAll("pre, code, script").forEach((e) => e.remove());
  const found = {
    viewport: [innerWidth, innerHeight],
    first: first ? first.id : "",
    verdict_word: verdict ? verdict.querySelector("h1").textContent : "",
    verdict: verdict ? box(verdict) : null,
    verdict_colour: verdict ? getComputedStyle(verdict).backgroundColor : "",
    summary_top: box(document.getElementById("summary")).top,
    commands_top: commands ? box(commands).top : -1,
    commands_before_fold: below(commands, fold),
    folds: document.querySelectorAll("details").length,
    folds_open: document.querySelectorAll("details[open]").length,
    dates: dates.length,
    dates_wrapped: dates.filter((td) => lines(td) > 1).length,
    timings_tables: document.querySelectorAll("#timings table").length,
    prose: prose.textContent,
  };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
})();
</script>
"##;

#[derive(Debug, Deserialize)]
struct Box {
    top: f64,
    bottom: f64,
}

#[derive(Debug, Deserialize)]
struct Found {
    viewport: (u32, u32),
    first: String,
    verdict_word: String,
    verdict: Option<Box>,
    verdict_colour: String,
    summary_top: f64,
    commands_top: f64,
    commands_before_fold: bool,
    folds: usize,
    folds_open: usize,
    dates: usize,
    dates_wrapped: usize,
    timings_tables: usize,
    prose: String,
}

fn saved_rehearsal() -> Rehearsal {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/rehearsal.json");
    let text = std::fs::read_to_string(&path).expect("tests/data/rehearsal.json");
    serde_json::from_str(&text).expect("tests/data/rehearsal.json is a rehearsal")
}

/// Chromium, or a failure that says how to install it (never a skip).
fn browser() -> Browser {
    Browser::find().unwrap_or_else(|e| panic!("this test needs headless Chromium: {e}"))
}

/// Loads `html` with the probe and returns the DOM and what the probe found.
fn open(browser: &Browser, dir: &Path, name: &str, html: &str) -> (String, Found) {
    let page = dir.join(name);
    let probed = html.replacen("</body>", &format!("{PROBE}</body>"), 1);
    std::fs::write(&page, probed).expect("write the page");
    let dom = browser
        .dump_dom(&page, WINDOW)
        .unwrap_or_else(|e| panic!("Chromium could not load {}: {e}", page.display()));
    let start = dom
        .find("<pre id=\"probe\">")
        .unwrap_or_else(|| panic!("the probe did not run; the DOM Chromium returned:\n{dom}"))
        + "<pre id=\"probe\">".len();
    let end = start + dom[start..].find("</pre>").expect("the probe's end");
    let json = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&");
    let found: Found =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("the probe's findings {json}: {e}"));
    (dom, found)
}

/// Browser homes (`phantom-sync-chromium-…`) in the temporary directory.
fn browser_homes() -> Vec<String> {
    let mut homes: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("phantom-sync-chromium-"))
                .collect()
        })
        .unwrap_or_default();
    homes.sort();
    homes
}

#[test]
fn the_runbook_reads_well_in_a_real_browser() {
    let browser = browser();
    let homes_before = browser_homes();
    let work = phantom_sync::files::temp_dir("runbook-page").expect("a temporary folder");

    let rehearsal = saved_rehearsal();
    let html = runbook_html(&rehearsal.runbook());
    let (dom, found) = open(&browser, work.path(), "runbook.html", &html);

    // The part of the window the page shows in: headless Chromium, like a
    // browser on a laptop, keeps some of the window's height for itself.
    let (width, height) = found.viewport;
    assert_eq!(width, WINDOW.width, "the window the page was measured in");
    assert!(
        height > 400 && height <= WINDOW.height,
        "viewport {width}×{height}"
    );
    let fold_at = f64::from(height);
    // The verdict first, in colour, and whole on the first screen.
    assert_eq!(found.first, "verdict", "the first thing on the page");
    assert_eq!(found.verdict_word, "PASSED");
    let verdict = found.verdict.expect("a verdict element");
    assert!(
        verdict.top >= 0.0 && verdict.bottom <= fold_at,
        "the verdict ({} to {} px) is above the fold ({fold_at} px) of a {}×{} window",
        verdict.top,
        verdict.bottom,
        WINDOW.width,
        WINDOW.height
    );
    assert_ne!(
        found.verdict_colour, "rgba(0, 0, 0, 0)",
        "the verdict has a colour"
    );
    assert!(
        found.summary_top < fold_at && found.commands_top < fold_at,
        "the summary ({} px) and the repair command ({} px) start on the first screen",
        found.summary_top,
        found.commands_top
    );
    // The commands before the details; every step's SQL folded.
    assert!(
        found.commands_before_fold,
        "the production commands come before the first fold"
    );
    assert_eq!(
        (found.folds, found.folds_open),
        (5, 0),
        "5 steps with SQL, all folded"
    );
    assert_eq!(found.timings_tables, 1, "one timings table");
    // The migration list's dates on one line each.
    assert_eq!(found.dates, 16, "8 migrations before and after");
    assert_eq!(found.dates_wrapped, 0, "no date wraps");
    // No Markdown left as text.
    for leak in ["**", "`", "|---", "- [x]", "- [ ]", "```"] {
        assert!(
            !found.prose.contains(leak),
            "{leak:?} shows on the page:\n{}",
            found.prose
        );
    }
    assert!(
        !found
            .prose
            .lines()
            .any(|l| l.trim_start().starts_with("- ") || l.trim_start().starts_with("# ")),
        "a Markdown list or heading shows as text:\n{}",
        found.prose
    );
    // The same order in the DOM Chromium built.
    let body = &dom[dom.find("<body>").expect("a body") + "<body>".len()..];
    assert!(
        body.trim_start().starts_with("<header id=\"verdict\""),
        "{body}"
    );
    let commands = body.find("id=\"commands\"").expect("the commands");
    let fold = body.find("<details>").expect("a fold");
    assert!(
        commands < fold,
        "the commands come before the first <details>"
    );

    // A rehearsal that found a problem says so first, in its own colour.
    let mut problem = saved_rehearsal();
    problem.passed = false;
    problem.error = Some("migration 20251002100000 failed: <b>boom</b> & more".into());
    let (problem_dom, found_problem) = open(
        &browser,
        work.path(),
        "problem.html",
        &runbook_html(&problem.runbook()),
    );
    assert_eq!(found_problem.first, "verdict");
    assert_eq!(found_problem.verdict_word, "FOUND A PROBLEM");
    assert_ne!(found_problem.verdict_colour, found.verdict_colour);
    assert!(
        problem_dom.contains("failed: &lt;b&gt;boom&lt;/b&gt; &amp; more")
            && !problem_dom.contains("<b>boom"),
        "the error shows as text"
    );

    // The picture `make runbook-shot` takes: a PNG of the window's size.
    let png = work.path().join("runbook.png");
    browser
        .screenshot(&work.path().join("runbook.html"), WINDOW, &png)
        .expect("a screenshot");
    let bytes = std::fs::read(&png).expect("the PNG");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let size = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    assert_eq!((size(16), size(20)), (WINDOW.width, WINDOW.height));

    // Nothing left behind: no browser process, no browser home.
    assert_eq!(
        processes_naming("phantom-sync-chromium-"),
        Vec::<u32>::new(),
        "browser processes left running"
    );
    let dir = work.path().to_path_buf();
    drop(work);
    assert!(!dir.exists(), "the test's folder is removed");
    assert_eq!(browser_homes(), homes_before, "browser homes left behind");
}
