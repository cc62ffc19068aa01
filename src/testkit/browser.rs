//! A page seen as a person sees it: headless Chromium (Debian's `chromium`
//! package, which `make test` installs) loads a file and hands back the DOM
//! after layout, or a screenshot. Each run gets a private profile and home
//! folder that is removed afterwards, is stopped after a time limit, and
//! leaves no browser process behind: every process whose command line names
//! that profile is ended by its id.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::files::temp_dir;
use crate::{Error, Result};

/// The names Chromium goes by on PATH, tried in order after `$PHANTOM_CHROMIUM`.
const NAMES: &[&str] = &[
    "chromium",
    "google-chrome",
    "google-chrome-stable",
    "chromium-browser",
];

/// How long one page may take.
const LIMIT: Duration = Duration::from_secs(90);

/// How to install the browser, for the error that says it is missing.
pub const INSTALL_HINT: &str = "install it with `make browser` (or `apt-get install chromium`), or point $PHANTOM_CHROMIUM at a Chromium or Chrome binary";

/// A headless Chromium.
#[derive(Debug, Clone)]
pub struct Browser {
    program: PathBuf,
}

/// A browser window's size in CSS pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub width: u32,
    pub height: u32,
}

impl Browser {
    /// Finds Chromium: `$PHANTOM_CHROMIUM`, else the first of `chromium`,
    /// `google-chrome`, `google-chrome-stable` and `chromium-browser` on PATH.
    pub fn find() -> Result<Browser> {
        if let Some(program) = std::env::var_os("PHANTOM_CHROMIUM").filter(|p| !p.is_empty()) {
            let program = PathBuf::from(program);
            return match on_path(&program) {
                Some(found) => Ok(Browser { program: found }),
                None => Err(Error::Environment(format!(
                    "PHANTOM_CHROMIUM={} is not an executable file ({INSTALL_HINT})",
                    program.display()
                ))),
            };
        }
        NAMES
            .iter()
            .find_map(|name| on_path(Path::new(name)))
            .map(|program| Browser { program })
            .ok_or_else(|| {
                Error::Environment(format!(
                    "no headless browser: none of {} is on PATH ({INSTALL_HINT})",
                    NAMES.join(", ")
                ))
            })
    }

    /// The binary that runs.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The DOM of `page` after it loaded and laid out in `window`
    /// (`--dump-dom`), as HTML.
    pub fn dump_dom(&self, page: &Path, window: Window) -> Result<String> {
        self.run(page, window, &["--dump-dom"])
    }

    /// A PNG of the top of `page` as `window` shows it.
    pub fn screenshot(&self, page: &Path, window: Window, png: &Path) -> Result<()> {
        let png = std::path::absolute(png).map_err(Error::io("resolve", png))?;
        self.run(page, window, &[&format!("--screenshot={}", png.display())])?;
        match std::fs::metadata(&png) {
            Ok(m) if m.len() > 0 => Ok(()),
            _ => Err(Error::Tool {
                tool: "chromium --screenshot".into(),
                detail: format!("wrote no {}", png.display()),
            }),
        }
    }

    fn run(&self, page: &Path, window: Window, extra: &[&str]) -> Result<String> {
        let page = std::path::absolute(page).map_err(Error::io("resolve", page))?;
        // Profile, caches and the home folder: all in here, all removed on return.
        let home = temp_dir("chromium")?;
        let profile = home.path().join("profile");
        let mut command = Command::new(&self.program);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-breakpad",
                "--disable-crash-reporter",
                "--mute-audio",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={},{}", window.width, window.height))
            .args(extra)
            .arg(file_url(&page))
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_CACHE_HOME", home.path().join("cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| {
            Error::Environment(format!(
                "cannot start {}: {e} ({INSTALL_HINT})",
                self.program.display()
            ))
        })?;
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if started.elapsed() < LIMIT => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        end_leftovers(home.path());
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        match status {
            Some(s) if s.success() => Ok(stdout),
            Some(s) => Err(Error::Tool {
                tool: self.program.display().to_string(),
                detail: format!("{s} loading {}: {}", page.display(), last_lines(&stderr)),
            }),
            None => Err(Error::Tool {
                tool: self.program.display().to_string(),
                detail: format!(
                    "still loading {} after {} s; stopped",
                    page.display(),
                    LIMIT.as_secs()
                ),
            }),
        }
    }
}

/// `program` itself when it is a path to a file, else the first match on PATH.
fn on_path(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for byte in path.display().to_string().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                url.push(byte as char)
            }
            other => url.push_str(&format!("%{other:02X}")),
        }
    }
    url
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// Ends, by id, every process still running with `home` on its command line
/// (helpers the browser started and did not wait for: they all name its
/// profile or its crash database, both in there).
fn end_leftovers(home: &Path) {
    let needle = home.display().to_string();
    for attempt in 0..20 {
        let left = processes_naming(&needle);
        if left.is_empty() {
            return;
        }
        if attempt > 0 {
            for pid in &left {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ids of the processes whose command line contains `needle`.
pub fn processes_naming(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("dbus") && !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}
