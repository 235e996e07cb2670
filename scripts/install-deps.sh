#!/bin/sh
# Installs the Debian packages orchlab builds, tests and benchmarks with.
# Checks each with dpkg first and installs only what is missing; runs apt-get
# directly as root and through sudo otherwise. Safe to run repeatedly.
# Usage: scripts/install-deps.sh   (-h, --help: this text)
#
# NOTE: python3-scipy is deliberately absent. On Debian 12 it depends on
# python3-pythran -> libboost-dev (Boost 1.74), which conflicts with
# libboost1.81-dev; the lab needs Boost 1.81 (Asio cancellation slots,
# experimental::make_parallel_group). scripts/orchlab_py/stats.py carries the
# Mann-Whitney U test instead.
set -eu
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
[ $# -eq 0 ] || { echo "usage: scripts/install-deps.sh (no arguments; -h for help)" >&2; exit 2; }

PACKAGES="
  g++ cmake make pkg-config ccache
  libboost1.81-dev
  libcpp-httplib-dev
  nlohmann-json3-dev
  libbenchmark-dev libbenchmark-tools
  libgtest-dev
  python3 python3-matplotlib python3-numpy python3-pytest
  wrk nginx-light curl procps valgrind
  clang libclang-rt-14-dev
  chromium
  prometheus
  golang-go golang-golang-x-sync-dev
"
# clang (clang++ 14 on Debian 12) and libclang-rt-14-dev (libFuzzer and the
# sanitizer runtimes; only a recommendation of clang) build the fuzz targets:
# make fuzz, and the fuzz smoke of make test.
# chromium (headless) is the browser scripts/tests/test_report_html.py checks
# index.html in, through its DevTools protocol; the test skips without it.
# valgrind counts instructions per call of the client path
# (scripts/callgrind_client.sh, make callgrind-client).
# prometheus brings promtool, which tests/mock/metrics_test.cpp runs on the
# mock's GET /__metrics (`promtool check metrics`); only the tool is used, the
# server is never started by the lab.
# golang-go (Go 1.19) and golang-golang-x-sync-dev (errgroup with SetLimit, under
# /usr/share/gocode) build and test the Go exhibits and orchlab-go (make go, make
# test-go) with no module download: patterns/go/go.mod points x/sync there.

missing=""
for pkg in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $pkg"
  fi
done

if [ -z "$missing" ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "install-deps: missing packages:$missing" >&2
  echo "install-deps: not root and no sudo; install them and re-run" >&2
  exit 1
fi

echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
