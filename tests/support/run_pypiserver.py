"""Runs the real pypiserver (its WSGI app) on 127.0.0.1, port 0, and prints
`listening on 127.0.0.1:PORT` once bound, for tests/support/pypi.rs. Exits
when its standard input closes (the test dropped it).

With a second argument, a directory of PEP 740 provenance objects
(`<filename>.provenance`), it adds what pypiserver lacks and PyPI has: the
Integrity API (`GET /integrity/<project>/<version>/<filename>/provenance`)
and the `data-provenance` attribute on the project pages' links to files
that have one (pypiserver's pages are asked for as HTML, PEP 503). Under
`/rekor/` it answers as a Rekor log that cannot prove anything: 404.

With FILES_BASE in the environment (`http://host:port`), its pages link
every file there instead, as an index whose files live on a separate host
does. With STATUS_FILE, while that file exists its text is every project's
status (PEP 792 `pypi:project-status` meta tag), as an index that
quarantines a project says it."""
import os
import re
import sys
import threading
import wsgiref.simple_server

import pypiserver

app = pypiserver.app(roots=[sys.argv[1]], disable_fallback=True, authenticate=[], password_file=".")
prov_dir = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
files_base = os.environ.get("FILES_BASE")
status_file = os.environ.get("STATUS_FILE")

LINK = re.compile(r'<a href="([^"#]*/)?([^"/#]+)(#[^"]*)?"')


def provenance_of(filename):
    if prov_dir is None or "/" in filename:
        return None
    path = os.path.join(prov_dir, filename + ".provenance")
    return path if os.path.exists(path) else None


def with_provenance(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.startswith("/rekor/"):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no proof here\n"]
    if path.startswith("/integrity/") and path.endswith("/provenance"):
        parts = path.split("/")
        found = provenance_of(parts[-2]) if len(parts) == 6 else None
        if found is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no provenance\n"]
        with open(found, "rb") as f:
            body = f.read()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if (prov_dir is None and files_base is None and status_file is None) \
            or not path.startswith("/simple/") \
            or path == "/simple/":
        return app(environ, start_response)
    environ["HTTP_ACCEPT"] = "text/html"
    project = path.strip("/").split("/")[-1]
    seen = {}

    def capture(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, headers
        return lambda data: None

    body = b"".join(app(environ, capture)).decode()

    def add(m):
        filename = m.group(2)
        link = m.group(0)
        if files_base is not None:
            link = link.replace('href="/', f'href="{files_base}/', 1)
        if provenance_of(filename) is None:
            return link
        version = filename.split("-")[1].removesuffix(".tar.gz") if "-" in filename else "0"
        url = f"/integrity/{project}/{version}/{filename}/provenance"
        return link + f' data-provenance="{url}"'

    body = LINK.sub(add, body)
    if status_file is not None and os.path.exists(status_file):
        with open(status_file) as f:
            status = f.read().strip()
        body = body.replace("<head>", f'<head><meta name="pypi:project-status" content="{status}">', 1)
    body = body.encode()
    headers = [(k, v) for k, v in seen["headers"] if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(body))))
    start_response(seen["status"], headers)
    return [body]


class Quiet(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


srv = wsgiref.simple_server.make_server("127.0.0.1", 0, with_provenance, handler_class=Quiet)
threading.Thread(target=srv.serve_forever, daemon=True).start()
print(f"listening on 127.0.0.1:{srv.server_port}", flush=True)
sys.stdin.read()
