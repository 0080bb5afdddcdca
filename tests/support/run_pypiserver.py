"""Runs the real pypiserver (its WSGI app) on 127.0.0.1, port 0, and prints
`listening on 127.0.0.1:PORT` once bound, for tests/support/pypi.rs. Exits
when its standard input closes (the test dropped it)."""
import sys
import threading
import wsgiref.simple_server

import pypiserver

app = pypiserver.app(roots=[sys.argv[1]], disable_fallback=True, authenticate=[], password_file=".")


class Quiet(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


srv = wsgiref.simple_server.make_server("127.0.0.1", 0, app, handler_class=Quiet)
threading.Thread(target=srv.serve_forever, daemon=True).start()
print(f"listening on 127.0.0.1:{srv.server_port}", flush=True)
sys.stdin.read()
