#!/usr/bin/env bash
# Installs everything nabla needs to build, test and run its examples on Debian 12.
# Safe to run again. Uses sudo when not run as root.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config file \
    libopenblas-dev libopenblas0-openmp libcmocka-dev libcjson-dev zlib1g-dev \
    libopenmpi-dev openmpi-bin \
    dataset-fashion-mnist fortunes python3 graphviz clang-format clang >/dev/null
echo "setup-debian: dependencies installed"
