#!/bin/sh
# The function itself: busybox httpd runs this for every request to "/" and sends what it
# prints. The body arrives on stdin, CONTENT_LENGTH bytes of it.
echo "Content-Type: text/plain; charset=utf-8"
echo
body=$(head -c "${CONTENT_LENGTH:-0}")
echo "Hello from ${DIRIGENT_FUNCTION:-hello-image}! $body"
