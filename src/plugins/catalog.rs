//! Finding plugins and reading what they say about themselves. A plugin is one `.rhai` file
//! with `fn describe()` returning `#{ about: "…", params: #{ name: default, … } }` (and
//! optionally `name`, else the file's stem), plus `run(opts)` and/or `start`/`tick`/`stop`.
//! Reading a catalog compiles files and calls `describe()` on a bare engine: it never touches
//! the cluster and must not run anything else in the plugin.
//!
//! Directories, later ones overriding earlier ones by plugin name:
//! 1. `plugins/` of the source tree dsh was built from (so a dev build finds the repo's plugins
//!    from any directory), when it still exists;
//! 2. `./plugins` under the current directory;
//! 3. `$DSH_HOME/plugins` (the presenter's own).

use crate::error::{Error, Result};
use rhai::{Dynamic, Engine, Map, Scope};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One scenario as its file declares it.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub name: String,
    pub about: String,
    /// Parameter names and defaults, in the order Rhai's map keeps them (by name).
    pub params: Vec<(String, Value)>,
    pub path: PathBuf,
    pub has_run: bool,
    pub has_tick: bool,
    /// Why the file could not be read, when it could not.
    pub broken: Option<String>,
}

/// The directories searched, in order (see the module comment); only those that exist.
pub fn plugin_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins")];
    if let Ok(cwd) = std::env::current_dir() {
        dirs.push(cwd.join("plugins"));
    }
    dirs.push(crate::cluster::home_dir().join("plugins"));
    let mut seen = Vec::new();
    dirs.into_iter()
        .filter(|d| d.is_dir())
        .filter(|d| {
            let canon = d.canonicalize().unwrap_or_else(|_| d.clone());
            let new = !seen.contains(&canon);
            seen.push(canon);
            new
        })
        .collect()
}

/// Every plugin in the plugin directories, by name.
pub fn discover() -> BTreeMap<String, Plugin> {
    let mut all = BTreeMap::new();
    for dir in plugin_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
            .collect();
        files.sort();
        for path in files {
            let p = describe(&path);
            all.insert(p.name.clone(), p);
        }
    }
    all
}

/// The plugin called `name`, or a usage error naming the ones there are.
pub fn find(name: &str) -> Result<Plugin> {
    let mut all = discover();
    let Some(p) = all.remove(name) else {
        let names: Vec<String> = all.into_keys().collect();
        return Err(Error::usage(format!("no scenario `{name}` (there are: {})", names.join(", "))));
    };
    match &p.broken {
        Some(why) => Err(Error::usage(format!("scenario `{name}` ({}): {why}", p.path.display()))),
        None => Ok(p),
    }
}

fn describe(path: &Path) -> Plugin {
    let stem = path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let mut p = Plugin {
        name: stem,
        about: String::new(),
        params: Vec::new(),
        path: path.to_path_buf(),
        has_run: false,
        has_tick: false,
        broken: None,
    };
    let mut engine = Engine::new();
    engine.set_max_expr_depths(128, 64);
    let ast = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|src| engine.compile(&src).map_err(|e| format!("does not parse: {e}")))
    {
        Ok(ast) => ast,
        Err(e) => {
            p.about = format!("✗ {e}");
            p.broken = Some(e);
            return p;
        }
    };
    let has = |name: &str| ast.iter_functions().any(|f| f.name == name);
    p.has_run = has("run");
    p.has_tick = has("tick");
    if !p.has_run && !p.has_tick {
        p.broken = Some("defines neither run(opts) nor tick(state)".into());
    }
    if !has("describe") {
        p.about = "(no describe())".into();
        return p;
    }
    let opts = rhai::CallFnOptions::new().eval_ast(false);
    match engine.call_fn_with_options::<Dynamic>(opts, &mut Scope::new(), &ast, "describe", ()) {
        Ok(d) => {
            let m = d.try_cast::<Map>().unwrap_or_default();
            if let Some(n) = m.get("name").filter(|n| n.is_string()) {
                p.name = n.to_string();
            }
            p.about = m.get("about").map_or_else(String::new, |a| a.to_string());
            if let Some(params) = m.get("params").and_then(|d| d.read_lock::<Map>().map(|m| m.clone())) {
                p.params = params.iter().map(|(k, v)| (k.to_string(), crate::script::to_json(v))).collect();
            }
        }
        Err(e) => {
            p.about = format!("✗ describe() failed: {e}");
            p.broken = Some(format!("describe() failed: {e}"));
        }
    }
    p
}

impl Plugin {
    /// The options a run gets: the defaults, overridden by `key=value` words. A value takes the
    /// type of its default (number, true/false, text).
    pub fn options(&self, words: &[String]) -> Result<Map> {
        let mut opts: Map =
            self.params.iter().map(|(k, v)| (k.as_str().into(), crate::script::to_dynamic(v))).collect();
        for w in words {
            let Some((k, v)) = w.split_once('=') else {
                return Err(Error::usage(format!("scenario {}: `{w}` is not key=value", self.name)));
            };
            // A foreground run of a plugin with only `tick` lasts `duration`, declared or not.
            if k == "duration" && !self.params.iter().any(|(n, _)| n == k) {
                opts.insert(k.into(), Dynamic::from(v.to_string()));
                continue;
            }
            let Some((_, default)) = self.params.iter().find(|(name, _)| name == k) else {
                let known: Vec<&str> = self.params.iter().map(|(n, _)| n.as_str()).collect();
                return Err(Error::usage(format!(
                    "scenario {}: no parameter `{k}` (it takes: {})",
                    self.name,
                    known.join(", ")
                )));
            };
            let bad = || Error::usage(format!("scenario {}: {k}=`{v}` should be like {default}", self.name));
            let value = match default {
                Value::Number(n) if n.is_i64() => Dynamic::from_int(v.replace('_', "").parse().map_err(|_| bad())?),
                Value::Number(_) => Dynamic::from_float(v.parse().map_err(|_| bad())?),
                Value::Bool(_) => Dynamic::from_bool(v.parse().map_err(|_| bad())?),
                _ => Dynamic::from(v.to_string()),
            };
            opts.insert(k.into(), value);
        }
        Ok(opts)
    }

    /// What `scenario list` shows of it.
    pub fn listed(&self) -> crate::shell::Listed {
        crate::shell::Listed {
            name: self.name.clone(),
            about: self.about.clone(),
            params: self.params.clone(),
            path: self.path.clone(),
            has_run: self.has_run,
            has_tick: self.has_tick,
        }
    }
}
