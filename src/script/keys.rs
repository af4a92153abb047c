//! Keywords as map keys: `dashboard(#{for: "15s"})`. Rhai refuses a keyword as an unquoted
//! key of a map literal, yet flags such as `--for` are named like keywords, and SPEC §7 writes
//! the call that way. A token mapper (Rhai's `internals` feature) therefore reads a keyword
//! right after `#{` or after a comma inside a map literal as the plain name it spells, so the
//! map gets the key `for`; so does a keyword right after `.` (`m.for`). A keyword anywhere else
//! (a `for` loop, a value) is left alone.
//! `#{"for": "15s"}` works without any of this.

use rhai::{Engine, Position, Token};
use std::sync::Mutex;

#[derive(Default)]
struct Reading {
    /// Open brackets: `true` for a map literal's `#{`.
    open: Vec<bool>,
    /// The previous token started a map or separated two of its entries.
    key_next: bool,
    /// The previous token was `.`: a property's name comes next.
    property_next: bool,
    /// Where the previous token was; a token before it means a new script is being read.
    last: (usize, usize),
}

pub fn keywords_as_map_keys(engine: &mut Engine) {
    let reading = Mutex::new(Reading::default());
    #[allow(deprecated)] // Rhai marks the API volatile, not deprecated.
    engine.on_parse_token(move |token, pos, _| {
        let mut r = reading.lock().unwrap_or_else(|e| e.into_inner());
        let here = (pos.line().unwrap_or(0), pos.position().unwrap_or(0));
        if here < r.last || pos == Position::NONE {
            *r = Reading::default();
        }
        r.last = here;
        let in_map = r.open.last() == Some(&true);
        let token = match token {
            t if (r.key_next && in_map || r.property_next) && t.is_literal() && is_word(t.literal_syntax()) => {
                Token::Identifier(Box::new(t.literal_syntax().into()))
            }
            t => t,
        };
        match &token {
            Token::MapStart => r.open.push(true),
            Token::LeftBrace | Token::LeftParen | Token::LeftBracket => r.open.push(false),
            Token::RightBrace | Token::RightParen | Token::RightBracket => {
                r.open.pop();
            }
            _ => {}
        }
        r.key_next = matches!(token, Token::MapStart) || (in_map && matches!(token, Token::Comma));
        r.property_next = matches!(token, Token::Period);
        token
    });
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::Map;

    #[test]
    fn a_keyword_is_a_key_only_where_a_key_goes() {
        let mut engine = Engine::new();
        keywords_as_map_keys(&mut engine);
        let m: Map = engine.eval(r#"#{for: "2s", if: 1, "while": 2, x: #{in: 3}}"#).unwrap();
        assert_eq!(m["for"].to_string(), "2s");
        assert_eq!(m["if"].as_int().unwrap(), 1);
        assert_eq!(m["while"].as_int().unwrap(), 2);
        // Keywords keep their meaning everywhere else, in the next script too.
        let n: i64 = engine.eval("let n = 0; for x in [1, 2, #{for: 3}.for] { n += x } n").unwrap();
        assert_eq!(n, 6);
        let f: i64 = engine.eval("fn f(a) { if a > 1 { a } else { 0 } } f(4)").unwrap();
        assert_eq!(f, 4);
        assert!(engine.compile("#{a: for}").is_err(), "a keyword as a value is still a keyword");
    }

    #[test]
    fn the_shipped_scripts_parse_the_same() {
        let mut mapped = Engine::new();
        keywords_as_map_keys(&mut mapped);
        let plain = Engine::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for dir in ["scripts", "plugins"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "rhai") {
                    let src = std::fs::read_to_string(&path).unwrap();
                    let (a, b) = (plain.compile(&src), mapped.compile(&src));
                    assert_eq!(a.is_ok(), b.is_ok(), "{}: {:?} / {:?}", path.display(), a.err(), b.err());
                    if let (Ok(a), Ok(b)) = (a, b) {
                        assert_eq!(
                            format!("{:?}", a.statements()),
                            format!("{:?}", b.statements()),
                            "{}",
                            path.display()
                        );
                    }
                    seen += 1;
                }
            }
        }
        assert!(seen > 5, "found the scripts");
    }
}
