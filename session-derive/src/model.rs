//! A small model of the derive input, built and checked in one pass.
//!
//! [`Model::from_input`] always returns a model, even when it records
//! errors: the model then holds the best guess for every broken part (the
//! field's own name for a bad `rename`, `Default` for a bad `default`, no
//! second accessor for a colliding name), so that the expansion can still
//! emit a complete impl and user code sees no follow-on errors.

use std::collections::HashMap;

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    Attribute, Data, DeriveInput, ExprPath, Fields, GenericParam, Generics, Ident, Path, Visibility,
};

use crate::attr;
use crate::ctxt::{Errors, join_and};

/// The longest namespace or stored name, in bytes.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// The namespace prefix reserved for the runtime's own records.
pub(crate) const RESERVED_NAMESPACE_PREFIX: &str = "__";

/// The checked input of the derive.
pub(crate) struct Model<'a> {
    /// The state type.
    pub(crate) ident: &'a Ident,
    /// The state type's visibility; the companion type gets the same.
    pub(crate) vis: &'a Visibility,
    /// The state type's generics. The derive rejects them; they are kept
    /// so that the error stub impl still matches the type.
    pub(crate) generics: &'a Generics,
    /// The path of the runtime crate.
    pub(crate) krate: Path,
    /// The namespace.
    pub(crate) namespace: String,
    /// Every field, stored and skipped, in declaration order; `None` when
    /// the input is not a struct with named fields.
    pub(crate) fields: Option<Vec<Field<'a>>>,
    /// The `#[session(index)]` field, if any.
    pub(crate) index: Option<IndexField>,
}

/// The `#[session(index)]` field.
pub(crate) struct IndexField {
    /// Its position among the stored fields.
    pub(crate) stored_index: usize,
    /// The type sessions are looked up by: the field's type, or `K` for
    /// `Option<K>`.
    pub(crate) key_ty: TokenStream,
}

/// One named field.
pub(crate) struct Field<'a> {
    /// The field's name, raw (`r#type`) if written so.
    pub(crate) ident: &'a Ident,
    /// The field's visibility; its accessors get the same.
    pub(crate) vis: &'a Visibility,
    /// The field's type, with `Self` replaced by the state type's name so
    /// it can be used outside the struct.
    pub(crate) ty: TokenStream,
    /// The span of the field's type, for the checks on it.
    pub(crate) ty_span: Span,
    /// Where the field's default comes from.
    pub(crate) default: DefaultExpr,
    /// The field's doc comments, repeated on its reader.
    pub(crate) docs: Vec<&'a Attribute>,
    /// `Some` for a stored field, `None` for a `skip`ped one.
    pub(crate) stored: Option<Stored>,
}

/// Where a field's default comes from.
pub(crate) enum DefaultExpr {
    /// `Default::default()`.
    Trait,
    /// `default = "path"`: `path()`.
    Path(ExprPath),
    /// A malformed `default = ...`, already reported: no check is emitted,
    /// so that no second error follows.
    Broken,
}

/// What a stored field adds.
pub(crate) struct Stored {
    /// Position among the stored fields: the index into `FIELDS`.
    pub(crate) index: usize,
    /// The stored name (after `rename`).
    pub(crate) name: String,
    /// Which of the four accessors to generate (`false` for one whose name
    /// collides with an earlier one; the collision is reported).
    pub(crate) accessors: [bool; 4],
}

/// The four accessors of a stored field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Accessor {
    /// `f()`.
    Reader,
    /// `set_f()`.
    Setter,
    /// `f_mut()`.
    Mutable,
    /// `take_f()`.
    Take,
}

impl Accessor {
    /// All four, in the order of [`Stored::accessors`].
    pub(crate) const ALL: [Accessor; 4] = [Self::Reader, Self::Setter, Self::Mutable, Self::Take];

