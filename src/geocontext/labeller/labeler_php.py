"""Geograph's labeller queue as its published code keeps it (geograph-project/geograph-project,
public_html/_scripts/labeler.json.php; the facts in ../shared/geograph-labeller.md, "The server
itself"), as state: the photos, the label table, the per-IP offsets. What it answers to a GET or a POST,
byte for byte where the code says; no HTTP here (standin.py serves it).

- Errors are `die('{"error":...}')`: status 200, JSON. No model: `{"error":"No model"}`; a POST to
  model=auto: `{"error":"Something went horribly wrong"}`; a GET to model=auto is served as model=type.
- GET: `limit` min(250, intval) if given (PHP-empty "0" is not), else rand(40, 60); sleep ceil(sqrt(limit)).
  `offset` intval if not PHP-empty ("0" is empty: "not given"), else this client IP's offset for the
  model, kept 24 h: a new IP gets the smallest multiple of 200 no other IP holds. Rows: the photos with
  no row of the model in the label table, in id order, LIMIT offset, limit. Each row: gridimage_id,
  user_id, realname (as MySQL gives them: strings); with title=1 the title (transliterated to ASCII) and
  no fullpath; else fullpath, the 224x224 square thumbnail's path (full=1: the full-size photo's). Then
  every PHP-empty field ("", "0", 0, null) is dropped. Reply {"prefix": STATIC_HOST, "sleep", "rows"};
  with no rows, nothing at all: status 200, an empty body.
- POST: the body json_decode'd; for each record in order `intval(image_id) + ": " + affected rows + "\n"`,
  the record stored with REPLACE INTO (model from the query, label, score, the request's User-Agent;
  1 for a new row, 2 for a replaced one; the unique key taken as (photo, model, label)). Where the
  embedding records go is not in that file: here, a guess, a label-less row each time (so an embeddings
  post takes a photo out of the queue, the worker posts labels first either way). A body that is not a JSON list or object: a PHP
  warning from foreach, no lines.
- For model names starting with "type" the rows also carry the photo's `embeddings` and `distance`
  (the code reads them from a table of its own, tmp_typev2_images; its columns are a guess)."""
from __future__ import annotations

import json
import math
import random
import re
import threading
import time
import unicodedata
from dataclasses import dataclass

AGENT_SECONDS = 24 * 3600.0
AGENT_STEP = 200
LIMIT_CAP = 250
FOREACH_WARNING = (b"<br />\n<b>Warning</b>:  foreach() argument must be of type array|object, null given in"
                   b" <b>/var/www/geograph/public_html/_scripts/labeler.json.php</b> on line <b>72</b><br />\n")


def php_empty(value) -> bool:
    """PHP's empty(): null, false, 0, 0.0, "", "0" and an empty array."""
    if value is None or value is False:
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value == 0
    return value in ("", "0") or (isinstance(value, (list, dict)) and not value)


def php_intval(value) -> int:
    """PHP's intval() of what json_decode or $_GET give: "12abc" is 12, "abc" 0, 1.9 is 1, true 1."""
    if isinstance(value, (bool, int)):
        return int(value)
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else 0
    if isinstance(value, str):
        match = re.match(r"\s*([+-]?\d+)", value)
        return int(match.group(1)) if match else 0
    return 0


