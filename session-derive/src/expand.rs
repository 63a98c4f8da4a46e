//! Code generation.
//!
//! Everything is emitted inside `const _: () = { ... };`, so the companion
//! type and the helpers cannot be named from outside and cannot collide with
//! anything of the user's. The runtime is named only through
//! `::typed_sessions::__private` (or the path given with `crate = "..."`).
//!
//! The trait requirements on field types are checked in exactly one place
//! per field, spanned on the field's type, through a per-field trait whose
//! `#[diagnostic::on_unimplemented]` message names the field:
//!
//! - stored field `f: F`: `const __TS_CODEC_f: __TsCodec<F> = __ts_codec_f::<F>();`
//!   where `__ts_codec_f<T: __Serialize_f + __Deserialize_f + __SharedField_f>`
//!   builds function pointers to the lazy field's `get`, `get_mut`, `set`,
//!   `take` and its encoder (the three traits add up to
//!   `__private::StoredField`). The accessors go through those pointers, so
//!   a type that is not serde-compatible yields one error per missing trait,
//!   not one per use. Each pointer is a constant, monomorphized for the
//!   field's type: nothing is type-erased;
//! - skipped field `f: F`: `__ts_shared_f::<F>()`, bounded on
//!   `__SharedField_f: Send + Sync + 'static`;
//! - field without `default = "..."`: `fn __ts_default_f() -> F` calls
//!   `__ts_default_via_f::<F>()`, bounded on `__DefaultField_f: Default`;
//!   with `default = "path"` it calls `path()`, spanned on the string, so a
//!   wrong function is reported there.
//!
//! The blanket impls of `__Serialize_f` and `__Deserialize_f` are
//! `#[diagnostic::do_not_recommend]`: rustc then reports the field's own
//! trait (whose message names the field and the serde trait) instead of
//! serde's, and does not list the types that do implement serde's traits (a
//! long list, which changes with the dependencies). `Default`, `Send` and
//! `Sync` keep rustc's own help (`#[derive(Default)]`, which of `Send` or
//! `Sync` is missing), which comes without such a list.
//!
//! The impls of the state and the companion carry `for<'__ts> State: Send +
//! Sync + 'static` (and the same for the companion): a higher-ranked bound
//! is not checked on the impl itself, so a state that is not thread-safe is
//! reported by the per-field checks only, not again by every impl.
//!
//! When the input has errors, the `compile_error!`s come with an impl that
//! still compiles (built from the model's best guesses, or a stub for inputs
//! that are not a plain struct with named fields), so that code using the
//! state type reports no follow-on errors.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::DeriveInput;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use crate::ctxt::Errors;
use crate::model::{Accessor, DefaultExpr, Field, Model, respan};

/// The whole derive: errors (if any) followed by the impl.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let model = Model::from_input(input, &mut errors);
    let body = match &model.fields {
        Some(fields) if model.generics.params.is_empty() => expand(&model, fields),
        _ => stub(&model),
    };
    let errors = errors.into_error().map(|error| error.to_compile_error());
    quote! {
        #errors
        #body
    }
}

/// The names generated for one field.
struct FieldNames {
    default_fn: syn::Ident,
    default_trait: syn::Ident,
    default_via: syn::Ident,
    serialize_trait: syn::Ident,
    deserialize_trait: syn::Ident,
    codec_fn: syn::Ident,
    codec_const: syn::Ident,
    shared_trait: syn::Ident,
    shared_fn: syn::Ident,
}

impl FieldNames {
    fn new(field: &Field<'_>) -> Self {
        let name = field.ident.unraw();
        let span = field.ty_span;
        Self {
            default_fn: format_ident!("__ts_default_{}", name, span = span),
            default_trait: format_ident!("__DefaultField_{}", name, span = span),
            default_via: format_ident!("__ts_default_via_{}", name, span = span),
            serialize_trait: format_ident!("__Serialize_{}", name, span = span),
            deserialize_trait: format_ident!("__Deserialize_{}", name, span = span),
            codec_fn: format_ident!("__ts_codec_{}", name, span = span),
            codec_const: format_ident!("__TS_CODEC_{}", name, span = span),
            shared_trait: format_ident!("__SharedField_{}", name, span = span),
            shared_fn: format_ident!("__ts_shared_{}", name, span = span),
        }
    }
}

