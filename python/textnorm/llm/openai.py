"""A chat-completions client (the HTTP schema vLLM, llama.cpp's server and hosted APIs speak),
standard library only: timeouts, retries with exponential backoff, a clear error when the
endpoint cannot be reached. The API key is read from the environment at each request and
never logged, printed or stored on the object."""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from textnorm._core import ParameterError

log = logging.getLogger("textnorm.llm")

# Statuses worth another try: timeouts, conflicts, rate limits and server errors.
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class EndpointError(RuntimeError):
    """The language-model endpoint failed: unreachable, timing out, or refusing requests."""


class OpenAICompatible:
    """A chat-completions endpoint.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is
            appended).
        model: the model name the server expects.
        api_key_env: environment variable holding the API key; unset means no key (local
            servers). The key is read at each request and never logged.
        timeout: seconds to wait for one answer.
        max_retries: further tries after a failed one (connection errors, timeouts, HTTP 408,
            409, 425, 429, 5xx, unreadable answers).
        backoff: first wait in seconds; it doubles each retry, capped at ``max_backoff``
            (a numeric ``Retry-After`` header is honoured up to the cap).
        temperature, max_tokens: sampling options sent with each request.
        sleep: the wait function (tests pass a fake).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        *,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        temperature: float = 0.7,
        max_tokens: int = 1024,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ParameterError(f"base_url: expected an http(s) URL, got {base_url!r}")
        if not isinstance(model, str) or not model:
            raise ParameterError(f"model: expected a non-empty model name, got {model!r}")
        if not timeout > 0:
            raise ParameterError(f"timeout: expected seconds > 0, got {timeout!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ParameterError(f"max_retries: expected an integer >= 0, got {max_retries!r}")
        if not backoff >= 0 or not max_backoff >= 0:
            raise ParameterError(f"backoff: expected seconds >= 0, got {backoff!r} (max {max_backoff!r})")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self._sleep = sleep

    @property
    def name(self) -> str:
        """Identity of the backend in cache keys."""
        return f"openai-compatible@{self.base_url}"

    def __repr__(self) -> str:
        return f"OpenAICompatible(base_url={self.base_url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

    def _request(self, body: bytes) -> urllib.request.Request:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return urllib.request.Request(f"{self.base_url}/chat/completions", data=body, headers=headers, method="POST")

    def complete(self, system: str, user: str) -> str:
        """The assistant's answer to one (system, user) exchange."""
        payload = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        body = json.dumps(payload).encode("utf-8")
        url = f"{self.base_url}/chat/completions"
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            wait = min(self.max_backoff, self.backoff * 2**attempt)
            try:
                with urllib.request.urlopen(self._request(body), timeout=self.timeout) as resp:
                    raw = resp.read()
                return _content(raw)
            except urllib.error.HTTPError as e:
                detail = _excerpt(e.read() if e.fp is not None else b"")
                if e.code not in RETRY_STATUS:
                    hint = f" (check the key in ${self.api_key_env})" if e.code in (401, 403) else ""
                    raise EndpointError(f"{url}: HTTP {e.code} {e.reason}{hint}: {detail}") from None
                last = f"HTTP {e.code} {e.reason}: {detail}"
                wait = _retry_after(e.headers.get("Retry-After"), wait, self.max_backoff)
            except (OSError, http.client.HTTPException) as e:  # refused, reset, timed out, truncated
                reason = getattr(e, "reason", e)
                last = f"{type(e).__name__}: {reason}"
            except _BadAnswer as e:
                last = f"unreadable answer: {e}"
            if attempt < self.max_retries:
                log.warning("%s: attempt %d of %d failed (%s); retrying in %.2f s",
                            url, attempt + 1, self.max_retries + 1, last, wait)
                self._sleep(wait)
        raise EndpointError(
            f"{url}: no usable answer after {self.max_retries + 1} attempts (last: {last}); "
            "is the server running and the base_url right?"
        )


class _BadAnswer(ValueError):
    pass


def _excerpt(raw: bytes, n: int = 200) -> str:
    text = raw.decode("utf-8", "replace").strip()
    return text[:n] + ("..." if len(text) > n else "")


def _retry_after(value: str | None, default: float, cap: float) -> float:
    try:
        return min(cap, max(0.0, float(value))) if value is not None else default
    except ValueError:
        return default


def _content(raw: bytes) -> str:
    """choices[0].message.content of a chat-completions answer (an empty string for none)."""
    try:
        data: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _BadAnswer(f"not JSON ({_excerpt(raw, 80)!r})") from e
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as e:
        raise _BadAnswer(f"no choices[0].message.content in {_excerpt(raw, 80)!r}") from e
    if content is None:
        return ""
    if not isinstance(content, str):
        raise _BadAnswer(f"content is {type(content).__name__}, not text")
    return content
