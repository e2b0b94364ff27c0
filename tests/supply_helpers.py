"""An index over HTTP on 127.0.0.1 that speaks PEP 691 JSON with upload times (PEP 700), for the cooling-off tests.

pip filters by upload time only what comes from an index over HTTP (files it reads from a directory have none),
so the file:// index of index_helpers.py cannot show a cooling-off. This one serves the files of such an Index
with an upload time per file (`times`, ISO text; `default` for the rest), or with none at all (`with_times=False`),
as an index that cannot serve the cooling-off does.
"""

import datetime
import hashlib
import http.server
import json
import threading
import urllib.parse
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def days_ago(days):
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class HttpIndex:
    def __init__(self, files, times=None, default=None, with_times=True):
        self.files, self.times, self.with_times = Path(files), dict(times or {}), with_times
        self.default = default or days_ago(30)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def project(self, name):
        files = []
        for path in sorted(self.files.glob("*.whl")):
            if canonicalize_name(parse_wheel_filename(path.name)[0]) != name:
                continue
            data = path.read_bytes()
            entry = {"filename": path.name, "url": f"/files/{path.name}", "size": len(data),
                     "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}
            if self.with_times:
                entry["upload-time"] = self.times.get(path.name, self.default)
            files.append(entry)
        meta = {"api-version": "1.1" if self.with_times else "1.0"}
        return {"meta": meta, "name": name, "files": files} if files else None

    def handler(self):
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = urllib.parse.urlsplit(self.path).path
                if path.startswith("/files/"):
                    target = index.files / Path(path).name
                    if target.is_file():
                        return self.reply(target.read_bytes(), "application/octet-stream")
                elif path.startswith("/simple/"):
                    name = canonicalize_name(path[len("/simple/"):].strip("/"))
                    page = index.project(name) if name else None
                    if page:
                        return self.reply(json.dumps(page).encode(), JSON_TYPE)
                self.send_error(404)

            def reply(self, data, content_type):
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
