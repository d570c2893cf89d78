#!/bin/sh
# BROWSER for the MCP Inspector: log in with browser.mjs (see there).
exec node "$(dirname "$0")/browser.mjs" "$@"
