"""Discovery failures, with etcd's messages."""

from __future__ import annotations


class DiscoveryError(Exception):
    """A discovery failure; str() is the message etcd prints."""


INVALID_URL = "discovery: invalid URL"
BAD_SIZE_KEY = "discovery: size key is bad"
SIZE_NOT_FOUND = "discovery: size key not found"
DUPLICATE_ID = "discovery: found duplicate id"
DUPLICATE_NAME = "discovery: found duplicate name"
FULL_CLUSTER = "discovery: cluster is full"
TOO_MANY_RETRIES = "discovery: too many retries"
BAD_DISCOVERY_ENDPOINT = "discovery: bad discovery endpoint"
