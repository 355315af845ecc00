//! `#[service]`: a trait both sides share. From it come the trait that
//! servers implement (its `async fn`s made `Send`), a `…Server` wrapper that
//! registers an implementation on a router, and a typed `…Client` generic
//! over the `Stub` that carries its calls.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::parse::Parser;
use syn::{FnArg, ItemTrait, LitStr, Pat, ReturnType, TraitItem, TraitItemFn, TypeParamBound};

use crate::routes::{self, take_options, Errors, Front, Kind, Output, Route};

/// Parses the macro's own arguments: nothing, or `uri = "..."`.
pub(crate) fn parse_args(attr: TokenStream, which: &str) -> syn::Result<Option<LitStr>> {
    let mut uri = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("uri") {
            let lit: LitStr = meta.value()?.parse()?;
            uri = Some(routes::check_uri(lit)?);
            Ok(())
        } else {
            Err(meta.error(format!(
                "unknown #[jaunt::{which}] argument: the only one is `uri = \"...\"` \
                 (the service's uri prefix, e.g. #[jaunt::{which}(uri = \"/kv\")])"
            )))
        }
    });
    parser.parse2(attr)?;
    Ok(uri)
}

/// Refuses two routes with the same explicit uri, or an explicit uri equal to
/// another method's default one.
pub(crate) fn check_unique(routes: &[Route], errors: &mut Errors) {
    for (i, route) in routes.iter().enumerate() {
        let Some(uri) = &route.uri else { continue };
        let value = uri.value();
        let clash = routes.iter().enumerate().find(|(j, other)| {
            *j != i
                && match &other.uri {
                    Some(o) => o.value() == value && *j < i,
                    None => {
                        let name = other.method.unraw().to_string();
                        value.trim_start_matches('/') == name
                    }
                }
        });
        if let Some((_, other)) = clash {
            errors.push(syn::Error::new_spanned(
                uri,
                format!(
                    "two routes would answer {value:?}: `{}` and `{}`; give one another uri",
                    other.method, route.method
                ),
            ));
        }
    }
}

/// The expansion of `#[service]` (with arguments `attr`) on `item`.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let uri = match parse_args(attr, "service") {
        Ok(uri) => uri,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let mut def: ItemTrait = match syn::parse2::<syn::Item>(item) {
        Ok(syn::Item::Trait(def)) => def,
        Ok(other) => {
            errors.push(syn::Error::new_spanned(
                &other,
                "#[jaunt::service] goes on a trait: `trait Kv { async fn get(&self, ctx: \
                 &PullCtx, key: String) -> Result<String, Status>; }` (for routes served by \
                 an `impl` block, use #[jaunt::controller])",
            ));
            let errors = errors.to_compile_errors();
            return quote!(#errors #other);
        }
        Err(e) => return e.to_compile_error(),
    };

    check_trait(&def, &mut errors);
    let routes = check_methods(&mut def, &mut errors);
    check_unique(&routes, &mut errors);
    if !errors.is_empty() {
        // The trait as written (less our attributes), so that uses of it
        // report nothing more than the mistakes above.
        let errors = errors.to_compile_errors();
        return quote!(#def #errors);
    }
    let uri = uri.as_ref();
    let server = server(&def, uri, &routes);
    let client = client(&def, &routes);
    let def = send_trait(def, &routes);
    quote! {
        #def
        #server
        #client
    }
}

fn check_trait(def: &ItemTrait, errors: &mut Errors) {
    let generic = "generic services are not supported: a service's routes decode and encode \
                   concrete types";
    if !def.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(&def.generics, generic));
    } else if let Some(clause) = &def.generics.where_clause {
        errors.push(syn::Error::new_spanned(clause, generic));
    }
    if let Some(unsafety) = &def.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            "a service trait cannot be `unsafe`",
        ));
    }
    if let Some(auto) = &def.auto_token {
        errors.push(syn::Error::new_spanned(
            auto,
            "a service trait cannot be `auto`",
        ));
    }
}

