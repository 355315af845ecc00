//! `#[controller]`: checks an inherent `impl` block and generates its
//! `ServiceSpec` and `Controller` implementation (with `routes.rs`, the code
//! generator it shares with `#[service]`).

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::{Attribute, ImplItem, Item, ItemImpl, Type};

use crate::routes::{self, strip_groups, take_options, Errors, Front, Route};

/// The expansion of `#[controller]` (with arguments `attr`) on `item`.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let uri = match crate::service::parse_args(attr, "controller") {
        Ok(uri) => uri,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let item: Item = match syn::parse2(item) {
        Ok(item) => item,
        Err(e) => return e.to_compile_error(),
    };
    let mut imp: ItemImpl = match item {
        Item::Impl(imp) => imp,
        other => {
            errors.push(syn::Error::new_spanned(
                &other,
                "#[jaunt::controller] goes on an inherent `impl` block: \
                 `impl MyController { async fn route(&self, ctx: &PullCtx, ..) .. }` \
                 (for a definition that clients share, use #[jaunt::service] on a trait)",
            ));
            let errors = errors.to_compile_errors();
            return quote!(#errors #other);
        }
    };

    let routes = check_items(&mut imp, &mut errors);
    let name = controller_name(&imp, &mut errors);
    let generated = name.map(|name| generate(&imp, &name, uri.as_ref(), &routes));
    let errors = errors.to_compile_errors();
    quote! {
        #imp
        #generated
        #errors
    }
}

/// Checks the shape of the block; on success, the controller's type name.
fn controller_name(imp: &ItemImpl, errors: &mut Errors) -> Option<String> {
    if let Some((_, path, _)) = &imp.trait_ {
        errors.push(syn::Error::new_spanned(
            path,
            "#[jaunt::controller] goes on an inherent `impl` block, not on a trait impl: \
             write the routes in `impl MyController { .. }`",
        ));
        return None;
    }
    let generic = "generic controllers are not supported yet: \
                   #[jaunt::controller] needs a concrete type (`impl Math { .. }`)";
    if !imp.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(&imp.generics, generic));
        return None;
    }
    if let Some(clause) = &imp.generics.where_clause {
        errors.push(syn::Error::new_spanned(clause, generic));
        return None;
    }
    let segment = match strip_groups(&imp.self_ty) {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    };
    let Some(segment) = segment else {
        errors.push(syn::Error::new_spanned(
            &imp.self_ty,
            "#[jaunt::controller] needs a named type: the routes are grouped under its name",
        ));
        return None;
    };
    if !segment.arguments.is_none() {
        errors.push(syn::Error::new_spanned(&imp.self_ty, generic));
        return None;
    }
    Some(segment.ident.unraw().to_string())
}

/// Strips the `#[jaunt(..)]` attributes of the block's items and checks
/// every method that is not skipped; returns the valid routes.
fn check_items(imp: &mut ItemImpl, errors: &mut Errors) -> Vec<Route> {
    let self_name = match strip_groups(&imp.self_ty) {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.clone()),
        _ => None,
    };
    let mut routes = Vec::new();
    for item in &mut imp.items {
        match item {
            ImplItem::Fn(f) => match take_options(&mut f.attrs, &["skip", "uri"]) {
                Ok(options) if options.skip => {}
                Ok(options) => {
                    match routes::check_route(
                        &f.sig,
                        options.uri,
                        self_name.as_ref(),
                        Front::Controller,
                    ) {
                        Ok(route) => routes.push(route),
                        Err(e) => errors.push(e),
                    }
                }
                Err(e) => errors.push(e),
            },
            ImplItem::Const(c) => not_a_method(&mut c.attrs, errors),
            ImplItem::Type(t) => not_a_method(&mut t.attrs, errors),
            ImplItem::Macro(m) => not_a_method(&mut m.attrs, errors),
            _ => {}
        }
    }
    crate::service::check_unique(&routes, errors);
    routes
}

/// Refuses `#[jaunt(..)]` on an item that is never a route.
fn not_a_method(attrs: &mut Vec<Attribute>, errors: &mut Errors) {
    let marked: Vec<Attribute> = attrs
        .iter()
        .filter(|a| a.path().is_ident("jaunt"))
        .cloned()
        .collect();
    if let Err(e) = take_options(attrs, &["skip", "uri"]) {
        errors.push(e);
    } else if let Some(attr) = marked.first() {
        errors.push(syn::Error::new_spanned(
            attr,
            "#[jaunt(..)] goes on methods: other items are never routes",
        ));
    }
}

