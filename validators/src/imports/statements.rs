//! The import statements in a module's text, read without a parser.
//!
//! Ruff reports only the imports it resolved, and it cannot resolve every one that pyright
//! does (a relative import in a directory without `__init__.py`; see [`super::resolve`]), nor
//! say which ones it could not resolve: those are the imports of a module that does not exist
//! yet, whose creation must check the importing module again. So the statements are read here
//! too. Reading more than is there is harmless (a line of a docstring that looks like an
//! import adds an input the result does not have); reading less would serve stale results,
//! so every line that starts a statement with `import` or `from` counts, however indented,
//! as does every statement after a `;`, and a statement goes on across a backslash and
//! inside parentheses.

/// One `import a.b` or `from ..a.b import c, d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// How many leading dots: 0 for an absolute import.
    pub level: usize,
    /// The module's dotted name, split (`from . import x`: none).
    pub module: Vec<String>,
    /// What a `from` import takes from the module (`*` included); none for `import`.
    pub names: Vec<String>,
}

/// Every import statement in `source`, in order.
pub fn scan(source: &str) -> Vec<Import> {
    let mut imports = Vec::new();
    let mut lines = source.lines();
    while let Some(line) = lines.next() {
        let start = line.trim_start();
        if !(may_start_import(start) || start.contains(';') || after_colon(start).is_some()) {
            continue;
        }
        // Statements after a `;`, and the one after a compound statement's colon on the same
        // line (`if TYPE_CHECKING: from .types import Alias`, `try: import fast_json`).
        let mut parts: Vec<String> = code_of(start)
            .split(';')
            .flat_map(|p| [Some(p), after_colon(p)])
            .flatten()
            .map(|p| p.trim().to_owned())
            .collect();
        // Only the last statement of a line can go on over the next ones.
        if let Some(last) = parts.last_mut() {
            while goes_on(last) {
                let Some(next) = lines.next() else { break };
                if let Some(kept) = last.strip_suffix('\\') {
                    last.truncate(kept.len());
                }
                last.push(' ');
                last.push_str(code_of(next).trim());
            }
        }
        imports.extend(parts.iter().flat_map(|p| parse(p)));
    }
    imports
}

fn may_start_import(text: &str) -> bool {
    text.starts_with("import") || text.starts_with("from")
}

/// What follows the first colon of `text` that an import statement follows.
fn after_colon(text: &str) -> Option<&str> {
    text.match_indices(':')
        .map(|(at, _)| text[at + 1..].trim_start())
        .find(|rest| may_start_import(rest))
}

/// Whether an import statement goes on over the next line: after a backslash, or inside the
/// parentheses of `from m import (…)`. Parentheses elsewhere (a line of prose that starts with
/// "from (") do not count, so that they cannot swallow the rest of the file.
fn goes_on(statement: &str) -> bool {
    if !may_start_import(statement) {
        return false;
    }
    if statement.ends_with('\\') {
        return true;
    }
    let Some(names) = statement.rfind(" import").map(|at| &statement[at..]) else {
        return false;
    };
    names.trim_start()[6..].trim_start().starts_with('(') && !names.contains(')')
}

/// A line without its comment (no import statement holds a `#`).
fn code_of(line: &str) -> &str {
    line.find('#').map_or(line, |at| &line[..at])
}

/// The keyword `word` at the start of `text`, and what follows it, if a name does not go on.
fn after_keyword<'t>(text: &'t str, word: &str) -> Option<&'t str> {
    let rest = text.strip_prefix(word)?;
    match rest.chars().next() {
        Some(c) if is_name_char(c) => None,
        _ => Some(rest),
    }
}

/// The imports of one statement: `import a.b as c, d` imports `a.b` and `d`, each an import
/// of its own.
fn parse(statement: &str) -> Vec<Import> {
    if let Some(rest) = after_keyword(statement, "import") {
        return rest
            .split(',')
            .filter_map(|m| dotted(first_word(m)?))
            .map(|module| Import {
                level: 0,
                module,
                names: Vec::new(),
            })
            .collect();
    }
    parse_from(statement).into_iter().collect()
}

fn parse_from(statement: &str) -> Option<Import> {
    let rest = after_keyword(statement, "from")?.trim_start();
    let level = rest.chars().take_while(|&c| c == '.').count();
    let rest = rest[level..].trim_start();
    let word_end = rest
        .find(|c: char| !(is_name_char(c) || c == '.'))
        .unwrap_or(rest.len());
    let (word, after) = rest.split_at(word_end);
    // `import` is a keyword, never a module: `from . import x` names none.
    let (module, names) = match word {
        "import" if level > 0 => (Vec::new(), after),
        _ => (dotted(word)?, after_keyword(after.trim_start(), "import")?),
    };
    let names = names
        .replace(['(', ')'], " ")
        .split(',')
        .filter_map(first_word)
        .filter(|n| *n == "*" || is_name(n))
        .map(str::to_owned)
        .collect();
    Some(Import {
        level,
        module,
        names,
    })
}

/// The first word of an item (`c` of `c as d`).
fn first_word(item: &str) -> Option<&str> {
    item.split_whitespace().next()
}

/// `a.b.c` split, if each part is a name.
fn dotted(text: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = text.split('.').map(str::to_owned).collect();
    parts.iter().all(|p| is_name(p)).then_some(parts)
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| is_name_char(c) && !c.is_ascii_digit())
        && chars.all(is_name_char)
}

/// A character a Python name may hold (letters of any script, digits, `_`).
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(level: usize, module: &str, names: &[&str]) -> Import {
        Import {
            level,
            module: match module {
                "" => Vec::new(),
                m => m.split('.').map(str::to_owned).collect(),
            },
            names: names.iter().map(|n| (*n).to_owned()).collect(),
        }
    }

    #[test]
    fn absolute_and_relative_forms_are_read() {
        let source = "\
import os
import a.b as c, d
from x.y import z as w, v
from . import sibling
from .import tight
from.. import up
from ...pkg.mod import (
    one,  # a comment
    two,
)
from .m import *
";
        assert_eq!(
            scan(source),
            [
                import(0, "os", &[]),
                import(0, "a.b", &[]),
                import(0, "d", &[]),
                import(0, "x.y", &["z", "v"]),
                import(1, "", &["sibling"]),
                import(1, "", &["tight"]),
                import(2, "", &["up"]),
                import(3, "pkg.mod", &["one", "two"]),
                import(1, "m", &["*"]),
            ]
        );
    }

    #[test]
    fn indented_continued_and_semicolon_separated_statements_count() {
        let source = "\
if TYPE_CHECKING:
    from .types import Alias
x = 1; import json; from .a import \\
    b
def f():
    import importlib.util
if TYPE_CHECKING: from .protocols import Proto
try: import fast_json
";
        assert_eq!(
            scan(source),
            [
                import(1, "types", &["Alias"]),
                import(0, "json", &[]),
                import(1, "a", &["b"]),
                import(0, "importlib.util", &[]),
                import(1, "protocols", &["Proto"]),
                import(0, "fast_json", &[]),
            ]
        );
    }

    #[test]
    fn words_that_only_begin_like_a_statement_are_not_imports() {
        let source = "\
imported = 1
fromage = 2
from_here = 3
from .importer import x
# import commented
text = \"import this\"
";
        assert_eq!(scan(source), [import(1, "importer", &["x"])]);
    }
}
