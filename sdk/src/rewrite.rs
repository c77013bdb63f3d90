//! The `rewrite` world: change a request before it goes upstream, or answer it directly.

use serde::de::DeserializeOwned;

use crate::{Decision, Request};

/// A rewrite plugin. Implement it on a unit struct and export it with [`export_rewrite!`](crate::export_rewrite).
pub trait RewritePlugin {
    /// The plugin's config, parsed from the gateway's JSON (see [`parse_config`](crate::parse_config)).
    type Config: DeserializeOwned + 'static;

    /// Checks beyond what deserializing does, run once per instance before any request.
    /// An error keeps the plugin from loading.
    fn configure(config: &Self::Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Decide what to do with `req`: `Continue`, `Mutate(edits)` or `Respond(response)`.
    fn rewrite(config: &Self::Config, req: Request) -> Decision;
}

/// Export `$plugin` (a [`RewritePlugin`]) as this component's `rewrite` world. Use once per plugin crate.
#[macro_export]
macro_rules! export_rewrite {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static CONFIG: $crate::__private::ConfigSlot<<$plugin as $crate::RewritePlugin>::Config> =
                    const { $crate::__private::ConfigSlot::new() };
            }

            struct WasmgateRewriteExport;

            impl $crate::__private::rewrite::Guest for WasmgateRewriteExport {
                fn configure(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                    CONFIG.with(|slot| slot.configure(&config, <$plugin as $crate::RewritePlugin>::configure))
                }

                fn rewrite(req: $crate::Request) -> $crate::Decision {
                    match CONFIG.with(|slot| slot.get()) {
                        ::std::option::Option::Some(config) => {
                            <$plugin as $crate::RewritePlugin>::rewrite(&config, req)
                        }
                        ::std::option::Option::None => $crate::Decision::Respond($crate::__private::not_configured()),
                    }
                }
            }

    $crate::__private::rewrite::export!(WasmgateRewriteExport with_types_in $crate::__private::rewrite);
        };
    };
}
