//! Parsing of the `#[session(...)]` attributes.
//!
//! Every problem is pushed to an [`Errors`](crate::ctxt::Errors) accumulator and parsing goes on,
//! so one compile reports every malformed key at once. Each error carries the
//! span of the offending token and says what to write instead.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, ExprPath, Lit, LitStr, Path, Token};

use crate::ctxt::{Errors, join_and};

/// A value together with the span of the key that introduced it.
pub(crate) struct Keyed<T> {
    pub(crate) key: Span,
    pub(crate) value: T,
}

/// `#[session(...)]` on the struct.
#[derive(Default)]
pub(crate) struct ContainerAttrs {
    /// `namespace = "..."`.
    pub(crate) namespace: Option<Keyed<LitStr>>,
    /// `crate = "..."`: the path of the typed-sessions crate.
    pub(crate) krate: Option<Keyed<Path>>,
}

/// `#[session(...)]` on a field.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    /// `rename = "..."`.
    pub(crate) rename: Option<Keyed<LitStr>>,
    /// `default = "path"`, already parsed as a path.
    pub(crate) default: Option<Keyed<ExprPath>>,
    /// `default = ...` was given but is malformed (already reported).
    pub(crate) default_broken: bool,
    /// `skip`: the span of the key.
    pub(crate) skip: Option<Span>,
    /// `index`: the span of the key.
    pub(crate) index: Option<Span>,
}

const CONTAINER_KEYS: &[&str] = &["namespace", "crate"];
const FIELD_KEYS: &[&str] = &["rename", "default", "skip", "index"];

/// Parses every `#[session(...)]` attribute of the struct.
pub(crate) fn container(attrs: &[Attribute], errors: &mut Errors) -> ContainerAttrs {
    let mut out = ContainerAttrs::default();
    for attr in session_attrs(attrs, errors) {
        let result = attr.parse_nested_meta(|meta| {
            let key = key_name(&meta.path);
            match key.as_str() {
                "namespace" => {
                    if let Some(lit) = string_value(&meta, "namespace", "namespace = \"cart\"", errors)? {
                        set_once(&mut out.namespace, &meta, lit, errors);
                    }
                }
                "crate" => {
                    if let Some(lit) = string_value(&meta, "crate", "crate = \"::typed_sessions\"", errors)? {
                        match lit.parse::<Path>() {
                            Ok(path) => set_once(&mut out.krate, &meta, path, errors),
                            Err(_) => errors.at(
                                lit.span(),
                                format!(
                                    "`crate` takes the path of the typed-sessions crate, like `crate = \"::typed_sessions\"`; {:?} is not a path",
                                    lit.value()
                                ),
                            ),
                        }
                    }
                }
                _ if FIELD_KEYS.contains(&key.as_str()) => {
                    skip_value(&meta)?;
                    let example = if matches!(key.as_str(), "skip" | "index") { key.clone() } else { format!("{key} = \"...\"") };
                    errors.at(
                        meta.path.span(),
                        format!("`{key}` is a field attribute: put `#[session({example})]` on a field, not on the struct"),
                    );
                }
                _ => {
                    skip_value(&meta)?;
                    errors.at(meta.path.span(), unknown_key(&key, "the struct", CONTAINER_KEYS, FIELD_KEYS));
                }
            }
            Ok(())
        });
        if let Err(error) = result {
            errors.push(error);
        }
    }
    out
}

/// Parses every `#[session(...)]` attribute of one field.
pub(crate) fn field(attrs: &[Attribute], errors: &mut Errors) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for attr in session_attrs(attrs, errors) {
        let result = attr.parse_nested_meta(|meta| {
            let key = key_name(&meta.path);
            match key.as_str() {
                "rename" => {
                    if let Some(lit) = string_value(&meta, "rename", "rename = \"stored_name\"", errors)? {
                        set_once(&mut out.rename, &meta, lit, errors);
                    }
                }
                "default" => {
                    let lit = string_value(&meta, "default", "default = \"path::to::function\"", errors)?;
                    match lit.as_ref().map(parse_default_path) {
                        Some(Ok(path)) => set_once(&mut out.default, &meta, path, errors),
                        Some(Err(error)) => {
                            errors.push(error);
                            out.default_broken = true;
                        }
                        None => out.default_broken = true,
                    }
                }
                "skip" => flag(&meta, "skip", &mut out.skip, errors)?,
                "index" => flag(&meta, "index", &mut out.index, errors)?,
                _ if CONTAINER_KEYS.contains(&key.as_str()) => {
                    skip_value(&meta)?;
                    errors.at(
                        meta.path.span(),
                        format!("`{key}` is a struct attribute: put `#[session({key} = \"...\")]` on the struct, not on a field"),
                    );
                }
                _ => {
                    skip_value(&meta)?;
                    errors.at(meta.path.span(), unknown_key(&key, "a field", FIELD_KEYS, CONTAINER_KEYS));
                }
            }
            Ok(())
        });
        if let Err(error) = result {
            errors.push(error);
        }
    }
    out
}

