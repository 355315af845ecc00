//! `#[controller]`: checks an inherent `impl` block and generates its
//! `Controller` implementation.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::{
    Attribute, FnArg, Ident, ImplItem, ImplItemFn, Item, ItemImpl, PatType, Receiver, ReturnType,
    Signature, Type,
};

/// Whether a route serves pulls or pushes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pull,
    Push,
}

/// A checked route method.
struct Route {
    method: Ident,
    kind: Kind,
    arg: Option<Type>,
}

/// Errors gathered while checking the block, reported together.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn to_compile_errors(&self) -> TokenStream {
        self.0
            .as_ref()
            .map(syn::Error::to_compile_error)
            .unwrap_or_default()
    }
}

/// The expansion of `#[controller]` (with arguments `attr`) on `item`.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    if !attr.is_empty() {
        errors.push(syn::Error::new_spanned(
            &attr,
            "#[jaunt::controller] takes no arguments",
        ));
    }
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
                 `impl MyController { async fn route(&self, ctx: &PullCtx, ..) .. }`",
            ));
            let errors = errors.to_compile_errors();
            return quote!(#errors #other);
        }
    };

    let routes = check_items(&mut imp, &mut errors);
    let name = controller_name(&imp, &mut errors);
    let generated = name.map(|name| generate(&imp, &name, &routes));
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
            ImplItem::Fn(f) => match take_skip(&mut f.attrs) {
                Ok(true) => {}
                Ok(false) => match check_route(f, self_name.as_ref()) {
                    Ok(route) => routes.push(route),
                    Err(e) => errors.push(e),
                },
                Err(e) => errors.push(e),
            },
            ImplItem::Const(c) => not_a_method(&mut c.attrs, errors),
            ImplItem::Type(t) => not_a_method(&mut t.attrs, errors),
            ImplItem::Macro(m) => not_a_method(&mut m.attrs, errors),
            _ => {}
        }
    }
    routes
}

/// Refuses `#[jaunt(skip)]` on an item that is never a route.
fn not_a_method(attrs: &mut Vec<Attribute>, errors: &mut Errors) {
    let marked: Vec<Attribute> = attrs
        .iter()
        .filter(|a| a.path().is_ident("jaunt"))
        .cloned()
        .collect();
    if let Err(e) = take_skip(attrs) {
        errors.push(e);
    } else if let Some(attr) = marked.first() {
        errors.push(syn::Error::new_spanned(
            attr,
            "#[jaunt(skip)] goes on methods: other items are never routes",
        ));
    }
}

/// Removes the `#[jaunt(..)]` attributes; whether one said `skip`.
fn take_skip(attrs: &mut Vec<Attribute>) -> syn::Result<bool> {
    let mut skip = false;
    let mut error = None;
    attrs.retain(|attr| {
        if !attr.path().is_ident("jaunt") {
            return true;
        }
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                skip = true;
                Ok(())
            } else {
                Err(meta.error("unknown jaunt option: the only one is #[jaunt(skip)]"))
            }
        });
        if let Err(e) = parsed {
            error.get_or_insert(e);
        }
        false
    });
    match error {
        Some(e) => Err(e),
        None => Ok(skip),
    }
}

