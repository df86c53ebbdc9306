//! A README (untrusted markdown) to safe HTML: GitHub-flavoured markdown (tables, fenced code,
//! strikethrough, task lists), code blocks highlighted, then everything sanitized: no scripts,
//! event handlers, `javascript:` or other non-web links, styles, frames or forms; images only
//! inline (`data:`), so that showing a README makes the browser fetch nothing.

use super::highlight::{self, CLASS_PREFIX};
use ammonia::Builder;
use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

/// Markdown past this size is not rendered (a README is rarely a tenth of it).
pub const MAX_README: usize = 1024 * 1024;

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// A fence's language, if it is a plain word (it becomes a class name).
fn language(kind: &CodeBlockKind) -> String {
    match kind {
        CodeBlockKind::Fenced(info) => info
            .split(|c: char| c.is_whitespace() || c == ',' || c == '{')
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "+-_#".contains(*c))
            .collect(),
        CodeBlockKind::Indented => String::new(),
    }
}

fn code_block(lang: &str, code: &str) -> String {
    let mut out = String::with_capacity(code.len() + 64);
    out.push_str("<pre><code");
    if !lang.is_empty() {
        out.push_str(" class=\"language-");
        out.push_str(lang);
        out.push('"');
    }
    out.push('>');
    match highlight::highlight(lang, code) {
        Some(h) => out.push_str(&h),
        None => escape(code, &mut out),
    }
    out.push_str("</code></pre>\n");
    out
}

/// Markdown to HTML, code blocks already highlighted; not yet safe.
fn to_html(markdown: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS | Options::ENABLE_GFM;
    let mut events = Vec::new();
    let mut code: Option<(String, String)> = None;
    for event in Parser::new_ext(markdown, options) {
        match (event, &mut code) {
            (Event::Start(Tag::CodeBlock(kind)), _) => code = Some((language(&kind), String::new())),
            (Event::Text(t), Some((_, text))) => text.push_str(&t),
            (Event::End(TagEnd::CodeBlock), _) => {
                if let Some((lang, text)) = code.take() {
                    events.push(Event::Html(code_block(&lang, &text).into()));
                }
            }
            (e, _) => events.push(e),
        }
    }
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    html
}

/// An image the browser can show without fetching anything: inline data. A README's relative
/// images name files of the package's repository, which this registry does not serve, and
/// others would be fetched from elsewhere.
fn is_inline_image(url: &str) -> bool {
    // In an <img>, even an SVG runs no script.
    url.trim_start()
        .get(..11)
        .is_some_and(|p| p.eq_ignore_ascii_case("data:image/"))
}

fn keep_attribute<'u>(element: &str, attribute: &str, value: &'u str) -> Option<Cow<'u, str>> {
    let keep = match (element, attribute) {
        ("span", "class") => value.split_whitespace().all(|c| c.starts_with(CLASS_PREFIX)),
        ("code", "class") => value
            .strip_prefix("language-")
            .is_some_and(|l| l.chars().all(|c| c.is_ascii_alphanumeric() || "+-_#".contains(c))),
        ("input", "type") => value == "checkbox",
        ("img", "src") => is_inline_image(value),
        ("a", "href") => !value
            .trim_start()
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("data:")),
        _ => true,
    };
    keep.then_some(Cow::Borrowed(value))
}

static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut b = Builder::default();
    b.add_tags(["input"])
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .add_tag_attributes("span", ["class"])
        .add_tag_attributes("code", ["class"])
        .url_schemes(HashSet::from(["http", "https", "mailto", "data"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(keep_attribute);
    b
});

/// A README as safe HTML.
pub fn render(markdown: &str) -> String {
    let markdown = if markdown.len() > MAX_README {
        let mut end = MAX_README;
        while !markdown.is_char_boundary(end) {
            end -= 1;
        }
        &markdown[..end]
    } else {
        markdown
    };
    SANITIZER.clean(&to_html(markdown)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_flavoured_markdown() {
        let html =
            render("# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```js\nconst x = 1;\n```\n\n- [x] done\n\n~~old~~\n");
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<table>") && html.contains("<td>1</td>"), "{html}");
        assert!(html.contains("<code class=\"language-js\">"), "{html}");
        assert!(html.contains("class=\"hl-"), "highlighted: {html}");
        assert!(html.contains("type=\"checkbox\""), "{html}");
        assert!(html.contains("<del>old</del>"), "{html}");
    }

    #[test]
    fn nothing_runs() {
        let html = render(
            "<script>alert(1)</script>\n\n<img src=x onerror=\"alert(2)\">\n\n\
             [click](javascript:alert(3))\n\n<a href=\"JaVaScRiPt:alert(4)\">b</a>\n\n\
             <iframe src=\"https://x\"></iframe><form action=\"/x\"><input type=\"text\"></form>\n\n\
             <div style=\"background:url(x)\" onclick=\"alert(5)\">d</div>\n\n\
             <svg><script>alert(6)</script></svg><span class=\"evil\">s</span>\n\n\
             ![remote](https://tracker.example/pixel.png) ![local](img/logo.png)\n",
        );
        for bad in [
            "<script",
            "alert(1)",
            "onerror",
            "javascript",
            "JaVaScRiPt",
            "<iframe",
            "<form",
            "style=",
            "onclick",
            "type=\"text\"",
            "class=\"evil\"",
            "tracker.example",
        ] {
            assert!(!html.contains(bad), "{bad} survived: {html}");
        }
        assert!(!html.contains("img/logo.png"), "{html}");
        assert!(
            html.contains("alt=\"remote\"") && html.contains("alt=\"local\""),
            "{html}"
        );
        assert!(html.contains("rel=\"noopener noreferrer nofollow\""), "{html}");
    }

    #[test]
    fn code_is_escaped_and_huge_readmes_are_cut() {
        let html = render("```\n<b>bold?</b>\n```\n");
        assert!(html.contains("&lt;b&gt;bold?&lt;/b&gt;"), "{html}");
        let big = "a".repeat(MAX_README + 10);
        assert!(render(&big).len() < MAX_README + 100);
        assert!(is_inline_image("data:image/png;base64,AAAA"));
        assert!(!is_inline_image("docs/a.png") && !is_inline_image("https://x/a.png") && !is_inline_image("//x/a.png"));
        let html = render("[x](data:text/html,<script>alert(1)</script>) ![i](data:image/gif;base64,R0lGOD)");
        assert!(!html.contains("data:text"), "{html}");
        assert!(html.contains("src=\"data:image/gif;base64,R0lGOD\""), "{html}");
    }
}
