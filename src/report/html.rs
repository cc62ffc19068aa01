//! A self-contained HTML page for a Markdown report.

use std::fmt::Write;

/// A self-contained HTML page showing `markdown` (tables and code kept readable).
pub fn html_page(title: &str, markdown: &str) -> String {
    let mut body = String::new();
    let mut in_code = false;
    let mut in_table = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            body.push_str(if in_code { "</pre>\n" } else { "<pre>" });
            in_code = !in_code;
            continue;
        }
        if in_code {
            body.push_str(&escape(line));
            body.push('\n');
            continue;
        }
        let is_row = line.starts_with('|');
        if in_table && !is_row {
            body.push_str("</table>\n");
            in_table = false;
        }
        if is_row {
            if line.starts_with("|---") {
                continue;
            }
            if !in_table {
                body.push_str("<table>\n");
                in_table = true;
            }
            let cells: Vec<String> = line
                .trim_matches('|')
                .split(" | ")
                .map(|c| format!("<td>{}</td>", escape(c.trim())))
                .collect();
            let _ = writeln!(body, "<tr>{}</tr>", cells.join(""));
        } else if let Some(h) = line.strip_prefix("### ") {
            let _ = writeln!(body, "<h3>{}</h3>", escape(h));
        } else if let Some(h) = line.strip_prefix("## ") {
            let _ = writeln!(body, "<h2>{}</h2>", escape(h));
        } else if let Some(h) = line.strip_prefix("# ") {
            let _ = writeln!(body, "<h1>{}</h1>", escape(h));
        } else if !line.trim().is_empty() {
            let _ = writeln!(body, "<p>{}</p>", escape(line));
        }
    }
    if in_table {
        body.push_str("</table>\n");
    }
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title><style>\
body{{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.4}}\
table{{border-collapse:collapse;margin:1rem 0}}td{{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top}}\
tr:first-child td{{font-weight:600;background:#f4f4f4}}pre{{background:#f6f8fa;padding:1rem;overflow-x:auto}}\
</style></head><body>\n{}</body></html>\n",
        escape(title),
        body
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
