#!/bin/sh
echo "bazel coverage is not available in this offline setup" >&2
exit 1
