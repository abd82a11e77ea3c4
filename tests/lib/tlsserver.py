"""A private CA and an HTTPS file server on 127.0.0.1, for tests of the agent's TLS trust."""
import http.server
import os
import socket
import ssl
import subprocess
import threading

from agentlib import write


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


# Key types as `openssl req -newkey` takes them: AWS's endpoints use RSA, many private CAs EC.
KEYS = {"ec": ["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"], "rsa": ["rsa:2048"]}


def make_ca(d, name, kind="ec"):
    """A self-signed CA in d: (key path, cert path)."""
    key, cert = os.path.join(d, f"{name}.key"), os.path.join(d, f"{name}.pem")
    openssl("req", "-x509", "-newkey", *KEYS[kind],
            "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return key, cert


def make_server_cert(d, ca_key, ca_cert, kind="ec"):
    """A certificate for IP 127.0.0.1 signed by the CA: (key path, cert path)."""
    key, csr, cert = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.pem"))
    ext = write(os.path.join(d, "server.ext"),
                "basicConstraints = CA:FALSE\n"
                "keyUsage = critical, digitalSignature\n"
                "extendedKeyUsage = serverAuth\n"
                "subjectAltName = IP:127.0.0.1\n")
    openssl("req", "-new", "-newkey", *KEYS[kind],
            "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1", cwd=d)
    openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-set_serial", "2",
            "-days", "2", "-extfile", ext, "-out", cert, cwd=d)
    return key, cert


class TLSServer(http.server.ThreadingHTTPServer):
    """HTTPS/1.1 on 127.0.0.1 serving {path: body}; records the paths it was asked for."""
    daemon_threads = True

    def __init__(self, cert, key, files):
        self.files, self.paths, self.handshake_errors = files, [], []
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                outer.paths.append(self.path)
                body = outer.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *a):
                pass

        super().__init__(("127.0.0.1", 0), H)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The handshake happens in the handler's thread, on its first read.
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        # A client refusing our certificate ends the handshake with an alert: expected.
        import sys
        self.handshake_errors.append(repr(sys.exc_info()[1]))

    def close(self):
        self.shutdown()
        self.server_close()

    def url(self, path):
        return f"https://127.0.0.1:{self.port}{path}"
