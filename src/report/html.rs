//! The runbook as a self-contained page: the verdict in colour, then the
//! runbook's Markdown sections rendered by a CommonMark renderer
//! (pulldown-cmark, with tables and task lists) into the template
//! `runbook.html` — summary and commands side by side at the top, every
//! statement folded in `<details>`, and a print style that unfolds them. The
//! page needs no JavaScript.

use pulldown_cmark::{Event, Options, Parser};

use super::runbook::{Runbook, escape_html, sections};
use super::summary;

/// The page's template: `{{name}}` slots, filled by [`runbook_html`].
const TEMPLATE: &str = include_str!("runbook.html");

/// The runbook as a self-contained HTML page.
pub fn runbook_html(r: &Runbook<'_>) -> String {
    let verdict = summary::verdict(r);
    let error = r
        .error
        .map(|e| format!("<pre class=\"error\">{}</pre>", escape_html(e)))
        .unwrap_or_default();
    let mut top = String::new();
    let mut details = String::new();
    for section in sections(r) {
        let html = format!(
            "<section id=\"{}\">\n{}</section>\n",
            section.id,
            markdown_html(&section.markdown)
        );
        match section.id {
            "summary" | "commands" => top.push_str(&html),
            _ => details.push_str(&html),
        }
    }
    fill(
        TEMPLATE,
        &[
            (
                "title",
                &escape_html(&format!("{} — phantom-sync runbook", verdict.word)),
            ),
            (
                "verdict_class",
                if verdict.passed { "passed" } else { "problem" },
            ),
            (
                "context",
                &escape_html(&format!("phantom-sync runbook · PostgreSQL {}", r.major)),
            ),
            ("verdict", verdict.word),
            ("meaning", &escape_html(&verdict.meaning)),
            ("error", &error),
            ("top", &top),
            ("details", &details),
        ],
    )
}

/// Markdown as HTML, by CommonMark with GitHub's tables and task lists.
/// Raw HTML in the text is shown as text, except the runbook's own
/// `<details>` folds (whose summaries it escapes itself).
pub fn markdown_html(markdown: &str) -> String {
    let parser = Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS).map(
        |event| match event {
            Event::Html(html) | Event::InlineHtml(html) if !is_fold(&html) => Event::Text(html),
            other => other,
        },
    );
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut out, parser);
    out
}

/// A line of the runbook's own folding markup.
fn is_fold(html: &str) -> bool {
    let line = html.trim_start();
    line.starts_with("<details><summary>") || line.trim_end() == "</details>"
}

/// The template with each `{{name}}` replaced by its value, in one pass (a
/// value that holds `{{…}}` stays as it is). A slot without a value panics:
/// the template and this file change together.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").expect("a template slot is closed");
        let name = &after[..end];
        let value = values
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no value for the template's {{{{{name}}}}}"));
        out.push_str(value.1);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::{Action, Phase, Step};
    use crate::report::tests::{at, failed, rehearsal};

    /// What a reader sees as prose: the page without its code, tags and style.
    fn prose(html: &str) -> String {
        let mut text = html[at(html, "<body>")..].to_string();
        for (open, close) in [("<pre", "</pre>"), ("<code", "</code>")] {
            while let Some(start) = text.find(open) {
                let end = start + at(&text[start..], close) + close.len();
                text.replace_range(start..end, " ");
            }
        }
        let mut out = String::new();
        let mut in_tag = false;
        for c in text.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn no_markdown_syntax_reaches_the_page() {
        for r in [rehearsal(), failed()] {
            let html = runbook_html(&r.runbook());
            let text = prose(&html);
            for leak in ["**", "`", "|---", "- [x]", "- [ ]", "```", "\n#"] {
                assert!(!text.contains(leak), "{leak:?} shows on the page:\n{text}");
            }
            assert!(html.contains("<table>") && html.contains("<strong>"));
            assert!(html.contains("<input disabled=\"\" type=\"checkbox\" checked=\"\"/>"));
            assert!(!html.contains("{{"), "a template slot left unfilled");
        }
    }

    #[test]
    fn the_verdict_comes_first_and_the_commands_before_any_fold() {
        let html = runbook_html(&rehearsal().runbook());
        let body = &html[at(&html, "<body>") + "<body>".len()..];
        assert!(
            body.trim_start()
                .starts_with("<header id=\"verdict\" class=\"passed\">"),
            "{body}"
        );
        assert!(at(&html, "<h1>PASSED</h1>") < at(&html, "<section id=\"summary\">"));
        let commands = at(&html, "<section id=\"commands\">");
        let repair = at(&html, "phantom-sync repair --plan");
        let fold = at(&html, "<details>");
        assert!(commands < repair && repair < fold);
        assert_eq!(html.matches("<h2>Timings</h2>").count(), 1);
        let problem = runbook_html(&failed().runbook());
        assert!(problem.contains("<header id=\"verdict\" class=\"problem\">"));
        assert!(problem.contains("<h1>FOUND A PROBLEM</h1>"));
    }

    #[test]
    fn sql_and_text_are_escaped_and_raw_html_shows_as_text() {
        let mut r = failed();
        let plan = r.plan.as_mut().expect("a plan");
        plan.steps.push(Step {
            id: "3.9".into(),
            phase: Phase::Reapply,
            title: "Apply 20990101000000_a<b>&c.sql".into(),
            action: Action::Apply {
                version: "20990101000000".into(),
            },
            sql: vec![
                "select 1 where 2 < 3 and 'a' <> 'b&c' -- </details><script>x</script>".into(),
            ],
        });
        r.journal
            .as_mut()
            .expect("a journal")
            .issues
            .push("run with --confirm <database name> & retry".into());
        let html = runbook_html(&r.runbook());
        at(
            &html,
            "select 1 where 2 &lt; 3 and 'a' &lt;&gt; 'b&amp;c' -- &lt;/details&gt;&lt;script&gt;x&lt;/script&gt;;",
        );
        at(
            &html,
            "<summary>Step 3.9: Apply 20990101000000_a&lt;b&gt;&amp;c.sql — 1 statement</summary>",
        );
        at(&html, "--confirm &lt;database name&gt; &amp; retry");
        at(&html, "&lt;b&gt;alter table&lt;/b&gt; &amp; more");
        assert!(!html.contains("<script"), "no script reaches the page");
        assert!(!html.contains("<b>"), "no raw tag from the data");
        assert_eq!(
            html.matches("<details>").count(),
            html.matches("</details>").count()
        );
    }

    #[test]
    fn the_page_prints_with_every_fold_open_and_keeps_dates_on_one_line() {
        let print = &TEMPLATE[at(TEMPLATE, "@media print")..];
        at(
            print,
            "details::details-content { content-visibility: visible; display: block; }",
        );
        at(print, "background: none");
        at(
            TEMPLATE,
            "#migrations td:nth-child(-n+4) { white-space: nowrap;",
        );
        assert!(
            !TEMPLATE.contains("<script"),
            "the page needs no JavaScript"
        );
    }

    #[test]
    fn slots_are_filled_once() {
        assert_eq!(
            fill("a {{x}} b {{y}}", &[("x", "{{y}}"), ("y", "2")]),
            "a {{y}} b 2"
        );
    }
}
