//! Registers the command table into a Rhai engine. A command with positional parameters
//! `P1..Pn` becomes functions of every arity its required parameters allow, plus one taking a
//! trailing map of flags: `put("k", "v")`, `put("k", "v", #{via: "n2"})`. A command of two
//! words is `chat_send(…)` and also, in a namespace named by its first word, `chat::send(…)`.
//! A flag named like a Rhai keyword can be written unquoted: `dashboard(#{for: "15s"})`
//! (`keys.rs`).
//! `view()` (the live model's snapshot) is registered here too.

use super::convert::{to_dynamic, to_word};
use crate::shell::commands;
use crate::shell::spec::{Kind, Spec};
use crate::shell::{Ctx, Interrupt};
use rhai::{Dynamic, Engine, EvalAltResult, Map, Module, Scope};
use std::any::TypeId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// An engine with operation limits and every command registered against `ctx`; the script
/// stops when `ctx.interrupt` fires.
pub fn build_engine(ctx: Arc<Ctx>, handle: tokio::runtime::Handle) -> Engine {
    let interrupted = ctx.interrupt.clone();
    let mut engine = Engine::new();
    engine
        .set_max_operations(200_000_000)
        .set_max_call_levels(64)
        .set_max_expr_depths(128, 64)
        .set_max_string_size(16 << 20)
        .set_max_array_size(1 << 20)
        .set_max_map_size(1 << 20);
    let flag = interrupted.clone();
    engine.on_progress(move |_| flag.fired().then(|| Dynamic::from("interrupted")));
    for spec in commands::all() {
        register(&mut engine, spec, ctx.clone(), handle.clone(), interrupted.clone());
    }
    register_namespaces(&mut engine);
    super::keys::keywords_as_map_keys(&mut engine);
    super::view::register(&mut engine, ctx, handle);
    engine
}

/// `chat::send(a, b)` calls `chat_send(a, b)`: each namespace is a small Rhai module of wrappers,
/// one per arity, so overloads and flag maps resolve exactly as for the plain names.
fn register_namespaces(engine: &mut Engine) {
    let mut groups: BTreeMap<&str, String> = BTreeMap::new();
    for spec in commands::all() {
        let Some((group, short)) = spec.name.split_once(' ') else { continue };
        let total = spec.positionals().count();
        let required = spec.positionals().filter(|p| p.kind == Kind::Pos).count();
        let with_flags = spec.flags().next().is_some() as usize;
        let arities: BTreeSet<usize> = (required..=total + with_flags).collect();
        let src = groups.entry(group).or_default();
        for n in arities {
            let args = (0..n).map(|i| format!("a{i}")).collect::<Vec<_>>().join(", ");
            let full = spec.name.replace(' ', "_");
            src.push_str(&format!("fn {short}({args}) {{ {full}({args}) }}\n"));
        }
    }
    for (group, src) in groups {
        let module = engine
            .compile(&src)
            .map_err(|e| e.to_string())
            .and_then(|ast| Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(|e| e.to_string()));
        match module {
            Ok(m) => {
                engine.register_static_module(group, m.into());
            }
            Err(e) => tracing::warn!(%group, %e, "Rhai namespace not registered"),
        }
    }
}

/// Runs a command until it finishes or Ctrl-C is pressed, whichever comes first.
async fn interruptible<T>(
    run: impl std::future::Future<Output = crate::error::Result<T>>,
    stop: &Interrupt,
) -> crate::error::Result<T> {
    tokio::select! {
        r = run => r,
        _ = stop.wait() => Err(crate::error::Error::new(crate::error::ErrorKind::Script, "interrupted")),
    }
}

fn register(
    engine: &mut Engine,
    spec: &'static Spec,
    ctx: Arc<Ctx>,
    handle: tokio::runtime::Handle,
    interrupted: Interrupt,
) {
    let name = spec.name.replace(' ', "_");
    let total = spec.positionals().count();
    let required = spec.positionals().filter(|p| p.kind == Kind::Pos).count();
    for arity in required..=total {
        for with_flags in [false, true] {
            // A trailing map carries flags; Rhai prefers the `Map` overload to a `Dynamic` one,
            // so `events(#{last: 5})` binds flags even though `events(x)` also exists.
            if with_flags && spec.flags().next().is_none() {
                continue;
            }
            let mut types = vec![TypeId::of::<Dynamic>(); arity];
            if with_flags {
                types.push(TypeId::of::<Map>());
            }
            let (ctx, handle, stop) = (ctx.clone(), handle.clone(), interrupted.clone());
            engine.register_raw_fn(&name, types, move |_, args| {
                let mut words: Vec<String> = args[..arity].iter().map(|a| to_word(a)).collect();
                if with_flags {
                    flag_words(spec, args[arity].clone_cast::<Map>(), &mut words);
                }
                call(spec, &ctx, &handle, &stop, &words)
            });
        }
    }
    // `load(#{op: "put", count: 1000})`: one map naming the positionals too, so a call reads
    // as a set of options. Without this overload the map would bind to `op` as a word.
    if required > 0 {
        engine.register_raw_fn(&name, [TypeId::of::<Map>()], move |_, args| {
            let mut map = args[0].clone_cast::<Map>();
            let mut words = Vec::new();
            for p in spec.positionals() {
                match map.remove(p.name) {
                    Some(v) => words.push(to_word(&v)),
                    None => break,
                }
            }
            flag_words(spec, map, &mut words);
            call(spec, &ctx, &handle, &interrupted, &words)
        });
    }
}

/// Flags from a Rhai map: `#{via: "n2", stale: true}`. `value_size` names `--value-size`, since
/// a dash is not allowed in an unquoted map key.
fn flag_words(spec: &Spec, flags: Map, words: &mut Vec<String>) {
    for (k, v) in flags {
        let name = match spec.flags().find(|p| p.name == k.as_str() || p.name == k.replace('_', "-")) {
            Some(p) => p.name.to_string(),
            None => k.to_string(),
        };
        if v.as_bool() == Ok(true) {
            words.push(format!("--{name}"));
        } else if v.as_bool() != Ok(false) {
            words.push(format!("--{name}={}", to_word(&v)));
        }
    }
}

fn call(
    spec: &'static Spec,
    ctx: &Ctx,
    handle: &tokio::runtime::Handle,
    stop: &Interrupt,
    words: &[String],
) -> Result<Dynamic, Box<EvalAltResult>> {
    let fail =
        |e: crate::error::Error| Box::new(EvalAltResult::ErrorRuntime(e.to_string().into(), rhai::Position::NONE));
    let out =
        spec.parse(words).and_then(|a| handle.block_on(interruptible((spec.run)(ctx, &a), stop))).map_err(fail)?;
    // A run whose results break a threshold fails the script as any failed command does; a
    // "no" to a question (`verify`) is data the script checks itself.
    if let Some(e) = out.failure.as_ref().filter(|_| !out.verdict) {
        return Err(fail(e.clone()));
    }
    Ok(to_dynamic(&out.rhai_value()))
}