/// The `Controller` implementation registering `routes`.
fn generate(
    imp: &ItemImpl,
    name: &str,
    uri: Option<&syn::LitStr>,
    routes: &[Route],
) -> TokenStream {
    let self_ty = &imp.self_ty;
    let spec = routes::spec(name, uri, routes);
    let register = routes::registrations(
        &quote!(::std::sync::Arc::clone(&self)),
        &quote!(<Self as ::jaunt::router::Controller<::jaunt::PullCtx, ::jaunt::PushCtx>>::SPEC),
        routes,
        |method| quote!(Self::#method),
    );
    quote! {
        #[automatically_derived]
        impl ::jaunt::router::Controller<::jaunt::PullCtx, ::jaunt::PushCtx> for #self_ty {
            const SPEC: &'static ::jaunt::router::ServiceSpec = &#spec;

            fn register(
                self: ::std::sync::Arc<Self>,
                routes: &mut ::jaunt::router::ControllerRoutes<'_, '_, ::jaunt::PullCtx, ::jaunt::PushCtx>,
            ) -> ::core::result::Result<(), ::jaunt::router::RouteError> {
                #register
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::expand;
    use quote::quote;

    fn expanded(item: proc_macro2::TokenStream) -> String {
        expand(proc_macro2::TokenStream::new(), item).to_string()
    }

    #[test]
    fn routes_are_registered_by_kind_and_helpers_skipped() {
        let out = expanded(quote! {
            impl Math {
                async fn add(&self, ctx: &PullCtx, args: Vec<i64>) -> Result<i64, Status> { unreachable!("never called: the macro only reads the signature") }
                async fn ping(&self, ctx: &jaunt::PullCtx) -> Result<String, Status> { unreachable!("never called: the macro only reads the signature") }
                async fn notify(&self, ctx: &PushCtx, msg: String) {}
                async fn log(&self, ctx: &PushCtx, msg: String) -> Result<(), Status> { unreachable!("never called: the macro only reads the signature") }
                #[jaunt(skip)]
                fn helper(&self) -> u32 { 1 }
            }
        });
        assert!(!out.contains("compile_error"), "{out}");
        assert!(
            !out.contains("jaunt (skip)"),
            "helper attributes are removed: {out}"
        );
        assert!(out.contains("name : \"Math\""), "{out}");
        for route in [
            "routes . pull (& < Self as :: jaunt :: router :: Controller < :: jaunt :: PullCtx , :: jaunt :: PushCtx >> :: SPEC . methods [0usize]",
            "routes . pull (& < Self as :: jaunt :: router :: Controller < :: jaunt :: PullCtx , :: jaunt :: PushCtx >> :: SPEC . methods [1usize]",
            "routes . push (& < Self as :: jaunt :: router :: Controller < :: jaunt :: PullCtx , :: jaunt :: PushCtx >> :: SPEC . methods [2usize]",
            "routes . push (& < Self as :: jaunt :: router :: Controller < :: jaunt :: PullCtx , :: jaunt :: PushCtx >> :: SPEC . methods [3usize]",
            "name : \"add\"",
            "name : \"log\"",
        ] {
            assert!(out.contains(route), "{route} in {out}");
        }
        assert!(!out.contains("\"helper\""), "{out}");
    }

    #[test]
    fn every_mistake_is_reported() {
        let out = expanded(quote! {
            impl Math {
                fn a(&self, ctx: &PullCtx) -> Result<(), Status> { unreachable!("never called: the macro only reads the signature") }
                async fn b(self, ctx: &PullCtx) -> Result<(), Status> { unreachable!("never called: the macro only reads the signature") }
                async fn c(&self) -> Result<(), Status> { unreachable!("never called: the macro only reads the signature") }
                async fn d(&self, ctx: PullCtx) -> Result<(), Status> { unreachable!("never called: the macro only reads the signature") }
                async fn e(&self, ctx: &PullCtx, arg: &str) -> Result<(), Status> { unreachable!("never called: the macro only reads the signature") }
                async fn f(&self, ctx: &PullCtx) {}
                #[jaunt(route)]
                async fn g(&self, ctx: &PullCtx) -> Result<(), Status> { unreachable!("never called: the macro only reads the signature") }
            }
        });
        for message in [
            "controller method `a` must be `async fn`",
            "controller method `b` takes `self` by value",
            "controller method `c` has no context",
            "take it by reference",
            "must be an owned type",
            "pull method `f` must return `Result<T, E>`",
            "unknown jaunt option",
        ] {
            assert!(out.contains(message), "{message} in {out}");
        }
    }

    #[test]
    fn generic_controllers_and_other_items_are_refused() {
        let generic = expanded(quote!(
            impl<T> Wrapper<T> {}
        ));
        assert!(generic.contains("generic controllers are not supported yet"));
        let concrete = expanded(quote!(impl Wrapper<u8> {}));
        assert!(concrete.contains("generic controllers are not supported yet"));
        let item = expanded(quote!(
            struct Math;
        ));
        assert!(item.contains("goes on an inherent `impl` block"));
        let args = expand(quote!(name = "x"), quote!(impl Math {})).to_string();
        assert!(args.contains("unknown #[jaunt::controller] argument"));
        let uri = expand(quote!(uri = "/calc"), quote!(impl Math {})).to_string();
        assert!(
            uri.contains("uri : :: core :: option :: Option :: Some (\"/calc\")"),
            "{uri}"
        );
    }
}
