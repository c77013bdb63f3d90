//! The only `bindgen!` site: host bindings for the three worlds of `wit/policy.wit`.
//!
//! The `types` and `host` interfaces are generated once (in the auth world) and shared by the
//! other two with `with:`, so one `Host` implementation serves every plugin kind, and one
//! linker links any of them.

#![allow(missing_docs)]

pub mod auth {
    wasmtime::component::bindgen!({
        world: "auth",
        path: "../../../wit",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

pub mod rewrite {
    wasmtime::component::bindgen!({
        world: "rewrite",
        path: "../../../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasmgate:policy/types": super::auth::wasmgate::policy::types,
            "wasmgate:policy/host": super::auth::wasmgate::policy::host,
        },
    });
}

pub mod rate_limit {
    wasmtime::component::bindgen!({
        world: "rate-limit",
        path: "../../../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasmgate:policy/types": super::auth::wasmgate::policy::types,
            "wasmgate:policy/host": super::auth::wasmgate::policy::host,
        },
    });
}

pub use auth::wasmgate::policy::host as host_iface;
pub use auth::wasmgate::policy::types;
