"""LLM-written contrastive sets against a real chat-completions HTTP server started here on
127.0.0.1 (scripted answers): parsing, retries with backoff, timeouts, the JSONL cache and
resume, the API key never logged, and a clear error when the endpoint is unreachable."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import textnorm
from textnorm import ParameterError
from textnorm.llm import EndpointError, JsonlCache, OpenAICompatible, contrast_llm, parse_prompts

SECRET = "sk-test-SECRET-4242"


class Script:
    """Answers the server gives, in order; then HTTP 500."""

    def __init__(self) -> None:
        self.actions: list[tuple[Any, ...]] = []
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def next(self) -> tuple[Any, ...]:
        with self.lock:
            return self.actions.pop(0) if self.actions else ("status", 500, b"script exhausted", {})


def _completion(content: str | None) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).encode()


class Handler(BaseHTTPRequestHandler):
    script: Script

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.script.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
        action = self.script.next()
        kind = action[0]
        if kind == "sleep":
            time.sleep(action[1])
            action = ("answer", action[2])
            kind = "answer"
        if kind == "answer":
            self._send(200, _completion(action[1]), {})
        elif kind == "status":
            self._send(action[1], action[2], action[3])
        elif kind == "raw":
            self._send(200, action[1], {})
        elif kind == "truncated":  # promises 1000 bytes, sends 10, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"choices"')
            self.close_connection = True

    def _send(self, code: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)


@pytest.fixture()
def server() -> Iterator[tuple[str, Script]]:
    script = Script()
    handler = type("H", (Handler,), {"script": script})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script
    httpd.shutdown()
    httpd.server_close()


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, s: float) -> None:
        self.waits.append(s)


def _backend(url: str, sleeps: Sleeps | None = None, **kw: Any) -> OpenAICompatible:
    opts: dict[str, Any] = {"timeout": 2.0, "max_retries": 3, "backoff": 0.01, "sleep": sleeps or Sleeps()}
    opts.update(kw)
    return OpenAICompatible(url, "tiny-model", api_key_env="TEXTNORM_TEST_KEY", **opts)


def test_numbered_bullets_quotes_and_chatter(server: tuple[str, Script], monkeypatch: pytest.MonkeyPatch) -> None:
    url, script = server
    monkeypatch.setenv("TEXTNORM_TEST_KEY", SECRET)
    script.actions = [
        ("answer", "Sure! Here are 4 near-miss prompts:\n1. two dogs on a cat\n2) A cat on a dog\n"
                   "3. \"a cat under a dog\"\n4. two dogs on a cat\nHope this helps!"),
        ("answer", "- “a red cube”\n* a green cube\n• 'a blue ball'"),
        ("answer", '```json\n["a photo of a horse", "a photo of two cats"]\n```'),
    ]
    sets = contrast_llm(["a cat on a dog", "a blue cube", "a photo of a cat"], backend=_backend(url), k=3, filter=None)
    assert sets[0] == ["two dogs on a cat", "a cat under a dog"]  # target copy and repeat dropped
    assert sets[1] == ["a red cube", "a green cube", "a blue ball"]
    assert sets[2] == ["a photo of a horse", "a photo of two cats"]
    assert sets.rules(0) == ["llm", "llm"]
    req = script.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert req["body"]["model"] == "tiny-model"
    assert '"a cat on a dog"' in req["body"]["messages"][1]["content"]
    assert "3 near-miss prompts" in req["body"]["messages"][1]["content"]


def test_garbage_empty_and_no_key(server: tuple[str, Script], monkeypatch: pytest.MonkeyPatch) -> None:
    url, script = server
    monkeypatch.delenv("TEXTNORM_TEST_KEY", raising=False)
    script.actions = [("answer", "@@## ~~~ 123"), ("answer", ""), ("answer", None)]
    sets = contrast_llm(["a cat", "a dog", "a cow", "   ", ""], backend=_backend(url), k=5, filter=None)
    assert [sets[i] for i in range(5)] == [[]] * 5
    assert sets.empty() == [0, 1, 2, 3, 4]
    assert len(script.requests) == 3  # blank prompts cost no request
    assert "Authorization" not in script.requests[0]["headers"]


def test_retries_with_backoff_on_errors_timeouts_and_bad_bodies(server: tuple[str, Script]) -> None:
    url, script = server
    sleeps = Sleeps()
    script.actions = [
        ("status", 503, b"busy", {}),
        ("raw", b"<html>not json</html>"),
        ("truncated",),
        ("sleep", 0.6, "too late"),
        ("status", 429, b"slow down", {"Retry-After": "0.05"}),
        ("answer", "1. a dog"),
    ]
    b = _backend(url, sleeps, timeout=0.3, max_retries=5, backoff=0.01)
    assert b.complete("s", "u") == "1. a dog"
    assert len(script.requests) == 6
    assert sleeps.waits == [0.01, 0.02, 0.04, 0.08, 0.05]  # doubling, then Retry-After


def test_client_errors_are_not_retried(server: tuple[str, Script], monkeypatch: pytest.MonkeyPatch) -> None:
    url, script = server
    monkeypatch.setenv("TEXTNORM_TEST_KEY", SECRET)
    script.actions = [("status", 401, b'{"error": "bad key"}', {})]
    sleeps = Sleeps()
    with pytest.raises(EndpointError, match=r"HTTP 401.*TEXTNORM_TEST_KEY") as e:
        _backend(url, sleeps).complete("s", "u")
    assert SECRET not in str(e.value)
    assert len(script.requests) == 1 and sleeps.waits == []


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_unreachable_endpoint_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("TEXTNORM_TEST_KEY", SECRET)
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    sleeps = Sleeps()
    b = _backend(url, sleeps, max_retries=2, backoff=0.5, max_backoff=0.75)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(EndpointError, match=r"no usable answer after 3 attempts.*base_url") as e:
        contrast_llm(["a cat"], backend=b, filter=None)
    assert url in str(e.value)
    assert sleeps.waits == [0.5, 0.75]
    assert "retrying" in caplog.text
    for text in (caplog.text, str(e.value), repr(b)):
        assert SECRET not in text


def test_cache_resumes_and_never_asks_twice(server: tuple[str, Script], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, script = server
    monkeypatch.setenv("TEXTNORM_TEST_KEY", SECRET)
    cache = tmp_path / "llm" / "cache.jsonl"
    prompts = ["a cat", "a dog", "a cow"]
    script.actions = [("answer", "1. two cats"), ("answer", "1. two dogs"), ("status", 400, b"bad request", {})]
    with pytest.raises(EndpointError, match="HTTP 400"):
        contrast_llm(prompts, backend=_backend(url), k=2, cache=cache, filter=None)
    assert len(JsonlCache(cache)) == 2
    # A run killed mid-write leaves half a line: it is skipped, and later records stay readable.
    with cache.open("a", encoding="utf-8") as f:
        f.write('{"key": "dead')
    script.requests.clear()
    script.actions = [("answer", "1. two cows\n2. a horse")]
    sets = contrast_llm(prompts, backend=_backend(url), k=2, cache=cache, filter=None)
    assert [sets[i] for i in range(3)] == [["two cats"], ["two dogs"], ["two cows", "a horse"]]
    assert len(script.requests) == 1 and "a cow" in script.requests[0]["body"]["messages"][1]["content"]
    reloaded = JsonlCache(cache)
    assert len(reloaded) == 3 and reloaded.skipped_lines == 1
    script.requests.clear()
    again = contrast_llm(prompts + ["a cat"], backend=_backend(url), k=2, cache=reloaded, filter=None)
    assert script.requests == [] and again[3] == ["two cats"]
    assert SECRET not in cache.read_text(encoding="utf-8")
    # A different k is a different instruction: asked again.
    script.actions = [("answer", "1. two cats")]
    contrast_llm(["a cat"], backend=_backend(url), k=3, cache=cache, filter=None)
    assert len(script.requests) == 1


def test_custom_filter_and_k_limit(server: tuple[str, Script]) -> None:
    url, script = server
    script.actions = [("answer", "\n".join(f"{i}. prompt number {i}" for i in range(1, 9)))]
    drop_odd = lambda t, cands: [c for c in cands if int(c.split()[-1]) % 2 == 0]  # noqa: E731
    sets = contrast_llm(["x y"], backend=_backend(url), k=3, filter=drop_odd)
    assert sets[0] == ["prompt number 2", "prompt number 4", "prompt number 6"]


def test_bad_arguments() -> None:
    for kw in ({"base_url": "127.0.0.1:8000"}, {"model": ""}, {"timeout": 0}, {"max_retries": -1}, {"backoff": -1}):
        args: dict[str, Any] = {"base_url": "http://127.0.0.1:1/v1", "model": "m", **kw}
        with pytest.raises(ParameterError):
            OpenAICompatible(**args)
    b = OpenAICompatible("http://127.0.0.1:1/v1", "m")
    with pytest.raises(ParameterError, match="k: expected"):
        contrast_llm(["a"], backend=b, k=0)
    with pytest.raises(ParameterError, match="backend"):
        contrast_llm(["a"], backend=object())  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="cache"):
        contrast_llm(["a"], backend=b, cache=3)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="filter"):
        contrast_llm(["a"], backend=b, filter="yes")  # type: ignore[arg-type]
    assert textnorm.contrast_llm is contrast_llm


def test_parse_prompts_cases() -> None:
    assert parse_prompts("Prompt 1: a red cube\nPrompt 2: a blue ball") == ["a red cube", "a blue ball"]
    assert parse_prompts("**1. \"A cat.\"**\n**2.** a dog") == ["A cat.", "a dog"]
    assert parse_prompts("Here are the prompts:\n\na cat\na dog\nLet me know if you need more!") == ["a cat", "a dog"]
    assert parse_prompts("1. ok\n" + "2. " + "x " * 400) == ["ok"]
    assert parse_prompts("[1, 2]\n- a cat") == ["a cat"]
    assert parse_prompts("") == [] and parse_prompts("\n\n  \n") == []


def test_docstring_examples() -> None:
    import doctest

    import textnorm.llm.parse

    result = doctest.testmod(textnorm.llm.parse)
    assert result.attempted > 0 and result.failed == 0
