//! The layer order of ARCHITECTURE.md, enforced: a module may name only layers below it
//! (`crate::X` in code, comments aside). Two layers of the same rank (`node` and `client`,
//! `live` and `check`, `plugins` and `prompt`) may not name each other either.

use std::collections::BTreeMap;
use std::path::Path;

/// Bottom-up; a layer sees only layers of a lower rank.
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("proto", 1),
    ("net", 2),
    ("node", 3),
    ("client", 3),
    ("cluster", 4),
    ("load", 5),
    ("live", 6),
    ("check", 6),
    ("shell", 7),
    ("script", 8),
    ("plugins", 9),
    ("prompt", 9),
    ("app", 10),
];

fn rank(layer: &str) -> Option<u8> {
    LAYERS.iter().find(|(l, _)| *l == layer).map(|(_, r)| *r)
}

/// Every `crate::NAME` a source file names outside comments.
fn named_layers(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            out.push(name);
        }
    }
    out
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_module_names_a_layer_above_or_beside_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (layer, own) in LAYERS {
        let mut all = Vec::new();
        let dir = src.join(layer);
        if dir.is_dir() {
            files(&dir, &mut all);
        } else {
            all.push(src.join(format!("{layer}.rs")));
        }
        for file in all {
            let source = std::fs::read_to_string(&file).unwrap();
            for named in named_layers(&source) {
                let Some(r) = rank(&named) else { continue };
                if named != *layer && r >= *own {
                    broken.entry(file.display().to_string()).or_default().push(named);
                }
            }
        }
    }
    assert!(broken.is_empty(), "modules naming a layer that is not below them: {broken:#?}");
}

#[test]
fn every_module_under_src_is_placed_in_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if ["lib", "main"].contains(&name.as_str()) {
            continue;
        }
        assert!(rank(&name).is_some(), "src/{name} is in no layer: add it to LAYERS and ARCHITECTURE.md");
    }
}

#[test]
fn the_check_sees_an_import_from_above() {
    let names =
        named_layers("use crate::shell::Ctx; // crate::prompt is fine in a comment\nlet x = crate::plugins::find(n);");
    assert_eq!(names, ["shell", "plugins"]);
}
