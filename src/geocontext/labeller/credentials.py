"""How a worker authenticates to the queue, and how the secrets stay out of its log lines.

Secrets reach the worker in the endpoint's userinfo (https://user:pass@host/...) or query (?key=K), in
--token-env NAME (a token read from the environment, so it is not on the command line; sent as
`Authorization: Bearer`) and in --header values. They go to the queue only, never to photo hosts. Every
line the worker prints passes through Secrets.scrub, which masks them by value first (as sent, URL-encoded,
and in base64 at any alignment, as an echoed `Authorization: Basic` header carries user:pass), then any
userinfo and secret-looking query field by pattern."""
from __future__ import annotations

import base64
import os
import re
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

MASK = "***"
SECRET_WORDS = ("key", "token", "secret", "pass", "auth", "sig")  # a query field whose name holds one is secret
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
_WORDS = "|".join(SECRET_WORDS)
_FIELD = re.compile(rf"(?i)\b([\w.-]*(?:{_WORDS})[\w.-]*=)([^&\s'\"#]+)")  # name=value in any text, up to & or a space
_USERINFO = re.compile(r"(//)[^/\s?#]*@")  # up to the authority's LAST "@", where parsers take the host from
_SHORTEST = 4  # a base64 form shorter than this is too common a string to mask


def secret_field(name: str) -> bool:
    name = name.lower()
    return any(word in name for word in SECRET_WORDS)


def masked_url(text: str) -> str:
    """`text` (a URL, or a line naming one) with URL userinfo and secret-looking name=value fields as ***.
    Patterns rather than a URL parser: a malformed URL, or one inside an exception's message, is masked too."""
    # a value masked already keeps what follows it (the ": " after a masked URL in a log line)
    return _FIELD.sub(lambda m: m.group(0) if m.group(2).startswith(MASK) else m.group(1) + MASK,
                      _USERINFO.sub(r"\1" + MASK + "@", text))


def userinfo(url: str) -> tuple[str, str] | None:
    """(user, password) as requests sends them (decoded; the host after the last "@"), or None."""
    authority = url.split("//", 1)[1] if "//" in url else ""
    authority = re.split(r"[/?#]", authority, maxsplit=1)[0]
    info, at, _ = authority.rpartition("@")
    if not at:
        return None
    user, _, password = info.partition(":")
    return unquote(user), unquote(password)


def base64_forms(secret: str) -> set[str]:
    """The text of `secret`'s bytes inside any base64 string: at each of the three alignments, standard
    and URL-safe alphabets, with and without padding."""
    raw = secret.encode("utf-8")
    forms = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        start, end = -(-8 * shift // 6), 8 * (shift + len(raw)) // 6  # the characters only `raw` decides
        forms |= {encoded[start:end], encoded if not shift else ""}
    forms |= {f.rstrip("=") for f in forms}
    forms |= {f.translate(str.maketrans("+/", "-_")) for f in forms}
    return {f for f in forms if len(f) >= _SHORTEST}


class Secrets:
    """The secret strings a worker holds; scrub(text) masks them, and any userinfo or secret-looking
    query field, in a line about to be printed (an exception's text can carry the request's URL)."""

    def __init__(self, values=()):
        values = [v for v in values if v and len(v) >= 3]
        forms = {form for v in values for form in (v, quote(v, safe=""), quote_plus(v), *base64_forms(v))}
        self.values = sorted(forms, key=len, reverse=True)  # longest first: a secret may contain another

    @classmethod
    def of(cls, endpoint: str, headers: dict) -> Secrets:
        values = [v for k, v in parse_qsl(urlsplit(endpoint).query) if secret_field(k)]
        credentials = userinfo(endpoint)
        if credentials:
            user, password = credentials
            values += [password, f"{user}:{password}"]  # requests sends base64("user:password") as Basic auth
        for name, value in headers.items():
            values += [value, value.split()[-1], f"{name}: {value}"]  # "Bearer T": the whole value and the token
        return cls(values)

    def scrub(self, text: str) -> str:
        for value in self.values:  # by value first: a pattern could stop inside a secret and show its rest
            text = text.replace(value, MASK)
        return masked_url(text)


def _control(value: str) -> str:
    """What makes `value` unusable in a header ("" if nothing): a newline or another control character."""
    if "\n" in value or "\r" in value:
        return "a newline"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "a control character"
    if not value.isascii():
        return "a character that is not ASCII"
    return ""


def queue_headers(token_env: str | None = None, headers=(), env=os.environ) -> dict:
    """The headers every queue request carries: --header 'Name: value' ones and, with --token-env NAME,
    `Authorization: Bearer $NAME`. Errors name the option, never the value."""
    out = {}
    for k, text in enumerate(headers or (), 1):
        name, sep, value = text.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not _HEADER_NAME.fullmatch(name) or not value:  # the text may be a secret: not shown
            raise ValueError(f"--header number {k}: expected 'Name: value', e.g. 'X-Api-Key: ...'")
        if _control(value):
            raise ValueError(f"--header number {k} ({name}): the value contains {_control(value)}")
        out[name] = value
    if token_env is not None:
        if not token_env.strip():
            raise ValueError("--token-env: expected the name of an environment variable holding the token, got ''")
        token = env.get(token_env, "").strip()
        if not token:
            raise ValueError(f"--token-env {token_env}: the environment variable {token_env} is not set or empty")
        if _control(token) or " " in token:
            raise ValueError(f"--token-env {token_env}: the token contains {_control(token) or 'a space'}")
        out["Authorization"] = f"Bearer {token}"
    return out
