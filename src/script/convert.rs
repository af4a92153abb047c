//! JSON-shaped results to Rhai values and back.

use rhai::{Array, Dynamic, Map};
use serde_json::Value;

pub fn to_dynamic(v: &Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(a) => Dynamic::from_array(a.iter().map(to_dynamic).collect::<Array>()),
        Value::Object(o) => {
            Dynamic::from_map(o.iter().map(|(k, v)| (k.as_str().into(), to_dynamic(v))).collect::<Map>())
        }
    }
}

/// How a Rhai value reads as a command-line word.
pub fn to_word(d: &Dynamic) -> String {
    if d.is_unit() {
        String::new()
    } else {
        d.to_string()
    }
}
