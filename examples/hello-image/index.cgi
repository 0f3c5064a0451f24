#!/bin/sh
# The function itself: busybox httpd runs this for every request to "/" and sends what it
# prints. The body arrives on stdin, CONTENT_LENGTH bytes of it.
# Header lines end in CRLF: httpd passes them through as they are, and strict HTTP/1.1
# parsers (Node's, so the data plane's) reject a bare LF there.
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
body=$(head -c "${CONTENT_LENGTH:-0}")
echo "Hello from ${DIRIGENT_FUNCTION:-hello-image}! $body"
