//! The `rate-limit` world: admit or refuse a request against host-kept quotas, then settle
//! what it really cost.

use serde::de::DeserializeOwned;

use crate::{Admission, Outcome, Request, Usage};

/// A rate-limit plugin. Implement it on a unit struct and export it with
/// [`export_rate_limit!`](crate::export_rate_limit).
pub trait RateLimitPlugin {
    /// The plugin's config, parsed from the gateway's JSON (see [`parse_config`](crate::parse_config)).
    type Config: DeserializeOwned + 'static;

    /// Checks beyond what deserializing does, run once per instance before any request.
    /// An error keeps the plugin from loading.
    fn configure(config: &Self::Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Admit or refuse `req`, reserving what it may cost. A `reservation` in the result makes
    /// the gateway call [`settle`](Self::settle) with it once the request is over (possibly
    /// on another instance, so it must carry everything `settle` needs).
    fn admit(config: &Self::Config, req: Request) -> Admission;

    /// The request `admit` reserved for is over; correct the reservation with the real cost.
    fn settle(config: &Self::Config, reservation: String, usage: Option<Usage>, outcome: Outcome);
}

/// Export `$plugin` (a [`RateLimitPlugin`]) as this component's `rate-limit` world. Use once
/// per plugin crate.
#[macro_export]
macro_rules! export_rate_limit {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static CONFIG: $crate::__private::ConfigSlot<<$plugin as $crate::RateLimitPlugin>::Config> =
                    const { $crate::__private::ConfigSlot::new() };
            }

            struct WasmgateRateLimitExport;

            impl $crate::__private::rate_limit::Guest for WasmgateRateLimitExport {
                fn configure(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                    CONFIG.with(|slot| slot.configure(&config, <$plugin as $crate::RateLimitPlugin>::configure))
                }

                fn admit(req: $crate::Request) -> $crate::Admission {
                    match CONFIG.with(|slot| slot.get()) {
                        ::std::option::Option::Some(config) => {
                            <$plugin as $crate::RateLimitPlugin>::admit(&config, req)
                        }
                        ::std::option::Option::None => $crate::Admission {
                            decision: $crate::Decision::Respond($crate::__private::not_configured()),
                            reservation: ::std::option::Option::None,
                        },
                    }
                }

                fn settle(
                    reservation: ::std::string::String,
                    usage: ::std::option::Option<$crate::Usage>,
                    outcome: $crate::Outcome,
                ) {
                    match CONFIG.with(|slot| slot.get()) {
                        ::std::option::Option::Some(config) => {
                            <$plugin as $crate::RateLimitPlugin>::settle(&config, reservation, usage, outcome)
                        }
                        ::std::option::Option::None => $crate::warn!("settle called before configure; ignored"),
                    }
                }
            }

    $crate::__private::rate_limit::export!(WasmgateRateLimitExport with_types_in $crate::__private::rate_limit);
        };
    };
}
