//! The `auth` world: decide who is calling, or refuse the request.

use serde::de::DeserializeOwned;

use crate::{AuthDecision, Request};

/// An auth plugin. Implement it on a unit struct and export it with [`export_auth!`](crate::export_auth).
pub trait AuthPlugin {
    /// The plugin's config, parsed from the gateway's JSON (see [`parse_config`](crate::parse_config)).
    type Config: DeserializeOwned + 'static;

    /// Checks beyond what deserializing does, run once per instance before any request.
    /// An error keeps the plugin from loading.
    fn configure(config: &Self::Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Decide who sent `req`: `AuthDecision::Allow(identity)` or `AuthDecision::Deny(response)`.
    fn authenticate(config: &Self::Config, req: Request) -> AuthDecision;
}

/// Export `$plugin` (an [`AuthPlugin`]) as this component's `auth` world. Use once per plugin crate.
#[macro_export]
macro_rules! export_auth {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static CONFIG: $crate::__private::ConfigSlot<<$plugin as $crate::AuthPlugin>::Config> =
                    const { $crate::__private::ConfigSlot::new() };
            }

            struct WasmgateAuthExport;

            impl $crate::__private::auth::Guest for WasmgateAuthExport {
                fn configure(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                    CONFIG.with(|slot| slot.configure(&config, <$plugin as $crate::AuthPlugin>::configure))
                }

                fn authenticate(req: $crate::Request) -> $crate::AuthDecision {
                    match CONFIG.with(|slot| slot.get()) {
                        ::std::option::Option::Some(config) => {
                            <$plugin as $crate::AuthPlugin>::authenticate(&config, req)
                        }
                        ::std::option::Option::None => $crate::AuthDecision::Deny($crate::__private::not_configured()),
                    }
                }
            }

    $crate::__private::auth::export!(WasmgateAuthExport with_types_in $crate::__private::auth);
        };
    };
}