/// `fn name`, to point at a method as a whole.
fn head(sig: &Signature) -> TokenStream {
    let (fn_token, ident) = (&sig.fn_token, &sig.ident);
    quote!(#fn_token #ident)
}

/// Checks a method that is not skipped.
fn check_route(f: &ImplItemFn, self_name: Option<&Ident>) -> syn::Result<Route> {
    let sig = &f.sig;
    let name = sig.ident.unraw();
    if sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            head(sig),
            format!("controller method `{name}` must be `async fn` (or mark it #[jaunt(skip)])"),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            format!(
                "controller method `{name}` cannot be generic: a route decodes one concrete \
                 argument type (or mark it #[jaunt(skip)])"
            ),
        ));
    }
    if let Some(clause) = &sig.generics.where_clause {
        return Err(syn::Error::new_spanned(
            clause,
            format!(
                "controller method `{name}` cannot have a where clause (or mark it #[jaunt(skip)])"
            ),
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        return Err(syn::Error::new_spanned(
            unsafety,
            format!(
                "controller method `{name}` cannot be `unsafe`: the router calls it like any \
                 safe function (or mark it #[jaunt(skip)])"
            ),
        ));
    }

    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver)) => check_receiver(receiver, &name, self_name)?,
        first => {
            let msg = format!(
                "controller method `{name}` has no `self` receiver: a route runs on the shared \
                 controller, so it must take `&self` (or mark it #[jaunt(skip)])"
            );
            return Err(match first {
                Some(arg) => syn::Error::new_spanned(arg, msg),
                None => syn::Error::new(sig.paren_token.span.join(), msg),
            });
        }
    }

    let ctx_msg = "the first parameter after &self must be `&PullCtx` or `&PushCtx`";
    let kind = match inputs.next() {
        Some(FnArg::Typed(ctx)) => match context_kind(&ctx.ty) {
            Ok(kind) => kind,
            Err(hint) => {
                return Err(syn::Error::new_spanned(
                    &ctx.ty,
                    format!("{ctx_msg} (it says whether `{name}` serves pulls or pushes){hint}"),
                ))
            }
        },
        Some(other) => return Err(syn::Error::new_spanned(other, ctx_msg)),
        None => {
            return Err(syn::Error::new(
                sig.paren_token.span.join(),
                format!("controller method `{name}` has no context: {ctx_msg}"),
            ))
        }
    };

    let rest: Vec<&FnArg> = inputs.collect();
    if rest.len() > 1 {
        let extra = &rest[1..];
        return Err(syn::Error::new_spanned(
            quote!(#(#extra),*),
            format!(
                "controller method `{name}` takes {} arguments after its context, but a route \
                 takes at most one argument; wrap several in a struct or tuple",
                rest.len()
            ),
        ));
    }
    let arg = match rest.first() {
        None => None,
        Some(FnArg::Typed(PatType { ty, .. })) => Some(check_argument(ty, &name)?),
        Some(other) => {
            return Err(syn::Error::new_spanned(
                other,
                "a route's argument is a typed parameter",
            ))
        }
    };

    check_output(sig, kind, &name)?;
    Ok(Route {
        method: sig.ident.clone(),
        kind,
        arg,
    })
}

/// Accepts `&self` (or `self: &Self`); says why anything else is refused.
fn check_receiver(r: &Receiver, name: &Ident, self_name: Option<&Ident>) -> syn::Result<()> {
    match strip_groups(&r.ty) {
        Type::Reference(rf) if rf.mutability.is_some() => Err(syn::Error::new_spanned(
            r,
            format!(
                "controller method `{name}` takes `&mut self`, but a controller's state is \
                 shared: every route holds an `Arc` of it and calls may run concurrently; take \
                 `&self` and use interior mutability (atomics, a `Mutex`, ...)"
            ),
        )),
        Type::Reference(rf) if is_self(&rf.elem, self_name) => Ok(()),
        _ if r.reference.is_none() && r.colon_token.is_none() => Err(syn::Error::new_spanned(
            r,
            format!(
                "controller method `{name}` takes `self` by value, but a controller is shared: \
                 every route holds an `Arc` of it; take `&self` and use interior mutability \
                 (atomics, a `Mutex`, ...) for state that changes"
            ),
        )),
        _ => Err(syn::Error::new_spanned(
            r,
            format!(
                "controller method `{name}` must take `&self`: the controller is shared by its \
                 routes (each holds an `Arc` of it)"
            ),
        )),
    }
}

/// Whether `ty` is `Self` or the controller's own type name.
fn is_self(ty: &Type, self_name: Option<&Ident>) -> bool {
    match strip_groups(ty) {
        Type::Path(p) if p.qself.is_none() => {
            p.path.is_ident("Self") || self_name.is_some_and(|n| p.path.is_ident(n))
        }
        _ => false,
    }
}

/// Whether the context type is `&PullCtx` or `&PushCtx`; otherwise a hint to
/// append to the error.
fn context_kind(ty: &Type) -> Result<Kind, &'static str> {
    let (by_ref, inner) = match strip_groups(ty) {
        Type::Reference(r) if r.mutability.is_none() => (true, strip_groups(&r.elem)),
        Type::Reference(_) => return Err("; a shared reference, not `&mut`"),
        other => (false, other),
    };
    let kind = match inner {
        Type::Path(p) if p.qself.is_none() => match p.path.segments.last() {
            Some(s) if s.arguments.is_none() && s.ident == "PullCtx" => Kind::Pull,
            Some(s) if s.arguments.is_none() && s.ident == "PushCtx" => Kind::Push,
            _ => return Err(""),
        },
        _ => return Err(""),
    };
    if by_ref {
        Ok(kind)
    } else {
        Err("; take it by reference")
    }
}

