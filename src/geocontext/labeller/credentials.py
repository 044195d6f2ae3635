"""How a worker authenticates to the queue, and how the secrets stay out of its log lines.

Secrets reach the worker in the endpoint's userinfo (https://user:pass@host/...) or query (?key=K), in
--token-env NAME (a token read from the environment, so it is not on the command line; sent as
`Authorization: Bearer`) and in --header values. They go to the queue only, never to photo hosts. Every
line the worker prints passes through Secrets.scrub, which shows them as ***."""
from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

MASK = "***"
SECRET_WORDS = ("key", "token", "secret", "pass", "auth", "sig")  # a query field whose name holds one is secret
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
_WORDS = "|".join(SECRET_WORDS)
_FIELD = re.compile(rf"(?i)\b([\w.-]*(?:{_WORDS})[\w.-]*=)([^&\s'\"#;,)]+)")  # name=value in any text
_USERINFO = re.compile(r"(//)[^/@\s]+@")


def secret_field(name: str) -> bool:
    name = name.lower()
    return any(word in name for word in SECRET_WORDS)


def masked_url(text: str) -> str:
    """`text` (a URL, or a line naming one) with URL userinfo and secret-looking name=value fields as ***.
    Patterns rather than a URL parser: a malformed URL, or one inside an exception's message, is masked too."""
    return _FIELD.sub(lambda m: m.group(1) + MASK, _USERINFO.sub(r"\1" + MASK + "@", text))


class Secrets:
    """The secret strings a worker holds; scrub(text) masks them, and any userinfo or secret-looking
    query field, in a line about to be printed (an exception's text can carry the request's URL)."""

    def __init__(self, values=()):
        forms = {form for v in values if v and len(v) >= 3 for form in (v, quote(v, safe=""), quote_plus(v))}
        self.values = sorted(forms, key=len, reverse=True)  # longest first: a secret may contain another

    @classmethod
    def of(cls, endpoint: str, headers: dict) -> Secrets:
        parts = urlsplit(endpoint)
        values = [parts.password] + [v for k, v in parse_qsl(parts.query) if secret_field(k)]
        for value in headers.values():
            values += [value, value.split()[-1]]  # "Bearer T": the whole value and the token alone
        return cls(values)

    def scrub(self, text: str) -> str:
        text = masked_url(text)
        for value in self.values:
            text = text.replace(value, MASK)
        return text


def queue_headers(token_env: str | None = None, headers=(), env=os.environ) -> dict:
    """The headers every queue request carries: --header 'Name: value' ones and, with --token-env NAME,
    `Authorization: Bearer $NAME`. Errors name the option, never the value."""
    out = {}
    for k, text in enumerate(headers or (), 1):
        name, sep, value = text.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not _HEADER_NAME.fullmatch(name) or not value:  # the text may be a secret: not shown
            raise ValueError(f"--header number {k}: expected 'Name: value', e.g. 'X-Api-Key: ...'")
        out[name] = value
    if token_env:
        token = env.get(token_env, "").strip()
        if not token:
            raise ValueError(f"--token-env {token_env}: the environment variable {token_env} is not set or empty")
        out["Authorization"] = f"Bearer {token}"
    return out
