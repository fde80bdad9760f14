"""Collectors: everything that turns what arrives from the outside into normalized events."""
