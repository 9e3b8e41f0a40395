//! Python's `fnmatch.fnmatch` on POSIX, as tracemalloc's `Filter` uses it.
//!
//! The rules are those of CPython's `fnmatch.translate`: case-sensitive,
//! `*` matches any run of characters including `/`, `?` matches one
//! character, `[seq]` and `[!seq]` match one character in or not in `seq`
//! (with ranges `a-z`), and a `[` without a closing `]` is a literal.
//! Instead of building a regular expression, the pattern is compiled into
//! tokens and matched with the classic star-backtracking loop, which is
//! linear in practice and never exponential. `fnmatch_cases.json` (written
//! by CPython) checks the two agree.

/// One character class: `[seq]` or `[!seq]`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Class {
    negated: bool,
    /// Inclusive ranges; a single character `c` is the range `c..=c`.
    ranges: Vec<(char, char)>,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyChar,
    Class(Class),
    /// A class that can match nothing, e.g. `[z-a]`.
    Never,
    Star,
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::AnyChar => true,
            Token::Class(class) => class.matches(c),
            Token::Never | Token::Star => false,
        }
    }
}

/// A compiled shell pattern with Python `fnmatch` semantics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// Compiles a pattern. Every string is a valid pattern, as in Python.
    pub fn new(pattern: &str) -> Pattern {
        let pat: Vec<char> = pattern.chars().collect();
        let n = pat.len();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < n {
            let c = pat[i];
            i += 1;
            match c {
                '*' => {
                    // Consecutive stars are one star.
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::AnyChar),
                '[' => {
                    let mut j = i;
                    if j < n && pat[j] == '!' {
                        j += 1;
                    }
                    if j < n && pat[j] == ']' {
                        j += 1;
                    }
                    while j < n && pat[j] != ']' {
                        j += 1;
                    }
                    if j >= n {
                        tokens.push(Token::Literal('['));
                    } else {
                        tokens.push(class_token(&pat, i, j));
                        i = j + 1;
                    }
                }
                c => tokens.push(Token::Literal(c)),
            }
        }
        Pattern { tokens }
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let tokens = &self.tokens;
        let mut chars = name.chars();
        let mut t = 0;
        // After a star: the token after it and the input just past where the
        // star's current attempt ends, to retry with one more character.
        let mut backtrack: Option<(usize, std::str::Chars<'_>)> = None;
        loop {
            let mut lookahead = chars.clone();
            let Some(c) = lookahead.next() else { break };
            match tokens.get(t) {
                Some(Token::Star) => {
                    t += 1;
                    backtrack = Some((t, chars.clone()));
                }
                Some(token) if token.matches(c) => {
                    t += 1;
                    chars = lookahead;
                }
                _ => match &mut backtrack {
                    Some((star_next, star_input)) => {
                        // Let the star swallow one more character.
                        if star_input.next().is_none() {
                            return false;
                        }
                        t = *star_next;
                        chars = star_input.clone();
                    }
                    None => return false,
                },
            }
        }
        tokens[t..].iter().all(|token| *token == Token::Star)
    }
}

/// Builds the token for the bracket expression `pat[i..j]` (between `[` and
/// `]`), following `fnmatch.translate` step by step, because its treatment
/// of `-` is particular: a `-` first (after an optional `!`) or last is a
/// literal, a `-` right after a range is a literal, and empty ranges such as
/// `z-a` are dropped together with their end points.
fn class_token(pat: &[char], start: usize, j: usize) -> Token {
    let stuff = &pat[start..j];
    // Each chunk is a run of literal characters; between two chunks, the last
    // character of the first and the first of the second form a range.
    let chunks: Vec<Vec<char>> = if !stuff.contains(&'-') {
        vec![stuff.to_vec()]
    } else {
        let mut chunks: Vec<Vec<char>> = Vec::new();
        let mut i = start;
        let mut k = if pat[i] == '!' { i + 2 } else { i + 1 };
        while let Some(found) = (k < j)
            .then(|| pat[k..j].iter().position(|&c| c == '-'))
            .flatten()
        {
            let dash = k + found;
            chunks.push(pat[i..dash].to_vec());
            i = dash + 1;
            k = dash + 3;
        }
        let last = &pat[i..j];
        if !last.is_empty() {
            chunks.push(last.to_vec());
        } else if let Some(prev) = chunks.last_mut() {
            prev.push('-');
        }
        // Remove empty ranges: drop both end points and join the chunks.
        for k in (1..chunks.len()).rev() {
            let (Some(&end), Some(&first)) = (chunks[k - 1].last(), chunks[k].first()) else {
                continue;
            };
            if end > first {
                let tail = chunks.remove(k);
                let prev = &mut chunks[k - 1];
                prev.pop();
                prev.extend_from_slice(&tail[1..]);
            }
        }
        chunks
    };
    if chunks.iter().all(Vec::is_empty) {
        return Token::Never;
    }
    let negated = chunks[0].first() == Some(&'!');
    if negated && chunks.len() == 1 && chunks[0].len() == 1 {
        // `[!z-a]`: the negation of an empty set matches any character.
        return Token::AnyChar;
    }
    let mut ranges = Vec::new();
    for (ci, chunk) in chunks.iter().enumerate() {
        let skip_bang = usize::from(ci == 0 && negated);
        let body = &chunk[skip_bang..];
        for (pos, &c) in body.iter().enumerate() {
            let is_range_end = ci > 0 && pos == 0 && skip_bang == 0;
            let is_range_start = pos + 1 == body.len() && ci + 1 < chunks.len();
            if is_range_end {
                // Handled with the previous chunk's last character.
                continue;
            }
            if is_range_start {
                let end = chunks[ci + 1].first().copied().unwrap_or(c);
                ranges.push((c, end));
            } else {
                ranges.push((c, c));
            }
        }
    }
    Token::Class(Class { negated, ranges })
}

