#!/usr/bin/env bash
# Try swiftftp on a local Swift: installs and starts a single-node Swift on 127.0.0.1 (tests/swift-lab.sh), builds
# swiftftp and serves that Swift over FTP on 127.0.0.1:2021 in the foreground. Ctrl-C stops swiftftp; the Swift
# keeps running (stop it with tests/swift-lab.sh stop).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
tests/swift-lab.sh start
cargo build --locked --bin swiftftp
port=${PORT:-2021}
cat <<MSG

  swiftftp serves the local Swift on ftp://127.0.0.1:$port
  Log in as test:tester with password testing (account AUTH_test), for example:

    lftp -u test:tester,testing -p $port 127.0.0.1
    # curl splits -u at the first colon, so give the login in the URL, its colon written %3A:
    curl 'ftp://test%3Atester:testing@127.0.0.1:$port/'
    FileZilla: host 127.0.0.1, port $port, user test:tester, password testing, plain FTP

  Top-level folders are containers: \`mkdir photos\` makes one, and files go inside it. The same data is
  visible through the Swift API, e.g.:
    swift -A http://127.0.0.1:8080/auth/v1.0 -U test:tester -K testing list

MSG
exec target/debug/swiftftp --foreground --port "$port" --auth-url http://127.0.0.1:8080/auth/v1.0 \
  --config tests/fixtures/empty.conf "$@"
