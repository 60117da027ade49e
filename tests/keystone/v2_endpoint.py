#!/usr/bin/python3
"""A test-only identity endpoint that speaks the Keystone v2.0 wire format (current Keystone has no v2.0).

Started by tests/keystone-lab.sh. `POST /v2.0/tokens` (or `POST /tokens`) takes the v2.0 password body
    {"auth": {"tenantName": T, "passwordCredentials": {"username": U, "password": P}}}
checks (T, U, P) against TENANTS, logs in to the real Swift's tempauth with the mapped account and answers with a
v2.0 access document whose token is the tempauth token and whose object-store endpoint is the tempauth storage URL.
Also takes "tenantId" (the ids it hands out) instead of "tenantName"; without either, an unscoped token with an
empty catalog, as v2.0 did. `GET /_stats` counts the tokens issued per "tenant/user" ("/user" for unscoped ones);
`POST /_stats/reset` clears the counts.

Standard library only, run with Debian's /usr/bin/python3. Serves HTTP and, with --tls-port, HTTPS (the TLS
handshake runs in each connection's thread, so a slow client holds up nobody). With --swift-tls-port it also
fronts the real Swift with TLS, and the TLS_TENANTS' catalogs point there (TLS towards Swift, not only Keystone).
"""

import argparse
import hashlib
import json
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (tenant, user) -> (password, tempauth user, tempauth key)
TENANTS = {
    ("demo", "alice"): ("alice-pw", "test:tester", "testing"),
    ("space tenant", "bob"): ("bob-pw", "test2:tester2", "testing2"),
    ("dot.tenant", "dave"): ("dave-pw", "test:tester", "testing"),
    ("tls tenant", "erin"): ("erin-pw", "test:tester", "testing"),
}

# Tenants whose catalog points at Swift through the TLS front (--swift-tls-port), to test TLS towards Swift.
TLS_TENANTS = {("tls tenant", "erin")}


