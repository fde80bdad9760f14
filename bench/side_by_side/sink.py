"""Where both services deliver: answers 200 to every POST, GET /count says how many."""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

received = 0


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        global received
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received += 1
        self.send_response(200)
        self.end_headers()

    def do_GET(self) -> None:
        body = str(received).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