/// Checks every item; strips the `#[jaunt(..)]` attributes.
fn check_methods(def: &mut ItemTrait, errors: &mut Errors) -> Vec<Route> {
    let mut routes = Vec::new();
    for item in &mut def.items {
        match item {
            TraitItem::Fn(f) => {
                let options = match take_options(&mut f.attrs, &["uri", "idempotent"]) {
                    Ok(options) => options,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                };
                if let Some(body) = &f.default {
                    errors.push(syn::Error::new_spanned(
                        body,
                        format!(
                            "service method `{}` has a body: a service trait only declares \
                             its routes (the server implements them; the client calls them); \
                             put helpers in another trait or impl block",
                            f.sig.ident
                        ),
                    ));
                    continue;
                }
                match routes::check_route(&f.sig, options.uri, None, Front::Service) {
                    Ok(route) if options.idempotent && matches!(route.kind, Kind::Push) => {
                        errors.push(syn::Error::new_spanned(
                            &f.sig,
                            format!(
                                "service method `{}` is a push: only pulls can be \
                                 #[jaunt(idempotent)] (a push has no reply, so it is never \
                                 resent)",
                                f.sig.ident
                            ),
                        ));
                    }
                    Ok(mut route) => {
                        route.idempotent = options.idempotent;
                        routes.push(route);
                    }
                    Err(e) => errors.push(e),
                }
            }
            other => errors.push(syn::Error::new_spanned(
                &other,
                "a service trait holds only its routes (`async fn`s); constants, types and \
                 macros go elsewhere",
            )),
        }
    }
    routes
}

/// The trait as servers implement it: each `async fn` declared as a
/// `fn .. -> impl Future + Send` (so the router can run it on any thread),
/// which an `async fn` in the `impl` satisfies.
fn send_trait(mut def: ItemTrait, routes: &[Route]) -> ItemTrait {
    def.supertraits
        .push(syn::parse_quote!(::core::marker::Send));
    def.supertraits
        .push(syn::parse_quote!(::core::marker::Sync));
    def.supertraits
        .push(TypeParamBound::Lifetime(syn::Lifetime::new(
            "'static",
            Span::call_site(),
        )));
    if def.colon_token.is_none() {
        def.colon_token = Some(Default::default());
    }
    let mut routes = routes.iter();
    for item in &mut def.items {
        let TraitItem::Fn(TraitItemFn { sig, .. }) = item else {
            continue;
        };
        let Some(_route) = routes.next() else { break };
        sig.asyncness = None;
        let output = match &sig.output {
            ReturnType::Default => quote!(()),
            ReturnType::Type(_, ty) => quote!(#ty),
        };
        sig.output = syn::parse_quote! {
            -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
        };
    }
    def
}

fn server(def: &ItemTrait, uri: Option<&LitStr>, routes: &[Route]) -> TokenStream {
    let vis = &def.vis;
    let name = &def.ident;
    let server = format_ident!("{}Server", name.unraw());
    let client = format_ident!("{}Client", name.unraw());
    let spec = routes::spec(&name.unraw().to_string(), uri, routes);
    let register = routes::registrations(
        &quote!(::std::sync::Arc::clone(&self.0)),
        &quote!(Self::SPEC),
        routes,
        |method| quote!(<T as #name>::#method),
    );
    let doc = format!(
        "Serves [`{name}`] with an implementation of it: register it with \
         `router.service({server}::new(my_impl))` (or on a group). Its routes are \
         [`{server}::SPEC`]'s; [`{client}`] calls them."
    );
    quote! {
        #[doc = #doc]
        #vis struct #server<T>(::std::sync::Arc<T>);

        impl<T> #server<T> {
            /// The service's names: its uri and its routes'.
            pub const SPEC: &'static ::jaunt::router::ServiceSpec = &#spec;
        }

        impl<T: #name> #server<T> {
            /// Serves this implementation.
            pub fn new(service: T) -> Self {
                Self(::std::sync::Arc::new(service))
            }

            /// Serves an implementation shared with other code.
            pub fn from_arc(service: ::std::sync::Arc<T>) -> Self {
                Self(service)
            }

            /// The implementation.
            pub fn get_ref(&self) -> &::std::sync::Arc<T> {
                &self.0
            }
        }

        impl<T> ::core::clone::Clone for #server<T> {
            fn clone(&self) -> Self {
                Self(::std::sync::Arc::clone(&self.0))
            }
        }

        #[automatically_derived]
        impl<T: #name> ::jaunt::router::Controller<::jaunt::PullCtx, ::jaunt::PushCtx> for #server<T> {
            const SPEC: &'static ::jaunt::router::ServiceSpec = #server::<T>::SPEC;

            fn register(
                self: ::std::sync::Arc<Self>,
                routes: &mut ::jaunt::router::ControllerRoutes<'_, '_, ::jaunt::PullCtx, ::jaunt::PushCtx>,
            ) -> ::core::result::Result<(), ::jaunt::router::RouteError> {
                #register
            }
        }
    }
}

