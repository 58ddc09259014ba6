//! The attribute's own syntax: `#[rpc]` on the trait, `#[rpc(name = "...")]`
//! on a method.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Attribute, ItemTrait, LitStr, TraitItem};

/// Options a method may set with `#[rpc(...)]`.
#[derive(Default)]
pub(crate) struct MethodOptions {
    /// `name = "..."`: the method's name on the wire, and where it was written.
    pub(crate) name: Option<(String, Span)>,
}

/// Checks the arguments of `#[rpc]` on the trait: there are none yet.
pub(crate) fn trait_arguments(attr: TokenStream) -> syn::Result<()> {
    if attr.is_empty() {
        return Ok(());
    }
    Err(syn::Error::new(
        attr.span(),
        "`#[rpc]` on a trait takes no arguments; to set a method's wire name, put `#[rpc(name = \"...\")]` on the method",
    ))
}

/// Whether `attr` is one of ours (`#[rpc(...)]` or `#[redisrpc::rpc(...)]`).
fn is_rpc_attribute(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "rpc")
}

/// Reads the `#[rpc(...)]` attributes of a method.
pub(crate) fn method_options(attrs: &[Attribute]) -> syn::Result<MethodOptions> {
    let mut options = MethodOptions::default();
    for attr in attrs.iter().filter(|attr| is_rpc_attribute(attr)) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let name: LitStr = meta.value()?.parse()?;
                if options.name.is_some() {
                    return Err(meta.error("the wire name is set twice"));
                }
                options.name = Some((name.value(), name.span()));
                Ok(())
            } else {
                Err(meta.error("unknown `rpc` option; the one option on a method is `name = \"wire_name\"`"))
            }
        })?;
    }
    Ok(options)
}

/// Removes our `#[rpc(...)]` markers from the trait's methods, which the
/// compiler would otherwise take for a nested use of the attribute.
pub(crate) fn strip_method_attributes(item: &mut ItemTrait) {
    for entry in &mut item.items {
        if let TraitItem::Fn(method) = entry {
            method.attrs.retain(|attr| !is_rpc_attribute(attr));
        }
    }
}

/// The text of the `#[doc]` attributes among `attrs`, one line each, with
/// the space after `///` removed.
pub(crate) fn docs(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = doc_attributes(attrs)
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(syn::MetaNameValue {
                value:
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(text),
                        ..
                    }),
                ..
            }) => Some(text.value()),
            _ => None,
        })
        .flat_map(|text| {
            // `split`, not `lines`: an empty `///` line is a paragraph break to keep.
            text.split('\n')
                .map(|line| line.strip_prefix(' ').unwrap_or(line).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    lines.join("\n").trim().to_string()
}

/// The `#[doc]` attributes among `attrs`.
pub(crate) fn doc_attributes(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|attr| attr.path().is_ident("doc"))
}
