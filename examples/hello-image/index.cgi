#!/bin/sh
# The function itself: busybox httpd runs this for every request to "/" and sends what it
# prints. The body arrives on stdin, CONTENT_LENGTH bytes of it.
# HTTP wants CRLF after each header line; busybox httpd passes ours through as printed, and
# strict clients (Node's http, undici) refuse bare LF.
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
body=$(head -c "${CONTENT_LENGTH:-0}")
echo "Hello from ${DIRIGENT_FUNCTION:-hello-image}! $body"
