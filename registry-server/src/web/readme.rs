//! A README (untrusted markdown) to safe HTML: GitHub-flavoured markdown (tables, fenced code,
//! strikethrough, task lists), code blocks highlighted, then everything sanitized: no scripts,
//! event handlers, `javascript:` or other non-web links, styles, frames or forms; images only
//! inline (`data:`), so that showing a README makes the browser fetch nothing.
//!
//! READMEs come from anyone who may publish (or from an uplink), so each rendering is bounded:
//! the input is cut at [`MAX_README`]; a document nested deeper than [`MAX_NESTING`] (block
//! quotes, lists, HTML elements), whose HTML would pass [`MAX_HTML`], or that takes longer than
//! [`RENDER_TIME`] (besides highlighting) is shown as plain text instead (its first
//! [`MAX_PLAIN`] bytes, escaped); at most [`MAX_HIGHLIGHT`] bytes of code are highlighted, within
//! [`HIGHLIGHT_TIME`] in all, the rest is shown plain. The parsers' costs that cannot be interrupted grow with nesting (the square of
//! it) and size, which are checked before they run.

use super::highlight::{self, CLASS_PREFIX};
use ammonia::Builder;
use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// Markdown past this size is not rendered (a README is rarely a tenth of it).
pub const MAX_README: usize = 1024 * 1024;
/// The deepest nesting rendered: block quotes and list levels on one line, and HTML elements.
pub const MAX_NESTING: usize = 64;
/// The most HTML a README renders to (before sanitizing).
pub const MAX_HTML: usize = 4 * 1024 * 1024;
/// The longest a rendering may take.
pub const RENDER_TIME: Duration = Duration::from_secs(1);
/// The most of a README shown as plain text when it is over a limit.
pub const MAX_PLAIN: usize = 64 * 1024;
/// The most code highlighted in one README (highlighting costs about 30 times the code in HTML).
pub const MAX_HIGHLIGHT: usize = 64 * 1024;
/// The longest highlighting may take in one README.
pub const HIGHLIGHT_TIME: Duration = Duration::from_millis(300);

/// Why a README is shown as plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Over {
    Nesting,
    Size,
    Time,
}

impl Over {
    fn reason(self) -> &'static str {
        match self {
            Over::Nesting => "it is nested too deeply",
            Over::Size => "it is too large",
            Over::Time => "it took too long to render",
        }
    }
}

/// What highlighting may still spend in this README, and what it spent.
struct Highlighting {
    bytes_left: usize,
    time_left: Duration,
    spent: Duration,
}

