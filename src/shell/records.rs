//! Rows of named values (what a script passes to `table`) as a table: which columns, in which
//! order, and how a value reads in a cell. Scripts build rows as maps, which forget the order
//! the author wrote, so the columns that say which row is which come first, or the script names
//! the columns itself. Values read as a person would say them: bytes in KiB, lists as
//! `a, b`, never JSON. The layout is `fit`'s; this module never prints.

use super::fit::{self, Column};
use super::output::{human_bytes, Style};
use crate::error::{Error, Result};
use serde_json::Value;

/// Columns that say which row is which, then what a row is, in this order, before any other.
const LEADING: &[&str] = &[
    "id", "node", "name", "key", "address", "scenario", "lock", "queue", "account", "state", "role", "term", "leader",
];

/// The table for `rows`: with `columns`, exactly those in that order; otherwise every column any
/// row has, those of `LEADING` first, the rest alphabetically.
pub fn records(style: Style, rows: &[Value], columns: Option<&[String]>) -> Result<String> {
    let names = match columns {
        Some(names) => {
            let known = |n: &str| rows.iter().any(|r| r.as_object().is_some_and(|m| m.contains_key(n)));
            if let Some(missing) = names.iter().find(|n| !known(n.as_str())) {
                return Err(Error::usage(format!(
                    "table: no row has a column `{missing}` (they have: {})",
                    order(rows).join(", ")
                )));
            }
            names.to_vec()
        }
        None => order(rows),
    };
    let cells = rows
        .iter()
        .map(|row| match row.as_object() {
            Some(m) => names.iter().map(|n| m.get(n.as_str()).map_or(String::new(), |v| cell(n, v))).collect(),
            None => vec![cell("", row)],
        })
        .collect();
    let columns: Vec<Column> =
        names.iter().enumerate().map(|(i, n)| Column::new(n.as_str(), i.min(255) as u8).shrink(12)).collect();
    Ok(fit::render(style, &columns, cells))
}

/// Every column a row has: `LEADING` ones first, then the rest alphabetically (ignoring case).
pub fn order(rows: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for m in rows.iter().filter_map(Value::as_object) {
        for k in m.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    names.sort_by_key(|n| (LEADING.iter().position(|l| l == n).unwrap_or(LEADING.len()), n.to_lowercase()));
    names
}

/// A value as a person reads it: text without quotes, lists joined with commas, maps as
/// `k=v`, counts of bytes in KiB/MiB, fractions to a few digits, nothing as `-`.
pub fn cell(column: &str, v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(b), _) if is_bytes(column) => human_bytes(b),
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 || f.abs() >= 100.0 => format!("{f:.0}"),
            (None, Some(f)) if f.abs() >= 10.0 => format!("{f:.1}"),
            (None, Some(f)) => format!("{f:.2}"),
            (None, None) => n.to_string(),
        },
        Value::Array(a) => a.iter().map(|v| cell(column, v)).collect::<Vec<_>>().join(", "),
        Value::Object(m) => m.iter().map(|(k, v)| format!("{k}={}", cell(k, v))).collect::<Vec<_>>().join(" "),
    }
}

/// `bytes on disk`, `bytes_in`, `size bytes`: a column that counts bytes says so.
fn is_bytes(column: &str) -> bool {
    column.to_lowercase().split(|c: char| !c.is_alphanumeric()).any(|w| w == "bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(out: &str) -> Vec<String> {
        out.lines().next().unwrap().split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn identifying_columns_come_first() {
        let rows = [json!({"term": 3, "role": "leader", "node": "n1"})];
        assert_eq!(order(&rows), ["node", "role", "term"]);
        let rows = [json!({"applied_index": 7, "address": "127.0.0.1:1", "id": "n1", "keys": 2})];
        assert_eq!(order(&rows), ["id", "address", "applied_index", "keys"]);
        let rows = [json!({"Merkle root": "ab", "keys": 2, "data centre": "eu"})];
        assert_eq!(order(&rows), ["data centre", "keys", "Merkle root"]);
    }

    #[test]
    fn named_columns_are_shown_in_their_order_and_only_those() {
        let rows = [json!({"node": "n1", "role": "leader", "term": 3})];
        let names = ["term".to_string(), "node".to_string()];
        let out = records(Style::Plain, &rows, Some(&names)).unwrap();
        assert_eq!(header(&out), ["term", "node"]);
        assert!(!out.contains("leader"), "{out}");
    }

    #[test]
    fn a_column_no_row_has_is_a_usage_error() {
        let rows = [json!({"node": "n1", "role": "leader"})];
        let e = records(Style::Plain, &rows, Some(&["rol".to_string()])).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Usage);
        assert!(e.message.contains("`rol`") && e.message.contains("node, role"), "{}", e.message);
    }

    #[test]
    fn values_read_as_a_person_says_them() {
        assert_eq!(cell("holders", &json!(["alice", "bob"])), "alice, bob");
        assert_eq!(cell("bytes on disk", &json!(188_877)), "184.5 KiB");
        assert_eq!(cell("bytes_on_disk", &json!(512)), "512 B");
        assert_eq!(cell("keys", &json!(188_877)), "188877");
        assert_eq!(cell("p50 ms", &json!(0.523_456)), "0.52");
        assert_eq!(cell("ops/s", &json!(4523.77)), "4524");
        assert_eq!(cell("what", &json!(null)), "-");
        assert_eq!(cell("holder", &json!({"owner": "alice", "token": 7})), "owner=alice token=7");
    }
}
