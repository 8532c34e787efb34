"""Textual terminal UI for the Pi's own screen (`careeredge tui`)."""
