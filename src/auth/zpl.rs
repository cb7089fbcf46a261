//! A reader of ZPL (ZeroMQ RFC 4, "ZeroMQ Property Language"), the text format of CZMQ's and
//! pyzmq's certificate files: `#` comments, one `name` or `name = value` per line, nesting by
//! four spaces of indentation per level.

/// One property: its path of names from the top (`["curve", "public-key"]`) and its value
/// (empty for a bare name, which opens a section).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Property {
    /// The names from the top section down to this property: never empty, each made of
    /// ZPL's name characters only.
    pub(crate) path: Vec<String>,
    /// The value with its quotes and trailing comment removed; empty for a bare name.
    pub(crate) value: String,
}

/// What is wrong with a ZPL text, and on which line (from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ZplError {
    /// The line the problem is on, counting from 1.
    pub(crate) line: usize,
    /// What is wrong, as a phrase for an error message (quoting the offending text).
    pub(crate) what: String,
}

/// Reads every property of `text`, in order.
pub(crate) fn parse(text: &str) -> Result<Vec<Property>, ZplError> {
    let mut properties = Vec::new();
    let mut section: Vec<String> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let fail = |what: String| ZplError {
            line: index + 1,
            what,
        };
        let body = raw.trim_start_matches(' ');
        if body.trim().is_empty() || body.starts_with('#') {
            continue;
        }
        if body.starts_with('\t') {
            return Err(fail(
                "tab in indentation (ZPL indents by four spaces)".into(),
            ));
        }
        let indent = raw.len() - body.len();
        if indent % 4 != 0 {
            return Err(fail(format!(
                "indented by {indent} spaces (ZPL indents by four per level)"
            )));
        }
        let level = indent / 4;
        if level > section.len() {
            return Err(fail("indented deeper than its section".into()));
        }
        section.truncate(level);
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name.trim_end(), value_of(value).map_err(fail)?),
            None => (strip_comment(body).trim_end(), String::new()),
        };
        if name.is_empty() || !name.chars().all(is_name_char) {
            return Err(fail(format!("invalid property name {name:?}")));
        }
        section.push(name.to_owned());
        properties.push(Property {
            path: section.clone(),
            value,
        });
    }
    Ok(properties)
}

/// The characters ZPL allows in names.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "$-_@.&+/".contains(c)
}

/// A value: quoted with `"` or `'` (anything up to the same quote), or bare (up to a comment
/// or the end of the line, trimmed).
fn value_of(raw: &str) -> Result<String, String> {
    let raw = raw.trim_start();
    match raw.chars().next() {
        Some(quote @ ('"' | '\'')) => {
            let rest = &raw[1..];
            let end = rest
                .find(quote)
                .ok_or_else(|| format!("value has no closing {quote}"))?;
            let after = strip_comment(&rest[end + 1..]);
            if !after.trim().is_empty() {
                return Err(format!("text after the quoted value: {:?}", after.trim()));
            }
            Ok(rest[..end].to_owned())
        }
        _ => Ok(strip_comment(raw).trim_end().to_owned()),
    }
}

fn strip_comment(text: &str) -> &str {
    text.split('#').next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.path.join("/"), p.value))
            .collect()
    }

    #[test]
    fn sections_names_and_values() {
        let text = "#   a comment\n\nmetadata\n    name = bare value # comment\n    \
                    quoted = \"with # inside\"\ncurve\n    public-key = 'abc'\n";
        assert_eq!(
            pairs(text),
            [
                ("metadata".into(), "".into()),
                ("metadata/name".into(), "bare value".into()),
                ("metadata/quoted".into(), "with # inside".into()),
                ("curve".into(), "".into()),
                ("curve/public-key".into(), "abc".into()),
            ]
        );
    }

    #[test]
    fn malformed_text_names_its_line() {
        let cases = [
            ("curve\n  public-key = \"x\"\n", 2, "indented by 2"),
            ("curve\n        public-key = \"x\"\n", 2, "deeper"),
            ("curve\n    public-key = \"x\n", 2, "closing"),
            ("curve\n    public-key = \"x\" y\n", 2, "after the quoted"),
            ("cur ve\n", 1, "invalid property name"),
            ("= x\n", 1, "invalid property name"),
            ("curve\n\tpublic-key = x\n", 2, "tab"),
        ];
        for (text, line, what) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}");
            assert!(err.what.contains(what), "{text:?}: {}", err.what);
        }
    }
}