    /// The method name this accessor gets for a field named `field`
    /// (without `r#`).
    pub(crate) fn method_name(self, field: &str) -> String {
        match self {
            Self::Reader => field.to_owned(),
            Self::Setter => format!("set_{field}"),
            Self::Mutable => format!("{field}_mut"),
            Self::Take => format!("take_{field}"),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Reader => "reader",
            Self::Setter => "setter",
            Self::Mutable => "`_mut` accessor",
            Self::Take => "`take_` accessor",
        }
    }
}

/// Which kind of name is checked, for messages.
#[derive(Clone, Copy)]
enum NameKind {
    Namespace,
    Stored,
}

impl<'a> Model<'a> {
    /// Reads and checks the input. Every problem is recorded in `errors`;
    /// the returned model is usable either way.
    pub(crate) fn from_input(input: &'a DeriveInput, errors: &mut Errors) -> Self {
        let fields = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => Some(named),
                Fields::Unnamed(unnamed) => {
                    errors.spanned(
                        unnamed,
                        "`SessionState` needs a struct with named fields: each field is stored under its name. Name the fields: `struct State { a: A, b: B }`",
                    );
                    None
                }
                Fields::Unit => {
                    errors.at(
                        input.ident.span(),
                        format!(
                            "`SessionState` needs a struct with named fields, and `{}` has none: add the fields to store, like `struct {} {{ visits: u64 }}`",
                            input.ident, input.ident
                        ),
                    );
                    None
                }
            },
            Data::Enum(data) => {
                errors.at(
                    data.enum_token.span,
                    "`SessionState` can only be derived for a struct with named fields, not for an enum: store the enum in a field of a struct, like `struct State { value: MyEnum }`",
                );
                None
            }
            Data::Union(data) => {
                errors.at(
                    data.union_token.span,
                    "`SessionState` can only be derived for a struct with named fields, not for a union: use a struct with one field per value to store",
                );
                None
            }
        };

        check_generics(&input.generics, errors);

        let container = attr::container(&input.attrs, errors);
        let krate = container
            .krate
            .map_or_else(|| syn::parse_quote!(::typed_sessions), |keyed| keyed.value);

        let namespace = match &container.namespace {
            Some(keyed) => {
                let value = keyed.value.value();
                check_name(
                    &value,
                    NameKind::Namespace,
                    keyed.value.span(),
                    None,
                    errors,
                );
                value
            }
            None => {
                let value = input.ident.unraw().to_string();
                check_name(
                    &value,
                    NameKind::Namespace,
                    input.ident.span(),
                    Some(&input.ident),
                    errors,
                );
                value
            }
        };

        let mut index_field: Option<(IndexField, &Ident)> = None;
        let fields = fields.map(|named| {
            let self_ty = input.ident.to_token_stream();
            let mut fields = Vec::with_capacity(named.named.len());
            let mut stored_names: HashMap<String, &Ident> = HashMap::new();
            let mut methods: HashMap<String, (&Ident, Accessor)> = HashMap::new();
            let mut index = 0;
            for field in &named.named {
                let Some(ident) = field.ident.as_ref() else {
                    continue;
                };
                let attrs = attr::field(&field.attrs, errors);
                let default = match attrs.default {
                    Some(keyed) => DefaultExpr::Path(keyed.value),
                    None if attrs.default_broken => DefaultExpr::Broken,
                    None => DefaultExpr::Trait,
                };
                let stored = match attrs.skip {
                    Some(_) => {
                        if let Some(span) = attrs.index {
                            errors.at(
                                span,
                                format!(
                                    "`index` needs a stored field, and `{}` is skipped: an index finds sessions by a stored value. Remove `skip`, or put `index` on a stored field",
                                    ident.unraw()
                                ),
                            );
                        }
                        if let Some(rename) = &attrs.rename {
                            errors.at(
                                rename.key,
                                format!(
                                    "`rename` has no effect on a skipped field: `{}` is never stored, so it has no stored name. Remove `rename`, or remove `skip` to store the field",
                                    ident.unraw()
                                ),
                            );
                        }
                        None
                    }
                    None => {
                        let plain = ident.unraw().to_string();
                        let (name, span, renamed) = match &attrs.rename {
                            Some(keyed) => (keyed.value.value(), keyed.value.span(), None),
                            None => (plain.clone(), ident.span(), Some(ident)),
                        };
                        check_name(&name, NameKind::Stored, span, renamed, errors);
                        if let Some(first) = stored_names.get(&name) {
                            errors.at(
                                span,
                                format!(
                                    "two fields are stored as `{name}`: `{}` and `{}`; give one of them another name with `#[session(rename = \"...\")]`",
                                    first.unraw(),
                                    ident.unraw()
                                ),
                            );
                        } else {
                            stored_names.insert(name.clone(), ident);
                        }
                        let mut accessors = [true; 4];
                        let mut clashes = Vec::new();
                        let mut clashing_fields: Vec<&Ident> = Vec::new();
                        for (slot, accessor) in accessors.iter_mut().zip(Accessor::ALL) {
                            let method = accessor.method_name(&plain);
                            if let Some((other, other_accessor)) = methods.get(&method) {
                                *slot = false;
                                if !clashing_fields.contains(other) {
                                    clashing_fields.push(other);
                                }
                                clashes.push(format!(
                                    "`{method}()` is also the {} of `{}`",
                                    other_accessor.describe(),
                                    other.unraw()
                                ));
                            } else {
                                methods.insert(method, (ident, accessor));
                            }
                        }
                        if !clashes.is_empty() {
                            errors.at(
                                ident.span(),
                                format!(
                                    "the accessors of field `{plain}` clash with those of {}: {}. Rename one of the fields in Rust: `#[session(rename = \"...\")]` changes only the stored name, not the accessor names",
                                    if clashing_fields.len() == 1 {
                                        "another field"
                                    } else {
                                        "other fields"
                                    },
                                    join_and(&clashes)
                                ),
                            );
                        }
                        if let Some(span) = attrs.index {
                            match &index_field {
                                Some((_, first)) => errors.at(
                                    span,
                                    format!(
                                        "a namespace has at most one index field, and `{}` is already one: remove `index` from `{}` or from `{}`, or move one of them to a state type of its own",
                                        first.unraw(),
                                        ident.unraw(),
                                        first.unraw()
                                    ),
                                ),
                                None => {
                                    let ty = replace_self(field.ty.to_token_stream(), &self_ty);
                                    index_field = Some((
                                        IndexField {
                                            stored_index: index,
                                            key_ty: option_inner(&field.ty)
                                                .map_or(ty, |inner| replace_self(inner.to_token_stream(), &self_ty)),
                                        },
                                        ident,
                                    ));
                                }
                            }
                        }
                        let stored = Stored {
                            index,
                            name,
                            accessors,
                        };
                        index += 1;
                        Some(stored)
                    }
                };
                fields.push(Field {
                    ident,
                    vis: &field.vis,
                    ty: replace_self(field.ty.to_token_stream(), &self_ty),
                    ty_span: field.ty.span(),
                    default,
                    docs: field.attrs.iter().filter(|a| a.path().is_ident("doc")).collect(),
                    stored,
                });
            }
            fields
        });

        Model {
            ident: &input.ident,
            vis: &input.vis,
            generics: &input.generics,
            krate,
            namespace,
            fields,
            index: index_field.map(|(index, _)| index),
        }
    }

    /// The stored fields, in `FIELDS` order.
    pub(crate) fn stored(&self) -> impl Iterator<Item = (&Field<'a>, &Stored)> {
        self.fields
            .iter()
            .flatten()
            .filter_map(|field| field.stored.as_ref().map(|stored| (field, stored)))
    }
}