def stable_id(kind, name):
    return hashlib.md5(("%s:%s" % (kind, name)).encode()).hexdigest()


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}

    def add(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def snapshot(self):
        with self.lock:
            counts = dict(self.counts)
        return {"tokens_issued": counts, "total": sum(counts.values())}

    def reset(self):
        with self.lock:
            self.counts.clear()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "swiftftp-keystone-v2-lab/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    def send_json(self, status, body, extra_headers=()):
        data = json.dumps(body, indent=None).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error_json(self, status, title, message):
        headers = ()
        if status == 401:
            headers = (("WWW-Authenticate", 'Keystone uri="%s"' % self.base_url()),)
        self.send_json(status, {"error": {"message": message, "code": status, "title": title}}, headers)

    def base_url(self):
        scheme = "https" if self.server.tls else "http"
        return "%s://127.0.0.1:%d" % (scheme, self.server.server_address[1])

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def path_only(self):
        return self.path.split("?", 1)[0].rstrip("/") or "/"

    def version_doc(self):
        return {"version": {
            "status": "deprecated", "updated": "2016-08-04T00:00:00Z", "id": "v2.0",
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.identity-v2.0+json"}],
            "links": [{"href": self.base_url() + "/v2.0/", "rel": "self"}]}}

    def do_GET(self):
        path = self.path_only()
        if path == "/_stats":
            self.send_json(200, self.server.stats.snapshot())
        elif path in ("/healthcheck",):
            self.send_json(200, {"ok": True})
        elif path in ("/", "/v2.0"):
            self.send_json(200, self.version_doc())
        else:
            self.send_error_json(404, "Not Found", "The resource could not be found.")

    do_HEAD = do_GET

    def do_POST(self):
        path = self.path_only()
        body = self.read_body()
        if path == "/_stats/reset":
            self.server.stats.reset()
            self.send_json(200, self.server.stats.snapshot())
        elif path in ("/v2.0/tokens", "/tokens"):
            self.issue_token(body)
        else:
            self.send_error_json(404, "Not Found", "The resource could not be found.")

    def issue_token(self, body):
        try:
            auth = json.loads(body.decode("utf-8"))["auth"]
            tenant, tenant_id = auth.get("tenantName"), auth.get("tenantId")
            creds = auth["passwordCredentials"]
            user, password = creds["username"], creds["password"]
            if not all(isinstance(v, str) for v in (user, password)) or not all(
                    v is None or isinstance(v, str) for v in (tenant, tenant_id)):
                raise TypeError("not a string")
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            self.send_error_json(400, "Bad Request",
                                 "Expecting {\"auth\": {\"tenantName\": ..., \"passwordCredentials\": "
                                 "{\"username\": ..., \"password\": ...}}}.")
            return
        if tenant is None and tenant_id is not None:
            tenant = next((t for (t, _) in TENANTS if stable_id("tenant", t) == tenant_id), "\0unknown")
        if tenant is None:
            # No tenant: v2.0 answers with an unscoped token, whose catalog is empty.
            if not any(u == user and e[0] == password for (_, u), e in TENANTS.items()):
                self.send_error_json(401, "Unauthorized", "The request you have made requires authentication.")
                return
            self.server.stats.add("/%s" % user)
            self.send_json(200, {"access": {
                "token": {"id": uuid.uuid4().hex, "issued_at": iso(time.time()),
                          "expires": iso(time.time() + self.server.ttl), "audit_ids": [uuid.uuid4().hex[:22]]},
                "serviceCatalog": [],
                "user": {"id": stable_id("user", user), "name": user, "username": user, "roles": [],
                         "roles_links": []},
                "metadata": {"is_admin": 0, "roles": []}}})
            return
        entry = TENANTS.get((tenant, user))
        if entry is None or entry[0] != password:
            self.send_error_json(401, "Unauthorized", "The request you have made requires authentication.")
            return
        _, swift_user, swift_key = entry
        req = urllib.request.Request(self.server.swift_auth,
                                     headers={"X-Auth-User": swift_user, "X-Auth-Key": swift_key})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                token = resp.headers["X-Auth-Token"]
                storage_url = resp.headers["X-Storage-Url"]
                resp.read()
        except (urllib.error.URLError, OSError) as exc:
            self.send_error_json(503, "Service Unavailable", "tempauth login failed: %s" % exc)
            return
        if not token or not storage_url:
            self.send_error_json(503, "Service Unavailable", "tempauth gave no token or storage URL")
            return
        if (tenant, user) in TLS_TENANTS and self.server.swift_tls_base:
            path = storage_url.split("/", 3)[3]
            storage_url = "%s/%s" % (self.server.swift_tls_base, path)
        now = time.time()
        tenant_doc = {"id": stable_id("tenant", tenant), "name": tenant, "description": None, "enabled": True}
        roles = [{"name": "member"}]
        access = {"access": {
            "token": {"id": token, "issued_at": iso(now), "expires": iso(now + self.server.ttl),
                      "tenant": tenant_doc, "audit_ids": [uuid.uuid4().hex[:22]]},
            "serviceCatalog": [
                {"type": "object-store", "name": "swift", "endpoints_links": [],
                 "endpoints": [{"id": stable_id("endpoint", "swift"), "region": "RegionOne",
                                "publicURL": storage_url, "internalURL": storage_url,
                                "adminURL": storage_url}]},
                {"type": "identity", "name": "keystone", "endpoints_links": [],
                 "endpoints": [{"id": stable_id("endpoint", "keystone"), "region": "RegionOne",
                                "publicURL": self.base_url() + "/v2.0",
                                "internalURL": self.base_url() + "/v2.0",
                                "adminURL": self.base_url() + "/v2.0"}]},
            ],
            "user": {"id": stable_id("user", user), "name": user, "username": user,
                     "roles": roles, "roles_links": []},
            "metadata": {"is_admin": 0, "roles": [stable_id("role", "member")]},
        }}
        self.server.stats.add("%s/%s" % (tenant, user))
        self.send_json(200, access)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address, stats, swift_auth, ttl, tls_context=None, swift_tls_base=None):
        super().__init__(address, Handler)
        self.swift_tls_base = swift_tls_base
        self.stats = stats
        self.swift_auth = swift_auth
        self.ttl = ttl
        self.tls_context = tls_context
        self.tls = tls_context is not None

    def finish_request(self, request, client_address):
        # Runs in the connection's own thread: do the TLS handshake here, not in the accept loop.
        if self.tls_context is not None:
            request.settimeout(30)
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                sys.stderr.write("TLS handshake with %s failed: %s\n" % (client_address[0], exc))
                return
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def tls_front(port, ctx, upstream):
    """Terminates TLS on 127.0.0.1:port and forwards the plain bytes to `upstream` (the real Swift proxy)."""
    listener = socket.create_server(("127.0.0.1", port))

    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass

    def serve(conn):
        try:
            conn.settimeout(30)
            tls = ctx.wrap_socket(conn, server_side=True)
            tls.settimeout(None)
            up = socket.create_connection(upstream)
        except (OSError, ssl.SSLError):
            conn.close()
            return

        def client_to_swift():
            pump(tls, up)
            try:
                up.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        threading.Thread(target=client_to_swift, daemon=True).start()
        pump(up, tls)
        for s in (tls, up):
            try:
                s.close()
            except OSError:
                pass

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5002)
    parser.add_argument("--tls-port", type=int)
    parser.add_argument("--cert", help="PEM certificate for --tls-port")
    parser.add_argument("--key", help="PEM private key for --tls-port")
    parser.add_argument("--swift-auth", default="http://127.0.0.1:8080/auth/v1.0",
                        help="the tempauth v1.0 auth URL the tokens come from")
    parser.add_argument("--ttl", type=int, default=20, help="seconds until the advertised token expiry")
    parser.add_argument("--swift-tls-port", type=int,
                        help="also serve Swift over TLS here (with --cert/--key), for the TLS_TENANTS' catalogs")
    args = parser.parse_args()

    stats = Stats()
    swift_tls_base = None
    if args.swift_tls_port:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        host_port = args.swift_auth.split("/")[2]
        host, port = host_port.rsplit(":", 1)
        threading.Thread(target=tls_front, args=(args.swift_tls_port, ctx, (host, int(port))), daemon=True).start()
        swift_tls_base = "https://127.0.0.1:%d" % args.swift_tls_port
    servers = [Server(("127.0.0.1", args.port), stats, args.swift_auth, args.ttl, None, swift_tls_base)]
    if args.tls_port:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        servers.append(Server(("127.0.0.1", args.tls_port), stats, args.swift_auth, args.ttl, ctx, swift_tls_base))
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stderr.write("v2.0 endpoint on %s\n" % ", ".join(
        "%s://127.0.0.1:%d/v2.0" % ("https" if s.tls else "http", s.server_address[1]) for s in servers))
    sys.stderr.flush()
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
