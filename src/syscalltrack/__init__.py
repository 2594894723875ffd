"""syscalltrack: rule-based tracking and control of Linux system calls."""
