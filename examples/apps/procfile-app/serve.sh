#!/bin/bash
# Serves a greeting on $PORT with the stack's python3.
mkdir -p "$TMPDIR/www"
echo "Hello from paaskit procfile-app" > "$TMPDIR/www/index.html"
exec python3 -m http.server "$PORT" --directory "$TMPDIR/www"