/// A key without a value, like `skip`: records its span, once.
fn flag(
    meta: &ParseNestedMeta<'_>,
    key: &str,
    slot: &mut Option<Span>,
    errors: &mut Errors,
) -> syn::Result<()> {
    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
        let span = skip_value(meta)?;
        errors.at(
            span,
            format!("`{key}` takes no value: write `#[session({key})]`"),
        );
    }
    if slot.is_some() {
        errors.at(
            meta.path.span(),
            format!("`{key}` is given twice; remove one"),
        );
    } else {
        *slot = Some(meta.path.span());
    }
    Ok(())
}

/// The `#[session ...]` attributes that have the list form; the others are
/// reported.
fn session_attrs<'a>(attrs: &'a [Attribute], errors: &mut Errors) -> Vec<&'a Attribute> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("session"))
        .filter(|attr| match &attr.meta {
            syn::Meta::List(_) => true,
            other => {
                errors.at(other.span(), "expected `#[session(...)]` with a list of keys, like `#[session(rename = \"name\")]`");
                false
            }
        })
        .collect()
}

/// The key as written (`crate` and other keywords included).
fn key_name(path: &Path) -> String {
    match path.get_ident() {
        Some(ident) => ident.to_string(),
        None => quote::ToTokens::to_token_stream(path)
            .to_string()
            .replace(' ', ""),
    }
}

/// Stores the first occurrence of a key; a second one is an error on its key.
fn set_once<T>(
    slot: &mut Option<Keyed<T>>,
    meta: &ParseNestedMeta<'_>,
    value: T,
    errors: &mut Errors,
) {
    if slot.is_some() {
        errors.at(
            meta.path.span(),
            format!("`{}` is given twice; remove one", key_name(&meta.path)),
        );
    } else {
        *slot = Some(Keyed {
            key: meta.path.span(),
            value,
        });
    }
}

/// Parses `= "string"`. A missing or non-string value is recorded as an
/// error and gives `Ok(None)`; `Err` only for tokens that cannot be skipped.
fn string_value(
    meta: &ParseNestedMeta<'_>,
    key: &str,
    example: &str,
    errors: &mut Errors,
) -> syn::Result<Option<LitStr>> {
    if !meta.input.peek(Token![=]) {
        let span = if meta.input.peek(syn::token::Paren) {
            skip_value(meta)?
        } else {
            meta.path.span()
        };
        errors.at(
            span,
            format!("`{key}` needs a string value: write `{example}`"),
        );
        return Ok(None);
    }
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(Some(lit)),
        Expr::Path(path) if path.qself.is_none() => {
            let written = path
                .path
                .segments
                .iter()
                .map(|segment| segment.ident.to_string())
                .collect::<Vec<_>>()
                .join("::");
            errors.at(
                path.span(),
                format!("`{key}` takes a string literal: write `{key} = \"{written}\"`"),
            );
            Ok(None)
        }
        other => {
            errors.at(
                other.span(),
                format!("`{key}` takes a string literal: write `{example}`"),
            );
            Ok(None)
        }
    }
}

/// Consumes `= value` or `(...)` after a key, if present; returns the span
/// of what was consumed (or of the key).
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<Span> {
    if meta.input.peek(Token![=]) {
        let expr: Expr = meta.value()?.parse()?;
        Ok(expr.span())
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        let parens = syn::parenthesized!(content in meta.input);
        let _: proc_macro2::TokenStream = content.parse()?;
        Ok(parens.span.join())
    } else {
        Ok(meta.path.span())
    }
}

/// Parses the string of `default = "..."` as a path to a function.
fn parse_default_path(lit: &LitStr) -> syn::Result<ExprPath> {
    let text = lit.value();
    let trimmed = text.trim();
    let hint = if trimmed.is_empty() {
        "the string is empty".to_owned()
    } else if let Some(path) = trimmed.strip_suffix("()") {
        format!("write the path without `()`: `default = \"{path}\"`")
    } else {
        format!("{text:?} is not a path")
    };
    lit.parse::<ExprPath>().map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!(
                "`default` takes the path of a function returning the field's type, like `default = \"default_theme\"` or `default = \"Theme::light\"`; {hint}"
            ),
        )
    })
}

/// The message for an unknown key, with a suggestion when a known key is
/// close.
fn unknown_key(key: &str, place: &str, here: &[&str], elsewhere: &[&str]) -> String {
    let quoted: Vec<String> = here.iter().map(|k| format!("`{k}`")).collect();
    let accepted = join_and(&quoted);
    let mut message =
        format!("unknown `session` attribute `{key}` on {place}; {place} accepts {accepted}");
    if let Some(close) = here
        .iter()
        .chain(elsewhere)
        .copied()
        .filter(|candidate| edit_distance(key, candidate) <= 2)
        .min_by_key(|candidate| edit_distance(key, candidate))
    {
        message = format!("{message}. Did you mean `{close}`?");
    }
    message
}

/// Levenshtein distance, for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("namespace", "namespace"), 0);
        assert_eq!(edit_distance("namepsace", "namespace"), 2);
        assert_eq!(edit_distance("renam", "rename"), 1);
        assert_eq!(edit_distance("", "skip"), 4);
    }

    #[test]
    fn unknown_key_suggests_a_close_one() {
        let message = unknown_key("renme", "a field", FIELD_KEYS, CONTAINER_KEYS);
        assert!(message.ends_with("Did you mean `rename`?"), "{message}");
        let message = unknown_key("flatten", "a field", FIELD_KEYS, CONTAINER_KEYS);
        assert!(!message.contains("Did you mean"), "{message}");
    }
}
