//! What `#[service]` and `#[controller]` share: the checks of a route
//! method's signature, the `#[jaunt(..)]` options, and the generated
//! `ServiceSpec` and route registrations. One code generator, two front ends.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, GenericArgument, Ident, LitStr, PatType, PathArguments, Receiver, ReturnType,
    Signature, Type,
};

/// Whether a route serves pulls or pushes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Pull,
    Push,
}

/// What a route method returns.
pub(crate) enum Output {
    /// Nothing (pushes only).
    Unit,
    /// `Result<T, E>`: `T` is the reply (`()` for pushes), `E` converts into
    /// `Status`. `ty` is the whole type, for error spans.
    Result { ok: Box<Type>, ty: Box<Type> },
}

/// A checked route method.
pub(crate) struct Route {
    pub method: Ident,
    pub kind: Kind,
    pub arg: Option<Type>,
    pub uri: Option<LitStr>,
    pub output: Output,
    /// Marked `#[jaunt(idempotent)]` (services only).
    pub idempotent: bool,
}

/// Which macro is checking: it names the methods in messages.
#[derive(Clone, Copy)]
pub(crate) enum Front {
    Controller,
    Service,
}

impl Front {
    fn noun(self) -> &'static str {
        match self {
            Self::Controller => "controller",
            Self::Service => "service",
        }
    }

    /// How to opt a method out, appended to messages (services have no
    /// helper methods: every method is a route).
    fn or_skip(self) -> &'static str {
        match self {
            Self::Controller => " (or mark it #[jaunt(skip)])",
            Self::Service => "",
        }
    }
}

/// Errors gathered while checking, reported together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn to_compile_errors(&self) -> TokenStream {
        self.0
            .as_ref()
            .map(syn::Error::to_compile_error)
            .unwrap_or_default()
    }
}

/// The `#[jaunt(..)]` options of an item.
#[derive(Default)]
pub(crate) struct Options {
    pub skip: bool,
    pub uri: Option<LitStr>,
    /// `#[jaunt(idempotent)]`: the generated client marks the pull idempotent.
    pub idempotent: bool,
}

/// Removes the `#[jaunt(..)]` attributes and parses them. `allowed` lists
/// the options this place accepts.
pub(crate) fn take_options(attrs: &mut Vec<Attribute>, allowed: &[&str]) -> syn::Result<Options> {
    let mut options = Options::default();
    let mut error: Option<syn::Error> = None;
    let list = allowed
        .iter()
        .map(|o| match *o {
            "uri" => "#[jaunt(uri = \"...\")]".to_owned(),
            other => format!("#[jaunt({other})]"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    attrs.retain(|attr| {
        if !attr.path().is_ident("jaunt") {
            return true;
        }
        let parsed = attr.parse_nested_meta(|meta| {
            let name = meta.path.get_ident().map(Ident::to_string);
            match name.as_deref() {
                Some(o @ "skip") if allowed.contains(&o) => {
                    options.skip = true;
                    Ok(())
                }
                Some(o @ "idempotent") if allowed.contains(&o) => {
                    options.idempotent = true;
                    Ok(())
                }
                Some(o @ "uri") if allowed.contains(&o) => {
                    let uri: LitStr = meta.value()?.parse()?;
                    options.uri = Some(check_uri(uri)?);
                    Ok(())
                }
                _ => Err(meta.error(format!("unknown jaunt option here: the options are {list}"))),
            }
        });
        if let Err(e) = parsed {
            match &mut error {
                Some(all) => all.combine(e),
                None => error = Some(e),
            }
        }
        false
    });
    match error {
        Some(e) => Err(e),
        None => Ok(options),
    }
}

/// An explicit uri: not empty, no query, no whitespace.
pub(crate) fn check_uri(uri: LitStr) -> syn::Result<LitStr> {
    let value = uri.value();
    let trimmed = value.trim_matches(|c| c == '/' || c == '.');
    let reason = if trimmed.is_empty() {
        Some("is empty")
    } else if value.contains('?') {
        Some("has a query string: a route's uri is a path")
    } else if value.chars().any(char::is_whitespace) {
        Some("contains whitespace")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(syn::Error::new_spanned(
            &uri,
            format!("the uri {value:?} {reason}; write e.g. #[jaunt(uri = \"/kv\")] (HTTP-style) or #[jaunt(uri = \"Kv\")] (RPC-style)"),
        )),
        None => Ok(uri),
    }
}

/// `fn name`, to point at a method as a whole.
pub(crate) fn head(sig: &Signature) -> TokenStream {
    let (fn_token, ident) = (&sig.fn_token, &sig.ident);
    quote!(#fn_token #ident)
}

/// Checks the signature of a route method. `self_name` is the type whose
/// name may stand for `Self` in the receiver.
pub(crate) fn check_route(
    sig: &Signature,
    uri: Option<LitStr>,
    self_name: Option<&Ident>,
    front: Front,
) -> syn::Result<Route> {
    let name = sig.ident.unraw();
    let (noun, or_skip) = (front.noun(), front.or_skip());
    if sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            head(sig),
            format!("{noun} method `{name}` must be `async fn`{or_skip}"),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            format!(
                "{noun} method `{name}` cannot be generic: a route decodes one concrete \
                 argument type{or_skip}"
            ),
        ));
    }
    if let Some(clause) = &sig.generics.where_clause {
        return Err(syn::Error::new_spanned(
            clause,
            format!("{noun} method `{name}` cannot have a where clause{or_skip}"),
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        return Err(syn::Error::new_spanned(
            unsafety,
            format!(
                "{noun} method `{name}` cannot be `unsafe`: the router calls it like any \
                 safe function{or_skip}"
            ),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            variadic,
            format!("{noun} method `{name}` cannot be variadic"),
        ));
    }

    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver)) => check_receiver(receiver, &name, self_name, front)?,
        first => {
            let msg = format!(
                "{noun} method `{name}` has no `self` receiver: a route runs on the shared \
                 {noun}, so it must take `&self`{or_skip}"
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
                format!("{noun} method `{name}` has no context: {ctx_msg}"),
            ))
        }
    };

    let rest: Vec<&FnArg> = inputs.collect();
    if rest.len() > 1 {
        let extra = &rest[1..];
        return Err(syn::Error::new_spanned(
            quote!(#(#extra),*),
            format!(
                "{noun} method `{name}` takes {} arguments after its context, but a route \
                 takes at most one argument; wrap several in a struct or tuple",
                rest.len()
            ),
        ));
    }
    let arg = match rest.first() {
        None => None,
        Some(FnArg::Typed(PatType { ty, .. })) => Some(check_argument(ty, &name, front)?),
        Some(other) => {
            return Err(syn::Error::new_spanned(
                other,
                "a route's argument is a typed parameter",
            ))
        }
    };

    let output = check_output(sig, kind, &name)?;
    Ok(Route {
        method: sig.ident.clone(),
        kind,
        arg,
        uri,
        output,
        idempotent: false,
    })
}