fn client(def: &ItemTrait, routes: &[Route]) -> TokenStream {
    let vis = &def.vis;
    let name = &def.ident;
    let server = format_ident!("{}Server", name.unraw());
    let client = format_ident!("{}Client", name.unraw());
    let fns: Vec<&TraitItemFn> = def
        .items
        .iter()
        .filter_map(|item| match item {
            TraitItem::Fn(f) => Some(f),
            _ => None,
        })
        .collect();
    let methods = routes.iter().zip(fns).enumerate().map(|(index, (route, f))| {
        let method = &route.method;
        let docs = f.attrs.iter().filter(|a| a.path().is_ident("doc"));
        let (param, value) = match &route.arg {
            Some(ty) => {
                let param = f
                    .sig
                    .inputs
                    .iter()
                    .nth(2)
                    .and_then(|input| match input {
                        FnArg::Typed(t) => match &*t.pat {
                            Pat::Ident(p) => Some(p.ident.clone()),
                            _ => None,
                        },
                        FnArg::Receiver(_) => None,
                    })
                    .unwrap_or_else(|| format_ident!("arg"));
                (quote!(, #param: #ty), quote!(#param))
            }
            None => (quote!(), quote!(())),
        };
        let call_ty = match route.kind {
            Kind::Pull => quote!(PullCall),
            Kind::Push => quote!(PushCall),
        };
        let kind_doc = match route.kind {
            Kind::Pull => format!(
                "Pulls the `{}` route of [`{name}`]: await the call for the reply \
                 (options first: `.timeout(..)`, `.meta(..)`, `.codec(..)`).",
                method.unraw()
            ),
            Kind::Push => format!(
                "Pushes to the `{}` route of [`{name}`]: await the call to queue it \
                 (options first: `.meta(..)`, `.codec(..)`).",
                method.unraw()
            ),
        };
        // The closure owns the argument and borrows the stub; the call runs
        // it with its options when awaited (no box, no clone).
        let (stub, uri, opts) = (
            format_ident!("stub", span = Span::mixed_site()),
            format_ident!("uri", span = Span::mixed_site()),
            format_ident!("opts", span = Span::mixed_site()),
        );
        let send = match route.kind {
            Kind::Pull => quote!(pull),
            Kind::Push => quote!(push),
        };
        let mark = route.idempotent.then(|| quote!(.idempotent()));
        let body = quote! {
            let (#stub, #uri) = (&self.stub, self.uris.get(#index));
            ::jaunt::service::#call_ty::new(#uri, move |#opts: ::jaunt::PullOptions| async move {
                ::jaunt::service::Stub::#send(#stub, #uri, &#value, #opts).await
            })#mark
        };
        match route.kind {
            Kind::Pull => {
                let ok = match &route.output {
                    Output::Result { ok, .. } => quote!(#ok),
                    Output::Unit => quote!(()),
                };
                quote! {
                    #(#docs)*
                    #[doc = ""]
                    #[doc = #kind_doc]
                    pub fn #method(&self #param) -> ::jaunt::service::PullCall<'_, impl ::jaunt::service::SendPull + '_, #ok> {
                        #body
                    }
                }
            }
            Kind::Push => quote! {
                #(#docs)*
                #[doc = ""]
                #[doc = #kind_doc]
                pub fn #method(&self #param) -> ::jaunt::service::PushCall<'_, impl ::jaunt::service::SendPush + '_> {
                    #body
                }
            },
        }
    });
    let doc = format!(
        "The typed client of [`{name}`]: one method per route, carried by any \
         [`Stub`](::jaunt::service::Stub) — a `Session` (or `&Session`), or anything \
         that chooses one."
    );
    quote! {
        #[doc = #doc]
        #[derive(Clone)]
        #vis struct #client<S = ::jaunt::Session> {
            stub: S,
            uris: ::jaunt::service::Uris,
        }

        impl<S> #client<S> {
            /// The service's names: its uri and its routes'.
            pub const SPEC: &'static ::jaunt::router::ServiceSpec = #server::<()>::SPEC;

            /// Calls through `stub`, with HTTP-style uris (the default, as
            /// Go erpc's).
            pub fn new(stub: S) -> Self {
                Self::with_naming(stub, ::jaunt::service::Naming::default())
            }

            /// Calls through `stub` with other uris: RPC-style names, or
            /// the service registered under a group.
            pub fn with_naming(stub: S, naming: ::jaunt::service::Naming) -> Self {
                static URIS: ::jaunt::service::UriTable =
                    ::jaunt::service::UriTable::new(#server::<()>::SPEC);
                Self { stub, uris: URIS.uris(&naming) }
            }

            /// What carries the calls.
            pub fn stub(&self) -> &S {
                &self.stub
            }

            /// The stub back.
            pub fn into_stub(self) -> S {
                self.stub
            }
        }

        impl<S: ::jaunt::service::Stub> #client<S> {
            #(#methods)*
        }

        impl<S> ::core::fmt::Debug for #client<S> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(::core::stringify!(#client)).field("uris", &self.uris).finish_non_exhaustive()
            }
        }
    }
}
