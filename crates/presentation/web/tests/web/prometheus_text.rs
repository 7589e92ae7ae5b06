//! A strict reader of Prometheus' text exposition format (0.0.4), for tests: every line must
//! be a `# HELP`, a `# TYPE` (once per family, before its samples) or a sample of a declared
//! family, with its labels quoted and escaped as the format says.

/// One sample line: name, labels (unescaped), value.
pub(crate) type Sample = (String, Vec<(String, String)>, f64);

/// Parses the text format strictly: every line is `# HELP`, `# TYPE` (once per family,
/// before its samples) or a sample of a declared family; returns the samples.
pub(crate) fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut types: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let mut helped = std::collections::BTreeSet::new();
    let mut samples = Vec::new();
    if !text.ends_with('\n') {
        return Err("the text must end with a line feed".into());
    }
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').ok_or(format!("bad HELP: {line}"))?;
            if !name_ok(name) || !helped.insert(name.to_owned()) {
                return Err(format!("bad or repeated HELP: {line}"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or(format!("bad TYPE: {line}"))?;
            if !name_ok(name)
                || !["counter", "gauge", "untyped", "summary", "histogram"].contains(&kind)
                || types.insert(name.to_owned(), kind.to_owned()).is_some()
            {
                return Err(format!("bad or repeated TYPE: {line}"));
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            return Err(format!("unexpected line: {line:?}"));
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => return Err(format!("no value: {line}")),
        };
        if !name_ok(name) {
            return Err(format!("bad name: {line}"));
        }
        if !types.contains_key(name) {
            return Err(format!("sample before its TYPE: {line}"));
        }
        let mut labels = Vec::new();
        let mut rest = rest;
        if let Some(after) = rest.strip_prefix('{') {
            let mut chars = after.char_indices().peekable();
            let end;
            loop {
                // label name
                let start = match chars.peek() {
                    Some((i, '}')) => {
                        end = *i + 1;
                        break;
                    }
                    Some((i, _)) => *i,
                    None => return Err(format!("unterminated labels: {line}")),
                };
                let mut eq = None;
                for (i, c) in chars.by_ref() {
                    if c == '=' {
                        eq = Some(i);
                        break;
                    }
                }
                let eq = eq.ok_or(format!("label without '=': {line}"))?;
                let key = &after[start..eq];
                if !name_ok(key) || key.contains(':') {
                    return Err(format!("bad label name {key:?}: {line}"));
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(format!("label value not quoted: {line}"));
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            Some((_, 'n')) => value.push('\n'),
                            _ => return Err(format!("bad escape: {line}")),
                        },
                        Some((_, '"')) => break,
                        Some((_, '\n')) | None => {
                            return Err(format!("unterminated value: {line}"));
                        }
                        Some((_, c)) => value.push(c),
                    }
                }
                labels.push((key.to_owned(), value));
                match chars.next() {
                    Some((_, ',')) => {}
                    Some((i, '}')) => {
                        end = i + 1;
                        break;
                    }
                    _ => return Err(format!("bad label list: {line}")),
                }
            }
            rest = &after[end..];
        }
        let value = rest
            .strip_prefix(' ')
            .ok_or(format!("no space before the value: {line}"))?;
        let value: f64 = value
            .parse()
            .map_err(|_| format!("bad value {value:?}: {line}"))?;
        samples.push((name.to_owned(), labels, value));
    }
    Ok(samples)
}
