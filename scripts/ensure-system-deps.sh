#!/usr/bin/env bash
# Installs what the tests need from the operating system (Debian packages) when it is missing.
# Nothing is needed yet; later layers (browser tests, MQTT) add their packages here.
set -euo pipefail
exit 0