def ascii_title(text: str) -> str:
    """The title as translit_to_ascii leaves it (near enough: accents dropped, other letters lost)."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


@dataclass
class Photo:
    gridimage_id: int
    title: str = ""
    thumb: str = ""  # path of the 224x224 square thumbnail on the photo host: the default fullpath
    full: str = ""  # path of the full-size photo (full=1)
    user_id: int = 1
    realname: str = "A. Photographer"
    embeddings: str = ""  # type models: the CLIP vector, base64 of 512 float32
    distance: str = ""


class LabelerPhp:
    def __init__(self, photos=(), static_host: str = "", seed: int = 0, clock=time.time, sleep: float | None = None):
        self.photos = sorted(photos, key=lambda p: p.gridimage_id)
        self.sleep = sleep  # the reply's `sleep` instead of ceil(sqrt(limit)): tests that must not wait
        self.static_host, self.rng, self.clock = static_host, random.Random(seed), clock
        self.labels: dict[tuple, dict] = {}  # (gridimage_id, model, label or a serial for null) -> the row
        self.done: dict[str, set[int]] = {}  # model -> photos with at least one row of it
        self.agents: dict[tuple[str, str], tuple[int, float]] = {}  # (model, client IP) -> (offset, since)
        self.lock = threading.Lock()
        self.serial = 0

    def get(self, query: dict, client_ip: str) -> bytes:
        model = query.get("model")
        if php_empty(model):
            return b'{"error":"No model"}'
        model = "type" if model == "auto" else model
        with self.lock:
            limit = self.rng.randint(40, 60)
            if not php_empty(query.get("limit")):
                limit = min(LIMIT_CAP, php_intval(query["limit"]))
            if not php_empty(query.get("offset")):
                offset = php_intval(query["offset"])
            else:
                offset = self._agent_offset(model, client_ip)
            if offset < 0 or limit < 0:  # an SQL error: no images
                return b""
            done = self.done.get(model, set())
            page = [p for p in self.photos if p.gridimage_id not in done][offset:offset + limit]
        if not page:
            return b""
        rows = [self._row(photo, model, query) for photo in page]
        sleep = float(math.ceil(math.sqrt(limit))) if self.sleep is None else self.sleep
        return json.dumps({"prefix": self.static_host, "sleep": sleep, "rows": rows}).encode()

    def _row(self, photo: Photo, model: str, query: dict) -> dict:
        row = {"gridimage_id": str(photo.gridimage_id), "user_id": str(photo.user_id), "realname": photo.realname}
        if model.startswith("type"):
            row.update(embeddings=photo.embeddings, distance=photo.distance)
        if not php_empty(query.get("title")):
            row["title"] = ascii_title(photo.title)
        else:
            row["fullpath"] = photo.thumb if php_empty(query.get("full")) else photo.full
        return {k: v for k, v in row.items() if not php_empty(v)}

    def _agent_offset(self, model: str, ip: str) -> int:
        now = self.clock()
        held = self.agents.get((model, ip))
        if held is not None and now - held[1] < AGENT_SECONDS:
            return held[0]
        taken = {off for (m, other), (off, since) in self.agents.items()
                 if m == model and other != ip and now - since < AGENT_SECONDS}
        offset = 0
        while offset in taken:
            offset += AGENT_STEP
        self.agents[(model, ip)] = (offset, now)
        return offset

    def post(self, query: dict, body: bytes, user_agent: str) -> bytes:
        model = query.get("model")
        if php_empty(model):
            return b'{"error":"No model"}'
        if model == "auto":
            return b'{"error":"Something went horribly wrong"}'
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, (list, dict)):
            return FOREACH_WARNING
        out = []
        with self.lock:  # one transaction
            for record in data if isinstance(data, list) else data.values():
                record = record if isinstance(record, dict) else {}
                image_id = php_intval(record.get("image_id"))
                out.append(f"{image_id}: {self._replace(image_id, model, record, user_agent)}\n")
        return "".join(out).encode()

    def _replace(self, image_id: int, model: str, record: dict, user_agent: str) -> int:
        """REPLACE INTO gridimage_label: the affected rows (2 when a row with the same key was replaced)."""
        label = record.get("label")
        if label is None:
            self.serial += 1
            key = (image_id, model, ("null", self.serial))
        else:
            key = (image_id, model, str(label))
        replaced = key in self.labels
        self.labels[key] = {"gridimage_id": image_id, "model": model, "label": label, "score": record.get("score"),
                            "user_agent": user_agent}
        self.done.setdefault(model, set()).add(image_id)
        return 2 if replaced else 1

    def left(self, model: str) -> list[int]:
        """The photos not yet labelled for `model`."""
        with self.lock:
            done = self.done.get(model, set())
            return [p.gridimage_id for p in self.photos if p.gridimage_id not in done]
