"""What the queue's replies mean. Geograph's server (labeler.json.php, ../shared/geograph-labeller.md
"The server itself") answers a stored post with plain text, one `<image_id>: <n>` line per record in
the order posted (n: the rows the database touched, 1 new or 2 replaced); it reports errors as JSON
with status 200 (`{"error": "No model"}`), and a fetch with nothing to label as an empty body.

A post is accepted when the reply is a 2xx and either
- one `<id>: <n>` line per record posted, the ids those of the records in order, every n >= 1; or
- a JSON object with no `error` (or an empty one), `"ok": true` if it sends `ok` and `"status": "ok"` if
  it sends `status` (the forms other queue servers send: `{"status": "ok"}`).
Anything else (an HTML page or a PHP warning, `{"error": ...}`, fewer lines, a cut reply) is not."""
from __future__ import annotations

import json
import re

from .transfer import Reply

LINE = re.compile(r"(-?\d+): *(-?\d*)")
# errors that a retry cannot fix: the server's own words, and what the operator should change
PERMANENT = {"No model": "the endpoint needs ?model=NAME (e.g. model=clip)",
             "Something went horribly wrong": "the server refuses posts to model=auto; name the model (e.g. model=clip)"}


class ServerError(Exception):
    """A 200 reply carrying `{"error": ...}`; `permanent` when retrying cannot help (PERMANENT)."""

    def __init__(self, error: str):
        self.error = error
        self.advice = PERMANENT.get(error.strip(), "")
        super().__init__(f"the server says error: {error[:200]!r}" + (f" ({self.advice})" if self.advice else ""))

    @property
    def permanent(self) -> bool:
        return bool(self.advice)


def server_error(content: bytes) -> ServerError | None:
    """The `{"error": ...}` a 200 reply carries, if it is one."""
    try:
        data = json.loads(content)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("error"):
        return ServerError(str(data["error"]))
    return None


def refusal(reply: Reply, records: list[dict]) -> str:
    """"" when a post's reply says the server stored `records` (the rule in this module's docstring), else why not."""
    if not 200 <= reply.status < 300:
        return f"HTTP {reply.status}"
    text = reply.content.decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and all(LINE.fullmatch(line) for line in lines):
        return _line_refusal(lines, records)
    error = server_error(reply.content)
    if error is not None:
        return str(error)
    try:
        data = json.loads(reply.content)
    except ValueError:
        return f"reply is neither one '<id>: <n>' line per record nor JSON ({reply.text(80)!r})"
    if not isinstance(data, dict):
        return f"reply is a JSON {type(data).__name__}, not '<id>: <n>' lines or an object ({reply.text(80)!r})"
    if "ok" in data and data["ok"] is not True:
        return f"the server says ok: {data['ok']!r}"
    if "status" in data and str(data["status"]).lower() != "ok":
        return f"the server says status: {str(data['status'])[:80]!r}"
    return ""


def _line_refusal(lines: list[str], records: list[dict]) -> str:
    if len(lines) != len(records):
        return f"{len(lines)} '<id>: <n>' lines for {len(records)} records"
    for k, (line, record) in enumerate(zip(lines, records), 1):
        image_id, count = LINE.fullmatch(line).groups()
        if int(image_id) != record.get("image_id"):
            return f"line {k} is {line!r}, expected image {record.get('image_id')}"
        if not count or int(count) < 1:
            return f"line {k} is {line!r}: the record was not stored"
    return ""


def fetched(content: bytes) -> dict | str:
    """A fetch reply's JSON object ({} for an empty body: nothing to label now), else why it is unusable.
    Raises ServerError for `{"error": ...}`."""
    if not content.strip():
        return {}
    error = server_error(content)
    if error is not None:
        raise error
    try:
        data = json.loads(content)
    except ValueError:
        return f"reply is not JSON ({content[:80].decode('utf-8', 'replace')!r})"
    if not isinstance(data, dict):
        return f"reply is a JSON {type(data).__name__}, expected an object with rows"
    return data
