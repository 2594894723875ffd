"""Engines: each turns a validated rule set into kernel objects and produces Events."""
