#!/bin/sh
# Prints the greeting chosen at build time (--build-arg GREETING=...) and the architecture
# the image was built for.
echo "$(cat /etc/manifold-greeting) ($(cat /etc/manifold-arch))"
