"""Python (FastAPI) baseline gateway for the benches: the same endpoints as wasmgate.

Run with: UPSTREAM=http://127.0.0.1:9000/v1 CLIENT=httpx|aiohttp uvicorn main:app --port 8082 --no-access-log

POOL bounds the upstream connections (default 9000): the open-file limit here is 20,000 per
process, so at 10,000 client connections the proxy cannot also open 10,000 upstream sockets.
"""
import os
import time
from typing import Any, List, Literal, Optional, Union

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:9000/v1")
CLIENT = os.environ.get("CLIENT", "httpx")
POOL = int(os.environ.get("POOL", "9000"))

app = FastAPI()


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Optional[Union[str, List[Any]]] = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    messages: List[Message] = Field(min_length=1)
    stream: bool = False


_client = None


async def client():
    global _client
    if _client is None:
        if CLIENT == "aiohttp":
            import aiohttp

            _client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL))
        else:
            import httpx

            _client = httpx.AsyncClient(limits=httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL), timeout=60)
    return _client


@app.get("/health")
async def health():
    return {"status": "ok"}


@app.post("/mock/v1/chat/completions")
async def mock_chat(req: ChatRequest):
    return {
        "id": "chatcmpl-py",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Mock reply"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }


@app.post("/v1/chat/completions")
async def proxy(req: ChatRequest, request: Request):
    body = await request.body()
    c = await client()
    url = UPSTREAM + "/chat/completions"
    headers = {"content-type": "application/json"}
    if CLIENT == "aiohttp":
        resp = await c.post(url, data=body, headers=headers)
        if req.stream:
            async def relay():
                async for chunk in resp.content.iter_any():
                    yield chunk
                resp.release()
            return StreamingResponse(relay(), status_code=resp.status, media_type="text/event-stream")
        data = await resp.read()
        return Response(content=data, status_code=resp.status, media_type="application/json")
    upstream = c.build_request("POST", url, content=body, headers=headers)
    resp = await c.send(upstream, stream=True)
    if req.stream:
        async def relay():
            async for chunk in resp.aiter_raw():
                yield chunk
            await resp.aclose()
        return StreamingResponse(relay(), status_code=resp.status_code, media_type="text/event-stream")
    data = await resp.aread()
    await resp.aclose()
    return Response(content=data, status_code=resp.status_code, media_type="application/json")
