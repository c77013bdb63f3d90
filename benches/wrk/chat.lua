-- wrk script: POST a small chat request (the report's body), with the demo key.
wrk.method = "POST"
wrk.body = '{"model":"mock-gpt-4o-mini","messages":[{"role":"user","content":"test"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("WASMGATE_KEY") or "sk-wasmgate-demo")
