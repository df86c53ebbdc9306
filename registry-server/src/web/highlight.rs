//! Syntax highlighting of README code blocks with syntect's bundled grammars (pure-Rust regexes).
//! It emits CSS classes (`hl-keyword`, `hl-string`, ...) that the stylesheet colours, so one
//! rendering serves the light and the dark theme.

use std::sync::LazyLock;
use std::time::Instant;
use syntect::html::{ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

pub const CLASS_PREFIX: &str = "hl-";
/// Larger blocks, or blocks with longer lines (minified code), are shown plain: highlighting
/// cost grows with them and nobody reads them.
const MAX_CODE: usize = 64 * 1024;
const MAX_LINE: usize = 1000;

/// Loaded on first use (some milliseconds), off the async workers like all README rendering.
static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(SyntaxSet::load_defaults_newlines);

/// Loads the grammars now (they load on first use otherwise).
pub fn ready() {
    LazyLock::force(&SYNTAXES);
}

/// Loads the grammars and compiles the most used ones (grammars compile their patterns on first
/// use, which would otherwise count against the first README's highlighting time).
pub fn warm() {
    let later = Instant::now() + std::time::Duration::from_secs(60);
    for lang in ["js", "json", "bash", "yaml", "html", "css"] {
        let _ = highlight(lang, "const a = { b: 'c' }; // d\n", later);
    }
}

/// The grammar a fence's language names; some names README authors use are spelled otherwise
/// in the bundle, and TypeScript has none (JavaScript's is close).
fn grammar_token(lang: &str) -> &str {
    match lang {
        "ts" | "typescript" | "tsx" | "mjs" | "cjs" | "jsx" | "node" => "js",
        "shell" | "console" | "zsh" | "shellscript" | "sh" => "bash",
        "yml" => "yaml",
        "jsonc" | "json5" => "json",
        "golang" => "go",
        "rs" => "rust",
        "py" => "python",
        other => other,
    }
}

/// The code as HTML (escaped text in highlighting spans) when its language is known, it is not
/// too large and it is done before `deadline`; `None`: show it plain.
pub fn highlight(lang: &str, code: &str, deadline: Instant) -> Option<String> {
    if lang.is_empty() || code.len() > MAX_CODE || code.lines().any(|l| l.len() > MAX_LINE) {
        return None;
    }
    let syntaxes = &*SYNTAXES;
    let syntax = syntaxes.find_syntax_by_token(grammar_token(&lang.to_ascii_lowercase()))?;
    let mut html = ClassedHTMLGenerator::new_with_class_style(
        syntax,
        syntaxes,
        ClassStyle::SpacedPrefixed { prefix: CLASS_PREFIX },
    );
    for line in LinesWithEndings::from(code) {
        if Instant::now() > deadline {
            return None;
        }
        html.parse_html_for_line_which_includes_newline(line).ok()?;
    }
    Some(html.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_languages_get_classes_and_stay_escaped() {
        let later = Instant::now() + Duration::from_secs(60);
        let highlight = |lang: &str, code: &str| highlight(lang, code, later);
        let h = highlight("js", "const a = '<b>';\n").unwrap();
        assert!(h.contains("hl-keyword") || h.contains("hl-storage"), "{h}");
        assert!(h.contains("hl-string"), "{h}");
        assert!(h.contains("&lt;b&gt;") && !h.contains("<b>"), "{h}");
        assert!(highlight("typescript", "let x: number = 1;\n").is_some());
        assert!(highlight("bash", "npm install x\n").is_some());
        assert!(highlight("no-such-language", "x\n").is_none());
        assert!(highlight("js", &"x".repeat(MAX_LINE + 1)).is_none());
        assert!(
            super::highlight("js", "x\n", Instant::now()).is_none(),
            "past its deadline"
        );
    }
}
