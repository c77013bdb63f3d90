// Go (chi) baseline gateway for the benches: the same endpoints as wasmgate, written the way a
// Go team would: chi router + Recoverer, encoding/json, one shared http.Client.
//
// Run with: go run . -listen 127.0.0.1:8081 -upstream http://127.0.0.1:9000/v1
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type chatRequest struct {
	Model    string    `json:"model"`
	Messages []message `json:"messages"`
	Stream   bool      `json:"stream"`
}

var validRoles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true, "function": true}

func writeError(w http.ResponseWriter, status int, msg, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "param": nil, "code": code}})
}

func parse(w http.ResponseWriter, r *http.Request) ([]byte, *chatRequest, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeError(w, 400, "unreadable body", "invalid_body")
		return nil, nil, false
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, 400, err.Error(), "invalid_json")
		return nil, nil, false
	}
	if req.Model == "" || len(req.Messages) == 0 {
		writeError(w, 400, "model and messages are required", "invalid_value")
		return nil, nil, false
	}
	for _, m := range req.Messages {
		if !validRoles[m.Role] {
			writeError(w, 400, "invalid role", "invalid_value")
			return nil, nil, false
		}
	}
	return body, &req, true
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:9000/v1", "upstream base URL")
	// The open-file limit here is 20,000 per process: at 10,000 client connections the proxy
	// cannot also open 10,000 upstream sockets, so the pool is bounded (requests beyond it wait
	// for a connection). net/http has no h2c prior-knowledge client without golang.org/x/net.
	maxConns := flag.Int("max-conns", 9000, "upstream connections at most (0: unbounded)")
	flag.Parse()

	client := &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        20000,
		MaxIdleConnsPerHost: 20000,
		MaxConnsPerHost:     *maxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}

	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Get("/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	// Scenario 2: parse + validate, answered locally.
	r.Post("/mock/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		_, req, ok := parse(w, r)
		if !ok {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-go", "object": "chat.completion", "created": time.Now().Unix(), "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": "Mock reply"}, "finish_reason": "stop"}},
			"usage":   map[string]any{"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
		})
	})
	// Scenarios 3-5: parse + validate, forward, relay (SSE flushed per read).
	r.Post("/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		body, _, ok := parse(w, r)
		if !ok {
			return
		}
		up, err := http.NewRequestWithContext(r.Context(), "POST", *upstream+"/chat/completions", bytes.NewReader(body))
		if err != nil {
			writeError(w, 500, "internal", "internal_error")
			return
		}
		up.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(up)
		if err != nil {
			writeError(w, 502, "upstream unreachable", "upstream_unreachable")
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		flusher, _ := w.(http.Flusher)
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				if flusher != nil {
					flusher.Flush()
				}
			}
			if err != nil {
				return
			}
		}
	})
	log.Printf("go-chi baseline listening on %s", *listen)
	log.Fatal(http.ListenAndServe(*listen, r))
}
