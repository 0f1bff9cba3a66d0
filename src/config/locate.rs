//! Where a key is in a YAML file, found from the text: typed values lose their places once
//! parsed, but an operator at 3 a.m. needs the line of `standby_region`, not 1:1.

/// The 1-based (line, column) of the key at `path` (mapping keys from the top; a list item
/// is entered by naming a key inside it, e.g. `["probes", "targets", "name"]` finds the first
/// item's `name`). `None` when the text has no such key.
pub fn locate(text: &str, path: &[&str]) -> Option<(u64, u64)> {
    // (indent of the key, key) for the keys enclosing the current line.
    let mut stack: Vec<(usize, String)> = vec![];
    for (n, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut indent = raw.len() - trimmed.len();
        let mut body = trimmed;
        // A list item's first key sits after "- ".
        while let Some(rest) = body.strip_prefix("- ") {
            indent += 2;
            body = rest.trim_start();
        }
        let Some((key, _)) = body.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
        if key.is_empty() || key.contains(' ') && !key.starts_with('"') {
            continue;
        }
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        stack.push((indent, key.to_string()));
        let keys: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
        if keys == path {
            return Some((n as u64 + 1, indent as u64 + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::locate;

    #[test]
    fn finds_nested_keys_and_list_items() {
        let t = "name: x\nregions:\n  us-east-1:\n    database:\n      instance_id: a\n  us-west-2: {}\nprobes:\n  targets:\n    - name: p\n      region: us-east-3\n";
        assert_eq!(locate(t, &["name"]), Some((1, 1)));
        assert_eq!(
            locate(t, &["regions", "us-east-1", "database", "instance_id"]),
            Some((5, 7))
        );
        assert_eq!(locate(t, &["regions", "us-west-2"]), Some((6, 3)));
        assert_eq!(locate(t, &["probes", "targets", "region"]), Some((10, 7)));
        assert_eq!(locate(t, &["regions", "eu-west-1"]), None);
    }
}