/// The full expansion for a struct with named fields and no generics.
fn expand(model: &Model<'_>, fields: &[Field<'_>]) -> TokenStream {
    let krate = &model.krate;
    let private = quote!(#krate::__private);
    let ident = model.ident;
    let vis = model.vis;
    let companion = companion_ident(model);
    let namespace = &model.namespace;
    let str_ty = quote!(::core::primitive::str);

    let names: Vec<FieldNames> = fields.iter().map(FieldNames::new).collect();
    let any_stored = fields.iter().any(|field| field.stored.is_some());

    let checks = fields
        .iter()
        .zip(&names)
        .map(|(field, names)| field_checks(model, &private, field, names));

    let codec = any_stored.then(|| {
        quote! {
            struct __TsCodec<T> {
                get: for<'a> fn(&'a #private::Lazy<T>, &#private::Loaded, ::core::primitive::usize, fn() -> T) -> &'a T,
                get_mut: for<'a> fn(&'a mut #private::Lazy<T>, &mut #private::Loaded, ::core::primitive::usize, fn() -> T) -> &'a mut T,
                set: fn(&mut #private::Lazy<T>, &mut #private::Loaded, ::core::primitive::usize, T),
                take: fn(&mut #private::Lazy<T>, &mut #private::Loaded, ::core::primitive::usize, fn() -> T) -> T,
                encode: fn(
                    &#private::Loaded,
                    &#private::Lazy<T>,
                ) -> #private::Result<#private::Option<#private::Vec<::core::primitive::u8>>, #private::CodecError>,
                index_key: fn(
                    &#private::Loaded,
                    &#private::Lazy<T>,
                    ::core::primitive::usize,
                    fn() -> T,
                ) -> #private::Result<#private::Option<#private::Vec<::core::primitive::u8>>, #private::CodecError>,
            }
        }
    });

    let accessors = fields
        .iter()
        .zip(&names)
        .filter_map(|(field, names)| accessors(model, field, names));

    let stored_names = model.stored().map(|(_, stored)| &stored.name);

    let lazy_types = model.stored().map(|(field, _)| {
        let ty = &field.ty;
        quote!(#private::Lazy<#ty>)
    });
    let lazy_inits = model.stored().map(|_| quote!(#private::Default::default()));
    let lazy_members: Vec<syn::Index> = model
        .stored()
        .map(|(_, stored)| syn::Index::from(stored.index + 1))
        .collect();

    let field_idents: Vec<&syn::Ident> = fields.iter().map(|field| field.ident).collect();
    let default_fns = names.iter().map(|names| &names.default_fn);

    let encode_arms = fields.iter().zip(&names).filter_map(|(field, names)| {
        let stored = field.stored.as_ref()?;
        let codec_const = &names.codec_const;
        let index = Literal::usize_unsuffixed(stored.index);
        let member = syn::Index::from(stored.index + 1);
        Some(quote!(#index => (#codec_const.encode)(&self.0, &self.#member),))
    });

    let companion_doc = format!(
        "The tracked session state of `{ident}`, generated by `#[derive(SessionState)]`: `TypedSession<{ident}>` dereferences to it. It has, for each stored field `f`, the accessors `f()`, `set_f()`, `f_mut()` and `take_f()`: a field is decoded the first time it is read, and every write goes through them, so that only the changed fields are written back."
    );

    // `for<'__ts>` makes these bounds non-trivial, so they are checked where
    // the impls are used rather than on the impls themselves: a field that is
    // not `Send + Sync` is then reported once, by its per-field check, instead
    // of again on every impl of the expansion.
    let thread_safe = quote! {
        for<'__ts> #ident: ::core::marker::Send + ::core::marker::Sync + 'static,
        for<'__ts> #companion: ::core::marker::Send + ::core::marker::Sync + 'static,
    };

    let index = model.index.as_ref().and_then(|index| {
        let (_, names) = fields.iter().zip(&names).find(|(field, _)| {
            field.stored.as_ref().map(|stored| stored.index) == Some(index.stored_index)
        })?;
        let codec_const = &names.codec_const;
        let default_fn = &names.default_fn;
        let position = Literal::usize_unsuffixed(index.stored_index);
        let member = syn::Index::from(index.stored_index + 1);
        let key_ty = &index.key_ty;
        Some((
            quote! {
                const INDEX: #private::Option<::core::primitive::usize> = #private::Option::Some(#position);

                fn index_key(&self) -> #private::Result<#private::Option<#private::Vec<::core::primitive::u8>>, #private::CodecError> {
                    (#codec_const.index_key)(&self.0, &self.#member, #position, #default_fn)
                }
            },
            quote! {
                #[automatically_derived]
                impl #private::IndexedState for #ident
                where
                    #thread_safe
                {
                    type IndexKey = #key_ty;
                }
            },
        ))
    });
    let (index_members, indexed_impl) = index.unzip();

    let body = quote! {
        #[doc = #companion_doc]
        #vis struct #companion(#private::Loaded, #(#lazy_types,)*);

        #[automatically_derived]
        impl #private::Companion for #companion
        where
            #thread_safe
        {
            type State = #ident;

            #[inline]
            fn from_loaded(loaded: #private::Loaded) -> Self {
                Self(loaded, #(#lazy_inits,)*)
            }

            #[inline]
            fn loaded(&self) -> &#private::Loaded {
                &self.0
            }

            fn reset(&mut self) {
                self.0.reset();
                #(self.#lazy_members.clear();)*
            }

            fn encode_field(
                &self,
                __index: ::core::primitive::usize,
            ) -> #private::Result<#private::Option<#private::Vec<::core::primitive::u8>>, #private::CodecError> {
                match __index {
                    #(#encode_arms)*
                    _ => #private::Result::Ok(#private::Option::None),
                }
            }

            #index_members
        }

        #[allow(dead_code)]
        impl #companion
        where
            #thread_safe
        {
            #(#accessors)*
        }

        #codec
        #(#checks)*

        // The session never builds the struct (its fields live, decoded on
        // demand, in the companion), so this reads and builds it once for
        // the dead-code lint: the user's struct and fields stay "used".
        fn __ts_struct_is_used(value: &#ident) -> #ident {
            let _ = (#(&value.#field_idents,)*);
            #ident {
                #(#field_idents: #default_fns(),)*
            }
        }

        #[automatically_derived]
        impl #private::SessionState for #ident
        where
            #thread_safe
        {
            type Session = #companion;

            const NAMESPACE: &'static #str_ty = #namespace;

            const FIELDS: &'static [&'static #str_ty] = &[#(#stored_names),*];
        }

        #indexed_impl
    };
    wrap(body)
}

/// The per-field checks and helpers: the default function, the `Send +
/// Sync` check, and the codec constant of a stored field.
///
/// The helper traits, impls and functions are spanned on the field's type:
/// the notes of an unsatisfied bound then point at the field, and rustc does
/// not take the blanket impls for derived impls (it would suggest
/// "implementing `__Serialize_x` manually").
fn field_checks(
    model: &Model<'_>,
    private: &TokenStream,
    field: &Field<'_>,
    names: &FieldNames,
) -> TokenStream {
    let ty = &field.ty;
    let ty_span = field.ty_span;
    let private = &respan(private.clone(), ty_span);
    let state = model.ident.unraw().to_string();
    let name = field.ident.unraw().to_string();
    let FieldNames {
        default_fn,
        default_trait,
        default_via,
        serialize_trait,
        deserialize_trait,
        codec_fn,
        codec_const,
        shared_trait,
        shared_fn,
    } = names;

    let default = match &field.default {
        DefaultExpr::Path(path) => {
            let call = quote_spanned!(path.span()=> #path());
            quote! {
                #[inline]
                fn #default_fn() -> #ty {
                    #call
                }
            }
        }
        DefaultExpr::Trait => {
            let message = format!(
                "the session field `{name}` of `{state}` has no default: `{{Self}}` does not implement `Default`"
            );
            let label = format!("`{name}` needs a default, used while it is not in the store");
            let note = format!(
                "implement `Default` for `{{Self}}`, or name a function that returns the default: `#[session(default = \"path::to::function\")]` on `{name}`"
            );
            quote_spanned! {ty_span=>
                #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
                trait #default_trait: #private::Default {}
                impl<T: #private::Default> #default_trait for T {}

                fn #default_via<T: #default_trait>() -> T {
                    <T as #private::Default>::default()
                }

                #[inline]
                fn #default_fn() -> #ty {
                    #default_via::<#ty>()
                }
            }
        }
        DefaultExpr::Broken => quote! {
            fn #default_fn() -> #ty {
                ::core::unimplemented!()
            }
        },
    };

    let shared_message = format!(
        "the session field `{name}` of `{state}` is not thread-safe: `{{Self}}` must be `Send + Sync`"
    );
    let shared_label = if field.stored.is_some() {
        format!(
            "required because `{name}` is part of the session state, which is shared across threads"
        )
    } else {
        format!(
            "required because `{name}` is part of the session state, which is shared across threads (even though it is skipped)"
        )
    };
    let shared_note =
        "use a thread-safe type, like `Arc` instead of `Rc` or `Mutex` instead of `RefCell`";
    let shared = quote_spanned! {ty_span=>
        #[diagnostic::on_unimplemented(message = #shared_message, label = #shared_label, note = #shared_note)]
        trait #shared_trait: ::core::marker::Send + ::core::marker::Sync + 'static {}
        impl<T: ::core::marker::Send + ::core::marker::Sync + 'static> #shared_trait for T {}
    };

    let check = if field.stored.is_some() {
        let message = |serde_trait: &str| {
            format!(
                "the session field `{name}` of `{state}` cannot be stored: `{{Self}}` does not implement `{serde_trait}`"
            )
        };
        let serialize_message = message("Serialize");
        let deserialize_message = message("Deserialize");
        let label = format!("required because `{name}` is stored in the session");
        let note = |serde_trait: &str| {
            format!(
                "derive `serde::{serde_trait}` for a type of your own; for another crate's type, look for a `serde` feature of that crate"
            )
        };
        let serialize_note = note("Serialize");
        let deserialize_note = note("Deserialize");
        let skip_note = format!("or mark `{name}` `#[session(skip)]` to keep it out of the store");
        quote_spanned! {ty_span=>
            #[diagnostic::on_unimplemented(message = #serialize_message, label = #label, note = #serialize_note, note = #skip_note)]
            trait #serialize_trait: #private::Serialize {}
            #[diagnostic::do_not_recommend]
            impl<T: #private::Serialize> #serialize_trait for T {}

            #[diagnostic::on_unimplemented(message = #deserialize_message, label = #label, note = #deserialize_note, note = #skip_note)]
            trait #deserialize_trait: #private::DeserializeOwned {}
            #[diagnostic::do_not_recommend]
            impl<T: #private::DeserializeOwned> #deserialize_trait for T {}

            #shared

            const fn #codec_fn<T: #serialize_trait + #deserialize_trait + #shared_trait>() -> __TsCodec<T> {
                __TsCodec {
                    get: #private::Lazy::<T>::get,
                    get_mut: #private::Lazy::<T>::get_mut,
                    set: #private::Lazy::<T>::set,
                    take: #private::Lazy::<T>::take,
                    encode: #private::encode_current::<T>,
                    index_key: #private::index_key::<T>,
                }
            }

            const #codec_const: __TsCodec<#ty> = #codec_fn::<#ty>();
        }
    } else {
        quote_spanned! {ty_span=>
            #shared

            const fn #shared_fn<T: #shared_trait>() {}

            const _: () = #shared_fn::<#ty>();
        }
    };

    quote! {
        #default
        #check
    }
}

/// The four accessors of a stored field (minus the ones whose names collide).
fn accessors(model: &Model<'_>, field: &Field<'_>, names: &FieldNames) -> Option<TokenStream> {
    let stored = field.stored.as_ref()?;
    let ident = field.ident;
    let plain = ident.unraw().to_string();
    let vis = field.vis;
    let ty = &field.ty;
    let index = Literal::usize_unsuffixed(stored.index);
    let member = syn::Index::from(stored.index + 1);
    let codec_const = &names.codec_const;
    let default_fn = &names.default_fn;
    let key = format!("{}.{}", model.namespace, stored.name);
    let default_text = match &field.default {
        DefaultExpr::Path(path) => format!("`{}()`", path_text(path)),
        DefaultExpr::Trait | DefaultExpr::Broken => "`Default::default()`".to_owned(),
    };
    let field_docs = &field.docs;

    let methods = Accessor::ALL.iter().zip(stored.accessors).filter(|(_, on)| *on).map(|(accessor, _)| {
        let method = match accessor {
            Accessor::Reader => ident.clone(),
            other => syn::Ident::new(&other.method_name(&plain), ident.span()),
        };
        match accessor {
            Accessor::Reader => {
                let doc = format!("Reads the session field `{plain}` (stored as `{key}`), decoding it from the stored bytes on first use.");
                let extra = (!field_docs.is_empty()).then(|| quote!(#[doc = ""] #(#field_docs)*));
                quote! {
                    #[doc = #doc]
                    #extra
                    #[inline]
                    #[must_use]
                    #vis fn #method(&self) -> &#ty {
                        (#codec_const.get)(&self.#member, &self.0, #index, #default_fn)
                    }
                }
            }
            Accessor::Setter => {
                let doc = format!(
                    "Sets the session field `{plain}` and marks it changed: it is written back to the store (as `{key}`) after the handler."
                );
                quote! {
                    #[doc = #doc]
                    #[inline]
                    #vis fn #method(&mut self, value: #ty) {
                        (#codec_const.set)(&mut self.#member, &mut self.0, #index, value)
                    }
                }
            }
            Accessor::Mutable => {
                let doc = format!(
                    "Gives mutable access to the session field `{plain}` and marks it changed: it is written back to the store (as `{key}`) after the handler."
                );
                quote! {
                    #[doc = #doc]
                    #[inline]
                    #vis fn #method(&mut self) -> &mut #ty {
                        (#codec_const.get_mut)(&mut self.#member, &mut self.0, #index, #default_fn)
                    }
                }
            }
            Accessor::Take => {
                let doc = format!(
                    "Takes the value of the session field `{plain}`, leaving its default ({default_text}) in its place, and marks it changed: the default is written back to the store (as `{key}`) after the handler. Made for flash messages."
                );
                quote! {
                    #[doc = #doc]
                    #[inline]
                    #vis fn #method(&mut self) -> #ty {
                        (#codec_const.take)(&mut self.#member, &mut self.0, #index, #default_fn)
                    }
                }
            }
        }
    });
    Some(quote!(#(#methods)*))
}

/// The expansion when the input cannot be expanded for real (not a struct
/// with named fields, or generic): an impl with no fields that compiles,
/// so that code using the type reports no follow-on errors. The derive has
/// already reported an error.
fn stub(model: &Model<'_>) -> TokenStream {
    let krate = &model.krate;
    let private = quote!(#krate::__private);
    let ident = model.ident;
    let vis = model.vis;
    let companion = companion_ident(model);
    let namespace = &model.namespace;
    let generics = model.generics;
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let mut predicates: Vec<TokenStream> = where_clause
        .map(|clause| clause.predicates.iter().map(|p| quote!(#p)).collect())
        .unwrap_or_default();
    predicates
        .push(quote!(#ident #ty_generics: ::core::marker::Send + ::core::marker::Sync + 'static));
    predicates.push(
        quote!(#companion #ty_generics: ::core::marker::Send + ::core::marker::Sync + 'static),
    );
    let params = &generics.params;
    let struct_where = &generics.where_clause;

    let body = quote! {
        #[doc(hidden)]
        #vis struct #companion <#params> (
            #private::Loaded,
            ::core::marker::PhantomData<#ident #ty_generics>,
        ) #struct_where;

        #[automatically_derived]
        impl #impl_generics #private::Companion for #companion #ty_generics where #(#predicates,)* {
            type State = #ident #ty_generics;

            fn from_loaded(loaded: #private::Loaded) -> Self {
                Self(loaded, ::core::marker::PhantomData)
            }

            fn loaded(&self) -> &#private::Loaded {
                &self.0
            }

            fn reset(&mut self) {
                self.0.reset();
            }

            fn encode_field(
                &self,
                _: ::core::primitive::usize,
            ) -> #private::Result<#private::Option<#private::Vec<::core::primitive::u8>>, #private::CodecError> {
                #private::Result::Ok(#private::Option::None)
            }
        }

        #[automatically_derived]
        impl #impl_generics #private::SessionState for #ident #ty_generics where #(#predicates,)* {
            type Session = #companion #ty_generics;

            const NAMESPACE: &'static ::core::primitive::str = #namespace;

            const FIELDS: &'static [&'static ::core::primitive::str] = &[];
        }
    };
    wrap(body)
}

/// `__CartSession` for `Cart`.
fn companion_ident(model: &Model<'_>) -> syn::Ident {
    format_ident!("__{}Session", model.ident.unraw(), span = Span::call_site())
}

/// Wraps the generated items in an anonymous const.
fn wrap(body: TokenStream) -> TokenStream {
    quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types, non_snake_case, non_upper_case_globals, unused_qualifications, dead_code)]
        const _: () = {
            #body
        };
    }
}

/// A path as written, for documentation.
fn path_text(path: &syn::ExprPath) -> String {
    quote!(#path).to_string().replace(' ', "")
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use quote::ToTokens;
    use syn::parse_quote;

    fn expand_to_file(input: &DeriveInput) -> syn::File {
        syn::parse2(derive(input)).expect("the expansion parses as items")
    }

    fn impl_items<'a>(file: &'a syn::File, trait_name: &str) -> Vec<&'a syn::ImplItem> {
        let mut found = Vec::new();
        for item in &file.items {
            let syn::Item::Const(item) = item else {
                continue;
            };
            let syn::Expr::Block(block) = &*item.expr else {
                continue;
            };
            for stmt in &block.block.stmts {
                if let syn::Stmt::Item(syn::Item::Impl(imp)) = stmt
                    && let Some((path, _)) = &imp.trait_
                    && path.segments.last().is_some_and(|s| s.ident == trait_name)
                {
                    found.extend(imp.items.iter());
                }
            }
        }
        found
    }

    fn const_value(items: &[&syn::ImplItem], name: &str) -> String {
        items
            .iter()
            .find_map(|item| match item {
                syn::ImplItem::Const(c) if c.ident == name => {
                    Some(c.expr.to_token_stream().to_string())
                }
                _ => None,
            })
            .expect("constant present")
    }

    #[test]
    fn generates_namespace_and_fields() {
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
            }
        };
        let file = expand_to_file(&input);
        let items = impl_items(&file, "SessionState");
        assert_eq!(const_value(&items, "NAMESPACE"), "\"cart\"");
        assert_eq!(
            const_value(&items, "FIELDS"),
            "& [\"items\" , \"uid\" , \"theme\"]"
        );
        let output = file.to_token_stream().to_string();
        assert!(!output.contains("compile_error"));
        for accessor in [
            "fn items (",
            "fn set_items (",
            "fn items_mut (",
            "fn take_items (",
            "fn set_user_id (",
        ] {
            assert!(output.contains(accessor), "missing {accessor}");
        }
        assert!(
            !output.contains("fn scratch ("),
            "a skipped field has no accessors"
        );
    }

    #[test]
    fn errors_come_with_an_impl() {
        for input in [
            parse_quote! { enum E { A } },
            parse_quote! { struct G<T> { t: T } },
            parse_quote! { #[session(namespace = "a.b")] struct S { x: u8, set_x: u8 } },
        ] {
            let file = expand_to_file(&input);
            let output = file.to_token_stream().to_string();
            assert!(output.contains("compile_error"), "{output}");
            assert!(
                !impl_items(&file, "SessionState").is_empty(),
                "no impl for {output}"
            );
        }
    }
}
