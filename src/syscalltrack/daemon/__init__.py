"""The system-wide tracker daemon and its control protocol."""