/// The type of a route's argument: owned, decoded from the body.
fn check_argument(ty: &Type, name: &Ident) -> syn::Result<Type> {
    match strip_groups(ty) {
        Type::Reference(_) => Err(syn::Error::new_spanned(
            ty,
            format!(
                "the argument of controller method `{name}` is decoded from the message body, \
                 so it must be an owned type (`String`, `Vec<u8>`, a struct, ...), not a reference"
            ),
        )),
        Type::ImplTrait(_) => Err(syn::Error::new_spanned(
            ty,
            format!(
                "controller method `{name}` cannot be generic: a route decodes one concrete \
                 argument type (or mark it #[jaunt(skip)])"
            ),
        )),
        _ => Ok(ty.clone()),
    }
}

/// Pulls return `Result<T, Status>`; pushes `()` or `Result<(), Status>`.
fn check_output(sig: &Signature, kind: Kind, name: &Ident) -> syn::Result<()> {
    let pull_msg = format!(
        "pull method `{name}` must return `Result<T, Status>` (`T` is encoded as the reply body)"
    );
    match (&sig.output, kind) {
        (ReturnType::Default, Kind::Push) => Ok(()),
        (ReturnType::Default, Kind::Pull) => Err(syn::Error::new_spanned(
            head(sig),
            format!("{pull_msg}, but it returns nothing"),
        )),
        (ReturnType::Type(_, ty), _) if is_result(ty) => Ok(()),
        (ReturnType::Type(_, ty), Kind::Pull) => Err(syn::Error::new_spanned(ty, pull_msg)),
        (ReturnType::Type(_, ty), Kind::Push) => match strip_groups(ty) {
            Type::Tuple(t) if t.elems.is_empty() => Ok(()),
            _ => Err(syn::Error::new_spanned(
                ty,
                format!(
                    "push method `{name}` must return `()` or `Result<(), Status>`: \
                     a push has no reply"
                ),
            )),
        },
    }
}

/// Whether the type's path ends in `Result` (textually: aliases count).
fn is_result(ty: &Type) -> bool {
    match strip_groups(ty) {
        Type::Path(p) if p.qself.is_none() => {
            p.path.segments.last().is_some_and(|s| s.ident == "Result")
        }
        _ => false,
    }
}

/// `ty` without invisible groups or parentheses.
fn strip_groups(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(g) => ty = &g.elem,
            Type::Paren(p) => ty = &p.elem,
            _ => return ty,
        }
    }
}

/// The `Controller` implementation registering `routes`.
fn generate(imp: &ItemImpl, name: &str, routes: &[Route]) -> TokenStream {
    let self_ty = &imp.self_ty;
    // Locals the user's tokens cannot see.
    let this = Ident::new("this", Span::mixed_site());
    let ctx = Ident::new("ctx", Span::mixed_site());
    let arg = Ident::new("arg", Span::mixed_site());
    let registrations = routes.iter().map(|route| {
        let method = &route.method;
        let uri_name = method.unraw().to_string();
        let (register, ctx_ty) = match route.kind {
            Kind::Pull => (quote!(pull), quote!(::jaunt::PullCtx)),
            Kind::Push => (quote!(push), quote!(::jaunt::PushCtx)),
        };
        let (params, args) = match &route.arg {
            Some(ty) => (quote!(#ctx: #ctx_ty, #arg: #ty), quote!(&#ctx, #arg)),
            None => (quote!(#ctx: #ctx_ty), quote!(&#ctx)),
        };
        quote! {
            {
                let #this = ::std::sync::Arc::clone(&self);
                routes.#register(#uri_name, move |#params| {
                    let #this = ::std::sync::Arc::clone(&#this);
                    async move { Self::#method(&*#this, #args).await }
                })?;
            }
        }
    });
    let unused = routes.is_empty().then(|| quote!(let _ = routes;));
    quote! {
        #[automatically_derived]
        impl ::jaunt::router::Controller<::jaunt::PullCtx, ::jaunt::PushCtx> for #self_ty {
            const NAME: &'static str = #name;

            fn register(
                self: ::std::sync::Arc<Self>,
                routes: &mut ::jaunt::router::ControllerRoutes<'_, '_, ::jaunt::PullCtx, ::jaunt::PushCtx>,
            ) -> ::core::result::Result<(), ::jaunt::router::RouteError> {
                #(#registrations)*
                #unused
                ::core::result::Result::Ok(())
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
        assert!(
            out.contains("const NAME : & 'static str = \"Math\""),
            "{out}"
        );
        for route in [
            "routes . pull (\"add\"",
            "routes . pull (\"ping\"",
            "routes . push (\"notify\"",
            "routes . push (\"log\"",
        ] {
            assert!(out.contains(route), "{route} in {out}");
        }
        assert!(!out.contains("(\"helper\""), "{out}");
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
            "pull method `f` must return `Result<T, Status>`",
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
        assert!(args.contains("takes no arguments"));
    }
}