/// `K` for a type written `Option<K>` (any path ending in `Option`).
fn option_inner(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        [syn::GenericArgument::Type(inner)] => Some(inner),
        _ => None,
    }
}

/// One error per generic parameter.
fn check_generics(generics: &Generics, errors: &mut Errors) {
    for param in &generics.params {
        match param {
            GenericParam::Lifetime(param) => errors.spanned(
                param,
                format!(
                    "session state cannot have a lifetime parameter (`{}`): it is loaded from the store and must own its data. Use owned types such as `String` instead of `&'a str`",
                    param.lifetime
                ),
            ),
            GenericParam::Type(param) => errors.spanned(
                param,
                format!(
                    "session state cannot be generic over `{}`: each state type has one namespace and one fixed list of fields. Use concrete field types, or one state type per use",
                    param.ident
                ),
            ),
            GenericParam::Const(param) => errors.spanned(
                param,
                format!(
                    "session state cannot have a const parameter (`{}`): each state type has one namespace and one fixed list of fields. Use a concrete value",
                    param.ident
                ),
            ),
        }
    }
}

/// Whether `c` may appear in a namespace or stored name.
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Checks a namespace or stored name against the allowed set. `from_ident`
/// is the Rust name the value was taken from, when it was not written as a
/// string (the message then says how to give one).
fn check_name(
    value: &str,
    kind: NameKind,
    span: Span,
    from_ident: Option<&Ident>,
    errors: &mut Errors,
) {
    const CHARSET: &str = "names may only hold ASCII letters, digits, `_` and `-` (stores build keys as `namespace.field`)";
    let problem = if value.is_empty() {
        Some(("is empty".to_owned(), CHARSET.to_owned()))
    } else if let Some(bad) = value.chars().find(|c| !is_name_char(*c)) {
        Some((format!("contains {bad:?}"), CHARSET.to_owned()))
    } else if value.len() > MAX_NAME_LEN {
        Some((
            format!("is {} bytes long", value.len()),
            format!("names may be at most {MAX_NAME_LEN} bytes long"),
        ))
    } else if matches!(kind, NameKind::Namespace) && value.starts_with(RESERVED_NAMESPACE_PREFIX) {
        Some((
            format!("starts with `{RESERVED_NAMESPACE_PREFIX}`"),
            "namespaces starting with `__` are reserved for typed-sessions' own records".to_owned(),
        ))
    } else {
        None
    };
    let Some((problem, rule)) = problem else {
        return;
    };
    let message = match (kind, from_ident) {
        (NameKind::Namespace, None) => format!("the namespace {value:?} {problem}: {rule}"),
        (NameKind::Namespace, Some(ident)) => format!(
            "the namespace defaults to the struct's name, {value:?}, which {problem}: {rule}. Give `{}` a namespace with `#[session(namespace = \"...\")]`",
            ident.unraw()
        ),
        (NameKind::Stored, None) => format!("the stored name {value:?} {problem}: {rule}"),
        (NameKind::Stored, Some(ident)) => format!(
            "field `{}` is stored under its own name, which {problem}: {rule}. Give it a stored name with `#[session(rename = \"...\")]`",
            ident.unraw()
        ),
    };
    errors.at(span, message);
}