/// Accepts `&self` (or `self: &Self`); says why anything else is refused.
fn check_receiver(
    r: &Receiver,
    name: &Ident,
    self_name: Option<&Ident>,
    front: Front,
) -> syn::Result<()> {
    let noun = front.noun();
    match strip_groups(&r.ty) {
        Type::Reference(rf) if rf.mutability.is_some() => Err(syn::Error::new_spanned(
            r,
            format!(
                "{noun} method `{name}` takes `&mut self`, but a {noun}'s state is \
                 shared: every route holds an `Arc` of it and calls may run concurrently; take \
                 `&self` and use interior mutability (atomics, a `Mutex`, ...)"
            ),
        )),
        Type::Reference(rf) if is_self(&rf.elem, self_name) => Ok(()),
        _ if r.reference.is_none() && r.colon_token.is_none() => Err(syn::Error::new_spanned(
            r,
            format!(
                "{noun} method `{name}` takes `self` by value, but a {noun} is shared: \
                 every route holds an `Arc` of it; take `&self` and use interior mutability \
                 (atomics, a `Mutex`, ...) for state that changes"
            ),
        )),
        _ => Err(syn::Error::new_spanned(
            r,
            format!(
                "{noun} method `{name}` must take `&self`: the {noun} is shared by its \
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
fn check_argument(ty: &Type, name: &Ident, front: Front) -> syn::Result<Type> {
    let (noun, or_skip) = (front.noun(), front.or_skip());
    match strip_groups(ty) {
        Type::Reference(_) => Err(syn::Error::new_spanned(
            ty,
            format!(
                "the argument of {noun} method `{name}` is decoded from the message body, \
                 so it must be an owned type (`String`, `Vec<u8>`, a struct, ...), not a reference"
            ),
        )),
        Type::ImplTrait(_) => Err(syn::Error::new_spanned(
            ty,
            format!(
                "{noun} method `{name}` cannot be generic: a route decodes one concrete \
                 argument type{or_skip}"
            ),
        )),
        _ => Ok(ty.clone()),
    }
}

/// Pulls return `Result<T, E>`; pushes `()` or `Result<(), E>`, where `E`
/// converts into `Status`.
fn check_output(sig: &Signature, kind: Kind, name: &Ident) -> syn::Result<Output> {
    let pull_msg = format!(
        "pull method `{name}` must return `Result<T, E>`: `T` is encoded as the reply body, \
         `E` is `Status` or an error that converts into it (`impl From<E> for Status`)"
    );
    match (&sig.output, kind) {
        (ReturnType::Default, Kind::Push) => Ok(Output::Unit),
        (ReturnType::Default, Kind::Pull) => Err(syn::Error::new_spanned(
            head(sig),
            format!("{pull_msg}, but it returns nothing"),
        )),
        (ReturnType::Type(_, ty), _) if result_ok(ty).is_some() => {
            let ok = result_ok(ty)
                .cloned()
                .unwrap_or_else(|| syn::parse_quote!(()));
            if kind == Kind::Push && !is_unit(&ok) {
                return Err(syn::Error::new_spanned(
                    ty,
                    format!(
                        "push method `{name}` must return `()` or `Result<(), E>`: \
                         a push has no reply"
                    ),
                ));
            }
            Ok(Output::Result {
                ok: Box::new(ok),
                ty: ty.clone(),
            })
        }
        (ReturnType::Type(_, ty), _) if is_result(ty) => Err(syn::Error::new_spanned(
            ty,
            format!(
                "write the return type of `{name}` as `Result<T, E>` (with its type \
                 arguments): the generated client returns `Result<T, Status>`"
            ),
        )),
        (ReturnType::Type(_, ty), Kind::Pull) => Err(syn::Error::new_spanned(ty, pull_msg)),
        (ReturnType::Type(_, ty), Kind::Push) if is_unit(ty) => Ok(Output::Unit),
        (ReturnType::Type(_, ty), Kind::Push) => Err(syn::Error::new_spanned(
            ty,
            format!(
                "push method `{name}` must return `()` or `Result<(), E>`: a push has no reply"
            ),
        )),
    }
}

fn is_unit(ty: &Type) -> bool {
    matches!(strip_groups(ty), Type::Tuple(t) if t.elems.is_empty())
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

/// `T` of a `…Result<T, ..>`.
fn result_ok(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = strip_groups(ty) else {
        return None;
    };
    let last = p.path.segments.last().filter(|s| s.ident == "Result")?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

/// `ty` without invisible groups or parentheses.
pub(crate) fn strip_groups(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(g) => ty = &g.elem,
            Type::Paren(p) => ty = &p.elem,
            _ => return ty,
        }
    }
}

/// The `ServiceSpec` expression (a constant) of a service named `name`.
pub(crate) fn spec(name: &str, uri: Option<&LitStr>, routes: &[Route]) -> TokenStream {
    let uri = option(uri);
    let methods = routes.iter().map(|route| {
        let name = route.method.unraw().to_string();
        let uri = option(route.uri.as_ref());
        let kind = match route.kind {
            Kind::Pull => quote!(Pull),
            Kind::Push => quote!(Push),
        };
        quote! {
            ::jaunt::router::MethodSpec {
                name: #name,
                uri: #uri,
                kind: ::jaunt::router::MethodKind::#kind,
            }
        }
    });
    quote! {
        ::jaunt::router::ServiceSpec {
            name: #name,
            uri: #uri,
            methods: &[#(#methods),*],
        }
    }
}

fn option(lit: Option<&LitStr>) -> TokenStream {
    match lit {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    }
}

/// The body of `Controller::register`: each route calls `call(this, method)`
/// on an `Arc` held in `this` — `call` is the path to the method, e.g.
/// `Self::add` or `<T as Kv>::add`.
pub(crate) fn registrations(
    this_init: &TokenStream,
    spec: &TokenStream,
    routes: &[Route],
    call: impl Fn(&Ident) -> TokenStream,
) -> TokenStream {
    // Locals the user's tokens cannot see.
    let this = Ident::new("this", Span::mixed_site());
    let ctx = Ident::new("ctx", Span::mixed_site());
    let arg = Ident::new("arg", Span::mixed_site());
    let each = routes.iter().enumerate().map(|(index, route)| {
        let (register, ctx_ty) = match route.kind {
            Kind::Pull => (quote!(pull), quote!(::jaunt::PullCtx)),
            Kind::Push => (quote!(push), quote!(::jaunt::PushCtx)),
        };
        let (params, args) = match &route.arg {
            Some(ty) => (quote!(#ctx: #ctx_ty, #arg: #ty), quote!(&#ctx, #arg)),
            None => (quote!(#ctx: #ctx_ty), quote!(&#ctx)),
        };
        let path = call(&route.method);
        let run = quote!(#path(&*#this, #args).await);
        // An error that does not convert is reported at the return type.
        let body = match &route.output {
            Output::Unit => run,
            Output::Result { ty, .. } => quote_spanned! {ty.span()=>
                ::jaunt::service::into_status(#run)
            },
        };
        quote! {
            {
                let #this = #this_init;
                routes.#register(&#spec.methods[#index], move |#params| {
                    let #this = ::std::sync::Arc::clone(&#this);
                    async move { #body }
                })?;
            }
        }
    });
    let unused = routes.is_empty().then(|| quote!(let _ = routes;));
    quote! {
        #(#each)*
        #unused
        ::core::result::Result::Ok(())
    }
}
