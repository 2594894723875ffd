"""Thin command-line front ends; the work happens in the library packages."""