/// tracemalloc's `_normalize_filename` on POSIX: `normcase` is the
/// identity, and a `.pyc` suffix becomes `.py`.
pub fn normalize_filename(filename: &str) -> &str {
    match filename.strip_suffix(".pyc") {
        Some(stem) => &filename[..stem.len() + 3],
        None => filename,
    }
}

/// `fnmatch.fnmatch(name, pattern)` on POSIX.
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    Pattern::new(pattern).matches(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases from CPython's Lib/test/test_fnmatch.py (`test_fnmatch`,
    /// `test_fnmatchcase`, `test_bytes`-free, `test_sep_in_char_set`,
    /// `test_range`, `test_warnings`-free) as (name, pattern, expected).
    #[test]
    fn cpython_fnmatch_cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("abc", "?*?", true),
            ("abc", "???*", true),
            ("abc", "*???", true),
            ("abc", "???", true),
            ("abc", "*", true),
            ("abc", "ab[cd]", true),
            ("abc", "ab[!de]", true),
            ("abc", "ab[de]", false),
            ("a", "??", false),
            ("a", "b", false),
            // These test that '\' is handled correctly in character sets.
            ("\\", "[\\]", true),
            ("a", "[!\\]", true),
            ("\\", "[!\\]", false),
            // Newlines are ordinary characters.
            ("foo\nbar", "foo*", true),
            ("foo\nbar\n", "foo*", true),
            ("\nfoo", "foo*", false),
            ("\n", "*", true),
            // POSIX: case-sensitive, and '/' is an ordinary character.
            ("abc", "ABC", false),
            ("usr/bin", "usr/bin", true),
            ("usr/bin", "usr\\bin", false),
            ("usr/bin", "usr*bin", true),
            // Ranges.
            ("a", "[a-c]", true),
            ("b", "[a-c]", true),
            ("d", "[a-c]", false),
            ("-", "[a-c]", false),
            ("-", "[-a]", true),
            ("-", "[a-]", true),
            ("-", "[!-]", false),
            ("a", "[!-]", true),
            ("b", "[z-a]", false),
            ("b", "[!z-a]", true),
            ("-", "[a-c-e]", true),
            ("d", "[a-c-e]", false),
            ("e", "[a-c-e]", true),
            ("]", "[]]", true),
            ("a", "[!]]", true),
            ("]", "[!]]", false),
            ("[", "[", true),
            ("[]", "[]", true),
            ("[a", "[a", true),
            ("^", "[^]", true),
            ("a", "[^a]", true),
            ("b", "[^a]", false),
        ];
        for &(name, pattern, expected) in cases {
            assert_eq!(
                fnmatch(name, pattern),
                expected,
                "fnmatch({name:?}, {pattern:?})"
            );
        }
    }

    #[test]
    fn star_backtracking_is_not_exponential() {
        // A naive recursive matcher takes forever on this.
        let name = "a".repeat(5000);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!fnmatch(&name, &pattern));
    }

    #[test]
    fn normalizes_pyc_like_tracemalloc() {
        assert_eq!(normalize_filename("a.pyc"), "a.py");
        assert_eq!(normalize_filename("a.py"), "a.py");
        assert_eq!(normalize_filename("a.PYC"), "a.PYC");
        assert_eq!(normalize_filename(".pyc"), ".py");
    }
}
