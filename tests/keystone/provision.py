#!/usr/bin/python3
"""Creates, idempotently, what swiftftp's Keystone tests expect in the lab Keystone (tests/keystone-lab.sh).

Existing domains, projects, users, roles, services and endpoints are kept as they are; missing ones are created.
The application credential is recreated when the stored one no longer logs in. With --smoke, also proves a token of
alice works on the Keystone-authenticated Swift proxy (container and object PUT, GET, DELETE). With --check-only,
only the application credential and the smoke test.

Standard library only (Keystone's REST API), run with /usr/bin/python3.
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

APP_CRED_NAME = "swiftftp-test"


def log(msg):
    sys.stderr.write("keystone-lab: %s\n" % msg)


class Keystone:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def call(self, method, path, token=None, body=None, expect=(200, 201, 204), query=None):
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["X-Auth-Token"] = token
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, hdrs, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            status, hdrs, raw = exc.code, exc.headers, exc.read()
        if expect and status not in expect:
            raise SystemExit("keystone-lab: %s %s -> %d %s" % (method, path, status, raw[:500].decode("utf-8", "replace")))
        return status, hdrs, (json.loads(raw) if raw else None)

    def password_token(self, user, password, user_domain, project=None, project_domain=None, expect=(201,)):
        auth = {"identity": {"methods": ["password"], "password": {
            "user": {"name": user, "domain": {"name": user_domain}, "password": password}}}}
        if project:
            auth["scope"] = {"project": {"name": project, "domain": {"name": project_domain}}}
        status, hdrs, body = self.call("POST", "/auth/tokens", body={"auth": auth}, expect=expect)
        return status, hdrs.get("X-Subject-Token"), body

    def app_cred_works(self, cred_id, secret):
        auth = {"identity": {"methods": ["application_credential"],
                             "application_credential": {"id": cred_id, "secret": secret}}}
        status, _, _ = self.call("POST", "/auth/tokens", body={"auth": auth}, expect=None)
        return status == 201


class Provisioner:
    """Admin calls; the admin token is renewed when it expires (the lab's tokens live for seconds)."""

    def __init__(self, ks, login):
        self.ks = ks
        self.login = login
        self.token = login()

    def call(self, method, path, body=None, expect=(200, 201, 204), query=None):
        status, hdrs, data = self.ks.call(method, path, self.token, body, expect=None, query=query)
        if status == 401:
            self.token = self.login()
            status, hdrs, data = self.ks.call(method, path, self.token, body, expect=None, query=query)
        if status not in expect:
            raise SystemExit("keystone-lab: %s %s -> %d %s" % (method, path, status, json.dumps(data)[:500]))
        return status, hdrs, data

    def find_one(self, collection, key, **query):
        _, _, body = self.call("GET", "/" + collection, query=query)
        items = body[key]
        return items[0] if items else None

    def ensure(self, collection, key, find, create):
        found = self.find_one(collection, collection, **find)
        if found:
            return found["id"]
        _, _, body = self.call("POST", "/" + collection, body={key: create}, expect=(201,))
        log("created %s %r" % (key, create.get("name")))
        return body[key]["id"]

    def role(self, name):
        return self.ensure("roles", "role", {"name": name}, {"name": name})

    def domain(self, name):
        return self.ensure("domains", "domain", {"name": name}, {"name": name, "enabled": True})

    def project(self, name, domain_id):
        return self.ensure("projects", "project", {"name": name, "domain_id": domain_id},
                           {"name": name, "domain_id": domain_id, "enabled": True})

    def user(self, name, domain_id, password):
        return self.ensure("users", "user", {"name": name, "domain_id": domain_id},
                           {"name": name, "domain_id": domain_id, "password": password, "enabled": True})

    def grant(self, project_id, user_id, role_id):
        self.call("PUT", "/projects/%s/users/%s/roles/%s" % (project_id, user_id, role_id), expect=(204,))

    def object_store(self, url, region):
        service_id = None
        _, _, body = self.call("GET", "/services", query={"type": "object-store"})
        for service in body["services"]:
            if service.get("name") == "swift":
                service_id = service["id"]
        if service_id is None:
            _, _, body = self.call("POST", "/services", expect=(201,), body={"service": {
                "name": "swift", "type": "object-store", "description": "swiftftp lab Swift (Keystone auth)",
                "enabled": True}})
            service_id = body["service"]["id"]
            log("created service swift (object-store)")
        _, _, body = self.call("GET", "/endpoints", query={"service_id": service_id})
        kept = set()
        for ep in body["endpoints"]:
            if ep["interface"] in kept or ep["url"] != url or ep.get("region_id") != region:
                self.call("DELETE", "/endpoints/" + ep["id"], expect=(204,))
                log("deleted endpoint %s %s %s" % (ep["interface"], ep.get("region_id"), ep["url"]))
            else:
                kept.add(ep["interface"])
        for interface in ("public", "internal", "admin"):
            if interface not in kept:
                self.call("POST", "/endpoints", expect=(201,), body={"endpoint": {
                    "service_id": service_id, "interface": interface, "url": url, "region_id": region,
                    "enabled": True}})
                log("created %s object-store endpoint %s" % (interface, url))


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def write(path, value):
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(value + "\n")
    os.replace(tmp, path)


def ensure_app_cred(ks, state, user_id):
    id_file, secret_file = os.path.join(state, "app-cred-id"), os.path.join(state, "app-cred-secret")
    cred_id, secret = read(id_file), read(secret_file)
    if cred_id and secret and ks.app_cred_works(cred_id, secret):
        return
    # Creating an application credential takes a token of its owner, scoped to the project.
    _, token, _ = ks.password_token("alice", "alice-pw", "Default", "demo", "Default")
    _, _, body = ks.call("GET", "/users/%s/application_credentials" % user_id, token,
                         query={"name": APP_CRED_NAME})
    for old in body["application_credentials"]:
        ks.call("DELETE", "/users/%s/application_credentials/%s" % (user_id, old["id"]), token, expect=(204,))
    _, _, body = ks.call("POST", "/users/%s/application_credentials" % user_id, token, expect=(201,), body={
        "application_credential": {"name": APP_CRED_NAME,
                                   "description": "swiftftp tests: alice on project demo"}})
    cred = body["application_credential"]
    write(secret_file, cred["secret"])
    write(id_file, cred["id"])
    log("created application credential %s (%s)" % (APP_CRED_NAME, cred["id"]))


def smoke(ks, region):
    """A token of alice on demo: PUT a container and an object through the object-store endpoint, GET it back."""
    _, token, body = ks.password_token("alice", "alice-pw", "Default", "demo", "Default")
    storage = None
    for service in body["token"]["catalog"]:
        if service["type"] == "object-store":
            for ep in service["endpoints"]:
                if ep["interface"] == "public" and ep["region_id"] == region:
                    storage = ep["url"]
    if not storage:
        raise SystemExit("keystone-lab: no public object-store endpoint in alice's catalog")
    payload = b"keystone-lab smoke test\n"

    def swift(method, path, data=None, expect=(200, 201, 202, 204)):
        req = urllib.request.Request(storage + path, data=data, method=method, headers={"X-Auth-Token": token})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        if status not in expect:
            raise SystemExit("keystone-lab: smoke test %s %s -> %d %s" % (method, storage + path, status, raw[:300]))
        return raw

    container = "/keystone-lab-smoke"
    swift("PUT", container)
    swift("PUT", container + "/probe.txt", payload)
    got = swift("GET", container + "/probe.txt")
    swift("DELETE", container + "/probe.txt")
    swift("DELETE", container)
    if got != payload:
        raise SystemExit("keystone-lab: smoke test read back %r" % got)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="Keystone v3 URL")
    parser.add_argument("--admin-password", required=True)
    parser.add_argument("--service-user", required=True)
    parser.add_argument("--service-password", required=True)
    parser.add_argument("--swift-url", required=True, help="object-store endpoint URL template")
    parser.add_argument("--region", default="RegionOne")
    parser.add_argument("--state", required=True, help="directory for the application credential")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--check-only", action="store_true",
                        help="only the application credential (and --smoke): the rest was provisioned before")
    args = parser.parse_args()

    ks = Keystone(args.url)
    if args.check_only:
        _, _, body = ks.password_token("alice", "alice-pw", "Default", "demo", "Default")
        ensure_app_cred(ks, args.state, body["token"]["user"]["id"])
        if args.smoke:
            smoke(ks, args.region)
        return
    p = Provisioner(ks, lambda: ks.password_token("admin", args.admin_password, "Default", "admin", "Default")[1])
    member, admin_role = p.role("member"), p.role("admin")
    default = "default"
    example = p.domain("example.org")
    demo = p.project("demo", default)
    space = p.project("space project", default)
    proj2 = p.project("proj2", example)
    service = p.project("service", default)
    alice = p.user("alice", default, "alice-pw")
    bob = p.user("bob", default, "bob-pw")
    carol = p.user("carol", example, "carol-pw")
    swift = p.user(args.service_user, default, args.service_password)
    p.grant(demo, alice, member)
    p.grant(space, bob, member)
    p.grant(proj2, carol, member)
    p.grant(service, swift, admin_role)
    p.object_store(args.swift_url, args.region)
    ensure_app_cred(ks, args.state, alice)
    if args.smoke:
        smoke(ks, args.region)


if __name__ == "__main__":
    main()