fn escape(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(i) = rest.find(['<', '>', '&', '"', '\'']) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Where code block `n` goes in the HTML before it is sanitized: code blocks are made here
/// (escaped text, our highlighting spans), so they skip the sanitizer, whose cost grows with
/// the HTML, and are put back after it. Private-use characters: a README that spells one out
/// can only move one of its own (safe) blocks, and each block is put back at most once.
const BLOCK_START: char = '\u{E000}';
const BLOCK_END: char = '\u{E001}';

/// The sanitized HTML with its code blocks put back.
fn put_back(html: &str, blocks: &[String]) -> String {
    let mut out = String::with_capacity(html.len() + blocks.iter().map(String::len).sum::<usize>());
    let mut used = vec![false; blocks.len()];
    let mut rest = html;
    while let Some(at) = rest.find(BLOCK_START) {
        out.push_str(&rest[..at]);
        rest = &rest[at + BLOCK_START.len_utf8()..];
        let Some(end) = rest.find(BLOCK_END) else {
            // No end follows this start, nor any later one: the rest is text (scanning on from
            // each later start would cost the square of the length).
            break;
        };
        if let Ok(n) = rest[..end].parse::<usize>()
            && n < blocks.len()
            && !std::mem::replace(&mut used[n], true)
        {
            out.push_str(&blocks[n]);
        }
        rest = &rest[end + BLOCK_END.len_utf8()..];
    }
    out.push_str(rest);
    out
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

fn code_block(lang: &str, code: &str, budget: &mut Highlighting) -> String {
    let mut out = String::with_capacity(code.len() + 64);
    out.push_str("<pre><code");
    if !lang.is_empty() {
        out.push_str(" class=\"language-");
        out.push_str(lang);
        out.push('"');
    }
    out.push('>');
    let highlighted = if code.len() <= budget.bytes_left && !budget.time_left.is_zero() {
        budget.bytes_left -= code.len();
        let started = Instant::now();
        let h = highlight::highlight(lang, code, started + budget.time_left);
        let took = started.elapsed();
        budget.time_left = budget.time_left.saturating_sub(took);
        budget.spent += took;
        h
    } else {
        None
    };
    match highlighted {
        Some(h) => out.push_str(&h),
        None => escape(code, &mut out),
    }
    out.push_str("</code></pre>\n");
    out
}

/// The deepest container nesting a line of markdown opens: block quote markers, list markers
/// and indentation (a list level takes at least two columns) before its text. Pure, linear.
fn markdown_nesting(markdown: &str) -> usize {
    let mut deepest = 0;
    let mut fence: Option<&str> = None;
    for line in markdown.lines() {
        // Lines of a fenced code block are code, however indented (ASCII art, deep code).
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => {
                fence = Some(m);
                continue;
            }
            (Some(open), Some(m)) if open == m => {
                fence = None;
                continue;
            }
            (Some(_), _) => continue,
            (None, None) => {}
        }
        let (mut depth, mut columns) = (0usize, 0usize);
        let mut rest = line.as_bytes();
        loop {
            match rest {
                [b' ', tail @ ..] => (columns, rest) = (columns + 1, tail),
                [b'\t', tail @ ..] => (columns, rest) = (columns + 4, tail),
                // A marker's one following space belongs to it.
                [b'>', b' ', tail @ ..] | [b'>', tail @ ..] => (depth, rest) = (depth + 1, tail),
                [b'-' | b'*' | b'+', b' ' | b'\t', tail @ ..] => (depth, rest) = (depth + 1, tail),
                [d, ..] if d.is_ascii_digit() => {
                    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
                    match rest.get(digits..digits + 2) {
                        Some([b'.' | b')', b' ' | b'\t']) if digits <= 9 => {
                            (depth, rest) = (depth + 1, &rest[digits + 2..]);
                        }
                        _ => break,
                    }
                }
                _ => break,
            }
        }
        deepest = deepest.max(depth + columns / 2);
        if deepest > MAX_NESTING {
            break;
        }
    }
    deepest
}

/// Elements that need no end tag (void) or that a browser closes by itself: they do not nest.
fn nests(tag: &[u8]) -> bool {
    const FLAT: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr",
        "p", "li", "dt", "dd", "tr", "td", "th", "option", "thead", "tbody", "tfoot",
    ];
    !FLAT.iter().any(|f| f.as_bytes().eq_ignore_ascii_case(tag))
}