/// Replaces every `Self` in `tokens` with `with`: the field types are used
/// in the companion's impl, where `Self` means the companion.
fn replace_self(tokens: TokenStream, with: &TokenStream) -> TokenStream {
    tokens
        .into_iter()
        .flat_map(|tree| match tree {
            TokenTree::Ident(ident) if ident == "Self" => respan(with.clone(), ident.span()),
            TokenTree::Group(group) => {
                let mut replaced =
                    Group::new(group.delimiter(), replace_self(group.stream(), with));
                replaced.set_span(group.span());
                TokenStream::from(TokenTree::Group(replaced))
            }
            other => TokenStream::from(other),
        })
        .collect()
}

/// `tokens` with every top-level token at `span`.
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            tree.set_span(span);
            tree
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn model_of(input: &DeriveInput) -> (Model<'_>, Vec<String>) {
        let mut errors = Errors::default();
        let model = Model::from_input(input, &mut errors);
        let messages = errors
            .into_error()
            .map(|error| error.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        (model, messages)
    }

    fn stored_names(model: &Model<'_>) -> Vec<String> {
        model
            .stored()
            .map(|(_, stored)| stored.name.clone())
            .collect()
    }

    #[test]
    fn namespace_and_stored_names() {
        let input: DeriveInput = parse_quote! {
            #[session(namespace = "cart")]
            pub struct Cart {
                pub items: Vec<Item>,
                #[session(rename = "uid")]
                pub user_id: Option<u64>,
                #[session(default = "default_theme")]
                theme: String,
                #[session(skip)]
                scratch: u32,
                r#type: u8,
            }
        };
        let (model, errors) = model_of(&input);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(model.namespace, "cart");
        assert_eq!(stored_names(&model), ["items", "uid", "theme", "type"]);
        let indices: Vec<usize> = model.stored().map(|(_, stored)| stored.index).collect();
        assert_eq!(indices, [0, 1, 2, 3]);
    }

    #[test]
    fn namespace_defaults_to_the_struct_name() {
        let input: DeriveInput = parse_quote! {
            struct r#Counter { visits: u64 }
        };
        let (model, errors) = model_of(&input);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(model.namespace, "Counter");
    }

    #[test]
    fn self_in_a_field_type_is_replaced() {
        let input: DeriveInput = parse_quote! {
            struct Node { next: Option<Box<Self>> }
        };
        let (model, _) = model_of(&input);
        let fields = model.fields.as_ref().expect("named fields");
        assert_eq!(fields[0].ty.to_string(), "Option < Box < Node > >");
    }

    #[test]
    fn every_error_is_reported() {
        let input: DeriveInput = parse_quote! {
            #[session(namespace = "a.b", colour = "red")]
            struct S<'a, T> {
                x: &'a T,
                set_x: u8,
                #[session(rename = "x")]
                y: u8,
                #[session(skip, rename = "z")]
                z: u8,
                #[session(rename = 3, default = "not a path", skip = "yes")]
                w: u8,
            }
        };
        let (model, errors) = model_of(&input);
        assert_eq!(errors.len(), 10, "{errors:#?}");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("lifetime parameter (`'a`)"))
        );
        assert!(errors.iter().any(|e| e.contains("generic over `T`")));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("contains '.': names may only hold"))
        );
        assert!(errors.iter().any(|e| e.contains("`colour`")));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("`set_x()` is also the setter of `x`"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("two fields are stored as `x`"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("`rename` has no effect on a skipped field"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("`rename` takes a string literal"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("\"not a path\" is not a path"))
        );
        // `skip = "yes"` is reported and `skip` still applies.
        let w = model
            .fields
            .as_ref()
            .and_then(|f| f.last())
            .expect("field w");
        assert!(w.stored.is_none());
    }

    #[test]
    fn skip_with_a_value_is_an_error() {
        let input: DeriveInput = parse_quote! {
            struct S { #[session(skip = "yes")] a: u8 }
        };
        let (_, errors) = model_of(&input);
        assert_eq!(errors, ["`skip` takes no value: write `#[session(skip)]`"]);
    }

    #[test]
    fn names_are_checked() {
        for (name, ok) in [
            ("cart", true),
            ("a-b_C9", true),
            ("", false),
            ("a.b", false),
            ("a b", false),
            ("a:b", false),
            ("a$b", false),
            ("größe", false),
            ("__runtime", false),
            (&"x".repeat(64), true),
            (&"x".repeat(65), false),
        ] {
            let mut errors = Errors::default();
            check_name(
                name,
                NameKind::Namespace,
                Span::call_site(),
                None,
                &mut errors,
            );
            assert_eq!(errors.is_empty(), ok, "namespace {name:?}");
        }
        let mut errors = Errors::default();
        check_name(
            "__x",
            NameKind::Stored,
            Span::call_site(),
            None,
            &mut errors,
        );
        assert!(
            errors.is_empty(),
            "the reserved prefix applies to namespaces only"
        );
    }
}
