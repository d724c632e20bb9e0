#!/usr/bin/env bash
# Kept for old habits: the Debian packages the boot tests need are installed by `make setup`
# (scripts/setup.sh), with every other package the tests need, in one list. Unlike before, a
# failed install fails, with the command to run.
exec "$(dirname "$0")/setup.sh" "$@"
