module wasmgate/bench/gochi

go 1.19

require github.com/go-chi/chi/v5 v5.0.7

// Built offline from Debian's golang-github-go-chi-chi-dev sources.
replace github.com/go-chi/chi/v5 => /usr/share/gocode/src/github.com/go-chi/chi
