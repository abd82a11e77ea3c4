"""A loopback HTTP server of fixed bytes with Range support, a per-connection rate cap
and cuts mid-body: the https/http side of the artifact tests and benchmarks."""
import http.server
import re
import socket
import threading
import time


class ByteServer:
    """Serves {path: bytes} on 127.0.0.1 (TCP_NODELAY). rate: bytes per second per
    connection (0: unlimited); ranges=False: no Accept-Ranges header (Range is honoured anyway). cut(path, after): the next GET of path sends `after`
    bytes of its body and closes. fail(path, status, count): the next count GETs of path
    answer status with no body (an origin shedding load: 503, 429). length=False: a ranged
    answer's Content-Range gives the object's length as "*" (unknown). self.gets: (path,
    Range header or None) per GET."""

    def __init__(self, served, rate=0, ranges=True, length=True):
        self.served = dict(served)
        self.ranges = ranges
        self.length = length
        self.rate = rate
        self.cuts = {}
        self.fails = {}
        self.gets = []
        self.lock = threading.Lock()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def cut(self, path, after):
        with self.lock:
            self.cuts[path] = after

    def fail(self, path, status, count=1):
        with self.lock:
            self.fails[path] = (status, count)

    def shutdown(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self):
                body = srv.served.get(self.path)
                rng = self.headers.get("Range")
                with srv.lock:
                    srv.gets.append((self.path, rng))
                    cut = srv.cuts.pop(self.path, None)
                    status, left = srv.fails.get(self.path, (None, 0))
                    if left > 0:
                        srv.fails[self.path] = (status, left - 1)
                if left > 0 or body is None:
                    self.send_response(status if left > 0 else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start, end = 0, len(body) - 1
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
                if m:
                    start = int(m.group(1))
                    if m.group(2):
                        end = min(end, int(m.group(2)))
                    self.send_response(206)
                    total = len(body) if srv.length else "*"
                    self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(end - start + 1))
                self.send_header("ETag", '"fixed"')
                if srv.ranges:
                    self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                self._send(body[start:end + 1], cut)

            def _send(self, data, cut):
                if cut is not None:
                    data = data[:cut]
                step = 64 * 1024
                t0 = time.monotonic()
                for off in range(0, len(data), step):
                    self.wfile.write(data[off:off + step])
                    if srv.rate:
                        ahead = (off + step) / srv.rate - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
                if cut is not None:
                    self.close_connection = True
                    self.request.shutdown(socket.SHUT_RDWR)

            def log_message(self, *a):
                pass
        return H