/// The deepest element nesting of some HTML, counting start and end tags (unclosed elements
/// count as nested: that is what makes an HTML parser slow). Pure, linear.
fn html_nesting(html: &str) -> usize {
    let bytes = html.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while let Some(at) = bytes[i..].iter().position(|&b| b == b'<') {
        i += at + 1;
        let closing = bytes.get(i) == Some(&b'/');
        let start = i + usize::from(closing);
        let len = bytes[start.min(bytes.len())..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if len == 0 || !bytes[start].is_ascii_alphabetic() {
            continue;
        }
        let name = &bytes[start..start + len];
        // No `>` after this tag's name: none after any later one either, so no tag follows.
        let Some(end) = bytes[start..].iter().position(|&b| b == b'>').map(|p| start + p) else {
            break;
        };
        // Scanning resumes after the tag: each byte is looked at once.
        i = end + 1;
        let self_closing = bytes[end - 1] == b'/';
        if !nests(name) || self_closing {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else {
            depth += 1;
            deepest = deepest.max(depth);
            if deepest > MAX_NESTING {
                break;
            }
        }
    }
    deepest
}

/// Markdown to HTML, not yet safe, with its code blocks (highlighted) apart (see
/// [`put_back`]). `Err` when it is over a limit. Highlighting has its own time budget; the
/// rest may take [`RENDER_TIME`].
fn to_html(markdown: &str) -> Result<(String, Vec<String>), Over> {
    let started = Instant::now();
    if markdown_nesting(markdown) > MAX_NESTING {
        return Err(Over::Nesting);
    }
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS | Options::ENABLE_GFM;
    let mut highlighting = Highlighting {
        bytes_left: MAX_HIGHLIGHT,
        time_left: HIGHLIGHT_TIME,
        spent: Duration::ZERO,
    };
    let mut events = Vec::new();
    let mut blocks = Vec::new();
    let mut code: Option<(String, String)> = None;
    let mut added = 0usize;
    for (n, event) in Parser::new_ext(markdown, options).enumerate() {
        if n % 256 == 0 && started.elapsed().saturating_sub(highlighting.spent) > RENDER_TIME {
            return Err(Over::Time);
        }
        match (event, &mut code) {
            (Event::Start(Tag::CodeBlock(kind)), _) => code = Some((language(&kind), String::new())),
            (Event::Text(t), Some((_, text))) => text.push_str(&t),
            (Event::End(TagEnd::CodeBlock), _) => {
                if let Some((lang, text)) = code.take() {
                    let block = code_block(&lang, &text, &mut highlighting);
                    added += block.len();
                    if markdown.len() + added > MAX_HTML {
                        return Err(Over::Size);
                    }
                    events.push(Event::Html(
                        format!("{BLOCK_START}{}{BLOCK_END}\n", blocks.len()).into(),
                    ));
                    blocks.push(block);
                }
            }
            (e, _) => events.push(e),
        }
    }
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    if html.len() > MAX_HTML {
        return Err(Over::Size);
    }
    if html_nesting(&html) > MAX_NESTING {
        return Err(Over::Nesting);
    }
    Ok((html, blocks))
}

/// A README over a limit: its beginning as escaped text, and why.
fn plain(markdown: &str, over: Over) -> String {
    let shown = cut(markdown, MAX_PLAIN);
    let mut out = String::with_capacity(shown.len() + 128);
    out.push_str("<p><em>This README is shown as plain text: ");
    out.push_str(over.reason());
    if shown.len() < markdown.len() {
        out.push_str(" (and only its beginning)");
    }
    out.push_str(".</em></p>\n<pre>");
    escape(shown, &mut out);
    out.push_str("</pre>\n");
    out
}

/// The longest prefix of `text` of at most `max` bytes.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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

/// A README as safe HTML, within the limits above.
pub fn render(markdown: &str) -> String {
    let markdown = cut(markdown, MAX_README);
    // Loading the grammars (once, usually done at start) is not rendering time.
    highlight::ready();
    match to_html(markdown) {
        Ok((html, blocks)) => put_back(&SANITIZER.clean(&html).to_string(), &blocks),
        Err(over) => plain(markdown, over),
    }
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

    fn timed(markdown: &str) -> (String, Duration) {
        highlight::ready();
        let t = Instant::now();
        let html = render(markdown);
        (html, t.elapsed())
    }

    #[test]
    fn nesting_bombs_are_shown_as_plain_text_at_once() {
        let quotes = ">".repeat(MAX_README);
        let lines = "> ".repeat(2000) + "x\n";
        let lists = (0..200).map(|i| format!("{}- x\n", "  ".repeat(i))).collect::<String>();
        let divs = "<div>".repeat(32 * 1024) + "x";
        let bold = "<b>".repeat(32 * 1024) + "x";
        for bomb in [quotes, lines, lists, divs, bold] {
            let (html, took) = timed(&bomb);
            assert!(
                html.starts_with("<p><em>This README is shown as plain text: it is nested too deeply"),
                "{}",
                &html[..200.min(html.len())]
            );
            assert!(html.len() < MAX_PLAIN * 6 + 200, "{}", html.len());
            assert!(!html.contains("<div>") && !html.contains("<b>"), "escaped");
            assert!(took < Duration::from_millis(500), "{took:?}");
        }
        // Ordinary nesting renders.
        let html = render("> > quote\n\n- a\n  - b\n    - c\n\n<div><div><p>x</p></div></div>\n");
        assert!(html.contains("<blockquote>") && html.contains("<ul>"), "{html}");
    }

    #[test]
    fn highlighting_is_bounded_in_bytes_and_time() {
        let block = format!(
            "```js\n{}```\n\n",
            "const a = { b: [1, 'two', `three`] }; // four\n".repeat(1200)
        );
        assert!(block.len() > 50 * 1024 && block.len() < 64 * 1024);
        let (html, took) = timed(&format!("```js\nconst small = 1;\n```\n\n{}", block.repeat(16)));
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert!(html.len() < MAX_HTML, "{}", html.len());
        assert!(html.matches("class=\"hl-").count() > 0, "some is highlighted");
        assert!(html.matches("<pre>").count() >= 17, "all blocks are shown");
    }

    #[test]
    fn code_blocks_are_put_back_once_each() {
        let blocks = vec!["<pre>A</pre>".to_owned(), "<pre>B</pre>".to_owned()];
        let html = format!(
            "x{BLOCK_START}1{BLOCK_END}y{BLOCK_START}1{BLOCK_END}{BLOCK_START}0{BLOCK_END}{BLOCK_START}9{BLOCK_END}z"
        );
        assert_eq!(put_back(&html, &blocks), "x<pre>B</pre>y<pre>A</pre>z");
        // A README spelling the marker out cannot inject HTML or repeat a block.
        let spelled = format!("{BLOCK_START}0{BLOCK_END} <img src=x onerror=alert(1)>\n\n```\nx\n```\n");
        let html = render(&spelled.repeat(3));
        assert!(!html.contains("onerror"), "{html}");
        assert_eq!(html.matches("<pre>").count(), 3, "{html}");
    }

    #[test]
    fn nesting_is_measured_on_what_nests() {
        assert_eq!(markdown_nesting("a\n> > b\n   - c\n1. d\n"), 2);
        assert_eq!(markdown_nesting(">>>> - 10) x"), 6);
        assert_eq!(
            html_nesting("<div><p>a<p>b<br><img src=x/><ul><li>c</ul></div><div/>"),
            2
        );
        assert_eq!(html_nesting("a < b and <3 </> <!-- x -->"), 0);
        // Indented lines inside a fence are code, not nesting.
        let art = format!("```\n{}x\n```\n~~~\n{}y\n~~~\n", " ".repeat(200), "\t".repeat(40));
        assert_eq!(markdown_nesting(&art), 0);
        assert_eq!(markdown_nesting(&format!("{art}> > z\n")), 2);
    }

    #[test]
    fn unfinished_tags_and_markers_are_scanned_once() {
        // Tag starts without a `>` and block starts without an end: each byte is looked at
        // once (a scan from each start to the end of the text took minutes on a megabyte).
        let tags = format!("<div\n{}", "<a".repeat(500_000));
        let markers: String = std::iter::repeat_n(BLOCK_START, 350_000).collect();
        let t = Instant::now();
        assert_eq!(html_nesting(&tags), 0);
        assert_eq!(put_back(&markers, &[]).chars().count(), 350_000 - 1);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        // Deep nesting stops the count as soon as it is over the limit.
        assert_eq!(html_nesting(&"<div>".repeat(100_000)), MAX_NESTING + 1);
    }
}
