"""Where rendered events go: syslog, the sctlog stream, JSON-lines files.

Sinks know nothing of engines: they take rendered lines.
"""
