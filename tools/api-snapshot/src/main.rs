//! Prints the public API of a crate, one item per line, sorted, from the
//! JSON rustdoc writes with `--output-format json`: the snapshot
//! `scripts/test.sh` compares with `session/public-api.txt`, so every change
//! of the public surface shows up in review.
//!
//! ```sh
//! RUSTC_BOOTSTRAP=1 cargo rustdoc -p typed-sessions --all-features --lib -- -Z unstable-options --output-format json
//! cargo run -p api-snapshot -- target/doc/typed_sessions.json
//! ```
//!
//! It reads the JSON untyped (rustdoc's format changes between releases)
//! and renders what a user can name: modules, re-exports, types with their
//! public fields and variants, functions and methods with signatures, trait
//! items, and the traits each public type implements (auto and blanket
//! impls left out).

use std::collections::BTreeSet;
use std::process::ExitCode;

use serde_json::{Map, Value};

struct Api<'a> {
    index: &'a Map<String, Value>,
    lines: BTreeSet<String>,
    /// Items already rendered under some path (an item re-exported twice is
    /// listed under each path, but walked once per path).
    seen: BTreeSet<(String, String)>,
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: api-snapshot <crate>.json");
        return ExitCode::FAILURE;
    };
    let json: Value = match std::fs::read(&path).map(|bytes| serde_json::from_slice(&bytes)) {
        Ok(Ok(json)) => json,
        Ok(Err(error)) => {
            eprintln!("{path}: not JSON: {error}");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("{path}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (Some(index), Some(root)) = (json["index"].as_object(), json["root"].as_u64()) else {
        eprintln!("{path}: no rustdoc index");
        return ExitCode::FAILURE;
    };
    let mut api = Api {
        index,
        lines: BTreeSet::new(),
        seen: BTreeSet::new(),
    };
    let root = root.to_string();
    let name = index[&root]["name"].as_str().unwrap_or("crate").to_owned();
    api.item(&root, &name);
    for line in &api.lines {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

impl Api<'_> {
    fn get(&self, id: &Value) -> Option<&Value> {
        self.index.get(&id_key(id))
    }

    fn is_public(item: &Value) -> bool {
        item["visibility"] == "public"
    }

    /// Renders item `id` as named by `path`, and what it contains.
    fn item(&mut self, id: &str, path: &str) {
        if !self.seen.insert((id.to_owned(), path.to_owned())) {
            return;
        }
        let Some(item) = self.index.get(id) else {
            return;
        };
        let Some((kind, inner)) = item["inner"]
            .as_object()
            .and_then(|inner| inner.iter().next())
        else {
            return;
        };
        match kind.as_str() {
            "module" => {
                self.lines.insert(format!("pub mod {path}"));
                for child in inner["items"].as_array().into_iter().flatten() {
                    self.child(child, path);
                }
            }
            "struct" => {
                self.lines.insert(format!(
                    "pub struct {path}{}",
                    self.generics(&inner["generics"])
                ));
                let fields = match &inner["kind"] {
                    Value::Object(kind) if kind.contains_key("plain") => kind["plain"]["fields"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                    Value::Object(kind) if kind.contains_key("tuple") => kind["tuple"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|field| !field.is_null())
                        .collect(),
                    _ => Vec::new(),
                };
                self.fields(&fields, path);
                self.impls(&inner["impls"], path);
            }
            "enum" => {
                self.lines.insert(format!(
                    "pub enum {path}{}",
                    self.generics(&inner["generics"])
                ));
                for variant in inner["variants"].as_array().into_iter().flatten() {
                    self.variant(variant, path);
                }
                self.impls(&inner["impls"], path);
            }
            "union" => {
                self.lines.insert(format!("pub union {path}"));
                self.impls(&inner["impls"], path);
            }
            "function" => {
                self.lines
                    .insert(format!("pub {}", self.function(path, inner)));
            }
            "trait" => {
                let bounds = self.bounds(&inner["bounds"]);
                let bounds = if bounds.is_empty() {
                    String::new()
                } else {
                    format!(": {bounds}")
                };
                self.lines.insert(format!(
                    "pub trait {path}{}{bounds}",
                    self.generics(&inner["generics"])
                ));
                for member in inner["items"].as_array().into_iter().flatten() {
                    self.member(member, path);
                }
            }
            "constant" => {
                let ty = self.ty(&inner["type"]);
                self.lines.insert(format!("pub const {path}: {ty}"));
            }
            "static" => {
                let ty = self.ty(&inner["type"]);
                self.lines.insert(format!("pub static {path}: {ty}"));
            }
            "type_alias" => {
                let ty = self.ty(&inner["type"]);
                self.lines.insert(format!("pub type {path} = {ty}"));
            }
            "macro" => {
                self.lines.insert(format!("macro {path}!"));
            }
            "proc_macro" => {
                self.lines.insert(format!("proc macro {path}"));
            }
            _ => {}
        }
    }

    /// A public item inside module `path`: listed, and walked when local.
    fn child(&mut self, child: &Value, path: &str) {
        let Some(item) = self.get(child).cloned() else {
            return;
        };
        if !Self::is_public(&item) {
            return;
        }
        if let Some(re_export) = item["inner"].get("use") {
            let source = re_export["source"].as_str().unwrap_or("?");
            let name = re_export["name"].as_str().unwrap_or("?");
            if re_export["is_glob"] == true {
                self.lines.insert(format!("pub use {path}::{source}::*"));
                if let Some(target) = self.get(&re_export["id"]).cloned() {
                    for inner in target["inner"]["module"]["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                    {
                        self.child(inner, path);
                    }
                }
                return;
            }
            let target = re_export["id"].clone();
            match self.get(&target) {
                // A local item: listed under the path users name it by.
                Some(_) => self.item(&id_key(&target), &format!("{path}::{name}")),
                // Another crate's item (or the crate itself): the re-export.
                None => {
                    self.lines
                        .insert(format!("pub use {path}::{name} = {source}"));
                }
            }
            return;
        }
        let name = item["name"].as_str().unwrap_or("?");
        self.item(&id_key(child), &format!("{path}::{name}"));
    }

    fn fields(&mut self, fields: &[Value], path: &str) {
        for (position, field) in fields.iter().enumerate() {
            let Some(field) = self.get(field) else {
                continue;
            };
            if !Self::is_public(field) {
                continue;
            }
            let name = match field["name"].as_str() {
                Some(name) if name.parse::<usize>().is_err() => name.to_owned(),
                _ => position.to_string(),
            };
            let ty = self.ty(&field["inner"]["struct_field"]);
            self.lines.insert(format!("pub field {path}::{name}: {ty}"));
        }
    }

    fn variant(&mut self, variant: &Value, path: &str) {
        let Some(variant) = self.get(variant).cloned() else {
            return;
        };
        let name = variant["name"].as_str().unwrap_or("?");
        let kind = &variant["inner"]["variant"]["kind"];
        let shape = if let Some(fields) = kind.get("tuple").and_then(Value::as_array) {
            let types: Vec<String> = fields
                .iter()
                .map(|field| match self.get(field) {
                    Some(field) => self.ty(&field["inner"]["struct_field"]),
                    None => "_".to_owned(),
                })
                .collect();
            format!("({})", types.join(", "))
        } else if let Some(fields) = kind
            .get("struct")
            .and_then(|kind| kind["fields"].as_array())
        {
            let named: Vec<String> = fields
                .iter()
                .filter_map(|field| self.get(field))
                .map(|field| {
                    format!(
                        "{}: {}",
                        field["name"].as_str().unwrap_or("?"),
                        self.ty(&field["inner"]["struct_field"])
                    )
                })
                .collect();
            format!(" {{ {} }}", named.join(", "))
        } else {
            String::new()
        };
        self.lines
            .insert(format!("pub variant {path}::{name}{shape}"));
    }

    /// An associated item of a trait or an inherent impl.
    fn member(&mut self, member: &Value, path: &str) {
        let Some(item) = self.get(member).cloned() else {
            return;
        };
        let name = item["name"].as_str().unwrap_or("?");
        let Some((kind, inner)) = item["inner"]
            .as_object()
            .and_then(|inner| inner.iter().next())
        else {
            return;
        };
        let line = match kind.as_str() {
            "function" => self.function(&format!("{path}::{name}"), inner),
            "assoc_type" => {
                let bounds = self.bounds(&inner["bounds"]);
                let bounds = if bounds.is_empty() {
                    String::new()
                } else {
                    format!(": {bounds}")
                };
                match inner.get("type").filter(|ty| !ty.is_null()) {
                    Some(ty) => format!("type {path}::{name}{bounds} = {}", self.ty(ty)),
                    None => format!("type {path}::{name}{bounds}"),
                }
            }
            "assoc_const" => format!("const {path}::{name}: {}", self.ty(&inner["type"])),
            _ => return,
        };
        self.lines.insert(format!("pub {line}"));
    }

    /// The inherent methods and the trait impls of type `path`.
    fn impls(&mut self, impls: &Value, path: &str) {
        for id in impls.as_array().into_iter().flatten() {
            let Some(imp) = self.get(id).map(|item| item["inner"]["impl"].clone()) else {
                continue;
            };
            if imp["is_synthetic"] == true || !imp["blanket_impl"].is_null() {
                continue;
            }
            let generics = self.generics(&imp["generics"]);
            let for_type = self.ty(&imp["for"]);
            match imp.get("trait").filter(|t| !t.is_null()) {
                Some(trait_path) => {
                    let negative = if imp["is_negative"] == true { "!" } else { "" };
                    self.lines.insert(format!(
                        "impl{generics} {negative}{} for {for_type}",
                        self.path(trait_path)
                    ));
                }
                None => {
                    for member in imp["items"].as_array().into_iter().flatten() {
                        if self.get(member).is_some_and(Self::is_public) {
                            self.member(member, path);
                        }
                    }
                }
            }
        }
    }

    fn function(&self, path: &str, inner: &Value) -> String {
        let header = &inner["header"];
        let mut qualifiers = String::new();
        for (flag, word) in [
            ("is_const", "const "),
            ("is_async", "async "),
            ("is_unsafe", "unsafe "),
        ] {
            if header[flag] == true {
                qualifiers.push_str(word);
            }
        }
        let sig = &inner["sig"];
        let inputs: Vec<String> = sig["inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|input| {
                let name = input[0].as_str().unwrap_or("_");
                let ty = self.ty(&input[1]);
                match (name, ty.as_str()) {
                    ("self", "Self") => "self".to_owned(),
                    ("self", "&Self") => "&self".to_owned(),
                    ("self", "&mut Self") => "&mut self".to_owned(),
                    _ => format!("{name}: {ty}"),
                }
            })
            .collect();
        let output = match sig.get("output").filter(|out| !out.is_null()) {
            Some(out) => format!(" -> {}", self.ty(out)),
            None => String::new(),
        };
        format!(
            "{qualifiers}fn {path}{}({}){output}{}",
            self.generics(&inner["generics"]),
            inputs.join(", "),
            self.where_clause(&inner["generics"])
        )
    }

    /// `<T: Bound, 'a>`, without the `impl Trait` parameters rustdoc adds.
    fn generics(&self, generics: &Value) -> String {
        let params: Vec<String> = generics["params"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|param| {
                let name = param["name"].as_str()?;
                let kind = &param["kind"];
                if let Some(ty) = kind.get("type") {
                    if ty["is_synthetic"] == true {
                        return None;
                    }
                    let bounds = self.bounds(&ty["bounds"]);
                    return Some(if bounds.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{name}: {bounds}")
                    });
                }
                if let Some(constant) = kind.get("const") {
                    return Some(format!("const {name}: {}", self.ty(&constant["type"])));
                }
                Some(name.to_owned())
            })
            .collect();
        if params.is_empty() {
            String::new()
        } else {
            format!("<{}>", params.join(", "))
        }
    }

    fn where_clause(&self, generics: &Value) -> String {
        let predicates: Vec<String> = generics["where_predicates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|predicate| {
                let bound = predicate.get("bound_predicate")?;
                Some(format!(
                    "{}: {}",
                    self.ty(&bound["type"]),
                    self.bounds(&bound["bounds"])
                ))
            })
            .collect();
        if predicates.is_empty() {
            String::new()
        } else {
            format!(" where {}", predicates.join(", "))
        }
    }

    fn bounds(&self, bounds: &Value) -> String {
        let rendered: Vec<String> = bounds
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|bound| {
                if let Some(trait_bound) = bound.get("trait_bound") {
                    let modifier = if trait_bound["modifier"] == "maybe" {
                        "?"
                    } else {
                        ""
                    };
                    return Some(format!("{modifier}{}", self.path(&trait_bound["trait"])));
                }
                bound
                    .get("outlives")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        rendered.join(" + ")
    }

    fn path(&self, path: &Value) -> String {
        let name = path["path"].as_str().unwrap_or("?");
        format!("{name}{}", self.args(&path["args"]))
    }

    fn args(&self, args: &Value) -> String {
        if let Some(angle) = args.get("angle_bracketed") {
            let mut parts: Vec<String> = angle["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|arg| {
                    if let Some(ty) = arg.get("type") {
                        self.ty(ty)
                    } else if let Some(lifetime) = arg.get("lifetime").and_then(Value::as_str) {
                        lifetime.to_owned()
                    } else if let Some(constant) = arg.get("const") {
                        constant["expr"].as_str().unwrap_or("_").to_owned()
                    } else {
                        "_".to_owned()
                    }
                })
                .collect();
            for constraint in angle["constraints"].as_array().into_iter().flatten() {
                let name = constraint["name"].as_str().unwrap_or("?");
                let binding = &constraint["binding"];
                if let Some(ty) = binding.get("equality").and_then(|eq| eq.get("type")) {
                    parts.push(format!("{name} = {}", self.ty(ty)));
                } else if let Some(bounds) = binding.get("constraint") {
                    parts.push(format!("{name}: {}", self.bounds(bounds)));
                }
            }
            if parts.is_empty() {
                String::new()
            } else {
                format!("<{}>", parts.join(", "))
            }
        } else if let Some(paren) = args.get("parenthesized") {
            let inputs: Vec<String> = paren["inputs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|ty| self.ty(ty))
                .collect();
            let output = match paren.get("output").filter(|out| !out.is_null()) {
                Some(out) => format!(" -> {}", self.ty(out)),
                None => String::new(),
            };
            format!("({}){output}", inputs.join(", "))
        } else {
            String::new()
        }
    }

    fn ty(&self, ty: &Value) -> String {
        let Some((kind, inner)) = ty.as_object().and_then(|ty| ty.iter().next()) else {
            return ty.as_str().unwrap_or("_").to_owned();
        };
        match kind.as_str() {
            "resolved_path" => self.path(inner),
            "generic" | "primitive" => inner.as_str().unwrap_or("?").to_owned(),
            "borrowed_ref" => {
                let lifetime = inner["lifetime"]
                    .as_str()
                    .map(|lifetime| format!("{lifetime} "))
                    .unwrap_or_default();
                let mutable = if inner["is_mutable"] == true {
                    "mut "
                } else {
                    ""
                };
                format!("&{lifetime}{mutable}{}", self.ty(&inner["type"]))
            }
            "raw_pointer" => {
                let mutable = if inner["is_mutable"] == true {
                    "mut"
                } else {
                    "const"
                };
                format!("*{mutable} {}", self.ty(&inner["type"]))
            }
            "tuple" => {
                let types: Vec<String> = inner
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|ty| self.ty(ty))
                    .collect();
                if types.len() == 1 {
                    format!("({},)", types[0])
                } else {
                    format!("({})", types.join(", "))
                }
            }
            "slice" => format!("[{}]", self.ty(inner)),
            "array" => format!(
                "[{}; {}]",
                self.ty(&inner["type"]),
                inner["len"].as_str().unwrap_or("_")
            ),
            "impl_trait" => format!("impl {}", self.bounds(inner)),
            "dyn_trait" => {
                let mut traits: Vec<String> = inner["traits"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|poly| self.path(&poly["trait"]))
                    .collect();
                if let Some(lifetime) = inner["lifetime"].as_str() {
                    traits.push(lifetime.to_owned());
                }
                format!("dyn {}", traits.join(" + "))
            }
            "qualified_path" => {
                let self_type = self.ty(&inner["self_type"]);
                let name = inner["name"].as_str().unwrap_or("?");
                match inner
                    .get("trait")
                    .filter(|t| t["path"].as_str().is_some_and(|path| !path.is_empty()))
                {
                    Some(trait_path) => {
                        format!("<{self_type} as {}>::{name}", self.path(trait_path))
                    }
                    None => format!("{self_type}::{name}"),
                }
            }
            "function_pointer" => {
                let sig = &inner["sig"];
                let inputs: Vec<String> = sig["inputs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|input| self.ty(&input[1]))
                    .collect();
                let output = match sig.get("output").filter(|out| !out.is_null()) {
                    Some(out) => format!(" -> {}", self.ty(out)),
                    None => String::new(),
                };
                format!("fn({}){output}", inputs.join(", "))
            }
            "infer" => "_".to_owned(),
            other => format!("<{other}>"),
        }
    }
}

/// The index key of an id (a number in the JSON, a string key in the index).
fn id_key(id: &Value) -> String {
    match id {
        Value::String(id) => id.clone(),
        other => other.to_string(),
    }
}
