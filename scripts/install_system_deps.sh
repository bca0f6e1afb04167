#!/usr/bin/env bash
# Installs the Debian packages the tests drive for real: the stock adb client, a JDK and
# junit4 for the Android app's Java core, and Chromium for the report's browser test. Does
# nothing when they are already there.
set -euo pipefail
missing=()
command -v adb >/dev/null 2>&1 || missing+=(adb)
command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
[ -f /usr/share/java/junit4.jar ] || missing+=(junit4)
# Headless Chromium renders the sweep report in the browser test (tests/report).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "missing Debian packages: ${missing[*]} (run: apt-get install ${missing[*]})" >&2
    exit 1
  fi
else
  SUDO=
fi
echo "installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
